import { VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AccessHandler, AddressMap, type MappedRange } from './address-map.js';

function tagged(tag: number): AccessHandler {
  return { read: (offset) => tag * 0x10000 + offset, write: () => {} };
}

interface Live {
  start: number;
  size: number;
  tag: number;
  range: MappedRange;
}

/** Checks every address of a small space against a linear search of the live ranges. */
function expectAgrees(map: AddressMap, live: readonly Live[], space: number, step: number): void {
  expect(map.ranges().map((r) => r.start)).toEqual(live.map((l) => l.start).sort((a, b) => a - b));
  for (let addr = 0; addr < space; addr += step) {
    const hit = live.find((l) => addr >= l.start && addr < l.start + l.size);
    expect(map.find(addr)).toBe(hit?.range);
    expect(map.read(addr, 1)).toBe(hit ? hit.tag * 0x10000 + (addr - hit.start) : 0xff);
  }
}

describe('AddressMap with many ranges', () => {
  it('keeps finding the right range while hundreds of ranges come and go (chunks split and empty)', () => {
    const space = 0x2000;
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('add' as const),
              start: fc.integer({ min: 0, max: space - 1 }),
              size: fc.integer({ min: 1, max: 24 }),
            }),
            fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }),
          ),
          { minLength: 100, maxLength: 600 },
        ),
        (ops) => {
          const map = new AddressMap('memory', space);
          const live: Live[] = [];
          let tag = 0;
          for (const o of ops) {
            if (o.op === 'add') {
              tag++;
              const clash =
                o.start + o.size > space ||
                live.some((l) => l.start < o.start + o.size && o.start < l.start + l.size);
              try {
                const range = map.add({
                  start: o.start,
                  size: o.size,
                  kind: 'trapped',
                  owner: `r${tag}`,
                  handler: tagged(tag),
                });
                expect(clash).toBe(false);
                live.push({ start: o.start, size: o.size, tag, range });
              } catch (err) {
                expect(err).toBeInstanceOf(VfioError);
                expect(clash).toBe(true);
              }
            } else if (live.length > 0) {
              const [gone] = live.splice(o.pick % live.length, 1);
              map.remove(gone.range);
              // Removing it again, or a range the map never held, changes nothing.
              map.remove(gone.range);
            }
          }
          expectAgrees(map, live, space, 5);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('keeps only the ranges a sweep accepts, in order, and maps and finds as before afterwards', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 499 }), { maxLength: 200 }),
        fc.func(fc.boolean()),
        (slots, keepIt) => {
          const map = new AddressMap('memory', 0x1_0000);
          const live: Live[] = slots.map((slot, tag) => ({
            start: slot * 0x20,
            size: 0x10,
            tag,
            range: map.add({
              start: slot * 0x20,
              size: 0x10,
              kind: 'trapped',
              owner: `r${tag}`,
              handler: tagged(tag),
            }),
          }));
          map.retain((r) => keepIt(r.owner));
          const kept = live.filter((l) => keepIt(l.range.owner));
          expectAgrees(map, kept, 0x4000, 5);
          // The swept map takes new ranges where the dropped ones were.
          const gone = live.find((l) => !keepIt(l.range.owner));
          if (gone) {
            const range = map.add({
              start: gone.start,
              size: 8,
              kind: 'trapped',
              owner: 'new',
              handler: tagged(999),
            });
            expect(map.find(gone.start)).toBe(range);
            expect(map.read(gone.start + 4, 1)).toBe(999 * 0x10000 + 4);
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('maps and unmaps ranges in ascending, descending and interleaved order', () => {
    const map = new AddressMap('io', 0x1_0000);
    const live: Live[] = [];
    const add = (start: number, tag: number) => {
      const range = map.add({ start, size: 8, kind: 'trapped', owner: `r${tag}`, handler: tagged(tag) });
      live.push({ start, size: 8, tag, range });
    };
    for (let i = 0; i < 200; i++) add(0x8000 + i * 16, i);
    for (let i = 0; i < 200; i++) add(0x7ff0 - i * 16, 1000 + i);
    for (let i = 0; i < 200; i++) add(0x8008 + i * 16, 2000 + i);
    expectAgrees(map, live, 0x1_0000, 3);
    // Take out every other range from the front, then the rest from the back.
    for (let i = 0; i < live.length; i += 2) map.remove(live[i].range);
    const rest = live.filter((_, i) => i % 2 === 1);
    expectAgrees(map, rest, 0x1_0000, 3);
    for (let i = rest.length - 1; i >= 0; i--) map.remove(rest[i].range);
    expect(map.ranges()).toEqual([]);
    expect(map.read(0x8000, 4)).toBe(0xffffffff);
  });
});
