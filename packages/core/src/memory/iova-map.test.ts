import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../test/helpers.js';
import { VfioError } from '../errors.js';
import { IovaMap } from './iova-map.js';

const PAGE = 4096;

function mem(pages: number, seed = 1): Uint8Array {
  const m = new Uint8Array(pages * PAGE);
  for (let i = 0; i < m.length; i++) m[i] = (i * 31 + seed * 7) & 0xff;
  return m;
}

describe('IovaMap.map', () => {
  it('maps a page-aligned range and finds it by any address inside', () => {
    const map = new IovaMap();
    const memory = mem(2);
    map.map({ iova: 0x10000, size: 2 * PAGE, read: true, write: false, memory });
    expect(map.count).toBe(1);
    expect(map.find(0x10000)?.size).toBe(2 * PAGE);
    expect(map.find(0x10000 + 2 * PAGE - 1)?.iova).toBe(0x10000);
    expect(map.find(0x10000 + 2 * PAGE)).toBeUndefined();
    expect(map.find(0xffff)).toBeUndefined();
  });

  it('refuses a mapping with neither read nor write with EINVAL', () => {
    const map = new IovaMap();
    expect(codeOf(() => map.map({ iova: 0, size: PAGE, read: false, write: false, memory: mem(1) }))).toBe(
      'EINVAL',
    );
  });

  it('refuses size 0 and unaligned iova, size or vaddr with EINVAL', () => {
    const map = new IovaMap();
    const memory = mem(4);
    expect(codeOf(() => map.map({ iova: 0, size: 0, read: true, write: true, memory }))).toBe('EINVAL');
    expect(codeOf(() => map.map({ iova: 0x800, size: PAGE, read: true, write: true, memory }))).toBe(
      'EINVAL',
    );
    expect(codeOf(() => map.map({ iova: 0, size: PAGE + 1, read: true, write: true, memory }))).toBe(
      'EINVAL',
    );
    expect(codeOf(() => map.map({ iova: 0, size: PAGE, read: true, write: true, memory, vaddr: 0x10 }))).toBe(
      'EINVAL',
    );
    expect(map.count).toBe(0);
  });

  it('refuses addresses the host cannot represent exactly with EINVAL', () => {
    const map = new IovaMap();
    const memory = mem(1);
    const top = Math.floor(Number.MAX_SAFE_INTEGER / PAGE) * PAGE;
    expect(codeOf(() => map.map({ iova: 2 ** 60, size: PAGE, read: true, write: true, memory }))).toBe(
      'EINVAL',
    );
    expect(codeOf(() => map.map({ iova: 2 ** 53, size: PAGE, read: true, write: true, memory }))).toBe(
      'EINVAL',
    );
    expect(
      codeOf(() => map.map({ iova: top, size: 2 * PAGE, read: true, write: true, memory: mem(2) })),
    ).toBe('EINVAL');
    expect(codeOf(() => map.map({ iova: -PAGE, size: PAGE, read: true, write: true, memory }))).toBe(
      'EINVAL',
    );
    expect(codeOf(() => map.map({ iova: 1.5, size: PAGE, read: true, write: true, memory }))).toBe('EINVAL');
    // The highest page, whose last byte is Number.MAX_SAFE_INTEGER, maps.
    map.map({ iova: top, size: PAGE, read: true, write: true, memory });
    expect(map.count).toBe(1);
  });

  it('refuses backing memory smaller than the range with EFAULT', () => {
    const map = new IovaMap();
    expect(codeOf(() => map.map({ iova: 0, size: 2 * PAGE, read: true, write: true, memory: mem(1) }))).toBe(
      'EFAULT',
    );
    expect(
      codeOf(() =>
        map.map({ iova: 0, size: PAGE, read: true, write: true, memory: mem(1), memoryOffset: 1 }),
      ),
    ).toBe('EFAULT');
    expect(
      codeOf(() =>
        map.map({ iova: 0, size: PAGE, read: true, write: true, memory: mem(1), memoryOffset: -1 }),
      ),
    ).toBe('EINVAL');
  });

  it('answers EEXIST for any overlap, as type1 does', () => {
    const map = new IovaMap();
    map.map({ iova: 4 * PAGE, size: 4 * PAGE, read: true, write: true, memory: mem(4) });
    for (const [iova, pages] of [
      [4, 4],
      [3, 2],
      [7, 3],
      [5, 1],
      [0, 16],
    ]) {
      expect(
        codeOf(() =>
          map.map({ iova: iova * PAGE, size: pages * PAGE, read: true, write: true, memory: mem(16) }),
        ),
      ).toBe('EEXIST');
    }
    // Adjacent ranges are not overlaps.
    map.map({ iova: 0, size: 4 * PAGE, read: true, write: true, memory: mem(4) });
    map.map({ iova: 8 * PAGE, size: PAGE, read: true, write: true, memory: mem(1) });
    expect(map.mappings().map((m) => m.iova)).toEqual([0, 4 * PAGE, 8 * PAGE]);
  });

  it('answers ENOSPC beyond the mapping limit', () => {
    const map = new IovaMap({ maxMappings: 2 });
    map.map({ iova: 0, size: PAGE, read: true, write: true, memory: mem(1) });
    map.map({ iova: PAGE, size: PAGE, read: true, write: true, memory: mem(1) });
    expect(
      codeOf(() => map.map({ iova: 2 * PAGE, size: PAGE, read: true, write: true, memory: mem(1) })),
    ).toBe('ENOSPC');
  });

  it('names the IOVA and the overlapping mapping in the message', () => {
    const map = new IovaMap();
    map.map({ iova: 0x4000, size: PAGE, read: true, write: true, memory: mem(1) });
    expect(() => map.map({ iova: 0x4000, size: PAGE, read: true, write: true, memory: mem(1) })).toThrow(
      /IOVA 0x4000.*0x4000-0x4fff/,
    );
  });
});

