import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../test/helpers.js';
import { VfioError } from '../errors.js';
import { DirtyTracker, DMA_LOGGING_MAX_RANGES } from './dirty.js';

const PAGE = 4096;

function bitsOf(bitmap: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bitmap.length * 8; i++) if (bitmap[i >>> 3] & (1 << (i & 7))) out.push(i);
  return out;
}

describe('DirtyTracker.start', () => {
  it('starts with aligned, non-overlapping ranges and returns the page size in use', () => {
    const t = new DirtyTracker();
    expect(
      t.start(PAGE, [
        { iova: 0x10000, length: 0x4000 },
        { iova: 0, length: 0x1000 },
      ]),
    ).toBe(PAGE);
    expect(t.started).toBe(true);
    expect(t.ranges()).toEqual([
      { iova: 0, length: 0x1000 },
      { iova: 0x10000, length: 0x4000 },
    ]);
  });

  it('refuses page sizes that are not a power of two of at least 4096 with EINVAL', () => {
    for (const ps of [0, 1, 2048, 4095, 6144, 12288, -4096, 4096.5, Number.NaN]) {
      expect(codeOf(() => new DirtyTracker().start(ps, [{ iova: 0, length: 0x10000 }]))).toBe('EINVAL');
    }
  });

  it('refuses no ranges with EINVAL and more than 256 with E2BIG, as vfio_main.c does', () => {
    expect(DMA_LOGGING_MAX_RANGES).toBe(256);
    expect(codeOf(() => new DirtyTracker().start(PAGE, []))).toBe('EINVAL');
    const many = Array.from({ length: 257 }, (_, i) => ({ iova: i * PAGE, length: PAGE }));
    expect(codeOf(() => new DirtyTracker().start(PAGE, many))).toBe('E2BIG');
    expect(codeOf(() => new DirtyTracker().start(PAGE, many.slice(0, 256)))).toBeUndefined();
  });

  it('refuses unaligned, empty and overlapping ranges with EINVAL, and overflowing ones with EOVERFLOW', () => {
    const start = (ranges: { iova: number; length: number }[], ps = PAGE) =>
      codeOf(() => new DirtyTracker().start(ps, ranges));
    expect(start([{ iova: 0x800, length: PAGE }])).toBe('EINVAL');
    expect(start([{ iova: 0, length: 0x1800 }])).toBe('EINVAL');
    expect(start([{ iova: PAGE, length: PAGE }], 2 * PAGE)).toBe('EINVAL');
    expect(start([{ iova: 0, length: 0 }])).toBe('EINVAL');
    expect(
      start([
        { iova: 0, length: 2 * PAGE },
        { iova: PAGE, length: PAGE },
      ]),
    ).toBe('EINVAL');
    expect(start([{ iova: 2 ** 53 - PAGE, length: 2 * PAGE }])).toBe('EOVERFLOW');
    expect(start([{ iova: -PAGE, length: PAGE }])).toBe('EINVAL');
  });

  it('refuses a second start with EINVAL, as mlx5 does, and allows it after stop', () => {
    const t = new DirtyTracker();
    t.start(PAGE, [{ iova: 0, length: PAGE }]);
    expect(codeOf(() => t.start(PAGE, [{ iova: 0, length: PAGE }]))).toBe('EINVAL');
    t.stop();
    t.stop();
    expect(t.started).toBe(false);
    expect(codeOf(() => t.start(PAGE, [{ iova: 0, length: PAGE }]))).toBeUndefined();
  });
});

