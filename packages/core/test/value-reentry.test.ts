/**
 * A value access through bytes (a BAR handler with only read()/write(), a device without the
 * value road) while another is still inside its handler: the inner access must not change the
 * bytes the outer one has yet to read. A device does this when its BAR write handler reads its
 * own registers or config space, or an interrupt raised in the middle of an access makes an
 * MMIO access of its own.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeviceFile, type DeviceHost } from '../src/host.js';
import { PciDeviceModel, type RegionHandler, type VfioDevice } from '../src/index.js';
import { giveValueBytes, takeValueBytes, VALUE_BYTES_RING_SIZE } from '../src/value-bytes.js';
import { testConfigSpace } from './helpers.js';

const host = { log: { debug() {}, info() {}, warn() {}, error() {} } } as unknown as DeviceHost;

/** What register `offset` of BAR 0 reads: distinct bytes per offset. */
function registerValue(offset: number): number {
  return (0x10203040 + offset * 0x01010101) >>> 0;
}

function le(bytes: Uint8Array): number {
  let v = 0;
  for (let i = bytes.length - 1; i >= 0; i--) v = v * 256 + bytes[i];
  return v;
}

/**
 * A model whose BAR 0 handler has only read()/write(). A read fills its bytes, then runs
 * `afterRead` (an access of its own); a write first runs `beforeWrite`, then looks at its bytes.
 */
function byteModel(hooks: {
  afterRead?: (offset: number) => void;
  beforeWrite?: (offset: number) => void;
  written: [number, number][];
}): PciDeviceModel {
  const handler: RegionHandler = {
    read(offset, dst) {
      const v = registerValue(offset);
      for (let i = 0; i < dst.length; i++) dst[i] = v >>> (8 * i);
      hooks.afterRead?.(offset);
    },
    write(offset, src) {
      hooks.beforeWrite?.(offset);
      hooks.written.push([offset, le(src)]);
    },
  };
  return new PciDeviceModel({
    name: 'reentry',
    config: testConfigSpace('reentry', [{ index: 0, kind: 'mem32', size: 0x1000 }]),
    bars: { 0: { handler } },
  });
}

/** `model` behind a VfioDevice with no value road: a RegionPort goes through bytes itself. */
function plain(model: PciDeviceModel): VfioDevice {
  return {
    name: model.name,
    info: () => model.info(),
    regionInfo: (i) => model.regionInfo(i),
    irqInfo: (i) => model.irqInfo(i),
    open: (ctx) => model.open(ctx),
    close: () => model.close(),
    read: (i, o, d) => model.read(i, o, d),
    write: (i, o, s) => model.write(i, o, s),
  };
}

function opened(device: VfioDevice): DeviceFile {
  const file = new DeviceFile(device, host);
  file.open();
  file.writeRegion(7, 4, new Uint8Array([2, 0])); // memory decode on
  return file;
}

