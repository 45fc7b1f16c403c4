/**
 * The trapped-access hot path: a register bank's fast aligned 4-byte read (one lookup, one 32-bit
 * store into the caller's buffer, whose view is kept) must answer exactly what its general path
 * answers (its general path, readInto), whatever buffers the callers pass; the device file's per-region counters and its
 * offset checks must be those of the general path too.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { vfioPciIndexToOffset } from '../src/abi.js';
import { DeviceFile } from '../src/host.js';
import { ConfigSpace, PciDeviceModel, RegisterBank, VfioError } from '../src/index.js';
import { silentLog } from './helpers.js';

function bank(): RegisterBank {
  return new RegisterBank({
    name: 'hot',
    size: 0x100,
    registers: [
      { name: 'id', offset: 0x00, reset: 0x12345678, access: 'ro' },
      { name: 'scratch', offset: 0x04, reset: 0 },
      { name: 'hooked', offset: 0x08, reset: 0, onRead: () => 0xcafef00d },
      { name: 'wide', offset: 0x10, width: 8, reset: 0x1122334455667788n },
      { name: 'half', offset: 0x1a, width: 2, reset: 0xbeef },
      { name: 'w1c', offset: 0x20, reset: 0xff, w1cMask: 0xff },
    ],
  });
}

describe('RegisterBank fast 4-byte reads', () => {
  it('answer what the general path answers, into any buffer, after any writes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            offset: fc.integer({ min: 0, max: 0xfc }).map((o) => o & ~3),
            write: fc.option(fc.nat(), { nil: undefined }),
            buffer: fc.nat({ max: 3 }),
          }),
          { maxLength: 40 },
        ),
        (steps) => {
          const fast = bank();
          const slow = bank();
          const backing = new Uint8Array(64);
          // Separate buffers, views at odd offsets of one buffer, and one reused buffer.
          const buffers = [
            new Uint8Array(4),
            backing.subarray(1, 5),
            backing.subarray(7, 11),
            new Uint8Array(4),
          ];
          for (const s of steps) {
            if (s.write !== undefined) {
              const src = new Uint8Array(new Uint32Array([s.write >>> 0]).buffer);
              fast.write(s.offset, src);
              slow.write(s.offset, src);
              continue;
            }
            const dst = buffers[s.buffer];
            dst.fill(0xaa);
            fast.read(s.offset, dst);
            // The general path (what read() does for any access that is not the fast kind).
            const general = new Uint8Array(4);
            (slow as unknown as { readInto(o: number, d: Uint8Array, n: number): void }).readInto(
              s.offset,
              general,
              4,
            );
            const bytes = Array.from(general);
            expect(Array.from(dst)).toEqual(bytes);
            expect(fast.readU32(s.offset)).toBe(
              new DataView(dst.buffer, dst.byteOffset, 4).getUint32(0, true),
            );
          }
        },
      ),
    );
  });

  it('leave the buffer a caller passed before untouched when another caller reads', () => {
    const b = bank();
    const first = new Uint8Array(4);
    const second = new Uint8Array(4);
    b.read(0x00, first);
    b.read(0x04, second);
    expect(Array.from(first)).toEqual([0x78, 0x56, 0x34, 0x12]);
    expect(Array.from(second)).toEqual([0, 0, 0, 0]);
    b.read(0x00, first);
    expect(Array.from(second)).toEqual([0, 0, 0, 0]);
  });
});

function file(): DeviceFile {
  const config = new ConfigSpace({
    identity: {
      vendorId: 0x1af4,
      deviceId: 0x10f0,
      subsystemVendorId: 0,
      subsystemId: 0,
      classCode: 0xff0000,
      revision: 0,
    },
  });
  config.defineBar({ index: 0, kind: 'mem32', size: 0x100 });
  const regs = bank();
  const device = new PciDeviceModel({
    name: 'hot',
    config,
    bars: { 0: { handler: { read: (o, d) => regs.read(o, d), write: (o, s) => regs.write(o, s) } } },
  });
  const f = new DeviceFile(device, {
    dma: {
      read() {},
      write() {},
      pin: () => {
        throw new Error('no DMA here');
      },
    },
    dirty: { markDirty() {} },
    clock: { now: () => 0, schedule: () => () => {} },
    log: silentLog,
  });
  f.open();
  f.write(vfioPciIndexToOffset(7) + 4, new Uint8Array([2, 0])); // COMMAND.MEMORY
  return f;
}

describe('DeviceFile on the hot path', () => {
  it('counts reads, writes, bytes and refusals per region', () => {
    const f = file();
    const four = new Uint8Array(4);
    for (let i = 0; i < 5; i++) f.readRegion(0, 0, four);
    f.read(4, four);
    f.writeRegion(0, 4, four);
    f.write(4, new Uint8Array(2));
    expect(() => f.readRegion(0, 0x100, four)).toThrow(VfioError);
    expect(f.regionCounters(0)).toEqual({ reads: 6, writes: 2, bytesRead: 24, bytesWritten: 6, errors: 1 });
    expect(f.regionCounters(1)).toEqual({ reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, errors: 0 });
  });

  it('still refuses an offset that is not a whole number, through read() and readRegion()', () => {
    const f = file();
    const four = new Uint8Array(4);
    expect(() => f.read(0.5, four)).toThrow(/not a valid offset/);
    expect(() => f.readRegion(0, 0.5, four)).toThrow(/not a valid offset/);
    expect(() => f.write(vfioPciIndexToOffset(0) + 2 ** 31 + 0.5, four)).toThrow(VfioError);
    expect(f.read(8, four)).toBe(4);
    expect(new DataView(four.buffer).getUint32(0, true)).toBe(0xcafef00d);
  });
});
