/**
 * Targets of the machine (apps/reference-vmm):
 * (a) a guest access to a directly mapped BAR area runs at least 0.5× as fast as the same
 *     access to guest RAM, same run (the direct path must not trap);
 * (b) a trapped guest MMIO read (VMM → core → plugin) costs at most 2× the core dispatcher's
 *     own DeviceFile.read for the same access, same run, and at most 10× a raw DataView read
 *     (issue 15; 5× is the moonshot). The plugin's BAR is a RegisterBank given as the BAR's
 *     handler, so the read reaches the register as a value (RegionHandler.readValue). The same
 *     read through a read()/write() handler, a plugin without the value road, is reported by
 *     machine-byte-handler.bench.ts, in a process of its own (the call sites the two kinds of
 *     handler share would otherwise serve both, and each row would carry the other's kind);
 * (c) booting a machine with 64 devices to the end of the probe takes at most 10× the boot of
 *     a machine with 1 device. A machine with 8 devices is measured as well, so that the cost
 *     per added device can be compared at 8 and at 64 devices (the boot must scale linearly).
 */
import { fileURLToPath } from 'node:url';
import { newBench, ratioTarget, report, runBench, target } from '../../../scripts/bench-report.js';
import { Machine } from '../src/machine/index.js';
import { benchDevice } from './bench-device.js';

const RAM = 16 * 1024 * 1024;
/** Boots use the default RAM size, as a machine from the default configuration would. */
const BOOT_RAM = 256 * 1024 * 1024;

// ---- (a) and (b): one machine, one device ----------------------------------------------------------
const machine = new Machine({ ramSize: RAM });
machine.attach({
  device: benchDevice('bench0', false, 'bank'),
  slot: { bus: 0, device: 1, function: 0 },
  label: 'bench0',
});
const [, probed] = await machine.probe();
const guest = machine.guest;
const directBase = probed.bars.find((b) => b.index === 0)?.address ?? 0;
const trappedBase = (probed.bars.find((b) => b.index === 2)?.address ?? 0) + 0x100;
const ramBase = guest.ram.alloc(0x1_0000);
const fn = machine.functionAt({ bus: 0, device: 1, function: 0 });
if (!fn) throw new Error('bench device missing');
const bar2FileOffset = fn.file.regionInfo(2).offset + 0x100;
const dst = new Uint8Array(4);
const dstView = new DataView(dst.buffer);
let sink = 0;

const BATCH = 1000;
const raw = new DataView(new ArrayBuffer(4096));
const bench = newBench();
bench
  .add('raw DataView.getUint32 ×1000', () => {
    for (let i = 0; i < BATCH; i++) sink ^= raw.getUint32(0x100 + (i & 63) * 4, true);
  })
  .add('guest RAM 4-byte read ×1000', () => {
    for (let i = 0; i < BATCH; i++) sink ^= guest.mmioRead(ramBase + (i & 1023) * 4, 4);
  })
  .add('direct BAR 4-byte read ×1000', () => {
    for (let i = 0; i < BATCH; i++) sink ^= guest.mmioRead(directBase + (i & 1023) * 4, 4);
  })
  .add('core DeviceFile.read 4 bytes ×1000', () => {
    for (let i = 0; i < BATCH; i++) {
      fn.file.read(bar2FileOffset + (i & 63) * 4, dst);
      sink ^= dstView.getUint32(0, true);
    }
  })
  .add('trapped guest MMIO 4-byte read ×1000: VMM → core → plugin', () => {
    for (let i = 0; i < BATCH; i++) sink ^= guest.mmioRead(trappedBase + (i & 63) * 4, 4);
  });

// ---- (c): boot to the end of the probe ---------------------------------------------------------------
// The devices exist before the machine boots (mdev instances are created before the VM starts);
// a boot creates the machine, attaches them, runs the probe and shuts down again.
const bootDevices = Array.from({ length: 64 }, (_, i) => benchDevice(`dev${i}`, true));
async function boot(devices: number): Promise<void> {
  const m = new Machine({ ramSize: BOOT_RAM });
  for (let i = 0; i < devices; i++) {
    // 8 functions per slot from 00:01.0, so 64 devices fit on bus 0.
    const slot = { bus: 0, device: 1 + (i >> 3), function: i & 7 };
    m.attach({ device: bootDevices[i], slot, label: `dev${i}` });
  }
  const found = await m.probe();
  if (found.length !== devices + 1) throw new Error(`probe found ${found.length - 1} of ${devices} devices`);
  m.close();
}
const figures = await runBench(bench);
machine.close();

