import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hex, leBytes, readLe, TWO_32, writeLe } from './bytes.js';

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
