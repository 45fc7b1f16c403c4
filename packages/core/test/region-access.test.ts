/**
 * DeviceFile.readRegion/writeRegion, the region-relative accesses the VMM makes for config space
 * and trapped BAR parts: they must answer exactly as read()/write() at the region's file offset.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DeviceFile, type DeviceHost } from '../src/host.js';
import { allocateSharedMemory, PciDeviceModel, VfioError } from '../src/index.js';
import { silentLog, testConfigSpace } from './helpers.js';

function device(name: string): PciDeviceModel {
  const config = testConfigSpace(name, [
    { index: 0, kind: 'mem32', size: 0x1000 },
    { index: 2, kind: 'mem32', size: 0x100 },
  ]);
  const bar2 = new Uint8Array(0x100);
  return new PciDeviceModel({
    name,
    config,
    bars: {
      0: { memory: allocateSharedMemory(0x1000) },
      2: {
        readOnly: true,
        handler: {
          read: (o, d) => d.set(bar2.subarray(o, o + d.length)),
          write: () => {
            throw new Error('read-only');
          },
        },
      },
    },
  });
}

const host = { log: silentLog } as unknown as DeviceHost;

function open(name: string): DeviceFile {
  const file = new DeviceFile(device(name), host);
  file.open();
  // Memory BARs answer only with memory decode on.
  file.writeRegion(7, 4, new Uint8Array([2, 0]));
  return file;
}

function outcome(run: () => number): {
  n?: number;
  code?: string;
  region?: number | string;
  offset?: number;
} {
  try {
    return { n: run() };
  } catch (err) {
    expect(err).toBeInstanceOf(VfioError);
    const e = err as VfioError;
    return { code: e.code, region: e.place.region, offset: e.place.offset };
  }
}

describe('DeviceFile region accesses', () => {
  it('answers as read() and write() at the region file offset: same bytes, same errors, same counters', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            write: fc.boolean(),
            index: fc.integer({ min: -1, max: 10 }),
            offset: fc.oneof(fc.integer({ min: -4, max: 0x1004 }), fc.constant(2.5)),
            length: fc.integer({ min: 0, max: 8 }),
            fill: fc.integer({ min: 0, max: 255 }),
          }),
          { maxLength: 40 },
        ),
        (accesses) => {
          const byOffset = open('a');
          const byRegion = open('b');
          const byPort = open('p');
          for (const a of accesses) {
            const base = a.index >= 0 && a.index < 9 ? byOffset.regionInfo(a.index) : undefined;
            // Only accesses that name a real region and stay inside it have a file offset to compare.
            const inside =
              base !== undefined &&
              base.size > 0 &&
              Number.isInteger(a.offset) &&
              a.offset >= 0 &&
              a.offset + Math.max(a.length, 1) <= base.size;
            const x = new Uint8Array(a.length).fill(a.fill);
            const y = new Uint8Array(a.length).fill(a.fill);
            const z = new Uint8Array(a.length).fill(a.fill);
            const viaRegion = outcome(() =>
              a.write
                ? byRegion.writeRegion(a.index, a.offset, y)
                : byRegion.readRegion(a.index, a.offset, y),
            );
            const viaPort = outcome(() => {
              const port = byPort.regionPort(a.index);
              return a.write ? port.write(a.offset, z) : port.read(a.offset, z);
            });
            if (!inside) {
              expect(viaRegion.code).toBe('EINVAL');
              expect(viaPort.code).toBe('EINVAL');
              continue;
            }
            expect(viaPort).toEqual(viaRegion);
            expect([...z]).toEqual([...y]);
            const fileOffset = (base?.offset ?? 0) + a.offset;
            const viaOffset = outcome(() =>
              a.write ? byOffset.write(fileOffset, x) : byOffset.read(fileOffset, x),
            );
            expect(viaRegion).toEqual(viaOffset);
            expect([...y]).toEqual([...x]);
          }
          // Refused accesses count as errors on their region only on the region side (the offset side
          // has no file offset for them), so the access counters are compared without the errors.
          const counts = (f: DeviceFile, i: number) => {
            const c = f.regionCounters(i);
            return (
              c && { reads: c.reads, writes: c.writes, bytesRead: c.bytesRead, bytesWritten: c.bytesWritten }
            );
          };
          for (let i = 0; i < 9; i++) {
            expect(counts(byRegion, i)).toEqual(counts(byOffset, i));
            expect(byPort.regionCounters(i)).toEqual(byRegion.regionCounters(i));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('hands out one port per region, whose accesses follow the file through close and open', () => {
    const file = open('port');
    const port = file.regionPort(2);
    expect(file.regionPort(2)).toBe(port);
    expect(() => file.regionPort(9)).toThrow(/EINVAL.*port.*no region 9/);
    expect(() => file.regionPort(1.5)).toThrow(/EINVAL/);
    const dst = new Uint8Array(4);
    expect(port.read(0x10, dst)).toBe(4);
    file.readRegion(2, 0x14, new Uint8Array(2));
    expect(() => port.write(0x10, dst)).toThrow(/EINVAL.*region 2 is read-only/);
    expect(() => port.read(0xfe, dst)).toThrow(/EINVAL.*runs past the end/);
    expect(file.regionCounters(2)).toEqual({ reads: 2, writes: 0, bytesRead: 6, bytesWritten: 0, errors: 2 });
    file.close();
    expect(() => port.read(0x10, dst)).toThrow(/EBADF/);
    file.open();
    file.writeRegion(7, 4, new Uint8Array([2, 0]));
    expect(port.read(0x10, dst)).toBe(4);
    expect(file.regionCounters(2)?.reads).toBe(3);
  });

  it("names device, region and offset when a port's handler throws or returns a Promise, and counts it", () => {
    const config = testConfigSpace('bad-port', [{ index: 0, kind: 'mem32', size: 0x100 }]);
    let mode: 'throw' | 'promise' = 'throw';
    const model = new PciDeviceModel({
      name: 'bad-port',
      config,
      bars: {
        0: {
          handler: {
            read: () => Promise.resolve(),
            write: () => {
              if (mode === 'throw') throw new Error('the register is gone');
              return Promise.resolve();
            },
          },
        },
      },
    });
    const file = new DeviceFile(model, host);
    file.open();
    file.writeRegion(7, 4, new Uint8Array([2, 0]));
    const port = file.regionPort(0);
    expect(outcome(() => port.write(0x20, new Uint8Array(4)))).toEqual({
      code: 'EIO',
      region: 0,
      offset: 0x20,
    });
    expect(() => port.write(0x20, new Uint8Array(4))).toThrow(/bad-port.*the register is gone/);
    mode = 'promise';
    expect(outcome(() => port.read(0x24, new Uint8Array(4)))).toEqual({
      code: 'EIO',
      region: 0,
      offset: 0x24,
    });
    expect(file.regionCounters(0)).toEqual({ reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, errors: 3 });
  });

  it('refuses accesses on a closed file, of no bytes, and past the end, naming the region', () => {
    const file = open('c');
    expect(() => file.readRegion(0, 0xffc, new Uint8Array(8))).toThrow(
      /EINVAL.*runs past the end of the 4096-byte region/,
    );
    expect(() => file.readRegion(1, 0, new Uint8Array(4))).toThrow(
      /EINVAL.*region 1, which the device does not implement/,
    );
    expect(() => file.writeRegion(2, 0, new Uint8Array(4))).toThrow(/EINVAL.*region 2 is read-only/);
    expect(() => file.readRegion(7, 0, new Uint8Array(0))).toThrow(/EINVAL.*of 0 bytes/);
    expect(() => file.readRegion(7, -1, new Uint8Array(1))).toThrow(/EINVAL.*not a valid offset/);
    expect(file.regionCounters(0)?.errors).toBe(1);
    expect(file.regionCounters(1)).toEqual({ reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, errors: 0 });
    expect(file.regionCounters(99)).toBeUndefined();
    file.close();
    expect(() => file.readRegion(7, 0, new Uint8Array(4))).toThrow(/EBADF/);
  });

  it("refuses every access before open, after close, and when the device's open failed", () => {
    const model = device('o');
    const file = new DeviceFile(model, host);
    expect(() => file.readRegion(7, 0, new Uint8Array(4))).toThrow(/EBADF/);
    expect(() => file.writeRegion(7, 4, new Uint8Array(2))).toThrow(/EBADF/);
    const realOpen = model.open.bind(model);
    model.open = () => {
      throw new Error('no vGPU slot left');
    };
    expect(() => file.open()).toThrow(/no vGPU slot left/);
    expect(file.opened).toBe(false);
    expect(() => file.readRegion(7, 0, new Uint8Array(4))).toThrow(/EBADF/);
    model.open = realOpen;
    file.open();
    expect(file.readRegion(7, 0, new Uint8Array(4))).toBe(4);
    file.close();
    expect(() => file.readRegion(7, 0, new Uint8Array(4))).toThrow(/EBADF/);
    expect(() => file.writeRegion(2, 0, new Uint8Array(4))).toThrow(/EBADF/);
    file.open();
    file.writeRegion(7, 4, new Uint8Array([2, 0]));
    expect(file.readRegion(2, 0, new Uint8Array(4))).toBe(4);
  });

  it('lets through exactly the accesses the full check allows: any offset, size, region, state (property)', () => {
    // A device with an 8 GiB BAR besides the small ones: offsets of 4 GiB and more are valid there.
    const config = testConfigSpace(undefined, [
      { index: 0, kind: 'mem32', size: 0x1000 },
      { index: 2, kind: 'mem64', size: 2 ** 33 },
    ]);
    const seen: number[] = [];
    const model = new PciDeviceModel({
      name: 'big',
      config,
      bars: {
        0: { handler: { read: (o, d) => d.fill(o & 0xff), write: () => {} }, readOnly: true },
        2: { handler: { read: (o, d) => d.fill(1) && seen.push(o), write: (o) => seen.push(o) } },
      },
    });
    const file = new DeviceFile(model, host);
    file.open();
    file.writeRegion(7, 4, new Uint8Array([2, 0]));
    const offsetArb = fc.oneof(
      fc.nat(0x2000),
      fc.constantFrom(
        -1,
        -0,
        0.5,
        4095.5,
        2 ** 31,
        2 ** 32 - 4,
        2 ** 32,
        2 ** 32 + 4,
        2 ** 33 - 4,
        2 ** 33,
        2 ** 53,
        Number.NaN,
      ),
      fc.double({ noNaN: false }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: -1, max: 12 }),
        offsetArb,
        fc.nat(9),
        fc.boolean(),
        fc.boolean(),
        (index, offset, n, write, closed) => {
          if (closed) file.close();
          const info = index >= 0 && index < model.info().numRegions ? file.regionInfo(index) : undefined;
          const allowed =
            !closed &&
            info !== undefined &&
            info.size > 0 &&
            n > 0 &&
            Number.isInteger(offset) &&
            offset >= 0 &&
            offset + n <= info.size &&
            (write ? info.write : info.read);
          const buf = new Uint8Array(n);
          let refused: unknown;
          try {
            if (write) file.writeRegion(index, offset, buf);
            else file.readRegion(index, offset, buf);
          } catch (err) {
            refused = err;
          }
          if (closed) file.open();
          // A write of zeros into config space may have cleared COMMAND.MEMORY (which gates the
          // memory BARs): every case starts with it set.
          file.writeRegion(7, 4, new Uint8Array([2, 0]));
          if (allowed) expect(refused).toBeUndefined();
          else expect(refused).toBeInstanceOf(VfioError);
        },
      ),
      { numRuns: 2000 },
    );
    seen.length = 0;
    expect(file.readRegion(2, 2 ** 32 + 8, new Uint8Array(4))).toBe(4);
    expect(file.writeRegion(2, 2 ** 33 - 4, new Uint8Array(4))).toBe(4);
    expect(seen).toEqual([2 ** 32 + 8, 2 ** 33 - 4]);
  });

  it("keeps every file's counters and limits its own, across many opens and a device of many regions", () => {
    // Open far more files than share one backing store, and count a different number of reads on each.
    const files = Array.from({ length: 300 }, (_, i) => open(`many${i}`));
    files.forEach((f, i) => {
      for (let k = 0; k < i % 7; k++) f.readRegion(0, 4 * k, new Uint8Array(4));
      // A write of no bytes is refused and counted as an error.
      if (i % 3 === 0) expect(() => f.writeRegion(0, 0, new Uint8Array(0))).toThrow(/EINVAL/);
      else f.writeRegion(0, 0, new Uint8Array(i % 3));
    });
    files.forEach((f, i) => {
      // The open wrote COMMAND once (2 bytes of region 7); nothing else touched region 7.
      expect(f.regionCounters(0)).toEqual({
        reads: i % 7,
        writes: i % 3 === 0 ? 0 : 1,
        bytesRead: 4 * (i % 7),
        bytesWritten: i % 3,
        errors: i % 3 === 0 ? 1 : 0,
      });
      expect(f.regionCounters(7)).toMatchObject({ writes: 1, bytesWritten: 2, errors: 0 });
    });
    // Closing one file shuts its regions only.
    files[10].close();
    expect(() => files[10].readRegion(0, 0, new Uint8Array(4))).toThrow(/EBADF/);
    expect(() => files[11].readRegion(0, 0, new Uint8Array(4))).not.toThrow();
    expect(files[11].regionCounters(0)?.reads).toBe((11 % 7) + 1);
    for (const f of files) f.close();

    // A device with more regions than one backing store holds numbers for.
    const regions = 2000;
    const big = {
      name: 'wide',
      info: () => ({ reset: false, numRegions: regions, numIrqs: 0 }),
      regionInfo: (i: number) => ({ index: i, size: 16, read: true, write: i % 2 === 0, mmap: false }),
      irqInfo: () => undefined,
      open: () => {},
      close: () => {},
      read: (_i: number, _o: number, dst: Uint8Array) => dst.fill(0xab),
      write: () => {},
    };
    const wide = new DeviceFile(big, host);
    wide.open();
    const dst = new Uint8Array(4);
    wide.readRegion(regions - 1, 12, dst);
    expect([...dst]).toEqual([0xab, 0xab, 0xab, 0xab]);
    expect(() => wide.writeRegion(regions - 1, 0, dst)).toThrow(/EINVAL.*read-only/);
    wide.writeRegion(regions - 2, 0, dst);
    expect(wide.regionCounters(regions - 1)).toEqual({
      reads: 1,
      writes: 0,
      bytesRead: 4,
      bytesWritten: 0,
      errors: 1,
    });
    expect(wide.regionCounters(regions - 2)).toEqual({
      reads: 0,
      writes: 1,
      bytesRead: 0,
      bytesWritten: 4,
      errors: 0,
    });
    expect(wide.regionCounters(0)).toEqual({ reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, errors: 0 });
    wide.close();
  });
});
