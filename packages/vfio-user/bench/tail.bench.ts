/**
 * vfio-user at C speed in the tail, not only the median. Each figure is a 4-byte REGION_READ of
 * config space, one request at a time, timed request by request:
 *
 * - the floor: our C ping (bench/ping.c, compiled now with the machine's cc) as client and as
 *   device: a bare UNIX-socket request/response with the message sizes of a REGION_READ;
 * - the server: the same C client against our TypeScript server (bench/serve-device.ts);
 * - the client: our VMM's VfioUserClientDevice (bench/client-peer.ts) against the C device,
 *   each access made as the VMM makes a guest's (readValue/writeValue).
 *
 * Each is run a second time with batches instead of single reads (BATCH_WRITES posted 4-byte
 * BAR 0 writes in one REGION_WRITE_MULTI, then the read): the C client sends the batch it
 * builds once, our client posts each write (postedWrites) and sends the batch as QEMU does.
 *
 * Targets, for each placement (pinned: every process and thread on one CPU; unpinned: the
 * scheduler's choice): median and p99 at most 1.15× the floor's, the worst request at most 2×
 * the floor's worst. Each ratio is taken against the floor of the same round; rounds interleave
 * placements and the order of the runs; the reported ratio is the median over rounds. Garbage
 * collection in the TypeScript process is reported per 100,000 requests.
 *
 * Not a target, beside them: the same C client against the C device polling for 32 us before
 * each blocking read ("floor polling"), as our server's wait in place polls (native/poll.c) and
 * the C floor's device does not. The server's ratio to that (pollingFloor in the report) is what
 * is left of the TypeScript side's cost once both wait the same way.
 *
 * The floor runs twice in each round: the second run ("floor again", not a target) divided by
 * the first is what the same C programs measure against themselves, the noise every target's
 * ratio carries on this machine at this load (floorNoise in the report, with each round's
 * ratio, for the median, the p99 and the worst request). A target missed by less than that
 * spread is not shown to be the TypeScript side's: on a virtual machine whose vCPU the host
 * pauses now and then for a millisecond or more, the worst of a run is whichever run a pause
 * hit, and the floor's worst against itself moves by more than the bound of 2.
 *
 * Every run warms up first with VFIOKIT_BENCH_WARMUP requests (or batches) of the measured kind,
 * timed but left out of the figures by both clients, so that the TypeScript side has
 * compiled its whole path before timing starts (a batch warm-up of a tenth of the batches left
 * the client compiling its request path, on the CPU the pinned runs share, while timed).
 *
 * VFIOKIT_BENCH_REQUESTS (default 100000), VFIOKIT_BENCH_WARMUP (20000),
 * VFIOKIT_BENCH_BATCHES (20000) and VFIOKIT_BENCH_ROUNDS (3) change the run's size.
 */
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchFigure, report, target } from '../../../scripts/bench-report.js';
import type { GcReading } from './gc-meter.js';
import type { Latency } from './latency.js';

const here = dirname(fileURLToPath(import.meta.url));
const REQUESTS = Number(process.env.VFIOKIT_BENCH_REQUESTS ?? 100_000);
const WARMUP = Number(process.env.VFIOKIT_BENCH_WARMUP ?? 20_000);
const ROUNDS = Number(process.env.VFIOKIT_BENCH_ROUNDS ?? 3);
const BATCHES = Number(process.env.VFIOKIT_BENCH_BATCHES ?? 20_000);
/** QEMU's VFIO_USER_MULTI_MAX (hw/vfio-user/protocol.h): the most writes it puts in one message. */
const BATCH_WRITES = 200;
const dir = mkdtempSync(join(tmpdir(), 'vfiokit-tail-'));
const ping = join(dir, 'ping');
const cSock = join(dir, 'c-device.sock');
const cPollSock = join(dir, 'c-polling-device.sock');
/** How long the polling C device polls before it blocks: the most our server's wait polls. */
const POLL_US = 32;
const tsSock = join(dir, 'ts-device.sock');

