import {
  allocateSharedMemory,
  ConfigSpace,
  msixCapability,
  PAGE_SIZE,
  PciDeviceModel,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '@vfiokit/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { Machine } from '../machine.js';

const MSIX_ENTRY = 16;
const SLOT = { bus: 0, device: 3, function: 0 };

interface Layout {
  barLog2: number;
  /** undefined: the whole BAR maps; otherwise the sparse-mmap areas (pages). */
  areas: { page: number; pages: number }[] | undefined;
  mappable: boolean;
  tableSize: number;
  tableBar: 0 | 2;
  tableOffset: number;
  pbaBar: 0 | 2;
  pbaOffset: number;
}

type How = 'direct' | 'trapped' | 'msix-table' | 'msix-pba';

/**
 * The split as QEMU's vfio_pci_fixup_msix_region and the region's mmap areas define it, worked
 * out the plain way: cut at every boundary, classify each piece, join neighbouring trapped pieces
 * and neighbouring direct pieces of one mmap area.
 */
function expectedSplit(
  size: number,
  areas: { offset: number; size: number }[] | undefined,
  special: { offset: number; size: number; how: How }[],
): [number, number, How][] {
  const direct = (areas ?? [{ offset: 0, size }]).filter((a) => a.size > 0 && a.offset + a.size <= size);
  const holes = special
    .filter((s) => s.offset < size)
    .map((s) => {
      const from = Math.floor(s.offset / PAGE_SIZE) * PAGE_SIZE;
      return { offset: from, size: Math.ceil((s.offset + s.size) / PAGE_SIZE) * PAGE_SIZE - from };
    });
  const cuts = new Set([0, size]);
  for (const r of [...direct, ...holes, ...special]) {
    cuts.add(Math.min(r.offset, size));
    cuts.add(Math.min(r.offset + r.size, size));
  }
  const points = [...cuts].sort((a, b) => a - b);
  const out: { offset: number; end: number; how: How; area: number }[] = [];
  for (let k = 0; k + 1 < points.length; k++) {
    const [offset, end] = [points[k], points[k + 1]];
    const inside = (r: { offset: number; size: number }) => offset >= r.offset && end <= r.offset + r.size;
    const sp = special.find(inside);
    const area = direct.findIndex(inside);
    const how: How = sp ? sp.how : area >= 0 && !holes.some(inside) ? 'direct' : 'trapped';
    const prev = out.at(-1);
    if (prev && prev.how === how && (how === 'trapped' || (how === 'direct' && prev.area === area))) {
      prev.end = end;
      prev.area = area;
    } else out.push({ offset, end, how, area });
  }
  return out.map((p) => [p.offset, p.end - p.offset, p.how]);
}

const layoutArb: fc.Arbitrary<Layout> = fc
  .record({
    barLog2: fc.integer({ min: 12, max: 16 }),
    sparse: fc.boolean(),
    areaSeeds: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 3 })), { maxLength: 3 }),
    mappable: fc.boolean(),
    tableSize: fc.integer({ min: 1, max: 300 }),
    tableBar: fc.constantFrom(0 as const, 2 as const),
    tableSeed: fc.nat(),
    pbaBar: fc.constantFrom(0 as const, 2 as const),
    pbaSeed: fc.nat(),
  })
  .map((r) => {
    const pages = 2 ** (r.barLog2 - 12);
    let areas: Layout['areas'];
    if (r.sparse) {
      // Areas in page order, apart from each other, inside the BAR.
      areas = [];
      let next = 0;
      for (const [gap, len] of r.areaSeeds) {
        const page = next + (gap % 2);
        if (page + len > pages) break;
        areas.push({ page, pages: len });
        next = page + len + 1;
      }
    }
    const sizeOf = (bar: 0 | 2) => (bar === 0 ? 2 ** r.barLog2 : PAGE_SIZE);
    return {
      barLog2: r.barLog2,
      areas,
      mappable: r.mappable,
      tableSize: r.tableSize,
      tableBar: r.tableBar,
      tableOffset: (r.tableSeed % (sizeOf(r.tableBar) / 8)) * 8,
      pbaBar: r.pbaBar,
      pbaOffset: (r.pbaSeed % (sizeOf(r.pbaBar) / 8)) * 8,
    };
  });

function deviceWith(l: Layout): PciDeviceModel {
  const config = new ConfigSpace({
    name: 'split',
    identity: {
      vendorId: 0x1b36,
      deviceId: 0x0101,
      subsystemVendorId: 0,
      subsystemId: 0,
      classCode: 0xff0000,
      revision: 0,
      interruptPin: 1,
    },
  });
  config.defineBar({ index: 0, kind: 'mem32', size: 2 ** l.barLog2 });
  config.defineBar({ index: 2, kind: 'mem32', size: PAGE_SIZE });
  config.addCapability(
    msixCapability({
      tableSize: l.tableSize,
      tableBar: l.tableBar,
      tableOffset: l.tableOffset,
      pbaBar: l.pbaBar,
      pbaOffset: l.pbaOffset,
    }),
  );
  return new PciDeviceModel({
    name: 'split',
    config,
    bars: {
      0: {
        memory: allocateSharedMemory(2 ** l.barLog2),
        ...(l.areas
          ? { sparseMmap: l.areas.map((a) => ({ offset: a.page * PAGE_SIZE, size: a.pages * PAGE_SIZE })) }
          : {}),
        ...(l.mappable ? { msixMappable: true } : {}),
      },
      2: { handler: { read: (_o, d) => d.fill(0), write: () => {} } },
    },
  });
}

