import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { migrationChecksum } from './checksum.js';

describe('migrationChecksum', () => {
  it('is CRC32 (IEEE): the check value of "123456789" is 0xcbf43926', () => {
    expect(migrationChecksum(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(migrationChecksum(new Uint8Array(0))).toBe(0);
  });

  it('continues from a seed: the CRC of pieces is the CRC of the whole, however it is cut', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.nat(), { maxLength: 6 }), (bytes, raw) => {
        const cuts = [...new Set([0, ...raw.map((c) => c % (bytes.length + 1)), bytes.length])].sort(
          (a, b) => a - b,
        );
        let crc = 0;
        for (let i = 0; i + 1 < cuts.length; i++)
          crc = migrationChecksum(bytes.subarray(cuts[i], cuts[i + 1]), crc);
        expect(crc).toBe(migrationChecksum(bytes));
      }),
    );
  });

  it('changes when any single bit flips', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 512 }), fc.nat(), (bytes, bit) => {
        const flipped = bytes.slice();
        const at = bit % (bytes.length * 8);
        flipped[at >> 3] ^= 1 << (at & 7);
        expect(migrationChecksum(flipped)).not.toBe(migrationChecksum(bytes));
      }),
    );
  });
});