try {
  execFileSync('cc', ['-O2', '-Wall', '-o', ping, join(here, 'ping.c')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
} catch (err) {
  rmSync(dir, { recursive: true, force: true });
  throw new Error(
    `the C floor (bench/ping.c) did not compile: ${(err as Error).message}. Install a C compiler (apt-get install gcc).`,
  );
}

/** The CPUs this process may use, as taskset prints them (e.g. `0,1` or `0-3`). */
function allowedCpus(pid: number): string {
  return execFileSync('taskset', ['-cp', String(pid)], { encoding: 'utf8' })
    .split(':')
    .pop()!
    .trim();
}
const allCpus = allowedCpus(process.pid);
const oneCpu = allCpus.split(/[,-]/)[0];
const placements: Placement[] = /[,-]/.test(allCpus) ? ['pinned', 'unpinned'] : ['pinned'];
type Placement = 'pinned' | 'unpinned';
const cpusOf = (p: Placement) => (p === 'pinned' ? oneCpu : allCpus);

/** Every thread of `pid` onto the placement's CPUs. */
function place(pid: number, p: Placement): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpusOf(p), String(pid)], { stdio: 'ignore' });
}

const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) c.kill();
  rmSync(dir, { recursive: true, force: true });
});

function waitFor(child: ChildProcess, ready: (resolve: () => void) => void, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within 30 s`)), 30_000);
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
    ready(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const cDevice = spawn(ping, ['serve', cSock], { stdio: ['ignore', 'pipe', 'inherit'] });
children.push(cDevice);
await waitFor(cDevice, (ok) => cDevice.stdout!.once('data', ok), 'the C device');
const cPollDevice = spawn(ping, ['serve', cPollSock, String(POLL_US)], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
children.push(cPollDevice);
await waitFor(cPollDevice, (ok) => cPollDevice.stdout!.once('data', ok), 'the polling C device');
// V8's memory reducer off from the start, as the `vfiokit` executable starts (ServeDeviceOptions.memoryReducer): in Node 20
// setting the flag once the heap exists does not stop the reducer, whose Mark-Compacts (6–18 ms
// each, measured with --trace-gc) came ~8 s into the server's life, inside a timed run.
const tsServer = fork(join(here, 'serve-device.ts'), [tsSock], {
  execArgv: [...process.execArgv, '--no-memory-reducer'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
children.push(tsServer);
await waitFor(tsServer, (ok) => tsServer.once('message', ok), 'the TypeScript server');

function serverGc(): Promise<GcReading> {
  return new Promise((resolve) => {
    const on = (m: unknown) => {
      if (typeof m === 'object' && m !== null && 'gc' in m) {
        tsServer.off('message', on);
        resolve((m as { gc: GcReading }).gc);
      }
    };
    tsServer.on('message', on);
    tsServer.send('gc?');
  });
}

/** Run a client to its end and parse its JSON line. */
function runClient(command: string, args: string[], p: Placement): Promise<Latency & Partial<GcDelta>> {
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', ['-c', cpusOf(p), command, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()!));
    });
  });
}

interface GcDelta {
  gcMs: number;
  gcMinor: number;
  gcMajor: number;
  /** The longest single GC pause of the run: beside the worst request, it says whether GC made it. */
  gcLongestMs: number;
}
/**
 * `again`: the floor once more, the same programs, to show the floor's own spread; `polling`:
 * the C client against the C device that polls before it blocks (not a target).
 */
type Role = 'floor' | 'server' | 'client' | 'again' | 'polling';
/** A single 4-byte read per request, or a REGION_WRITE_MULTI batch and the read. */
type Shape = 'read' | 'batch';
type Kind = `${Role} ${Shape}`;
type Run = Latency & GcDelta;

const sizes = (shape: Shape) => [String(shape === 'read' ? REQUESTS : BATCHES), String(WARMUP)];
const cArgs = (sock: string, shape: Shape) =>
  shape === 'read'
    ? ['client', sock, ...sizes(shape)]
    : ['multi', sock, ...sizes(shape), String(BATCH_WRITES)];
const tsClient = (shape: Shape) => [
  ...process.execArgv,
  join(here, 'client-peer.ts'),
  cSock,
  ...sizes(shape),
  ...(shape === 'batch' ? [String(BATCH_WRITES)] : []),
];

async function run(kind: Kind, p: Placement): Promise<Run> {
  const [role, shape] = kind.split(' ') as [Role, Shape];
  if (role === 'floor' || role === 'again' || role === 'polling')
    return {
      // C on both ends: no garbage collector to read.
      ...(await runClient(ping, cArgs(role === 'polling' ? cPollSock : cSock, shape), p)),
      gcMs: 0,
      gcMinor: 0,
      gcMajor: 0,
      gcLongestMs: 0,
    };
  if (role === 'client') return (await runClient(process.execPath, tsClient(shape), p)) as Run;
  const before = await serverGc();
  const lat = await runClient(ping, cArgs(tsSock, shape), p);
  const after = await serverGc();
  return {
    ...lat,
    gcMs: after.gcMs - before.gcMs,
    gcMinor: after.minor - before.minor,
    gcMajor: after.major - before.major,
    gcLongestMs: after.longestMs,
  };
}

const load = { start: loadavg().map((x) => Math.round(x * 100) / 100), end: [] as number[] };
const rounds: { round: number; placement: Placement; kind: Kind; run: Run }[] = [];
const roles: Role[] = ['floor', 'server', 'client', 'again', 'polling'];
const shapes: Shape[] = ['read', 'batch'];
const kinds: Kind[] = shapes.flatMap((s) => roles.map((r): Kind => `${r} ${s}`));
for (let r = 0; r < ROUNDS; r++) {
  // Alternate the placements' order and the runs' order from round to round.
  const ps = r % 2 === 0 ? placements : [...placements].reverse();
  for (const p of ps) {
    place(cDevice.pid!, p);
    place(cPollDevice.pid!, p);
    place(tsServer.pid!, p);
    const order = r % 2 === 0 ? kinds : [...kinds].reverse();
    for (const kind of order) rounds.push({ round: r, placement: p, kind, run: await run(kind, p) });
  }
}
load.end = loadavg().map((x) => Math.round(x * 100) / 100);
tsServer.disconnect();

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const runsOf = (p: Placement, kind: Kind) => rounds.filter((x) => x.placement === p && x.kind === kind);
const floorOf = (kind: Kind): Kind => `floor ${kind.split(' ')[1] as Shape}`;
/** The median over rounds of kind's `field` divided by its floor's (or `base`'s) in the same round. */
const ratio = (
  p: Placement,
  kind: Kind,
  field: 'medianNs' | 'p99Ns' | 'worstNs',
  base: Kind = floorOf(kind),
) =>
  median(
    runsOf(p, kind).map((x) => x.run[field] / runsOf(p, base).find((f) => f.round === x.round)!.run[field]),
  );

const ROLE_NAMES: Record<Role, string> = {
  floor: 'floor: C ping client to C ping device',
  server: 'server: C ping client to the TypeScript server',
  client: 'client: VfioUserClientDevice to the C ping device',
  again: 'floor again: C ping client to C ping device, a second run',
  polling: `floor polling: C ping client to C ping device polling ${POLL_US} us before it blocks`,
};
const SHAPE_NAMES: Record<Shape, string> = {
  read: '4-byte REGION_READ',
  batch: `REGION_WRITE_MULTI of ${BATCH_WRITES} 4-byte writes + 4-byte REGION_READ`,
};
const nameOf = (kind: Kind, p: Placement) => {
  const [role, shape] = kind.split(' ') as [Role, Shape];
  return `${ROLE_NAMES[role]}, ${SHAPE_NAMES[shape]} (${p})`;
};
const figures = new Map<string, BenchFigure>();
const targets = [];
const gc: Record<
  string,
  {
    gcMsPer100k: number;
    scavengesPer100k: number;
    fullPer100k: number;
    longestPauseMs: number;
    worstRequestMs: number;
  }
> = {};
/** The floor against itself, by placement and shape: the ratios' noise. */
const floorNoise: Record<
  string,
  {
    medianRatio: number;
    p99Ratio: number;
    worstRatio: number;
    p99RatioByRound: number[];
    worstRatioByRound: number[];
  }
> = {};
/** The server against the polling C device, and that device against the floor (not targets). */
const pollingFloor: Record<
  string,
  { serverMedianRatio: number; serverP99Ratio: number; pollingMedianRatio: number; pollingP99Ratio: number }
> = {};
const round3 = (x: number) => Math.round(x * 1000) / 1000;
for (const p of placements) {
  for (const kind of kinds) {
    const runs = runsOf(p, kind).map((x) => x.run);
    const name = nameOf(kind, p);
    const meanNs = median(runs.map((x) => x.meanNs));
    figures.set(name, {
      name,
      opsPerSec: Math.round(1e9 / meanNs),
      meanNs,
      p50Ns: median(runs.map((x) => x.medianNs)),
      p99Ns: median(runs.map((x) => x.p99Ns)),
      worstNs: median(runs.map((x) => x.worstNs)),
      samples: runs.reduce((n, x) => n + x.requests, 0),
    });
    if (kind.startsWith('floor')) continue;
    if (kind.startsWith('polling')) {
      const shape = kind.split(' ')[1] as Shape;
      pollingFloor[`${shape} (${p})`] = {
        serverMedianRatio: round3(ratio(p, `server ${shape}`, 'medianNs', kind)),
        serverP99Ratio: round3(ratio(p, `server ${shape}`, 'p99Ns', kind)),
        pollingMedianRatio: round3(ratio(p, kind, 'medianNs')),
        pollingP99Ratio: round3(ratio(p, kind, 'p99Ns')),
      };
      continue;
    }
    if (kind.startsWith('again')) {
      const floorRuns = runsOf(p, floorOf(kind));
      const byRound = (field: 'p99Ns' | 'worstNs') =>
        runsOf(p, kind).map(
          (x) =>
            Math.round((x.run[field] / floorRuns.find((f) => f.round === x.round)!.run[field]) * 1000) / 1000,
        );
      floorNoise[`${kind.split(' ')[1]} (${p})`] = {
        medianRatio: Math.round(ratio(p, kind, 'medianNs') * 1000) / 1000,
        p99Ratio: Math.round(ratio(p, kind, 'p99Ns') * 1000) / 1000,
        worstRatio: Math.round(ratio(p, kind, 'worstNs') * 1000) / 1000,
        p99RatioByRound: byRound('p99Ns'),
        worstRatioByRound: byRound('worstNs'),
      };
      continue;
    }
    const per100k = (f: (x: Run) => number) =>
      Math.round(
        (runs.reduce((n, x) => n + f(x), 0) / runs.reduce((n, x) => n + x.requests, 0)) * 1e5 * 1000,
      ) / 1000;
    gc[name] = {
      gcMsPer100k: per100k((x) => x.gcMs),
      scavengesPer100k: per100k((x) => x.gcMinor),
      fullPer100k: per100k((x) => x.gcMajor),
      // Medians over the rounds, as the worst-request figure is.
      longestPauseMs: Math.round(median(runs.map((x) => x.gcLongestMs)) * 1000) / 1000,
      worstRequestMs: Math.round(median(runs.map((x) => x.worstNs)) / 1000) / 1000,
    };
    const floorName = nameOf(floorOf(kind), p);
    const of = (field: 'p50Ns' | 'p99Ns' | 'worstNs') => ({
      figure: name,
      baseline: floorName,
      field,
      figureNs: figures.get(name)![field]!,
      baselineNs: figures.get(floorName)![field]!,
    });
    targets.push(
      target(
        `${kind} median / floor median (${p}), at most 1.15`,
        ratio(p, kind, 'medianNs'),
        { max: 1.15 },
        of('p50Ns'),
      ),
      target(
        `${kind} p99 / floor p99 (${p}), at most 1.15`,
        ratio(p, kind, 'p99Ns'),
        { max: 1.15 },
        of('p99Ns'),
      ),
      target(
        `${kind} worst of ${runs[0].requests} / floor worst (${p}), at most 2`,
        ratio(p, kind, 'worstNs'),
        { max: 2 },
        of('worstNs'),
      ),
    );
  }
}

const us = (ns: number) => (ns / 1000).toFixed(1);
for (const f of figures.values())
  process.stderr.write(
    `${f.name}: median ${us(f.p50Ns)} us, p99 ${us(f.p99Ns)} us, worst ${us(f.worstNs!)} us\n`,
  );
for (const [name, n] of Object.entries(floorNoise))
  process.stderr.write(
    `floor again / floor, ${name}: median ${n.medianRatio}, p99 ${n.p99Ratio} (rounds: ${n.p99RatioByRound.join(', ')}), worst ${n.worstRatio} (rounds: ${n.worstRatioByRound.join(', ')})\n`,
  );
for (const [name, n] of Object.entries(pollingFloor))
  process.stderr.write(
    `against the C device polling ${POLL_US} us, ${name}: server median ${n.serverMedianRatio}, p99 ${n.serverP99Ratio}; that device against the floor: median ${n.pollingMedianRatio}, p99 ${n.pollingP99Ratio}\n`,
  );
report(join(here, '..'), 'tail', figures, targets, {
  requests: REQUESTS,
  warmup: WARMUP,
  rounds: ROUNDS,
  cpus: allCpus,
  loadAverage: load,
  gc,
  floorNoise,
  pollingFloor,
  runs: rounds.map((x) => ({ round: x.round, placement: x.placement, kind: x.kind, ...x.run })),
});
// The C device and the server's IPC channel keep the loop alive: end the run here.
process.exit();
