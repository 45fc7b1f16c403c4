/**
 * Targets of @vfiokit/crc32, each against a baseline measured in this run, on 64 MiB (beyond
 * the caches, as a migration stream's pages are):
 * - copy + CRC32 in one pass: at least 0.8x the bandwidth of a plain copy (Uint8Array.set);
 * - CRC32 alone: at least 2x node:zlib's crc32.
 * Without the native kernel both ratios fall back to node:zlib's and the targets are not met.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { figure, newBench, report, target } from '../../../scripts/bench-report.js';
import { copyCrc32, crc32, crc32Implementation, zlibChecksum } from '../src/index.js';

const SIZE = 64 << 20;
const RUN = 1 << 20;
const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = new Uint8Array(SIZE).map((_, i) => (i * 2654435761) >>> 24);
const dst = new Uint8Array(SIZE);
let sink = 0;

const COPY = 'copy 64 MiB in 1 MiB runs, Uint8Array.set (baseline)';
const FUSED = 'copy + CRC32 64 MiB in 1 MiB runs, one pass';
const ZLIB = 'CRC32 64 MiB, node:zlib (baseline)';
const NATIVE = 'CRC32 64 MiB, @vfiokit/crc32';
const bench = newBench();
bench
  .add(COPY, () => {
    for (let at = 0; at < SIZE; at += RUN) dst.set(src.subarray(at, at + RUN), at);
  })
  .add(FUSED, () => {
    let crc = 0;
    for (let at = 0; at < SIZE; at += RUN) crc = copyCrc32(dst, at, src.subarray(at, at + RUN), crc);
    sink ^= crc;
  })
  .add(ZLIB, () => {
    sink ^= zlibChecksum(src);
  })
  .add(NATIVE, () => {
    sink ^= crc32(src);
  });
await bench.run();
const figures = new Map(bench.tasks.map((t) => [t.name, figure(t)]));
if (crc32(src) !== zlibChecksum(src)) throw new Error('crc32 bench: the native CRC differs from node:zlib');
const mean = (name: string) => figures.get(name)!.meanNs;
const compare = (fig: string, base: string) => ({
  figure: fig,
  baseline: base,
  field: 'meanNs (bandwidth = baseline / figure)',
  figureNs: mean(fig),
  baselineNs: mean(base),
});
report(
  packageDir,
  'crc32',
  figures,
  [
    target(
      'copy + CRC32 / plain copy bandwidth, at least 0.8',
      mean(COPY) / mean(FUSED),
      { min: 0.8 },
      compare(FUSED, COPY),
    ),
    target(
      'CRC32 / node:zlib crc32 bandwidth, at least 2',
      mean(ZLIB) / mean(NATIVE),
      { min: 2 },
      compare(NATIVE, ZLIB),
    ),
  ],
  { implementation: crc32Implementation, bytes: SIZE, sink: sink & 1 },
);
