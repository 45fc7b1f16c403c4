import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { copyBytes, hex, leBytes, readLe, TWO_32, writeLe } from './bytes.js';

describe('byte helpers', () => {
  it('writes and reads back any value of 1, 2 or 4 bytes, little-endian as DataView does', () => {
    fc.assert(
      fc.property(fc.constantFrom(1, 2, 4), fc.integer({ min: 0, max: 0xffffffff }), (size, raw) => {
        const value = size === 4 ? raw : raw % 2 ** (8 * size);
        const b = new Uint8Array(6);
        writeLe(b, 1, size as 1 | 2 | 4, value);
        expect(readLe(b, 1, size as 1 | 2 | 4)).toBe(value);
        const v = new DataView(b.buffer);
        expect(size === 1 ? v.getUint8(1) : size === 2 ? v.getUint16(1, true) : v.getUint32(1, true)).toBe(
          value,
        );
        expect([b[0], b[5]]).toEqual([0, 0]);
      }),
    );
  });

  it('copies any range as set of a subarray does, short or long, and refuses one outside an array without copying (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 48 }),
        fc.nat({ max: 50 }),
        fc.nat({ max: 50 }),
        fc.nat({ max: 50 }),
        (src, srcAt, dstAt, n) => {
          const dst = new Uint8Array(40).fill(0xa5);
          const want = dst.slice();
          let wanted: unknown = 'ok';
          try {
            if (srcAt + n > src.length || dstAt + n > dst.length) throw new RangeError('out');
            want.set(src.subarray(srcAt, srcAt + n), dstAt);
          } catch (err) {
            wanted = (err as Error).name;
          }
          let got: unknown = 'ok';
          try {
            copyBytes(dst, dstAt, src, srcAt, n);
          } catch (err) {
            got = (err as Error).name;
          }
          expect(got).toBe(wanted);
          expect(Array.from(dst)).toEqual(Array.from(want));
        },
      ),
    );
    expect(() => copyBytes(new Uint8Array(4), -1, new Uint8Array(4), 0, 1)).toThrow(RangeError);
    expect(() => copyBytes(new Uint8Array(4), 0, new Uint8Array(4), 0, -1)).toThrow(/out of range/);
  });

  it('spells a 64-bit safe integer as eight little-endian bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (value) => {
        const v = new DataView(leBytes(value, 8).buffer);
        expect(v.getUint32(0, true) + v.getUint32(4, true) * TWO_32).toBe(value);
      }),
    );
  });

  it('prints hex with 0x and an optional width', () => {
    expect(hex(0x1f)).toBe('0x1f');
    expect(hex(0x1f, 4)).toBe('0x001f');
  });
});
