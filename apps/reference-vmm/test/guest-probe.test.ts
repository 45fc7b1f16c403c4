import { ConfigSpace, PciDeviceModel, type ProbedDevice } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { probePciBus } from '../src/guest/index.js';
import { IO_WINDOW, Machine, MMIO32_WINDOW, MMIO64_WINDOW } from '../src/machine/index.js';
import { slot } from './machine-fixtures.js';

type BarDef = { kind: 'mem32' | 'mem64' | 'io'; log2: number };

const barArb: fc.Arbitrary<BarDef> = fc.oneof(
  fc.record({ kind: fc.constant('io' as const), log2: fc.integer({ min: 2, max: 8 }) }),
  fc.record({ kind: fc.constant('mem32' as const), log2: fc.integer({ min: 4, max: 24 }) }),
  fc.record({ kind: fc.constant('mem64' as const), log2: fc.integer({ min: 4, max: 32 }) }),
);

function deviceWith(
  name: string,
  bars: readonly BarDef[],
): { model: PciDeviceModel; defined: { index: number; kind: string; size: number }[] } {
  const config = new ConfigSpace({
    name,
    identity: {
      vendorId: 0x1b36,
      deviceId: 0x0100,
      subsystemVendorId: 0,
      subsystemId: 0,
      classCode: 0xff0000,
      revision: 0,
    },
  });
  const defined: { index: number; kind: string; size: number }[] = [];
  let index = 0;
  for (const b of bars) {
    if (index > 5 || (b.kind === 'mem64' && index > 4)) break;
    const size = 2 ** b.log2;
    config.defineBar({ index, kind: b.kind, size });
    defined.push({ index, kind: b.kind, size });
    index += b.kind === 'mem64' ? 2 : 1;
  }
  return { model: new PciDeviceModel({ name, config }), defined };
}

function windowOf(kind: string) {
  return kind === 'io' ? IO_WINDOW : kind === 'mem64' ? MMIO64_WINDOW : MMIO32_WINDOW;
}

describe('generic PCI probe', () => {
  it('sizes every BAR exactly and assigns naturally aligned, non-overlapping addresses inside the windows', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(barArb, { minLength: 0, maxLength: 6 }), { minLength: 1, maxLength: 6 }),
        (devices) => {
          const m = new Machine({ ramSize: 4 * 1024 * 1024 });
          try {
            const defined = devices.map((bars, i) => {
              const d = deviceWith(`d${i}`, bars);
              m.attach({ device: d.model, slot: slot(i + 1), label: `d${i}` });
              return d.defined;
            });
            const found = probePciBus(m.guest);
            const assigned: { start: number; end: number; space: string }[] = [];
            defined.forEach((bars, i) => {
              const p = found.find((x) => x.address.device === i + 1) as ProbedDevice;
              expect(p.bars.map((b) => ({ index: b.index, kind: b.kind, size: b.size }))).toEqual(bars);
              for (const b of p.bars) {
                if (b.address === 0) continue;
                const w = windowOf(b.kind);
                expect(b.address % b.size).toBe(0);
                expect(b.address).toBeGreaterThanOrEqual(w.base);
                expect(b.address + b.size - 1).toBeLessThanOrEqual(w.limit);
                assigned.push({
                  start: b.address,
                  end: b.address + b.size,
                  space: b.kind === 'io' ? 'io' : 'mem',
                });
                expect(m.functionAt(slot(i + 1))?.bars.find((x) => x.index === b.index)?.address).toBe(
                  b.address,
                );
              }
            });
            for (const a of assigned) {
              const clashes = assigned.filter(
                (o) => o !== a && o.space === a.space && o.start < a.end && a.start < o.end,
              );
              expect(clashes).toEqual([]);
            }
            expect(m.report().errors).toEqual([]);
          } finally {
            m.close();
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('leaves a BAR unassigned, and says so, when its window is full', () => {
    const m = new Machine({ ramSize: 4 * 1024 * 1024 });
    const lines: string[] = [];
    try {
      for (let i = 0; i < 3; i++)
        m.attach({
          device: deviceWith(`big${i}`, [{ kind: 'mem32', log2: 30 }]).model,
          slot: slot(i + 1),
          label: `big${i}`,
        });
      const found = probePciBus({ ...m.guest, log: (s) => lines.push(s) });
      const addresses = found.slice(1).map((d) => d.bars[0].address);
      expect(addresses.filter((a) => a !== 0)).toHaveLength(0);
      expect(lines.some((l) => l.includes('no room for BAR0'))).toBe(true);
    } finally {
      m.close();
    }
  });

  it('never throws on any BAR layout a device can describe, and finds the device', () => {
    fc.assert(
      fc.property(fc.array(barArb, { maxLength: 6 }), fc.integer({ min: 1, max: 31 }), (bars, dev) => {
        const m = new Machine({ ramSize: 4 * 1024 * 1024 });
        try {
          m.attach({ device: deviceWith('x', bars).model, slot: slot(dev), label: 'x' });
          const found = probePciBus(m.guest);
          expect(found.map((d) => d.address.device)).toEqual([0, dev]);
        } finally {
          m.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
