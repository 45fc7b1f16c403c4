/**
 * The floor under every vfio-user access: a bare 4-byte request/response over our UNIX socket
 * between two processes, and bulk copy bandwidth through an mmapped memfd against a plain memcpy.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newBench, report, runBench, target } from '../../../scripts/bench-report.js';
import { allocateMemfdMemory, mapFd } from '../src/native/memory.js';
import { UnixConnection } from '../src/native/socket.js';

const here = dirname(fileURLToPath(import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'vfiokit-bench-'));
const path = join(dir, 'echo.sock');

const child = fork(join(here, 'echo-server.ts'), [path], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const cleanup = () => {
  child.kill();
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);

await new Promise<void>((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('the echo server did not start within 10 s')), 10_000);
  child.once('message', () => {
    clearTimeout(timer);
    resolve();
  });
  child.once('exit', (code) => reject(new Error(`the echo server exited with ${code}`)));
});

const conn = await UnixConnection.connect(path, { timeoutMs: 5000 });
let pending: (() => void) | undefined;
let got = 0;
conn.start({
  onData: (chunk) => {
    got += chunk.length;
    if (got >= 4 && pending) {
      got -= 4;
      const p = pending;
      pending = undefined;
      p();
    }
  },
});
const request = new Uint8Array([1, 2, 3, 4]);
const roundTrip = () =>
  new Promise<void>((resolve) => {
    pending = resolve;
    conn.send(request);
  });

const SIZE = 1 << 20;
const src = new Uint8Array(SIZE).map((_, i) => i * 7);
const mem = allocateMemfdMemory('bench', SIZE);
const peerView = new Uint8Array(mapFd(mem.fd, SIZE)); // what the other side of vfio-user would map
const plain = new Uint8Array(SIZE);

const bench = newBench();
bench.add('4-byte request/response over a UNIX socket (2 processes)', roundTrip);
bench.add('copy 1 MiB into an mmapped memfd', () => {
  mem.bytes.set(src);
});
bench.add('copy 1 MiB out of the peer mapping of that memfd', () => {
  plain.set(peerView);
});
bench.add('copy 1 MiB with Uint8Array.set (memcpy)', () => {
  plain.set(src);
});
const figures = await runBench(bench);
conn.close();
mem.close();

const rt = figures.get('4-byte request/response over a UNIX socket (2 processes)')!;
const into = figures.get('copy 1 MiB into an mmapped memfd')!;
const outOf = figures.get('copy 1 MiB out of the peer mapping of that memfd')!;
const memcpy = figures.get('copy 1 MiB with Uint8Array.set (memcpy)')!;
const gbps = (opsPerSec: number) => Math.round(((opsPerSec * SIZE) / 1e9) * 100) / 100;
process.stderr.write(
  `round trip: p50 ${(rt.p50Ns / 1000).toFixed(1)} us, p99 ${(rt.p99Ns / 1000).toFixed(1)} us, ${rt.opsPerSec} requests/s\n` +
    `copy 1 MiB: into memfd ${gbps(into.opsPerSec)} GB/s, out of peer mapping ${gbps(outOf.opsPerSec)} GB/s, memcpy ${gbps(memcpy.opsPerSec)} GB/s\n`,
);
report(join(here, '..'), 'roundtrip', figures, [
  // Cross-CPU wake-ups cost 30-35 us on these machines (shared/reference/vfio-user.md): a loose floor.
  target('4-byte round trip p50 in microseconds', rt.p50Ns / 1000, { max: 100 }),
  target('mmapped memfd copy bandwidth relative to memcpy', into.opsPerSec / memcpy.opsPerSec, { min: 0.5 }),
]);