describe('value accesses through bytes, one inside another', () => {
  it('a model read keeps its bytes when the handler makes another access after filling them', () => {
    let model: PciDeviceModel | undefined;
    const inner: number[] = [];
    model = byteModel({
      written: [],
      afterRead: (offset) => {
        if (offset === 0x10) inner.push(model!.readValue(0, 0x80, 4));
      },
    });
    opened(model);
    expect(model.readValue(0, 0x10, 4)).toBe(registerValue(0x10));
    expect(inner).toEqual([registerValue(0x80)]);
    expect(model.readValue(0, 0x10, 2)).toBe(registerValue(0x10) & 0xffff);
    expect(model.readValue(0, 0x10, 1)).toBe(registerValue(0x10) & 0xff);
  });

  it('a model write keeps its bytes when the handler makes another access before reading them', () => {
    const written: [number, number][] = [];
    let model: PciDeviceModel | undefined;
    model = byteModel({
      written,
      beforeWrite: (offset) => {
        if (offset === 0x20) model!.readValue(0, 0x84, 4);
        if (offset === 0x24) model!.writeValue(0, 0x88, 4, 0xcafef00d);
      },
    });
    opened(model);
    model.writeValue(0, 0x20, 4, 0x11223344);
    model.writeValue(0, 0x24, 2, 0x5566);
    expect(written).toEqual([
      [0x20, 0x11223344],
      [0x88, 0xcafef00d],
      [0x24, 0x5566],
    ]);
  });

  it('a model read and write still keep their bytes after the handler threw out of one', () => {
    let model: PciDeviceModel | undefined;
    const written: [number, number][] = [];
    model = byteModel({
      written,
      afterRead: (offset) => {
        if (offset === 0x3c) throw new Error('handler failed');
        if (offset === 0x10) model!.readValue(0, 0x80, 4);
      },
      beforeWrite: (offset) => {
        if (offset === 0x20) model!.readValue(0, 0x84, 4);
      },
    });
    opened(model);
    expect(() => model.readValue(0, 0x3c, 4)).toThrow('handler failed');
    for (let i = 0; i < 3; i++) {
      expect(model.readValue(0, 0x10, 4)).toBe(registerValue(0x10));
      model.writeValue(0, 0x20, 4, 0x11223344 + i);
    }
    expect(written).toEqual([0, 1, 2].map((i) => [0x20, 0x11223344 + i]));
  });

  it('a port read through bytes keeps its bytes when the device reaches another port meanwhile', () => {
    let other: DeviceFile | undefined;
    const model = byteModel({
      written: [],
      afterRead: (offset) => {
        if (offset === 0x30) other!.regionPort(0).readValue(0x90, 4);
      },
    });
    other = opened(plain(byteModel({ written: [] })));
    const file = opened(plain(model));
    expect(file.regionPort(0).readValue(0x30, 4)).toBe(registerValue(0x30));
  });

  it('a port write through bytes keeps its bytes when the device writes through the same port meanwhile', () => {
    const written: [number, number][] = [];
    let file: DeviceFile | undefined;
    const model = byteModel({
      written,
      beforeWrite: (offset) => {
        if (offset === 0x40) file!.regionPort(0).writeValue(0x44, 4, 0xa5a5a5a5);
      },
    });
    file = opened(plain(model));
    file.regionPort(0).writeValue(0x40, 4, 0x01020304);
    expect(written).toEqual([
      [0x44, 0xa5a5a5a5],
      [0x40, 0x01020304],
    ]);
  });

  it('nested accesses keep their bytes, before and after handlers that throw at any depth (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            write: fc.boolean(),
            offset: fc.integer({ min: 0, max: 0x3f }).map((n) => n * 4),
            size: fc.constantFrom(1 as const, 2 as const, 4 as const),
            nested: fc.integer({ min: 0, max: 3 }),
            throws: fc.boolean(),
            value: fc.integer({ min: 0, max: 0xffffffff }),
          }),
          { maxLength: 30 },
        ),
        (ops) => {
          let file: DeviceFile | undefined;
          const written: [number, number][] = [];
          let current: (typeof ops)[number] | undefined;
          // Each access makes `nested` more accesses (each one level deeper), the last one may throw.
          const nest = (offset: number) => {
            const o = current!;
            if (offset >= 0x200) {
              const level = (offset - 0x200) / 4;
              if (level + 1 < o.nested) file!.regionPort(0).readValue(0x200 + (level + 1) * 4, 4);
              else if (o.throws) throw new Error('handler failed');
              return;
            }
            if (o.nested > 0) expect(file!.regionPort(0).readValue(0x200, 4)).toBe(registerValue(0x200));
            else if (o.throws) throw new Error('handler failed');
          };
          file = opened(plain(byteModel({ written, afterRead: nest, beforeWrite: nest })));
          for (const o of ops) {
            current = o;
            written.length = 0;
            const port = file.regionPort(0);
            let threw = false;
            let got: number | undefined;
            try {
              if (o.write) port.writeValue(o.offset, o.size, o.value);
              else got = port.readValue(o.offset, o.size);
            } catch {
              threw = true;
            }
            expect(threw).toBe(o.throws);
            if (threw) continue;
            const mask = o.size === 4 ? 0xffffffff : o.size === 2 ? 0xffff : 0xff;
            if (o.write) expect(written.at(-1)).toEqual([o.offset, (o.value & mask) >>> 0]);
            else expect(got).toBe((registerValue(o.offset) & mask) >>> 0);
          }
        },
      ),
    );
  });

  it('each depth has its own bytes, made once; giving bytes back returns to their depth', () => {
    const a = takeValueBytes();
    const b = takeValueBytes();
    const c = takeValueBytes();
    expect(new Set([a, b, c]).size).toBe(3);
    a.set(4, 0x11111111);
    b.set(4, 0x22222222);
    c.set(2, 0x3333);
    expect([a.get(4), b.get(4), c.get(2), c.get(1)]).toEqual([0x11111111, 0x22222222, 0x3333, 0x33]);
    // c is never given back (its access threw): giving b back forgets it.
    giveValueBytes(b);
    expect(takeValueBytes()).toBe(b);
    giveValueBytes(b);
    giveValueBytes(a);
    expect(takeValueBytes()).toBe(a);
    giveValueBytes(a);
  });

  it(`accesses nested ${VALUE_BYTES_RING_SIZE - 1} deep keep their bytes`, () => {
    let file: DeviceFile | undefined;
    const deepest = 0x200 + 4 * (VALUE_BYTES_RING_SIZE - 2);
    const model = byteModel({
      written: [],
      afterRead: (offset) => {
        if (offset >= 0x200 && offset < deepest) {
          expect(file!.regionPort(0).readValue(offset + 4, 4)).toBe(registerValue(offset + 4));
        }
      },
    });
    file = opened(plain(model));
    // 0x200 through the model's road, then each level below through the port's: 15 live accesses.
    expect(model.readValue(0, 0x200, 4)).toBe(registerValue(0x200));
  });

  it('set() stores the low bytes of any number and of() views that many', () => {
    const s = takeValueBytes();
    try {
      expect([...s.set(4, 0x1_2345_6789)]).toEqual([0x89, 0x67, 0x45, 0x23]);
      expect([...s.set(2, -1)]).toEqual([0xff, 0xff]);
      expect([...s.set(1, 0x1ff)]).toEqual([0xff]);
      expect(s.of(2).length).toBe(2);
      s.set(4, 0xfedcba98);
      expect([s.get(4), s.get(2), s.get(1)]).toEqual([0xfedcba98, 0xba98, 0x98]);
    } finally {
      giveValueBytes(s);
    }
  });
});
