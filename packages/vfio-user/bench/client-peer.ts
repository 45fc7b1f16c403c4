/**
 * The TypeScript client of the tail benchmark, run as its own process so that it can be pinned:
 * attach the device served on argv[2] as the VMM does (VfioUserClientDevice, synchronous reads
 * through the I/O worker), make argv[4] warm-up and then argv[3] timed 4-byte config reads, and
 * print one JSON line: the latency summary and the garbage collection spent while timing.
 */
import { performance } from 'node:perf_hooks';
import { VFIO_PCI_CONFIG_REGION_INDEX } from '@vfiokit/core';
import { connectVfioUser } from '../src/client/client-device.js';
import { readGc } from './gc-meter.js';
import { summarise } from './latency.js';

const [path, requestsArg, warmupArg] = process.argv.slice(2);
const requests = Number(requestsArg);
const warmup = Number(warmupArg);
if (!path || !(requests >= 1) || !(warmup >= 0))
  throw new Error('usage: client-peer <socket> <requests> <warmup>');

const dev = await connectVfioUser(path);
const buf = new Uint8Array(4);
const times = new Float64Array(requests);
for (let i = 0; i < warmup; i++) dev.read(VFIO_PCI_CONFIG_REGION_INDEX, 0, buf);
const before = readGc();
for (let i = 0; i < requests; i++) {
  const t0 = performance.now();
  dev.read(VFIO_PCI_CONFIG_REGION_INDEX, 0, buf);
  times[i] = (performance.now() - t0) * 1e6;
}
const after = readGc();
dev.disconnect();
if (buf[0] !== 0xf4 || buf[1] !== 0x1a) throw new Error('the config read did not return vendor 0x1af4');
process.stdout.write(
  `${JSON.stringify({
    ...summarise(times, requests),
    gcMs: after.gcMs - before.gcMs,
    gcMinor: after.minor - before.minor,
    gcMajor: after.major - before.major,
  })}\n`,
  // The I/O worker is gone with disconnect(); exit without waiting for anything else.
  () => process.exit(0),
);
