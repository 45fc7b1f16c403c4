/**
 * What a vfio-user access costs, against its floor, between two processes over a UNIX socket:
 *
 * - the floor: a bare 4-byte request/response (bench/echo-server.ts echoes it back);
 * - a 4-byte REGION_READ from a TypeScript client to our server (bench/serve-device.ts), sent
 *   from the event loop (the protocol alone), and through VfioUserClientDevice.read (the
 *   synchronous device contract: the reply is waited for on the calling thread);
 * - bulk DMA: 1 MiB copied by the server's DMA path (IovaMap over a memfd mapped from its fd,
 *   as DMA_MAP does) against a plain memcpy.
 *
 * Run it as is (unpinned) and under `taskset -c 0` (pinned: both processes, and their threads,
 * on one CPU); the report file name says which.
 */
import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VFIO_PCI_CONFIG_REGION_INDEX } from '@vfiokit/core';
import { HostDma, IovaMap } from '@vfiokit/core/host';
import { newBench, ratioTarget, report, runBench, target } from '../../../scripts/bench-report.js';
import { connectVfioUser } from '../src/client/client-device.js';
import { allocateMemfdMemory, mapFd } from '../src/native/memory.js';
import { UnixConnection } from '../src/native/socket.js';
import type { Frame } from '../src/protocol/framing.js';
import { encodeRegionReadRequest } from '../src/protocol/region.js';
import { encodeVersionRequest } from '../src/protocol/version.js';
import { MessageConnection } from '../src/transport.js';

