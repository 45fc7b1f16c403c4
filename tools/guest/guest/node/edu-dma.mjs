// QEMU's edu device through the kernel backend's typed layer, as a VMM drives a device bound to
// vfio-pci: BAR0 mmapped, DMA into process memory mapped at an IOVA through the IOMMU (type1),
// and MSI and INTx delivered to eventfds. Prints key=value facts; exits 1 on the first mismatch.
// edu's registers: QEMU docs/specs/edu.rst.
import { linuxSystem, openVfioDevice } from '@vfiokit/linux-vfio';
import { allocateMemfdMemory, Eventfd } from '@vfiokit/vfio-user/native';

const bdf = process.argv[2];
const fact = (k, v) => console.log(`${k}=${v}`);
const fail = (why) => {
  console.log(`FAIL: ${why}`);
  process.exit(1);
};
const INTX = 0;
const MSI = 1;
const IOVA = 0x100000;
const EDU_BUFFER = 0x40000;

const o = openVfioDevice(linuxSystem(), bdf);
fact('iommu_path', o.path);
const d = o.device;
const bar0 = d.region(0);
if (!bar0 || !(bar0.flags & 4)) fail(`BAR0 is not mmappable: ${JSON.stringify(bar0)}`);
// Config space through vfio-pci, as a guest's driver does: memory decode and bus master on, so
// that BAR0 answers and the device may DMA.
const cfg = d.region(7);
const cmd = new Uint8Array(2);
d.readAll(cfg.offset + 4, cmd);
fact('command_before', `0x${cmd[0].toString(16)}`);
cmd[0] |= 0x06;
d.writeAll(cfg.offset + 4, cmd);
// MMIO through typed arrays: one aligned load or store per register, as the device needs (a
// DataView may split an access into bytes, and edu answers only 4- and 8-byte accesses).
const bar = d.mmap(bar0.offset, bar0.size);
const m32 = new Uint32Array(bar);
const m64 = new BigUint64Array(bar);
const r32 = (off) => m32[off >> 2];
const w32 = (off, v) => {
  m32[off >> 2] = v >>> 0;
};
const r64 = (off) => m64[off >> 3];
const w64 = (off, v) => {
  m64[off >> 3] = BigInt(v);
};
const viaRead = new Uint8Array(4);
d.readAll(bar0.offset, viaRead);
fact('edu_ident_pread', `0x${new DataView(viaRead.buffer).getUint32(0, true).toString(16)}`);
fact('edu_ident', `0x${r32(0).toString(16)}`);
if ((r32(0) & 0xff) !== 0xed) fail('BAR0 offset 0 is not the edu identification register');
w32(4, 0x12345678);
fact('edu_liveness', `0x${r32(4).toString(16)}`);
if (r32(4) !== ~0x12345678 >>> 0) fail('the liveness register did not invert what was written');

// DMA: process memory (a page-aligned memfd mapping) at IOVA 0x100000 through the IOMMU.
const mem = allocateMemfdMemory('edu-dma', 0x4000);
o.dma.map({ iova: IOVA, size: 0x4000, memory: mem.bytes, read: true, write: true });
fact('dma_mapped', `${o.dma.kind} iova 0x${IOVA.toString(16)} size 0x4000`);
const pattern = Uint8Array.from({ length: 1024 }, (_, i) => (i * 7 + 3) & 0xff);
mem.bytes.set(pattern, 0);
const dma = (src, dst, count, toRam) => {
  w64(0x80, src);
  w64(0x88, dst);
  w64(0x90, count);
  w64(0x98, 1 | (toRam ? 2 : 0));
  const until = Date.now() + 5000;
  while (r64(0x98) & 1n) if (Date.now() > until) fail('edu DMA did not finish within 5 s');
};
dma(IOVA, EDU_BUFFER, pattern.length, false);
dma(EDU_BUFFER, IOVA + 0x1000, pattern.length, true);
const back = mem.bytes.subarray(0x1000, 0x1000 + pattern.length);
if (!back.every((b, i) => b === pattern[i]))
  fail('the bytes the device wrote back through the IOMMU differ from what it read');
fact('dma_roundtrip', `${pattern.length} bytes RAM -> edu -> RAM`);

// MSI to an eventfd: edu raises MSI when its MSI is enabled, which SET_IRQS does.
const irqCount = (i) => d.irq(i)?.count ?? 0;
fact('irq_counts', `intx=${irqCount(INTX)} msi=${irqCount(MSI)}`);
const wait = async (e, what) => {
  try {
    return await e.wait(5000);
  } catch {
    fail(`${what}: the eventfd was not signalled within 5 s`);
  }
};
const msi = new Eventfd();
d.setEventfds(MSI, 0, [msi.fd]);
w32(0x60, 1);
fact('msi_signals', await wait(msi, 'MSI'));
w32(0x64, 1);
d.disableIrq(MSI);
msi.close();

// INTx to an eventfd: automasked when it fires; ack the device, then unmask.
const intx = new Eventfd();
d.setEventfds(INTX, 0, [intx.fd]);
w32(0x60, 2);
fact('intx_signals', await wait(intx, 'INTx'));
w32(0x64, 2);
d.unmaskIrq(INTX);
w32(0x60, 4);
fact('intx_after_unmask', await wait(intx, 'INTx after UNMASK'));
w32(0x64, 4);
d.disableIrq(INTX);
intx.close();

o.dma.unmap(IOVA, 0x4000);
o.close();
mem.close();
console.log('edu: mmio, DMA through the IOMMU, MSI and INTx all worked');
