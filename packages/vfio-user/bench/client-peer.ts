/**
 * The TypeScript client of the tail benchmark, run as its own process so that it can be pinned:
 * attach the device served on argv[2] as the VMM does (VfioUserClientDevice, synchronous reads
 * on the calling thread), make argv[4] warm-up and then argv[3] timed requests, and print one
 * JSON line: the latency summary and the garbage collection spent while timing.
 *
 * A request is a 4-byte config read; with argv[5] = N, it is a batch as a guest driver's burst
 * of register writes makes one: N posted 4-byte writes to BAR 0 and then the config read, whose
 * reply says they were applied. Each access is made as the VMM makes a guest's config read and
 * trapped MMIO write (its RegionPort's readValue/writeValue: the device's own when it has them,
 * as this one does); the writes are posted (postedWrites: the client holds them and sends them
 * as one REGION_WRITE_MULTI).
 */
import { VFIO_PCI_CONFIG_REGION_INDEX } from '@vfiokit/core';
import { connectVfioUser } from '../src/client/client-device.js';
import { native } from '../src/native/addon.js';
import { readGc } from './gc-meter.js';
import { summarise } from './latency.js';

const [path, requestsArg, warmupArg, writesArg] = process.argv.slice(2);
const requests = Number(requestsArg);
const warmup = Number(warmupArg);
const writes = Number(writesArg ?? 0);
if (!path || !(requests >= 1) || !(warmup >= 0) || !(writes >= 0))
  throw new Error('usage: client-peer <socket> <requests> <warmup> [writes per batch]');

const dev = await connectVfioUser(path, { postedWrites: writes > 0 });
if (writes > 0 && !dev.postsWrites)
  throw new Error('the client does not post its writes: the batch bench needs a device without mmaps');
// COMMAND.MEMORY on, as a guest driver has it before it writes BAR 0.
if (writes > 0) dev.write(VFIO_PCI_CONFIG_REGION_INDEX, 4, new Uint8Array([2, 0]));
let vendor = 0;
const one = () => {
  for (let w = 0; w < writes; w++) dev.writeValue(0, (w * 4) % 4096, 4, w);
  vendor = dev.readValue(VFIO_PCI_CONFIG_REGION_INDEX, 0, 4) & 0xffff;
};
/**
 * Time `n` requests into `into` (ns). The warm-up runs this same function, timing included.
 * The clock is CLOCK_MONOTONIC read into a Float64Array, as ping.c reads it (clock_gettime):
 * performance.now() would make a heap number per call, garbage the C client does not make.
 */
const clockNs = native().clockNs;
const clock = new Float64Array(1);
const starts = new Float64Array(Math.max(requests, warmup));
const timed = (n: number, into: Float64Array) => {
  for (let i = 0; i < n; i++) {
    clockNs(clock);
    const t0 = clock[0];
    one();
    clockNs(clock);
    into[i] = clock[0] - t0;
    starts[i] = t0;
  }
};
// GC entries reach the observer from the event loop, which the synchronous loops never yield
// to: let them arrive before each reading, or the client's GC would always read 0.
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));
// The warm-up is the measured path itself, in the measured loop, so that the engine has
// compiled all of it (and its background compiles have ended) before timing starts. It runs in
// WARM_ROUNDS parts with an event-loop turn after each, as one comes before the measured run:
// the turn runs the posted writes' flush task, so the first write after it takes the branch
// that queues the task again, and code compiled before that branch was seen is compiled anew
// here rather than while timing (traced with --trace-opt --trace-deopt: with one part, the
// measured run recompiled the write path; with five, nothing compiles while timing).
const WARM_ROUNDS = 5;
const times = new Float64Array(Math.max(requests, warmup));
for (let r = 0; r < WARM_ROUNDS; r++) {
  timed(Math.round(((r + 1) * warmup) / WARM_ROUNDS) - Math.round((r * warmup) / WARM_ROUNDS), times);
  await settle();
}
const before = readGc();
const usage0 = process.resourceUsage();
timed(requests, times);
const usage1 = process.resourceUsage();
await settle();
const after = readGc();
// VFIOKIT_BENCH_SLOW_NS, as ping.c's: the start (CLOCK_MONOTONIC) and length of each timed
// request slower than that many ns go to stderr, to lay beside a trace of the same clock
// (perf record -k CLOCK_MONOTONIC). Written before the times are sorted, after GC is read (the lines allocate).
const slowNs = Number(process.env.VFIOKIT_BENCH_SLOW_NS ?? 0);
if (slowNs > 0) {
  const lines = [`timed ${starts[0]} ${starts[requests - 1] + times[requests - 1]}`];
  for (let i = 0; i < requests; i++) if (times[i] > slowNs) lines.push(`slow ${i} ${starts[i]} ${times[i]}`);
  process.stderr.write(`${lines.join('\n')}\n`);
}
if (vendor !== 0x1af4) throw new Error('the config read did not return vendor 0x1af4');
if (writes > 0) {
  if (dev.readValue(0, ((writes - 1) * 4) % 4096, 4) !== writes - 1)
    throw new Error('BAR 0 does not read back the last posted write: a batch was lost');
}
dev.disconnect();
process.stdout.write(
  `${JSON.stringify({
    ...summarise(times, requests),
    gcMs: after.gcMs - before.gcMs,
    gcMinor: after.minor - before.minor,
    gcMajor: after.major - before.major,
    gcLongestMs: after.longestMs,
    // Context switches of this process while timing, per request: a request that wakes the
    // device more than once, or is preempted by it, pays for each switch.
    voluntarySwitches: (usage1.voluntaryContextSwitches - usage0.voluntaryContextSwitches) / requests,
    involuntarySwitches: (usage1.involuntaryContextSwitches - usage0.involuntaryContextSwitches) / requests,
  })}\n`,
  // Exit without waiting for anything else (the GC observer).
  () => process.exit(0),
);