describe('IovaMap.unmap', () => {
  function threeMappings(): IovaMap {
    const map = new IovaMap();
    map.map({ iova: 0, size: 2 * PAGE, read: true, write: true, memory: mem(2) });
    map.map({ iova: 2 * PAGE, size: 2 * PAGE, read: true, write: true, memory: mem(2) });
    map.map({ iova: 8 * PAGE, size: PAGE, read: true, write: true, memory: mem(1) });
    return map;
  }

  it('removes every mapping inside the range and returns the bytes unmapped', () => {
    const map = threeMappings();
    expect(map.unmap(0, 16 * PAGE)).toBe(5 * PAGE);
    expect(map.count).toBe(0);
  });

  it('returns 0 for a range without mappings', () => {
    const map = threeMappings();
    expect(map.unmap(4 * PAGE, 4 * PAGE)).toBe(0);
    expect(map.count).toBe(3);
  });

  it('refuses a range that would split a mapping at either end with EINVAL and removes nothing', () => {
    const map = threeMappings();
    expect(codeOf(() => map.unmap(PAGE, 3 * PAGE))).toBe('EINVAL');
    expect(codeOf(() => map.unmap(0, PAGE))).toBe('EINVAL');
    expect(codeOf(() => map.unmap(0, 3 * PAGE))).toBe('EINVAL');
    expect(map.count).toBe(3);
  });

  it('refuses size 0, unaligned and unrepresentable ranges with EINVAL', () => {
    const map = threeMappings();
    expect(codeOf(() => map.unmap(0, 0))).toBe('EINVAL');
    expect(codeOf(() => map.unmap(1, PAGE))).toBe('EINVAL');
    expect(codeOf(() => map.unmap(0, PAGE + 1))).toBe('EINVAL');
    expect(codeOf(() => map.unmap(0, 2 ** 60))).toBe('EINVAL');
    expect(codeOf(() => map.unmap(Number.NaN, PAGE))).toBe('EINVAL');
  });

  it('unmapAll removes everything and returns the total size', () => {
    const map = threeMappings();
    expect(map.unmapAll()).toBe(5 * PAGE);
    expect(map.mappings()).toEqual([]);
    expect(map.unmapAll()).toBe(0);
  });

  it('calls unmap listeners with each mapping before it goes, and stops after unsubscribe', () => {
    const map = threeMappings();
    const seen: Array<[number, number, boolean]> = [];
    const off = map.onUnmap((iova, size) => seen.push([iova, size, map.find(iova) !== undefined]));
    map.unmap(0, 4 * PAGE);
    expect(seen).toEqual([
      [0, 2 * PAGE, true],
      [2 * PAGE, 2 * PAGE, true],
    ]);
    off();
    map.unmap(8 * PAGE, PAGE);
    expect(seen).toHaveLength(2);
  });

  it('still removes the mapping when a listener throws, then reports the listener error', () => {
    const map = threeMappings();
    map.onUnmap(() => {
      throw new Error('listener broke');
    });
    expect(() => map.unmap(0, 2 * PAGE)).toThrow(VfioError);
    expect(map.find(0)).toBeUndefined();
  });
});

