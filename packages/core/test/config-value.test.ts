/**
 * Config space through RegionPort.readValue/writeValue (a VMM's config access as a value): the
 * model answers region 7 from its ConfigSpace without bytes in between, and that must be exactly
 * readRegion()/writeRegion() of those bytes — same values, errors, counters, config bytes, write
 * listeners and onConfigWrite hooks — and a subclass that answers config itself (readConfig /
 * writeConfig) still answers the value road.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeviceFile, type DeviceHost } from '../src/host.js';
import { msiCapability, msixCapability, PciDeviceModel, VfioError } from '../src/index.js';
import { testConfigSpace } from './helpers.js';

const host = { log: { debug() {}, info() {}, warn() {}, error() {} } } as unknown as DeviceHost;

/** A model that records its onConfigWrite hook calls. */
class HookedModel extends PciDeviceModel {
  readonly hooks: string[] = [];
  protected override onConfigWrite(offset: number, length: number): void {
    this.hooks.push(`${offset}+${length}`);
  }
}

/** A model that virtualizes config reads and writes itself (as a vendor device model might). */
class OwnConfigModel extends PciDeviceModel {
  readonly seen: string[] = [];
  protected override readConfig(offset: number, dst: Uint8Array): void {
    this.seen.push(`r${offset}+${dst.length}`);
    super.readConfig(offset, dst);
    if (offset === 0x40) dst[0] = 0x5a;
  }
  protected override writeConfig(offset: number, src: Uint8Array): unknown {
    this.seen.push(`w${offset}+${src.length}`);
    return super.writeConfig(offset, src);
  }
}

function model(name: string, listened: string[]): HookedModel {
  const config = testConfigSpace(name, [
    { index: 0, kind: 'mem32', size: 0x1000 },
    { index: 2, kind: 'mem64', size: 0x4000, prefetchable: true },
    { index: 4, kind: 'io', size: 0x20 },
  ]);
  config.addCapability(msiCapability({ vectors: 4, addr64: true, perVectorMask: true }));
  config.addCapability(
    msixCapability({ tableSize: 4, tableBar: 0, tableOffset: 0, pbaBar: 0, pbaOffset: 0x800 }),
  );
  config.onWrite((offset, length) => {
    listened.push(`${offset}+${length}`);
  });
  return new HookedModel({ name, config });
}

function outcome(run: () => number | undefined): { value?: number; code?: string; offset?: unknown } {
  try {
    const value = run();
    return value === undefined ? {} : { value };
  } catch (err) {
    expect(err).toBeInstanceOf(VfioError);
    const e = err as VfioError;
    return { code: e.code, offset: e.place.offset };
  }
}

const access = fc.record({
  write: fc.boolean(),
  offset: fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 0, max: 0xff }) },
    { weight: 2, arbitrary: fc.constantFrom(0x04, 0x06, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x3c) },
    { weight: 1, arbitrary: fc.constantFrom(-1, 0xfe, 0xff, 0x100, 2.5, 2 ** 32, -0) },
  ),
  size: fc.constantFrom(1 as const, 2 as const, 4 as const),
  value: fc.oneof(
    fc.integer({ min: 0, max: 0xffffffff }),
    fc.constant(0xffffffff),
    fc.integer(),
    fc.constant(2 ** 40 + 3),
  ),
});

describe('config space as values', () => {
  it('answers as readRegion()/writeRegion() of the bytes: values, errors, counters, bytes, listeners, hooks (property)', () => {
    fc.assert(
      fc.property(fc.array(access, { maxLength: 80 }), fc.boolean(), (ops, reopen) => {
        const heardV: string[] = [];
        const heardB: string[] = [];
        const mv = model('v', heardV);
        const mb = model('b', heardB);
        const byValue = new DeviceFile(mv, host);
        const byBytes = new DeviceFile(mb, host);
        byValue.open();
        byBytes.open();
        const port = byValue.regionPort(7);
        ops.forEach((o, k) => {
          if (reopen && k === ops.length >> 1) {
            for (const f of [byValue, byBytes]) {
              f.close();
              f.open();
            }
          }
          const bytes = new Uint8Array(o.size);
          for (let i = 0; i < o.size; i++) bytes[i] = Math.floor(o.value / 256 ** i) & 0xff;
          const viaBytes = outcome(() => {
            if (o.write) {
              byBytes.writeRegion(7, o.offset, bytes);
              return undefined;
            }
            byBytes.readRegion(7, o.offset, bytes);
            let v = 0;
            for (let i = o.size - 1; i >= 0; i--) v = v * 256 + bytes[i];
            return v;
          });
          const viaValue = outcome(() => {
            if (!o.write) return port.readValue(o.offset, o.size);
            port.writeValue(o.offset, o.size, o.value);
            return undefined;
          });
          expect(viaValue).toEqual(viaBytes);
        });
        expect(byValue.regionCounters(7)).toEqual(byBytes.regionCounters(7));
        expect([...mv.config.raw]).toEqual([...mb.config.raw]);
        expect(heardV).toEqual(heardB);
        expect(mv.hooks).toEqual(mb.hooks);
      }),
      { numRuns: 200 },
    );
  });

  it('keeps the masks: BAR sizing, RW1C status bits and read-only identity', () => {
    const m = model('masks', []);
    const file = new DeviceFile(m, host);
    file.open();
    const port = file.regionPort(7);
    port.writeValue(0x10, 4, 0xffffffff);
    expect(port.readValue(0x10, 4)).toBe(0xfffff000);
    port.writeValue(0x00, 4, 0);
    expect(port.readValue(0x00, 2)).toBe(0x1b36);
    m.config.setInterruptStatus(true);
    expect(port.readValue(0x06, 2) & 0x08).toBe(0x08);
    port.writeValue(0x04, 2, 0x0006);
    expect(port.readValue(0x04, 2)).toBe(0x0006);
    expect(m.hooks).toEqual(['16+4', '0+4', '4+2']);
  });

  it('goes through a subclass that answers config itself', () => {
    const config = testConfigSpace('own', [{ index: 0, kind: 'mem32', size: 0x1000 }]);
    const m = new OwnConfigModel({ name: 'own', config });
    const file = new DeviceFile(m, host);
    file.open();
    const port = file.regionPort(7);
    expect(port.readValue(0x40, 1)).toBe(0x5a);
    port.writeValue(0x04, 2, 2);
    expect(port.readValue(0x04, 2)).toBe(2);
    expect(m.seen).toEqual(['r64+1', 'w4+2', 'r4+2']);
  });

  it('refuses a write whose listener returns a Promise, as the byte road does', () => {
    const config = testConfigSpace('async', [{ index: 0, kind: 'mem32', size: 0x1000 }]);
    config.onWrite(() => Promise.resolve() as unknown as undefined);
    const file = new DeviceFile(new PciDeviceModel({ name: 'async', config }), host);
    file.open();
    const refused = outcome(() => {
      file.regionPort(7).writeValue(0x04, 2, 2);
      return undefined;
    });
    expect(refused).toEqual({ code: 'EIO', offset: 4 });
    expect(file.regionCounters(7)?.errors).toBe(1);
  });
});