describe('DirtyTracker.report', () => {
  it('lays out one bit per page in little-endian u64 words', () => {
    const t = new DirtyTracker();
    t.start(PAGE, [{ iova: 0, length: 100 * PAGE }]);
    t.markDirty(0, 1);
    t.markDirty(9 * PAGE + 5, 1);
    t.markDirty(64 * PAGE, PAGE + 1);
    const bitmap = t.report(0, 100 * PAGE, PAGE);
    expect(bitmap.length).toBe(16);
    expect(bitmap[0]).toBe(0b1);
    expect(bitmap[1]).toBe(0b10);
    expect(bitmap[8]).toBe(0b11);
    expect(bitsOf(bitmap)).toEqual([0, 9, 64, 65]);
  });

  it('clears what it reported', () => {
    const t = new DirtyTracker();
    t.start(PAGE, [{ iova: 0, length: 8 * PAGE }]);
    t.markDirty(PAGE, 3 * PAGE);
    expect(bitsOf(t.report(0, 2 * PAGE, PAGE))).toEqual([1]);
    expect(bitsOf(t.report(0, 8 * PAGE, PAGE))).toEqual([2, 3]);
    expect(bitsOf(t.report(0, 8 * PAGE, PAGE))).toEqual([]);
  });

  it('reports with a larger page size than it tracks', () => {
    const t = new DirtyTracker();
    t.start(PAGE, [{ iova: 0, length: 64 * PAGE }]);
    t.markDirty(5 * PAGE, 1);
    t.markDirty(40 * PAGE, 1);
    expect(bitsOf(t.report(0, 64 * PAGE, 16 * PAGE))).toEqual([0, 2]);
  });

  it('ignores writes outside the logged ranges and while stopped', () => {
    const t = new DirtyTracker();
    t.markDirty(0, PAGE);
    t.start(PAGE, [{ iova: 4 * PAGE, length: 4 * PAGE }]);
    expect(t.isDirty(0)).toBe(false);
    t.markDirty(0, 4 * PAGE);
    t.markDirty(8 * PAGE, PAGE);
    expect(bitsOf(t.report(4 * PAGE, 4 * PAGE, PAGE))).toEqual([]);
    t.markDirty(3 * PAGE, 2 * PAGE);
    expect(bitsOf(t.report(4 * PAGE, 4 * PAGE, PAGE))).toEqual([0]);
  });

  it('refuses a report when stopped, outside the ranges, with a bad page size, or empty (EINVAL)', () => {
    const t = new DirtyTracker();
    expect(codeOf(() => t.report(0, PAGE, PAGE))).toBe('EINVAL');
    t.start(PAGE, [
      { iova: 0, length: 2 * PAGE },
      { iova: 2 * PAGE, length: 2 * PAGE },
      { iova: 8 * PAGE, length: PAGE },
    ]);
    expect(codeOf(() => t.report(0, 4 * PAGE, PAGE))).toBeUndefined();
    expect(codeOf(() => t.report(0, 5 * PAGE, PAGE))).toBe('EINVAL');
    expect(codeOf(() => t.report(7 * PAGE, 2 * PAGE, PAGE))).toBe('EINVAL');
    expect(codeOf(() => t.report(0, PAGE, 2048))).toBe('EINVAL');
    expect(codeOf(() => t.report(0, 0, PAGE))).toBe('EINVAL');
    expect(codeOf(() => t.report(2 ** 53 - PAGE, 2 * PAGE, PAGE))).toBe('EOVERFLOW');
  });

  it('stop forgets dirty pages', () => {
    const t = new DirtyTracker();
    t.start(PAGE, [{ iova: 0, length: PAGE }]);
    t.markDirty(0, 1);
    t.stop();
    t.start(PAGE, [{ iova: 0, length: PAGE }]);
    expect(bitsOf(t.report(0, PAGE, PAGE))).toEqual([]);
  });

  it('tracks pages far apart in a huge range without trouble', () => {
    const t = new DirtyTracker();
    t.start(PAGE, [{ iova: 0, length: 2 ** 48 }]);
    t.markDirty(2 ** 47, 1);
    t.markDirty(2 ** 47 + 3 * PAGE, 1);
    expect(bitsOf(t.report(2 ** 47, 8 * PAGE, PAGE))).toEqual([0, 3]);
  });
});

describe('DirtyTracker properties', () => {
  const TRACK_PAGES = 64;

  it('reports the same bitmap as a per-page model, and clears what it reported', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(PAGE, 2 * PAGE),
        fc.uniqueArray(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 8 }),
        fc.array(
          fc.record({
            addr: fc.integer({ min: 0, max: TRACK_PAGES * 2 * PAGE }),
            length: fc.integer({ min: 1, max: 5 * PAGE }),
          }),
          {
            maxLength: 20,
          },
        ),
        fc.constantFrom(PAGE, 2 * PAGE, 4 * PAGE, 16 * PAGE),
        fc.nat(),
        fc.nat(),
        (tps, slots, writes, rps, pick, cut) => {
          // Each chosen slot of 8 tracking pages becomes one logged range.
          const ranges = slots.map((s) => ({ iova: s * 8 * tps, length: 8 * tps }));
          const t = new DirtyTracker();
          t.start(tps, ranges);
          const dirty = new Set<number>();
          const logged = (page: number) =>
            ranges.some((r) => page * tps >= r.iova && page * tps < r.iova + r.length);
          for (const w of writes) {
            t.markDirty(w.addr, w.length);
            for (let p = Math.floor(w.addr / tps); p <= Math.floor((w.addr + w.length - 1) / tps); p++) {
              if (logged(p)) dirty.add(p);
            }
          }
          const r = ranges[pick % ranges.length];
          const iova = r.iova + (cut % r.length);
          const end = r.iova + r.length;
          const length = end - iova;
          const bitmap = t.report(iova, length, rps);
          const bits = Math.floor((length - 1) / rps) + 1;
          expect(bitmap.length).toBe(Math.ceil(bits / 64) * 8);
          const expected: number[] = [];
          for (let b = 0; b < bits; b++) {
            const lo = iova + b * rps;
            const hi = Math.min(lo + rps, end);
            let set = false;
            for (const p of dirty) if (p * tps < hi && (p + 1) * tps > lo) set = true;
            if (set) expected.push(b);
          }
          expect(bitsOf(bitmap)).toEqual(expected);
          for (const p of [...dirty]) if (p * tps < end && (p + 1) * tps > iova) dirty.delete(p);
          for (let p = 0; p < TRACK_PAGES * 2; p++) expect(t.isDirty(p * tps)).toBe(dirty.has(p));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never throws anything but VfioError for arbitrary arguments', () => {
    const n = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(0, PAGE, 2 ** 53, 2 ** 64, Number.NaN));
    fc.assert(
      fc.property(n, n, n, (a, b, c) => {
        const t = new DirtyTracker();
        for (const fn of [
          () => t.start(a, [{ iova: b, length: c }]),
          () => t.markDirty(b, c),
          () => t.report(b, c, a),
          () => t.isDirty(b),
        ]) {
          try {
            fn();
          } catch (err) {
            expect(err).toBeInstanceOf(VfioError);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