describe('IovaMap.read / write / translate', () => {
  it('reads and writes across adjacent mappings', () => {
    const map = new IovaMap();
    const a = new Uint8Array(PAGE);
    const b = new Uint8Array(2 * PAGE);
    map.map({ iova: 0x10000, size: PAGE, read: true, write: true, memory: a });
    map.map({ iova: 0x11000, size: PAGE, read: true, write: true, memory: b, memoryOffset: PAGE });
    const src = new Uint8Array(200).map((_, i) => i + 1);
    map.write(0x11000 - 100, src);
    expect(Array.from(a.subarray(PAGE - 100))).toEqual(Array.from(src.subarray(0, 100)));
    expect(Array.from(b.subarray(PAGE, PAGE + 100))).toEqual(Array.from(src.subarray(100)));
    const dst = new Uint8Array(200);
    map.read(0x11000 - 100, dst);
    expect(dst).toEqual(src);
  });

  it('copies large transfers correctly', () => {
    const map = new IovaMap();
    const memory = new Uint8Array(4 * PAGE);
    map.map({ iova: 0, size: 4 * PAGE, read: true, write: true, memory });
    const src = mem(3, 9);
    map.write(100, src);
    const dst = new Uint8Array(src.length);
    map.read(100, dst);
    expect(dst).toEqual(src);
  });

  it('faults with EFAULT on a gap between mappings and copies nothing', () => {
    const map = new IovaMap();
    const a = new Uint8Array(PAGE);
    map.map({ iova: 0, size: PAGE, read: true, write: true, memory: a });
    map.map({ iova: 2 * PAGE, size: PAGE, read: true, write: true, memory: new Uint8Array(PAGE) });
    expect(() => map.write(PAGE - 4, new Uint8Array(8).fill(9))).toThrow(/EFAULT.*faults at IOVA 0x1000/);
    expect(a.every((x) => x === 0)).toBe(true);
  });

  it('faults on a write to a read-only mapping and on a read of a write-only one', () => {
    const map = new IovaMap();
    map.map({ iova: 0, size: PAGE, read: true, write: false, memory: new Uint8Array(PAGE) });
    map.map({ iova: PAGE, size: PAGE, read: false, write: true, memory: new Uint8Array(PAGE) });
    expect(codeOf(() => map.write(0, new Uint8Array(1)))).toBe('EFAULT');
    expect(codeOf(() => map.read(PAGE, new Uint8Array(1)))).toBe('EFAULT');
    expect(codeOf(() => map.read(PAGE - 1, new Uint8Array(2)))).toBe('EFAULT');
    expect(codeOf(() => map.read(0, new Uint8Array(1)))).toBeUndefined();
    expect(codeOf(() => map.write(PAGE, new Uint8Array(1)))).toBeUndefined();
  });

  it('refuses zero-length transfers with EINVAL, as vfio_dma_rw does', () => {
    const map = new IovaMap();
    map.map({ iova: 0, size: PAGE, read: true, write: true, memory: new Uint8Array(PAGE) });
    expect(codeOf(() => map.read(0, new Uint8Array(0)))).toBe('EINVAL');
    expect(codeOf(() => map.write(0, new Uint8Array(0)))).toBe('EINVAL');
  });

  it('faults for negative, fractional and huge IOVAs', () => {
    const map = new IovaMap();
    map.map({ iova: 0, size: PAGE, read: true, write: true, memory: new Uint8Array(PAGE) });
    for (const iova of [-1, 0.5, 2 ** 64, Number.NaN, Number.MAX_SAFE_INTEGER]) {
      expect(codeOf(() => map.read(iova, new Uint8Array(2)))).toBe('EFAULT');
    }
  });

  it('translate returns a live view inside one mapping with the right permission, else undefined', () => {
    const map = new IovaMap();
    const memory = new Uint8Array(2 * PAGE);
    map.map({ iova: 0x1000, size: PAGE, read: true, write: false, memory, memoryOffset: PAGE });
    map.map({ iova: 0x2000, size: PAGE, read: true, write: true, memory: new Uint8Array(PAGE) });
    const view = map.translate(0x1010, 16, false);
    expect(view?.length).toBe(16);
    memory[PAGE + 0x10] = 0xab;
    expect(view?.[0]).toBe(0xab);
    expect(map.translate(0x1010, 16, true)).toBeUndefined();
    expect(map.translate(0x1ff0, 32, false)).toBeUndefined();
    expect(map.translate(0x3000, 1, false)).toBeUndefined();
    expect(map.translate(0x1000, 0, false)).toBeUndefined();
  });
});

