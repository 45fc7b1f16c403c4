/**
 * The scanner against its plain model (scan-model.ts): on random command streams — valid and
 * hostile (garbage dwords, bad lengths, forbidden registers, addresses outside the vGPU, commands
 * cut by the end of mapped memory or by the dword limit, commands straddling pages, batch jumps
 * anywhere, rings that wrap) — on every engine, with and without a PPGTT, one scanner reused
 * for several submissions.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GpuAddressSpace } from '../src/address-space.js';
import {
  DECODE_KIND_BITS,
  DECODE_MASK_SHIFT,
  decodeCommand,
  decodeTableOf,
  learnDecode,
  REFUSED,
  UNKNOWN,
} from '../src/cmd-table.js';
import {
  CommandScanner,
  type EngineClass,
  GTT_PAGE_SIZE,
  MI_BATCH_BUFFER_END,
  MI_BATCH_BUFFER_START_GEN8,
  MI_BATCH_PPGTT_GEN8,
  MI_BATCH_SECOND_LEVEL,
  MI_NOOP,
  MI_STORE_DATA_IMM,
  MI_USE_GGTT,
  MI_USER_INTERRUPT,
  miInstr,
  RCS_GPR_BASE,
  type ScanLimits,
  type ScanTarget,
  XY_COLOR_BLT_CMD,
} from '../src/index.js';
import { ScanModel } from './scan-model.js';

const PAGES = 6;
const GM_BASE = 0x20_0000;
const PPGTT_BASE = 0x1_0000_0000;
const PPGTT_PAGES = 2;
const ALLOWED = new Set([RCS_GPR_BASE, RCS_GPR_BASE + 4, RCS_GPR_BASE + 8, 0x2358]);

/** `pages` pages at `base` over one Uint32Array; pages in `holes` are not mapped. */
function space(base: number, pages: number, holes: ReadonlySet<number>) {
  const words = new Uint32Array((pages * GTT_PAGE_SIZE) / 4);
  const inside = (addr: number, length: number) =>
    Number.isSafeInteger(addr) &&
    addr >= base &&
    length >= 0 &&
    addr + length <= base + pages * GTT_PAGE_SIZE;
  const gm: GpuAddressSpace = {
    inside,
    pageWords: (addr) => {
      if (!inside(addr, 1)) return undefined;
      const page = Math.floor((addr - base) / GTT_PAGE_SIZE);
      return holes.has(page) ? undefined : { words, base: page * (GTT_PAGE_SIZE / 4) };
    },
    read: () => false,
    write: () => false,
    fill: () => false,
  };
  return { gm, words };
}

const u32 = fc.nat({ max: 0xffffffff });
/** Where a command's address may point: inside GM, inside the PPGTT, just outside, anywhere. */
const address = fc.oneof(
  { weight: 4, arbitrary: fc.nat({ max: PAGES * GTT_PAGE_SIZE - 64 }).map((o) => [GM_BASE + o, 0]) },
  fc.nat({ max: PAGES * GTT_PAGE_SIZE - 64 }).map((o) => [GM_BASE + o, 0]),
  fc.nat({ max: PPGTT_PAGES * GTT_PAGE_SIZE - 64 }).map((o) => [o, PPGTT_BASE / 2 ** 32]),
  fc.constantFrom([GM_BASE - 4, 0], [GM_BASE + PAGES * GTT_PAGE_SIZE - 4, 0], [0, 0], [GM_BASE, 0x1_0000]),
  fc.tuple(u32, fc.nat({ max: 0x1_ffff })),
);
const register = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...ALLOWED) },
  fc.constantFrom(...ALLOWED).map((r) => (r | 0x80_0003 | 0xff00_0000) >>> 0),
  fc.nat({ max: 0x7f_ffff }),
);
/** A length field: mostly the usual one, sometimes anything the field holds. */
const lengthField = (usual: number, bits: number) =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(usual) }, fc.nat({ max: (1 << bits) - 1 }));
const operands = (field: number, head: fc.Arbitrary<number[]>) =>
  fc.tuple(head, fc.array(u32, { maxLength: 8 })).map(([h, more]) => [...h, ...more].slice(0, field + 1));