// The boots are timed interleaved, 1, 8 and 64 devices in turn (the order reversed every other
// round), not one after another as tinybench runs its tasks: the cost per added device at 8 is
// the difference of two medians only ~30 us apart, and a slow spell of this VM during one
// task's second moved it by more than that (the 64 / 8 ratio read 1.3-3.2 across runs of one
// tree). Interleaved, a slow spell falls on all three alike.
const BOOT_COUNTS = [1, 8, 64] as const;
const bootName = (n: number) => `boot with ${n} device${n === 1 ? '' : 's'} to the end of the probe`;
const bootSamples = new Map<number, number[]>(BOOT_COUNTS.map((n) => [n, []]));
const BOOT_WARMUP_ROUNDS = 50;
const bootUntil = performance.now() + 4000;
for (
  let round = 0;
  round < BOOT_WARMUP_ROUNDS || (performance.now() < bootUntil && round < 20_000);
  round++
) {
  for (const n of round % 2 ? [...BOOT_COUNTS].reverse() : BOOT_COUNTS) {
    const t0 = process.hrtime.bigint();
    await boot(n);
    const ns = Number(process.hrtime.bigint() - t0);
    if (round >= BOOT_WARMUP_ROUNDS) bootSamples.get(n)!.push(ns);
  }
}
for (const [n, xs] of bootSamples) {
  const sorted = [...xs].sort((a, b) => a - b);
  const meanNs = xs.reduce((sum, x) => sum + x, 0) / xs.length;
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  figures.set(bootName(n), {
    name: bootName(n),
    opsPerSec: Math.round(1e9 / meanNs),
    meanNs: Math.round(meanNs),
    p50Ns: at(0.5),
    p99Ns: at(0.99),
    samples: xs.length,
  });
}
const f = (name: string) => {
  const x = figures.get(name);
  if (!x) throw new Error(`missing figure ${name}`);
  return x;
};
const RAW = 'raw DataView.getUint32 ×1000';
const CORE = 'core DeviceFile.read 4 bytes ×1000';
const TRAPPED = 'trapped guest MMIO 4-byte read ×1000: VMM → core → plugin';
const BOOT1 = bootName(1);
const BOOT8 = bootName(8);
const BOOT64 = bootName(64);
// Boots are compared by their medians: a boot allocates enough that a GC pause now and then
// dominates the mean (the 64 ÷ 1 ratio of means read 9.0–13.6 across runs of one tree).
const perDevice8 = (f(BOOT8).p50Ns - f(BOOT1).p50Ns) / 7;
const perDevice64 = (f(BOOT64).p50Ns - f(BOOT1).p50Ns) / 63;
const targets = [
  ratioTarget(
    'direct BAR access speed / guest RAM access speed (same run), at least 0.5',
    figures,
    'guest RAM 4-byte read ×1000',
    'direct BAR 4-byte read ×1000',
    'meanNs',
    { min: 0.5 },
  ),
  ratioTarget(
    'trapped guest MMIO round trip / core DeviceFile.read for the same access (median of 1000-read batches), at most 2',
    figures,
    TRAPPED,
    CORE,
    'p50Ns',
    { max: 2 },
  ),
  ratioTarget(
    'trapped guest MMIO 4-byte read / raw DataView.getUint32 (median of 1000-read batches), at most 10',
    figures,
    TRAPPED,
    RAW,
    'p50Ns',
    { max: 10 },
  ),
  ratioTarget(
    'boot with 64 devices / boot with 1 device (to the end of the probe, medians), at most 10',
    figures,
    BOOT64,
    BOOT1,
    'p50Ns',
    { max: 10 },
  ),
  target(
    'cost per added device at 64 devices / at 8 devices (linear scaling, medians), at most 1.5',
    perDevice64 / perDevice8,
    { max: 1.5 },
    {
      figure: 'per added device at 64 devices',
      baseline: 'per added device at 8 devices',
      field: 'p50Ns',
      figureNs: Math.round(perDevice64),
      baselineNs: Math.round(perDevice8),
    },
  ),
];
if (sink === 0.5) process.stdout.write('');
report(fileURLToPath(new URL('..', import.meta.url)), 'machine', figures, targets);
