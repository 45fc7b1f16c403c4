import { describe, expect, it } from 'vitest';
import { barMappings, dmaBufWarnings, trappedAccesses, trappedList } from '../src/suites/qemu-trace.js';
import { sessionTraps } from '../src/suites/server-log.js';

const S = '/tmp/vfkg-x/v8.sock';
const trace = [
  `vfio_region_read  (vfio-user:${S}:region0+0x78000, 4) = 0x76544776`,
  `vfio_region_write  (vfio-user:${S}:region0+0x802000, 0x1, 8)`,
  `vfio_region_write  (vfio-user:/tmp/vfkg-x/v4.sock:region2+0x8000000, 0x1, 4)`,
  'vfio_region_sparse_mmap_entry sparse entry 0 [0x8000000 - 0xbffffff]',
  `vfio_region_mmap Region vfio-user:${S} BAR 2 mmaps[0] [0x8000000 - 0xbffffff]`,
  `vfio_region_read  (vfio-user:${S}:region2+0x8000000, 4) = 0x0`,
  'a line cut off by the kill: vfio_region_read  (vfio-user:',
].join('\n');

describe("QEMU's vfio trace", () => {
  it('counts trapped accesses per region of one device only', () => {
    expect([...trappedAccesses(trace, S)]).toEqual([
      [0, 2],
      [2, 1],
    ]);
    expect(trappedList(trace, S)[1]).toEqual({ region: 0, offset: 0x802000 });
  });
  it('reads the mapped areas of a BAR', () => {
    expect(barMappings(trace, S, 2)).toEqual([{ start: 0x8000000, end: 0xbffffff }]);
    expect(barMappings(trace, S, 0)).toEqual([]);
  });
  it("pairs QEMU's dma-buf warning with whether the BAR was mapped", () => {
    const log = `qemu-system-x86_64: -device {...}: vfio-user:${S} BAR 2: failed to create dma-buf: PCI BAR IOMMU mappings may fail: Invalid argument\nqemu-system-x86_64: vfio-user:${S} BAR 0: failed to create dma-buf: x\n`;
    expect(dmaBufWarnings(log, trace, S)).toEqual([
      { bar: 2, mapped: true },
      { bar: 0, mapped: false },
    ]);
  });
});

describe("the server's session summary", () => {
  it('reads the trapped accesses of the first session per region', () => {
    const log = [
      'vfiokit serve: serving x on /tmp/s',
      'vfiokit serve: session ended: trapped accesses by region: 0 (BAR0): 120 reads/8 writes, 2 (BAR2): 0 reads/0 writes, 7 (CONFIG): 300 reads/20 writes, 2 refused.',
      'vfiokit serve: session ended: trapped accesses by region: 0 (BAR0): 1 reads/1 writes.',
    ].join('\n');
    const t = sessionTraps(log)!;
    expect(t.get(0)).toEqual({ reads: 120, writes: 8 });
    expect(t.get(2)).toEqual({ reads: 0, writes: 0 });
    expect(t.get(7)).toEqual({ reads: 300, writes: 20 });
    expect(sessionTraps('vfiokit serve: serving x')).toBeUndefined();
  });

  it('reads the line the server prints when it reset the device after the client left', () => {
    const t = sessionTraps(
      'vfiokit serve: session ended, device reset: trapped accesses by region: 0 (BAR0): 26 reads/13 writes, 2 (BAR2): 0 reads/0 writes.',
    )!;
    expect(t.get(0)).toEqual({ reads: 26, writes: 13 });
    expect(t.get(2)).toEqual({ reads: 0, writes: 0 });
  });
});