const command: fc.Arbitrary<number[]> = fc.oneof(
  fc.constantFrom<number[]>(
    [MI_NOOP],
    [MI_USER_INTERRUPT],
    [MI_BATCH_BUFFER_END],
    [miInstr(0x05, 0)],
    [0x6904_0000],
  ),
  // MI_STORE_DATA_IMM
  fc
    .tuple(lengthField(2, 4), fc.boolean(), address, u32)
    .chain(([f, g, [lo, hi], v]) =>
      operands(f, fc.constant([lo, hi, v])).map((o) => [MI_STORE_DATA_IMM | (g ? MI_USE_GGTT : 0) | f, ...o]),
    ),
  // MI_LOAD_REGISTER_IMM
  fc
    .tuple(lengthField(3, 6), fc.array(fc.tuple(register, u32), { minLength: 4, maxLength: 4 }))
    .map(([f, pairs]) => [miInstr(0x22, f), ...pairs.flat()].slice(0, f + 2)),
  // MI_STORE_REGISTER_MEM, MI_LOAD_REGISTER_MEM
  fc
    .tuple(fc.constantFrom(0x24, 0x29), lengthField(2, 3), fc.boolean(), register, address)
    .map(([op, f, g, r, [lo, hi]]) => [miInstr(op, f | (g ? MI_USE_GGTT : 0)), r, lo, hi].slice(0, f + 2)),
  // MI_LOAD_REGISTER_REG
  fc
    .tuple(lengthField(1, 2), register, register)
    .map(([f, a, b]) => [miInstr(0x2a, f), a, b, 0].slice(0, f + 2)),
  // PIPE_CONTROL
  fc
    .tuple(lengthField(4, 3), fc.nat({ max: 3 }), fc.constantFrom(0, 1 << 24, 1 << 21), address)
    .chain(([f, op, bits, [lo, hi]]) =>
      operands(f, fc.constant([(op << 14) | bits, lo, hi, 0, 0])).map((o) => [0x7a00_0000 | f, ...o]),
    ),
  // MI_FLUSH_DW
  fc
    .tuple(lengthField(2, 4), fc.nat({ max: 3 }), fc.boolean(), fc.boolean(), address)
    .chain(([f, op, index, g, [lo, hi]]) =>
      operands(f, fc.constant([(lo & ~7) | (g ? 4 : 0), hi, 0, 0])).map((o) => [
        miInstr(0x26, (op << 14) | (index ? 1 << 21 : 0) | f),
        ...o,
      ]),
    ),
  // MI_SEMAPHORE_WAIT
  fc
    .tuple(lengthField(2, 3), fc.boolean(), address)
    .map(([f, g, [lo, hi]]) => [miInstr(0x1c, f | (g ? MI_USE_GGTT : 0)), 0, lo, hi].slice(0, f + 2)),
  // XY_COLOR_BLT
  fc
    .tuple(
      lengthField(5, 3),
      fc.nat({ max: 3 }),
      fc.nat({ max: 0x2000 }),
      fc.array(fc.nat({ max: 80 }), { minLength: 4, maxLength: 4 }),
      address,
    )
    .map(([f, bpp, pitch, [x1, y1, x2, y2], [lo, hi]]) =>
      [XY_COLOR_BLT_CMD | f, (bpp << 24) | pitch, (y1 << 16) | x1, (y2 << 16) | x2, lo, hi, 0xff, 0, 0].slice(
        0,
        f + 2,
      ),
    ),
  // 3D state and media of any length
  fc
    .tuple(fc.constantFrom(0x7800, 0x7917, 0x7b00, 0x7000, 0x6100, 0x7100), fc.nat({ max: 0x1ff }))
    .map(([id, f]) => [((id << 16) | f) >>> 0, ...new Array(Math.min(f + 1, 40)).fill(0x11)]),
  // MI_BATCH_BUFFER_START: to the second stream, to the first, anywhere; any level, either GTT
  fc
    .tuple(
      lengthField(1, 2),
      fc.boolean(),
      fc.boolean(),
      fc.oneof(fc.constant<'first' | 'second'>('second'), fc.constant<'first'>('first'), address),
    )
    .map(([f, ppgtt, second, to]) =>
      [
        MI_BATCH_BUFFER_START_GEN8 -
          1 +
          f +
          (ppgtt ? MI_BATCH_PPGTT_GEN8 : 0) +
          (second ? MI_BATCH_SECOND_LEVEL : 0),
        ...(typeof to === 'string' ? [to === 'first' ? -1 : -2, 0] : to),
        0,
      ].slice(0, f + 2),
    ),
  // garbage
  fc.array(u32, { minLength: 1, maxLength: 6 }),
);