// ---- property tests against a per-page model ----------------------------------------------

const PAGES = 32;

type Op =
  | { kind: 'map'; page: number; pages: number; read: boolean; write: boolean }
  | { kind: 'unmap'; page: number; pages: number }
  | { kind: 'unmapAll' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('map' as const),
      page: fc.integer({ min: 0, max: PAGES - 1 }),
      pages: fc.integer({ min: 0, max: 8 }),
      read: fc.boolean(),
      write: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('unmap' as const),
      page: fc.integer({ min: 0, max: PAGES - 1 }),
      pages: fc.integer({ min: 0, max: 12 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'unmapAll' as const }) },
);

interface ModelMapping {
  start: number;
  pages: number;
  read: boolean;
  write: boolean;
  memory: Uint8Array;
}

class PageModel {
  readonly owner: (ModelMapping | undefined)[] = new Array(PAGES + 16).fill(undefined);

  map(m: ModelMapping): string | undefined {
    if (!m.read && !m.write) return 'EINVAL';
    if (m.pages === 0) return 'EINVAL';
    for (let p = m.start; p < m.start + m.pages; p++) if (this.owner[p]) return 'EEXIST';
    for (let p = m.start; p < m.start + m.pages; p++) this.owner[p] = m;
    return undefined;
  }

  unmap(start: number, pages: number): number | string {
    if (pages === 0) return 'EINVAL';
    const first = this.owner[start];
    if (first && first.start !== start) return 'EINVAL';
    const last = this.owner[start + pages - 1];
    if (last && last.start + last.pages !== start + pages) return 'EINVAL';
    let bytes = 0;
    for (let p = start; p < start + pages; p++) {
      const m = this.owner[p];
      if (m) {
        bytes += PAGE;
        this.owner[p] = undefined;
      }
    }
    return bytes;
  }

  mappings(): ModelMapping[] {
    return [...new Set(this.owner.filter((m): m is ModelMapping => m !== undefined))];
  }

  /** The byte the model says is at `addr`, or undefined when the access must fault. */
  locate(addr: number, write: boolean): { memory: Uint8Array; offset: number } | undefined {
    const m = this.owner[Math.floor(addr / PAGE)];
    if (!m || !(write ? m.write : m.read)) return undefined;
    return { memory: m.memory, offset: addr - m.start * PAGE };
  }
}

