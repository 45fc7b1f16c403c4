/**
 * Mutation tests on the real fixtures: flipped bytes, truncation, extension and patched size
 * fields must only ever end in a VfioError(EINVAL), never a RangeError or a wild read.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildOpRegion, parseOpRegion, parseVbt } from '../src/index.js';
import { fixtureSuite, haveFixtures, loadFixtures } from './fixtures.js';
import { le16, le32, onlyEinval } from './helpers.js';

const fixtures = loadFixtures();
const RUNS = 150;

function parseAny(bytes: Uint8Array, isOpRegion: boolean) {
  return isOpRegion ? parseOpRegion(bytes) : parseVbt(bytes);
}

/** Size/offset fields worth patching: VBT header, BDB header, every block header; OpRegion fields. */
function sizeFields(bytes: Uint8Array, isOpRegion: boolean): Array<{ off: number; width: 2 | 4 }> {
  const base = isOpRegion ? 0x400 : 0;
  const fields: Array<{ off: number; width: 2 | 4 }> = [
    { off: base + 0x16, width: 2 },
    { off: base + 0x18, width: 2 },
    { off: base + 0x1c, width: 4 },
    { off: base + 48 + 0x12, width: 2 },
    { off: base + 48 + 0x14, width: 2 },
  ];
  const vbt = isOpRegion ? parseOpRegion(bytes).vbt! : parseVbt(bytes);
  for (const b of vbt.blocks) fields.push({ off: base + b.offset + 1, width: 2 });
  if (isOpRegion) {
    fields.push(
      { off: 0x10, width: 4 },
      { off: 0x3ba, width: 4 },
      { off: 0x3be, width: 4 },
      { off: 0x3c2, width: 4 },
    );
  }
  return fields;
}

describe.skipIf(!haveFixtures)(fixtureSuite('mutated real fixtures throw only VfioError'), () => {
  it('has fixtures to mutate', () => {
    expect(fixtures.length).toBeGreaterThan(0);
  });

  for (const f of fixtures) {
    const isOpRegion = f.facts.layout.vbt_offset_in_file !== 0;
    // Each VBT also goes through an OpRegion built around it (2.0 in-line or 2.1 extended).
    const targets: Array<[string, Uint8Array, boolean]> = [[f.name, f.bytes, isOpRegion]];
    if (!isOpRegion) targets.push([`${f.name} in a built OpRegion`, buildOpRegion({ vbt: f.bytes }), true]);

    for (const [name, original, opregion] of targets) {
      describe(name, () => {
        it('parses unmutated', () => {
          expect(() => parseAny(original, opregion)).not.toThrow();
        });

        it('flipped bytes', () => {
          fc.assert(
            fc.property(
              fc.array(fc.tuple(fc.nat({ max: original.length - 1 }), fc.integer({ min: 1, max: 255 })), {
                minLength: 1,
                maxLength: 8,
              }),
              (flips) => {
                const bytes = original.slice();
                for (const [at, x] of flips) bytes[at] ^= x;
                onlyEinval(() => parseAny(bytes, opregion));
              },
            ),
            { numRuns: RUNS },
          );
        });

        it('truncated at every length class', () => {
          fc.assert(
            fc.property(fc.nat({ max: original.length }), (len) => {
              onlyEinval(() => parseAny(original.slice(0, len), opregion));
            }),
            { numRuns: RUNS },
          );
        });

        it('extended with random bytes', () => {
          fc.assert(
            fc.property(fc.uint8Array({ minLength: 1, maxLength: 4096 }), (extra) => {
              const bytes = new Uint8Array(original.length + extra.length);
              bytes.set(original);
              bytes.set(extra, original.length);
              onlyEinval(() => parseAny(bytes, opregion));
            }),
            { numRuns: RUNS },
          );
        });

        it('size and offset fields patched to random and edge values', () => {
          const fields = sizeFields(original, opregion);
          const value = fc.oneof(
            fc.constantFrom(0, 1, 2, 3, 21, 22, 47, 48, 0x7fff, 0xffff, 0x1_0000, 0x7fff_ffff, 0xffff_ffff),
            fc.nat({ max: 0xffff_ffff }),
          );
          fc.assert(
            fc.property(
              fc.array(fc.tuple(fc.constantFrom(...fields), value), { minLength: 1, maxLength: 3 }),
              (patches) => {
                const bytes = original.slice();
                for (const [{ off, width }, v] of patches) {
                  if (off + width > bytes.length) continue;
                  if (width === 2) le16(bytes, off, v & 0xffff);
                  else le32(bytes, off, v);
                }
                onlyEinval(() => parseAny(bytes, opregion));
              },
            ),
            { numRuns: RUNS },
          );
        });
      });
    }
  }
});
