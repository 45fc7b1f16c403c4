/**
 * RegionPort.readValue/writeValue, the value road of a VMM's trapped MMIO: it must answer
 * exactly as readRegion()/writeRegion() of those bytes (same value, same errors, same counters,
 * same device state), whether the BAR's handler has a value road of its own (a RegisterBank),
 * has only read()/write() (the model goes through bytes), or the device has no value road at
 * all (the port goes through bytes).
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeviceFile, type DeviceHost } from '../src/host.js';
import {
  allocateSharedMemory,
  PciDeviceModel,
  type RegionHandler,
  RegisterBank,
  type VfioDevice,
  VfioError,
} from '../src/index.js';
import { testConfigSpace } from './helpers.js';

type Kind = 'bank' | 'bytes' | 'plain';

/** BAR 2's registers: plain, read-only, W1C, a hook whose answer changes on every read, byte and 8-byte ones. */
function bar2Bank(name: string, hookCalls: string[]): RegisterBank {
  let reads = 0;
  return new RegisterBank({
    name: `${name} BAR2`,
    size: 0x100,
    unmappedValue: 0xff,
    registers: [
      { name: 'ID', offset: 0x00, reset: 0x80861234, access: 'ro' },
      { name: 'CTL', offset: 0x04, reset: 0x0000ff00, readOnlyMask: 0x0000ff00 },
      { name: 'STS', offset: 0x08, reset: 0xf0f0f0f0, w1cMask: 0x000000ff },
      { name: 'Q', offset: 0x10, width: 8, reset: 0xabcdef0123456789n },
      { name: 'B', offset: 0x19, width: 1, reset: 0x80, readOnlyMask: 0x80 },
      { name: 'H', offset: 0x1a, width: 2, reset: 0x4321, accessWidths: [2] },
      {
        name: 'HOOK',
        offset: 0x20,
        onRead: () => 0x5555 + reads++,
        onWrite: (v, old) => hookCalls.push(`${v}/${old}`),
      },
      ...Array.from({ length: 8 }, (_, i) => ({ name: `R${i}`, offset: 0x40 + i * 4, reset: 0x1000 + i })),
    ],
  });
}

/**
 * A model whose BAR 2 is a register bank: the bank itself as the handler (its own value road),
 * behind a read()/write() handler (the model's road through bytes), or the model behind a
 * VfioDevice that has no value road (the port's road through bytes).
 */
function device(name: string, kind: Kind, hookCalls: string[]): VfioDevice {
  const config = testConfigSpace(name, [
    { index: 0, kind: 'mem32', size: 0x1000 },
    { index: 1, kind: 'io', size: 0x10 },
    { index: 2, kind: 'mem32', size: 0x100 },
    { index: 3, kind: 'mem32', size: 0x100 },
  ]);
  const bank = bar2Bank(name, hookCalls);
  const ports = new Uint8Array(0x10).fill(0x3c);
  const handler: RegionHandler =
    kind === 'bank' ? bank : { read: (o, d) => bank.read(o, d), write: (o, s) => bank.write(o, s) };
  const model = new PciDeviceModel({
    name,
    config,
    bars: {
      0: { memory: allocateSharedMemory(0x1000) },
      1: {
        handler: { read: (o, d) => d.set(ports.subarray(o, o + d.length)), write: (o, s) => ports.set(s, o) },
      },
      2: { handler },
      3: { readOnly: true, handler: bank },
    },
  });
  if (kind !== 'plain') return model;
  return {
    name,
    info: () => model.info(),
    regionInfo: (i) => model.regionInfo(i),
    irqInfo: (i) => model.irqInfo(i),
    open: (ctx) => model.open(ctx),
    close: () => model.close(),
    read: (i, o, d) => model.read(i, o, d),
    write: (i, o, s) => model.write(i, o, s),
  };
}

const host = { log: { debug() {}, info() {}, warn() {}, error() {} } } as unknown as DeviceHost;

function outcome(run: () => number | undefined): {
  value?: number;
  code?: string;
  region?: unknown;
  offset?: unknown;
} {
  try {
    const value = run();
    return value === undefined ? {} : { value };
  } catch (err) {
    expect(err).toBeInstanceOf(VfioError);
    const e = err as VfioError;
    return { code: e.code, region: e.place.region, offset: e.place.offset };
  }
}