function apply(map: IovaMap, model: PageModel, op: Op): void {
  if (op.kind === 'map') {
    const memory = new Uint8Array(Math.max(op.pages, 1) * PAGE);
    const m: ModelMapping = { start: op.page, pages: op.pages, read: op.read, write: op.write, memory };
    const expected = model.map(m);
    const actual = codeOf(() =>
      map.map({ iova: op.page * PAGE, size: op.pages * PAGE, read: op.read, write: op.write, memory }),
    );
    expect(actual).toBe(expected);
  } else if (op.kind === 'unmap') {
    const expected = model.unmap(op.page, op.pages);
    let actual: number | string;
    try {
      actual = map.unmap(op.page * PAGE, op.pages * PAGE);
    } catch (err) {
      if (!(err instanceof VfioError)) throw err;
      actual = err.code;
    }
    expect(actual).toBe(expected);
  } else {
    const expected = model.unmap(0, PAGES + 16);
    expect(map.unmapAll()).toBe(expected);
  }
}

describe('IovaMap properties', () => {
  it('random map/unmap sequences never disagree with a per-page model', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
        const map = new IovaMap();
        const model = new PageModel();
        for (const op of ops) {
          apply(map, model, op);
          expect(map.mappings().map((m) => [m.iova, m.size, m.read, m.write])).toEqual(
            model.mappings().map((m) => [m.start * PAGE, m.pages * PAGE, m.read, m.write]),
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  it('reads and writes succeed exactly where the model allows and never copy a byte otherwise', () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 20 }),
        fc.array(
          fc.record({
            write: fc.boolean(),
            addr: fc.integer({ min: 0, max: (PAGES + 8) * PAGE }),
            length: fc.integer({ min: 1, max: 3 * PAGE }),
            fill: fc.integer({ min: 0, max: 255 }),
          }),
          { minLength: 1, maxLength: 10 },
        ),
        (ops, accesses) => {
          const map = new IovaMap();
          const model = new PageModel();
          for (const op of ops) apply(map, model, op);
          for (const a of accesses) {
            let allowed = true;
            for (
              let page = Math.floor(a.addr / PAGE);
              page <= Math.floor((a.addr + a.length - 1) / PAGE);
              page++
            ) {
              if (!model.locate(page * PAGE, a.write)) allowed = false;
            }
            const before = model.mappings().map((m) => m.memory.slice());
            const buffer = new Uint8Array(a.length).fill(a.fill);
            const code = codeOf(() => (a.write ? map.write(a.addr, buffer) : map.read(a.addr, buffer)));
            if (!allowed) {
              expect(code).toBe('EFAULT');
              expect(buffer.every((x) => x === a.fill)).toBe(true);
              for (const [i, m] of model.mappings().entries())
                expect(Buffer.compare(m.memory, before[i])).toBe(0);
              continue;
            }
            expect(code).toBeUndefined();
            const seen = new Uint8Array(a.length);
            for (let i = 0; i < a.length; i++) {
              const where = model.locate(a.addr + i, a.write)!;
              seen[i] = where.memory[where.offset];
            }
            expect(Buffer.compare(seen, buffer)).toBe(0);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('never throws anything but VfioError for arbitrary arguments', () => {
    const anyNumber = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(0, PAGE, 2 ** 53, -0, Number.NaN));
    fc.assert(
      fc.property(
        anyNumber,
        anyNumber,
        fc.boolean(),
        fc.boolean(),
        anyNumber,
        (iova, size, read, write, off) => {
          const map = new IovaMap();
          const memory = new Uint8Array(2 * PAGE);
          for (const fn of [
            () => map.map({ iova, size, read, write, memory, memoryOffset: off }),
            () => map.unmap(iova, size),
            () => map.read(iova, new Uint8Array(3)),
            () => map.write(size, new Uint8Array(3)),
            () => map.translate(iova, size, write),
          ]) {
            try {
              fn();
            } catch (err) {
              expect(err).toBeInstanceOf(VfioError);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
