/**
 * Targets of the foundation (packages/core):
 * - a trapped 4-byte read through the whole dispatcher into a register bank, the way the VMM and
 *   the vfio-user server make it (DeviceFile.readRegion: the region by index), costs at most 10×
 *   a raw DataView.getUint32 on the same buffer, both measured in this run (5× is the moonshot);
 * - the same read as a pread at a file offset (DeviceFile.read): at most 25×;
 * - encoding region info with a 16-area sparse-mmap capability: at least 1 million per second.
 */
import { fileURLToPath } from 'node:url';
import { ConfigSpace, PciDeviceModel, RegisterBank } from '@vfiokit/core';
import {
  encodeRegionInfo,
  regionCapsSize,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  vfioPciIndexToOffset,
} from '@vfiokit/core/abi';
import { DeviceFile } from '@vfiokit/core/host';
import { newBench, ratioTarget, report, runBench, target } from '../../../scripts/bench-report.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const bank = new RegisterBank({
  name: 'bench-bar0',
  size: 4096,
  registers: Array.from({ length: 64 }, (_, i) => ({ name: `r${i}`, offset: i * 4, reset: 0x1000 + i })),
});
const config = new ConfigSpace({
  identity: {
    vendorId: 0x1af4,
    deviceId: 0x10f0,
    subsystemVendorId: 0x1af4,
    subsystemId: 1,
    classCode: 0xff0000,
    revision: 1,
  },
});
config.defineBar({ index: 0, kind: 'mem32', size: 4096 });
const device = new PciDeviceModel({
  name: 'bench',
  config,
  bars: { 0: { handler: { read: (o, d) => bank.read(o, d), write: (o, s) => bank.write(o, s) } } },
});
const file = new DeviceFile(device, {
  dma: {
    read() {},
    write() {},
    pin: () => {
      throw new Error('no dma');
    },
  },
  dirty: { markDirty() {} },
  clock: { now: () => 0, schedule: () => () => {} },
  log: silent,
});
file.open();
// COMMAND.MEMORY on, as a guest driver would have it.
file.write(vfioPciIndexToOffset(7) + 4, new Uint8Array([2, 0]));

const bar0 = vfioPciIndexToOffset(0);
const dst = new Uint8Array(4);
const dstView = new DataView(dst.buffer);
const raw = new DataView(new ArrayBuffer(4096));
let sink = 0;

const areas = Array.from({ length: 16 }, (_, i) => ({ offset: i * 0x20000, size: 0x10000 }));
const caps = [{ id: VFIO_REGION_INFO_CAP_SPARSE_MMAP as 1, areas }];
const argsz = 32 + regionCapsSize(caps);

// Each task runs BATCH operations per sample so that the timer's own cost (tens of ns) does not
// hide the cost of one operation; figures below are per batch, ratios per operation. The ratios
// are of the batches' medians: on a shared machine a batch another process preempted costs a
// time slice, which the mean counts and the median leaves out (both are in the figures).
const BATCH = 1000;
const bench = newBench();
bench
  .add('raw DataView.getUint32 ×1000', () => {
    for (let i = 0; i < BATCH; i++) sink ^= raw.getUint32((i & 63) * 4, true);
  })
  .add('trapped 4-byte read ×1000: DeviceFile.readRegion → PciDeviceModel → RegisterBank', () => {
    for (let i = 0; i < BATCH; i++) {
      file.readRegion(0, (i & 63) * 4, dst);
      sink ^= dstView.getUint32(0, true);
    }
  })
  .add('trapped 4-byte read ×1000: DeviceFile → PciDeviceModel → RegisterBank', () => {
    for (let i = 0; i < BATCH; i++) {
      file.read(bar0 + (i & 63) * 4, dst);
      sink ^= dstView.getUint32(0, true);
    }
  })
  .add('encode region info with a 16-area sparse-mmap capability ×1000', () => {
    for (let i = 0; i < BATCH; i++) {
      sink ^= encodeRegionInfo(
        { argsz, flags: 0xf, index: 2, capOffset: 32, size: 0x200000, offset: bar0 },
        caps,
      ).length;
    }
  });

const figures = await runBench(bench);
const RAW = 'raw DataView.getUint32 ×1000';
const REGION = 'trapped 4-byte read ×1000: DeviceFile.readRegion → PciDeviceModel → RegisterBank';
const FILE = 'trapped 4-byte read ×1000: DeviceFile → PciDeviceModel → RegisterBank';
const encodes =
  figures.get('encode region info with a 16-area sparse-mmap capability ×1000')!.opsPerSec * BATCH;
report(fileURLToPath(new URL('..', import.meta.url)), 'core-dispatcher', figures, [
  ratioTarget(
    'trapped 4-byte read by region (readRegion) / raw DataView.getUint32 (median of 1000-read batches), at most 10',
    figures,
    REGION,
    RAW,
    'p50Ns',
    { max: 10 },
  ),
  ratioTarget(
    'trapped 4-byte read at a file offset (read) / raw DataView.getUint32 (median of 1000-read batches), at most 25',
    figures,
    FILE,
    RAW,
    'p50Ns',
    { max: 25 },
  ),
  target('region info encodes per second (16 sparse areas)', encodes, { min: 1_000_000 }),
]);
if (sink === 0.5) console.log(sink);