function le(bytes: Uint8Array): number {
  let v = 0;
  for (let i = bytes.length - 1; i >= 0; i--) v = v * 256 + bytes[i];
  return v;
}

const op = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('access' as const),
      write: fc.boolean(),
      index: fc.oneof(fc.constantFrom(0, 1, 2, 2, 2, 3, 7), fc.integer({ min: -1, max: 10 })),
      offset: fc.oneof(
        fc.integer({ min: 0, max: 0x60 }),
        fc.integer({ min: -4, max: 0x1004 }),
        fc.constantFrom(2.5, 2 ** 32, -0),
      ),
      size: fc.constantFrom(1 as const, 2 as const, 4 as const),
      value: fc.oneof(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer(),
        fc.constant(-1),
        fc.constant(2 ** 40 + 7),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('decode' as const), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ op: 'reopen' as const }) },
);

describe('RegionPort value accesses', () => {
  for (const kind of ['bank', 'bytes', 'plain'] as const) {
    it(`answer as readRegion()/writeRegion() of those bytes, ${kind} road: values, errors, counters, state (property)`, () => {
      fc.assert(
        fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
          const valueHooks: string[] = [];
          const byteHooks: string[] = [];
          const byValue = new DeviceFile(device('v', kind, valueHooks), host);
          const byBytes = new DeviceFile(device('b', kind, byteHooks), host);
          for (const f of [byValue, byBytes]) {
            f.open();
            f.writeRegion(7, 4, new Uint8Array([3, 0])); // memory and I/O decode on
          }
          for (const o of ops) {
            if (o.op === 'decode') {
              for (const f of [byValue, byBytes]) f.writeRegion(7, 4, new Uint8Array([o.on ? 3 : 1, 0]));
              continue;
            }
            if (o.op === 'reopen') {
              for (const f of [byValue, byBytes]) {
                f.close();
                f.open();
              }
              continue;
            }
            const bytes = new Uint8Array(o.size);
            for (let i = 0; i < o.size; i++) bytes[i] = Math.floor(o.value / 256 ** i) & 0xff;
            const viaBytes = outcome(() => {
              if (o.write) {
                byBytes.writeRegion(o.index, o.offset, bytes);
                return undefined;
              }
              byBytes.readRegion(o.index, o.offset, bytes);
              return le(bytes);
            });
            const viaValue = outcome(() => {
              const port = byValue.regionPort(o.index);
              if (!o.write) return port.readValue(o.offset, o.size);
              port.writeValue(o.offset, o.size, o.value);
              return undefined;
            });
            if (o.index >= 0 && o.index <= 8 && Number.isInteger(o.index)) expect(viaValue).toEqual(viaBytes);
            // A port exists only for a region the device has: elsewhere both refuse (EINVAL).
            else expect([viaValue.code, viaBytes.code]).toEqual(['EINVAL', 'EINVAL']);
          }
          for (let i = 0; i < 9; i++) expect(byValue.regionCounters(i)).toEqual(byBytes.regionCounters(i));
          expect(valueHooks).toEqual(byteHooks);
          // The devices' state: every readable byte of BAR 0, 2 and 3 read back through bytes.
          for (const f of [byValue, byBytes]) f.writeRegion(7, 4, new Uint8Array([3, 0]));
          for (const [index, size] of [
            [0, 0x1000],
            [2, 0x24],
            [3, 0x24],
          ]) {
            const a = new Uint8Array(size);
            const b = new Uint8Array(size);
            for (let at = 0; at < size; at += 4) {
              if (index !== 0 && at === 0x20) continue; // the hook counts its reads
              byValue.readRegion(index, at, a.subarray(at, at + 4));
              byBytes.readRegion(index, at, b.subarray(at, at + 4));
            }
            expect([...a]).toEqual([...b]);
          }
        }),
        { numRuns: 150 },
      );
    });
  }

  it('read the register, not the bytes: each size, little endian, the low bytes of a wide write', () => {
    const file = new DeviceFile(device('le', 'bank', []), host);
    file.open();
    file.writeRegion(7, 4, new Uint8Array([2, 0]));
    const port = file.regionPort(2);
    expect(port.readValue(0x00, 4)).toBe(0x80861234);
    expect(port.readValue(0x02, 2)).toBe(0x8086);
    expect(port.readValue(0x03, 1)).toBe(0x80);
    port.writeValue(0x40, 4, 2 ** 40 + 0xdeadbeef);
    expect(port.readValue(0x40, 4)).toBe(0xdeadbeef);
    port.writeValue(0x44, 2, -1);
    expect(port.readValue(0x44, 4)).toBe(0x0000ffff);
    expect(file.regionCounters(2)).toEqual({
      reads: 5,
      writes: 2,
      bytesRead: 15,
      bytesWritten: 6,
      errors: 0,
    });
  });

  it('refuse other sizes, closed files, read-only regions and clear memory decode, as the byte road does', () => {
    const file = new DeviceFile(device('refuse', 'bank', []), host);
    const port = file.regionPort(2);
    expect(() => port.readValue(0x40, 4)).toThrow(/EBADF.*not open/);
    file.open();
    expect(() => port.readValue(0x40, 4)).toThrow(/EIO.*memory decode|EIO.*MEMORY/i);
    file.writeRegion(7, 4, new Uint8Array([2, 0]));
    for (const size of [0, 3, 8, 1.5]) {
      expect(() => port.readValue(0x40, size as 4)).toThrow(/EINVAL.*value access of .* bytes.*1, 2 or 4/);
      expect(() => port.writeValue(0x40, size as 4, 0)).toThrow(/EINVAL.*value access/);
    }
    expect(() => port.readValue(0xfe, 4)).toThrow(/EINVAL.*runs past the end/);
    expect(() => file.regionPort(3).writeValue(0, 4, 1)).toThrow(/EINVAL.*region 3 is read-only/);
    expect(file.regionCounters(2)?.errors).toBe(3);
  });

  it('name device, region and offset when a value handler throws, answers no number or a Promise, and count it', () => {
    const warnings: string[] = [];
    const log = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
    let answer: () => unknown = () => 1;
    const handler = {
      read: () => {},
      write: () => {},
      readValue: () => answer() as number,
      writeValue: (_o: number, _s: number, v: number) =>
        v === 1 ? Promise.reject(new Error('late')) : undefined,
    };
    const model = new PciDeviceModel({
      name: 'bad-value',
      config: testConfigSpace('bad-value', [{ index: 0, kind: 'mem32', size: 0x100 }]),
      bars: { 0: { handler } },
    });
    const file = new DeviceFile(model, { log } as unknown as DeviceHost);
    file.open();
    file.writeRegion(7, 4, new Uint8Array([2, 0]));
    const port = file.regionPort(0);
    answer = () => {
      throw new Error('the register is gone');
    };
    expect(outcome(() => port.readValue(0x20, 4))).toEqual({ code: 'EIO', region: 0, offset: 0x20 });
    expect(() => port.readValue(0x20, 4)).toThrow(/bad-value.*the register is gone/);
    answer = () => 'twelve';
    expect(() => port.readValue(0x24, 4)).toThrow(/EIO.*readValue answered string, not a number/);
    answer = () => null;
    expect(() => port.readValue(0x24, 4)).toThrow(/readValue answered null/);
    answer = () => Promise.resolve(5);
    expect(outcome(() => port.readValue(0x28, 2))).toEqual({ code: 'EIO', region: 0, offset: 0x28 });
    expect(() => port.readValue(0x28, 2)).toThrow(/Promise|async/i);
    expect(
      outcome(() => {
        port.writeValue(0x2c, 4, 1);
        return undefined;
      }),
    ).toEqual({ code: 'EIO', region: 0, offset: 0x2c });
    port.writeValue(0x2c, 4, 2);
    expect(file.regionCounters(0)).toEqual({ reads: 0, writes: 1, bytesRead: 0, bytesWritten: 4, errors: 7 });
    return new Promise<void>((done) =>
      setTimeout(() => {
        expect(warnings.some((w) => /rejected after the access was refused: late/.test(w))).toBe(true);
        done();
      }, 0),
    );
  });
});
