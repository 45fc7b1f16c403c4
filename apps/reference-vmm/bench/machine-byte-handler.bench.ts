/**
 * Reported beside machine.bench's trapped read (issue 15): the same trapped guest MMIO 4-byte
 * read (VMM → core → plugin) when the plugin's BAR handler has only read()/write(), so the
 * access goes through bytes (the model's ValueThroughBytes) instead of the value road, as a
 * ratio to a raw DataView read measured in the same run. A process of its own, so that the
 * core's and the VMM's call sites see one kind of handler, as machine.bench's do.
 */
import { fileURLToPath } from 'node:url';
import { newBench, ratioTarget, report, runBench } from '../../../scripts/bench-report.js';
import { Machine } from '../src/machine/index.js';
import { benchDevice } from './bench-device.js';

const machine = new Machine({ ramSize: 16 * 1024 * 1024 });
machine.attach({
  device: benchDevice('bench0', false, 'bytes'),
  slot: { bus: 0, device: 1, function: 0 },
  label: 'bench0',
});
const [, probed] = await machine.probe();
const guest = machine.guest;
const trappedBase = (probed.bars.find((b) => b.index === 2)?.address ?? 0) + 0x100;
let sink = 0;

const BATCH = 1000;
const RAW = 'raw DataView.getUint32 ×1000';
const TRAPPED = 'trapped guest MMIO 4-byte read ×1000 through a read()/write() handler';
const raw = new DataView(new ArrayBuffer(4096));
const bench = newBench();
bench
  .add(RAW, () => {
    for (let i = 0; i < BATCH; i++) sink ^= raw.getUint32(0x100 + (i & 63) * 4, true);
  })
  .add(TRAPPED, () => {
    for (let i = 0; i < BATCH; i++) sink ^= guest.mmioRead(trappedBase + (i & 63) * 4, 4);
  });
const figures = await runBench(bench);
machine.close();
if (sink === 0.5) process.stdout.write('');
report(fileURLToPath(new URL('..', import.meta.url)), 'machine-byte-handler', figures, [
  ratioTarget(
    'trapped guest MMIO 4-byte read through a read()/write() handler (no value road) / raw DataView.getUint32 (median of 1000-read batches)',
    figures,
    TRAPPED,
    RAW,
    'p50Ns',
    {},
  ),
]);