let machine: Machine | undefined;
afterEach(() => {
  machine?.close();
  machine = undefined;
});

describe('BAR parts', () => {
  it('splits every BAR into direct, trapped and MSI-X parts as the mmap areas and the MSI-X structures require', () => {
    fc.assert(
      fc.property(layoutArb, (l) => {
        const m = new Machine({ ramSize: 4 * 1024 * 1024 });
        try {
          m.attach({ device: deviceWith(l), slot: SLOT, label: 'split' });
          const fn = m.functionAt(SLOT);
          if (!fn) throw new Error('the function is missing');
          for (const bar of fn.bars) {
            const size = bar.region.size;
            // The VMM keeps the table and PBA unless the table's BAR (only BAR0 can) is MSIX_MAPPABLE.
            const emulated = !(l.mappable && l.tableBar === 0);
            const special: { offset: number; size: number; how: How }[] = [];
            if (emulated && l.tableBar === bar.index)
              special.push({ offset: l.tableOffset, size: l.tableSize * MSIX_ENTRY, how: 'msix-table' });
            if (emulated && l.pbaBar === bar.index)
              special.push({ offset: l.pbaOffset, size: Math.ceil(l.tableSize / 64) * 8, how: 'msix-pba' });
            const areas =
              bar.index === 0
                ? l.areas?.map((a) => ({ offset: a.page * PAGE_SIZE, size: a.pages * PAGE_SIZE }))
                : [];
            expect(fn.barParts(bar).map((p) => [p.offset, p.size, p.how])).toEqual(
              expectedSplit(size, areas, special),
            );
          }
          // Every direct part could be mapped (a refused mmap would fall back to trapping it).
          expect(m.report().errors.filter((e) => e.operation.startsWith('mmap'))).toEqual([]);
        } finally {
          m.close();
        }
      }),
      { numRuns: 150 },
    );
  });
});

/** A device that records what the core tells it about its interrupts and its file. */
class Watched extends PciDeviceModel {
  readonly irqChanges: [number, number][] = [];
  closes = 0;
  protected override onIrqsChanged(index: number, count: number): void {
    this.irqChanges.push([index, count]);
  }
  protected override onClose(): void {
    this.closes++;
  }
}

function watchedDevice(name: string): Watched {
  const config = new ConfigSpace({
    name,
    identity: {
      vendorId: 0x1b36,
      deviceId: 0x0102,
      subsystemVendorId: 0,
      subsystemId: 0,
      classCode: 0xff0000,
      revision: 0,
      interruptPin: 1,
    },
  });
  config.defineBar({ index: 0, kind: 'mem32', size: 0x2000 });
  config.addCapability(
    msixCapability({ tableSize: 2, tableBar: 0, tableOffset: 0x1000, pbaBar: 0, pbaOffset: 0x1800 }),
  );
  return new Watched({ name, config, bars: { 0: { memory: allocateSharedMemory(0x2000) } } });
}

describe('machine shutdown', () => {
  it('drops every BAR range, turns interrupts off and closes every device file', async () => {
    machine = new Machine({ ramSize: 4 * 1024 * 1024 });
    const own = (m: Machine) => [...m.memory.ranges(), ...m.io.ranges()].map((r) => `${r.kind}@${r.start}`);
    const before = own(machine);
    const devices = [watchedDevice('w0'), watchedDevice('w1')];
    devices.forEach((device, i) => {
      machine?.attach({ device, slot: { bus: 0, device: 4 + i, function: 0 }, label: `w${i}` });
    });
    const found = await machine.probe();
    expect(found.slice(1).map((d) => d.interrupts.kind)).toEqual(['msix', 'msix']);
    const kinds = () => machine?.memory.ranges().map((r) => r.kind) ?? [];
    expect(kinds()).toContain('msix-table');
    const files = machine.devices().map((d) => d.file);
    machine.close();
    // What remains is what the machine itself put there before any device came.
    expect(own(machine)).toEqual(before);
    expect(machine.devices()).toEqual([]);
    expect(machine.report().devices.map((d) => d.label)).toEqual(['host-bridge']);
    for (const f of files) expect(f.opened).toBe(false);
    for (const d of devices) {
      expect(d.closes).toBe(1);
      // MSI-X was routed by the probe and is released exactly once, by closing the file.
      expect(
        d.irqChanges.filter(([index, count]) => index === VFIO_PCI_MSIX_IRQ_INDEX && count === 0),
      ).toHaveLength(1);
      expect(d.isOpen).toBe(false);
    }
    // The same devices can be attached to a new machine: nothing holds them.
    machine = new Machine({ ramSize: 4 * 1024 * 1024 });
    machine.attach({ device: devices[0], slot: SLOT, label: 'again' });
    expect((await machine.probe())[1].interrupts.kind).toBe('msix');
  });

  it('keeps a detached device detached and closes only the attached ones', () => {
    machine = new Machine({ ramSize: 4 * 1024 * 1024 });
    const [a, b] = [watchedDevice('a'), watchedDevice('b')];
    machine.attach({ device: a, slot: { bus: 0, device: 4, function: 0 }, label: 'a' });
    machine.attach({ device: b, slot: { bus: 0, device: 5, function: 0 }, label: 'b' });
    machine.detach({ bus: 0, device: 4, function: 0 });
    machine.close();
    machine.close();
    expect([a.closes, b.closes]).toEqual([1, 1]);
  });
});