const here = dirname(fileURLToPath(import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vfiokit-bench-'));
const echoPath = join(dir, 'echo.sock');
const devicePath = join(dir, 'device.sock');

function affinity(): string {
  try {
    return execFileSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' })
      .split(':')
      .pop()!
      .trim();
  } catch {
    return 'unknown';
  }
}
const cpus = affinity();
const pinned = !cpus.includes(',') && !cpus.includes('-') && cpus !== 'unknown';
const mode = pinned ? 'pinned' : 'unpinned';

const children = [
  fork(join(here, 'echo-server.ts'), [echoPath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  fork(join(here, 'serve-device.ts'), [devicePath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
];
const cleanup = () => {
  for (const c of children) c.kill();
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
await Promise.all(
  children.map(
    (child) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error('a benchmark peer did not start within 20 s')),
          20_000,
        );
        child.once('message', () => {
          clearTimeout(timer);
          resolve();
        });
        child.once('exit', (code) => reject(new Error(`a benchmark peer exited with ${code}`)));
      }),
  ),
);

// The floor: 4 bytes there and back.
const echo = await UnixConnection.connect(echoPath, { timeoutMs: 5000 });
let echoWaiter: (() => void) | undefined;
let got = 0;
echo.start({
  onData: (chunk) => {
    got += chunk.length;
    if (got >= 4 && echoWaiter) {
      got -= 4;
      const w = echoWaiter;
      echoWaiter = undefined;
      w();
    }
  },
});
const four = new Uint8Array([1, 2, 3, 4]);
const floorTrip = () =>
  new Promise<void>((resolve) => {
    echoWaiter = resolve;
    echo.send(four);
  });

// REGION_READ from the event loop: the protocol and the server, nothing else.
let replyWaiter: ((f: Frame) => void) | undefined;
const conn = await MessageConnection.connect(devicePath, {
  onMessage: (f) => {
    const w = replyWaiter;
    replyWaiter = undefined;
    w?.(f);
  },
});
const call = (m: Uint8Array) =>
  new Promise<Frame>((resolve) => {
    replyWaiter = resolve;
    conn.send(m);
  });
await call(encodeVersionRequest(1, { major: 0, minor: 2, capabilities: {} }));
const readRequest = encodeRegionReadRequest(2, { offset: 0, region: VFIO_PCI_CONFIG_REGION_INDEX, count: 4 });
if ((await call(readRequest)).payload.length !== 20) throw new Error('REGION_READ did not return 4 bytes');
const regionRead = () => call(readRequest);

// Bulk DMA: 1 MiB through the server's DMA path against memcpy.
const SIZE = 1 << 20;
const guest = allocateMemfdMemory('guest', SIZE);
guest.bytes.set(new Uint8Array(SIZE).map((_, i) => i * 7));
const map = new IovaMap();
map.map({ iova: 0, size: SIZE, read: true, write: true, memory: new Uint8Array(mapFd(guest.fd, SIZE)) });
const dma = new HostDma({ map });
const dst = new Uint8Array(SIZE);
const src = new Uint8Array(SIZE).map((_, i) => i * 3);

const FLOOR = `4-byte request/response over a UNIX socket (2 processes, ${mode})`;
const PROTO = `4-byte REGION_READ, event-loop client to TS server (${mode})`;
const SYNC = `4-byte REGION_READ, VfioUserClientDevice.read on the calling thread (${mode})`;
const DMA = 'device DMA read of 1 MiB from an mmapped memfd (IovaMap)';
const MEMCPY = 'copy 1 MiB with Uint8Array.set (memcpy)';

const bench = newBench();
bench.add(FLOOR, floorTrip);
bench.add(PROTO, regionRead);
bench.add(DMA, () => dma.read(0, dst));
bench.add(MEMCPY, () => dst.set(src));
const figures = await runBench(bench);
conn.close();

// One client at a time: the device client is the server's next session.
const dev = await connectVfioUser(devicePath);
const buf = new Uint8Array(4);
const syncBench = newBench();
syncBench.add(SYNC, () => dev.read(VFIO_PCI_CONFIG_REGION_INDEX, 0, buf));
for (const [k, v] of await runBench(syncBench)) figures.set(k, v);
dev.disconnect();
echo.close();
guest.close();

const floor = figures.get(FLOOR)!;
const proto = figures.get(PROTO)!;
const sync = figures.get(SYNC)!;
const us = (ns: number) => (ns / 1000).toFixed(1);
const line = (name: string, f: typeof floor) =>
  `${name}: p50 ${us(f.p50Ns)} us, p99 ${us(f.p99Ns)} us, ${f.opsPerSec} requests/s, ${(f.p50Ns / floor.p50Ns).toFixed(2)}x the floor\n`;
const gbps = (opsPerSec: number) => ((opsPerSec * SIZE) / 1e9).toFixed(2);
process.stderr.write(
  `CPUs ${cpus} (${mode})\n${line('floor', floor)}${line('REGION_READ (event loop)', proto)}${line('REGION_READ (sync device)', sync)}` +
    `DMA 1 MiB ${gbps(figures.get(DMA)!.opsPerSec)} GB/s, memcpy ${gbps(figures.get(MEMCPY)!.opsPerSec)} GB/s\n`,
);
report(join(here, '..'), `roundtrip-${mode}`, figures, [
  ratioTarget(`REGION_READ p50 relative to the bare round trip (${mode})`, figures, PROTO, FLOOR, 'p50Ns', {
    max: 1.5,
  }),
  ratioTarget(
    `VfioUserClientDevice.read p50 relative to the bare round trip (${mode}), at most 1.5 as the event-loop client`,
    figures,
    SYNC,
    FLOOR,
    'p50Ns',
    { max: 1.5 },
  ),
  target(
    'device DMA through an mmapped fd relative to memcpy',
    figures.get(DMA)!.opsPerSec / figures.get(MEMCPY)!.opsPerSec,
    { min: 0.5 },
    {
      figure: DMA,
      baseline: MEMCPY,
      field: 'opsPerSec',
      figureValue: figures.get(DMA)!.opsPerSec,
      baselineValue: figures.get(MEMCPY)!.opsPerSec,
    },
  ),
]);
// The forked peers keep their IPC channels open: end the run here (the exit handler stops them).
process.exit();