interface Job {
  readonly kind: 'ring' | 'batch';
  readonly engine: EngineClass;
  readonly ppgtt: boolean;
  readonly first: readonly number[];
  readonly second: readonly number[];
  /** Dword index of the first stream in GM (a ring's head: this modulo the ring's dwords). */
  readonly at: number;
  readonly at2: number;
  readonly ringPages: number;
  /** Batches: end with MI_BATCH_BUFFER_END. */
  readonly end: boolean;
  /** A ring's tail: just past its stream (head 8-aligned, stream padded to 8 bytes), or any. */
  readonly tail: 'exact' | number;
}

const job: fc.Arbitrary<Job> = fc.record({
  kind: fc.constantFrom<'ring' | 'batch'>('ring', 'batch'),
  engine: fc.oneof(
    { weight: 3, arbitrary: fc.constant<EngineClass>('rcs') },
    fc.constantFrom<EngineClass>('bcs', 'vcs', 'vecs'),
  ),
  ppgtt: fc.boolean(),
  first: fc.array(command, { maxLength: 30 }).map((cs) => cs.flat()),
  second: fc.array(command, { maxLength: 12 }).map((cs) => cs.flat()),
  at: fc.nat({ max: (3 * GTT_PAGE_SIZE) / 4 - 1 }),
  at2: fc.nat({ max: (PAGES * GTT_PAGE_SIZE) / 4 - 1 }),
  ringPages: fc.integer({ min: 1, max: 3 }),
  end: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, fc.constant(false)),
  tail: fc.oneof(
    { weight: 4, arbitrary: fc.constant<'exact'>('exact') },
    fc.nat({ max: 3 * GTT_PAGE_SIZE + 8 }),
  ),
});

/** GM (some pages not mapped) and a PPGTT, reused by every job of a run. */
function memory(holes: readonly number[]) {
  return { gm: space(GM_BASE, PAGES, new Set(holes)), pp: space(PPGTT_BASE, PPGTT_PAGES, new Set()) };
}

/**
 * Lay a job out in `mem` (cleared first): the batch-start placeholders -1 and -2 become the
 * addresses of the first stream and of the second (in GM, or in the PPGTT when the command
 * says so). A ring's stream wraps at the ring's end.
 */
