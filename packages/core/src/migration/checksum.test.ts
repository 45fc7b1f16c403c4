import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { copyWithChecksum, migrationChecksum, migrationChecksumAhead } from './checksum.js';

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

  it('copyWithChecksum copies the bytes and returns their checksum, continued from the seed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(50), fc.nat(0xffffffff), (bytes, at, seed) => {
        const target = new Uint8Array(at + bytes.length + 7).fill(0x5a);
        expect(copyWithChecksum(target, at, bytes, seed)).toBe(migrationChecksum(bytes, seed));
        expect(Buffer.compare(target.subarray(at, at + bytes.length), bytes)).toBe(0);
        expect(target.subarray(0, at).every((b) => b === 0x5a)).toBe(true);
        expect(target.subarray(at + bytes.length).every((b) => b === 0x5a)).toBe(true);
      }),
    );
    expect(() => copyWithChecksum(new Uint8Array(10), 5, new Uint8Array(6))).toThrow(RangeError);
  });

  it('migrationChecksumAhead gives migrationChecksum of each range, in the order submitted (property)', () => {
    const memory = new Uint8Array(300_000).map((_, i) => Math.imul(i, 40503) >>> 8);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(memory.length), fc.nat(memory.length)), { maxLength: 20 }),
        (pairs) => {
          const ranges = pairs.map(([a, b]) => [Math.min(a, b), Math.abs(a - b)]);
          const ahead = migrationChecksumAhead(memory);
          for (const [at, n] of ranges) ahead.submit(at, n);
          expect(ahead.pending).toBe(ranges.length);
          for (const [at, n] of ranges)
            expect(ahead.next()).toBe(migrationChecksum(memory.subarray(at, at + n)));
          ahead.submit(0, memory.length);
          ahead.close();
          expect(() => ahead.next()).toThrow(/closed/);
        },
      ),
      { numRuns: 50 },
    );
  });
});
