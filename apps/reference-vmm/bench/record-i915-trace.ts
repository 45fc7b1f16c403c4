/**
 * Make bench/fixtures/i915-bar0.trace from a run of the guest suite `i915`: its QEMU trace
 * (reports/guest/i915/<boot>/qemu-trace.log, events vfio_region_read and vfio_region_write)
 * holds every trapped access QEMU forwarded to the vGPU, in order:
 *   vfio_region_read  (<device>:region<n>+0x<offset>, <size>) = 0x<data>
 *   vfio_region_write (<device>:region<n>+0x<offset>, 0x<data>, <size>)
 * The BAR0 (region 0) accesses become `r <offset> <size>` / `w <offset> <size> <data>` lines.
 *
 *   npx tsx bench/record-i915-trace.ts <qemu-trace.log> [out]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [input, output = fileURLToPath(new URL('fixtures/i915-bar0.trace', import.meta.url))] =
  process.argv.slice(2);
if (input === undefined) {
  process.stderr.write('usage: record-i915-trace <qemu-trace.log> [out]\n');
  process.exit(2);
}
const READ = /^vfio_region_read +\(.*:region0\+0x([0-9a-f]+), (\d+)\) = 0x[0-9a-f]+$/;
const WRITE = /^vfio_region_write +\(.*:region0\+0x([0-9a-f]+), 0x([0-9a-f]+), (\d+)\)$/;
const lines: string[] = [];
let reads = 0;
for (const line of readFileSync(input, 'utf8').split('\n')) {
  const r = READ.exec(line);
  if (r) {
    lines.push(`r ${r[1]} ${r[2]}`);
    reads++;
    continue;
  }
  const w = WRITE.exec(line);
  if (w) lines.push(`w ${w[1]} ${w[3]} ${w[2]}`);
}
if (lines.length === 0) {
  process.stderr.write(`${input} holds no BAR0 vfio_region_read/write events.\n`);
  process.exit(1);
}
const header = [
  "# BAR0 accesses of Debian's i915 binding an i915-GVTg_V5_4 vGPU served by `vfiokit serve` to",
  '# QEMU 10.2 (guest suite i915), from QEMU trace events vfio_region_read/vfio_region_write;',
  '# made by bench/record-i915-trace.ts. r <offset> <size> | w <offset> <size> <value> (hex).',
  `# ${lines.length} accesses: ${reads} reads, ${lines.length - reads} writes.`,
];
writeFileSync(output, `${[...header, ...lines].join('\n')}\n`);
process.stdout.write(`${output}: ${lines.length} accesses (${reads} reads)\n`);