function layout(mem: ReturnType<typeof memory>, j: Job) {
  const resolve = (stream: readonly number[]) => {
    const out = [...stream];
    for (let i = 1; i < out.length; i++) {
      const ppgtt = (stream[i - 1] & MI_BATCH_PPGTT_GEN8) !== 0;
      if (stream[i] === -1) out[i] = GM_BASE + 4 * j.at;
      if (stream[i] === -2) {
        out[i] = ppgtt ? PPGTT_BASE % 2 ** 32 : GM_BASE + 4 * j.at2;
        if (ppgtt && i + 1 < out.length) out[i + 1] = Math.floor(PPGTT_BASE / 2 ** 32);
      }
    }
    return out.map((w) => w >>> 0);
  };
  mem.gm.words.fill(0);
  mem.pp.words.fill(0);
  const second = resolve(j.end ? [...j.second, MI_BATCH_BUFFER_END] : j.second);
  mem.gm.words.set(second.slice(0, mem.gm.words.length - j.at2), j.at2);
  mem.pp.words.set(second.slice(0, mem.pp.words.length));
  const ringWords = (j.ringPages * GTT_PAGE_SIZE) / 4;
  const size = ringWords * 4;
  if (j.kind === 'batch') {
    const first = resolve(j.end ? [...j.first, MI_BATCH_BUFFER_END] : j.first);
    mem.gm.words.set(first.slice(0, mem.gm.words.length - j.at), j.at);
    return { target: targetOf(mem, j), head: 0, tail: 0, size };
  }
  const exact = j.tail === 'exact';
  const head = exact ? (j.at & ~1) % ringWords : j.at % ringWords;
  const first = resolve(exact && j.first.length % 2 ? [...j.first, MI_NOOP] : j.first).slice(
    0,
    ringWords - 2,
  );
  first.forEach((w, i) => {
    mem.gm.words[(head + i) % ringWords] = w;
  });
  const tail = exact ? (4 * (head + first.length)) % size : (j.tail as number);
  return { target: targetOf(mem, j), head: 4 * head, tail, size };
}

function targetOf(mem: ReturnType<typeof memory>, j: Job): ScanTarget {
  return { engine: j.engine, ggtt: mem.gm.gm, ppgtt: j.ppgtt ? mem.pp.gm : undefined };
}

describe('command scanner against its model', () => {
  it('gives the model’s verdict, reason, address, counts and trace on any command stream (property)', () => {
    fc.assert(
      fc.property(
        fc.array(job, { minLength: 1, maxLength: 3 }),
        fc.subarray([1, 2, 3, 4, 5], { maxLength: 2 }),
        fc.integer({ min: 1, max: 1500 }),
        fc.oneof({ weight: 6, arbitrary: fc.constant(2) }, fc.constantFrom(0, 1)),
        (jobs, holes, maxDwords, maxDepth) => {
          const limits: ScanLimits = { maxDwords, maxDepth };
          const allowed = (o: number) => ALLOWED.has(o);
          const mem = memory(holes);
          // One scanner for every job: nothing of one submission may leak into the next.
          const scanner = new CommandScanner(mem.gm.gm, allowed, limits);
          for (const j of jobs) {
            const { target, head, tail, size } = layout(mem, j);
            const model = new ScanModel(mem.gm.gm, allowed, limits);
            const want =
              j.kind === 'ring'
                ? model.scanRing(GM_BASE, size, head, tail, target)
                : model.scanBatch(GM_BASE + 4 * j.at, target);
            const got =
              j.kind === 'ring'
                ? scanner.scanRing(GM_BASE, size, head, tail, target)
                : scanner.scanBatch(GM_BASE + 4 * j.at, target);
            expect(got).toEqual(want.result);
            expect(scanner.traceLength).toBe(want.trace.length);
            expect([...scanner.trace.subarray(0, scanner.traceLength)]).toEqual(want.trace);
          }
        },
      ),
      { numRuns: 600 },
    );
  });

  it('decodes through its table as decodeCommand does, for any dword 0 on any engine (property)', () => {
    const engine = fc.constantFrom<EngineClass>('rcs', 'bcs', 'vcs', 'vecs');
    fc.assert(
      fc.property(u32, engine, (dw0, e) => {
        const seen = decodeTableOf(e)[dw0 >>> 16];
        const entry = seen === UNKNOWN ? learnDecode(e, dw0) : seen;
        expect(decodeTableOf(e)[dw0 >>> 16]).toBe(entry);
        const want = decodeCommand(dw0, e);
        if (typeof want === 'string') {
          expect(entry).toBe(REFUSED);
          return;
        }
        const mask = entry >>> DECODE_MASK_SHIFT;
        expect({ kind: entry & DECODE_KIND_BITS, length: mask === 0 ? 1 : (dw0 & mask) + 2 }).toEqual({
          kind: want.kind,
          length: want.length,
        });
      }),
      { numRuns: 3000 },
    );
  });
});
