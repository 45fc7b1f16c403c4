/**
 * The scanner copies a command out of the page it lies in at once and fetches dword by dword
 * only where a command crosses a page or the scan limit: the result must not depend on which.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GpuAddressSpace } from '../src/address-space.js';
import {
  CommandScanner,
  GTT_PAGE_SIZE,
  MI_BATCH_BUFFER_END,
  MI_NOOP,
  MI_STORE_DATA_IMM,
  MI_USE_GGTT,
  MI_USER_INTERRUPT,
  miLoadRegisterImm,
  RCS_GPR_BASE,
  type ScanResult,
  XY_COLOR_BLT_CMD,
} from '../src/index.js';

const PAGES = 4;
const BASE = 0x10_0000;

/** PAGES pages of GM at BASE, every page present, one Uint32Array behind them. */
function space(): { gm: GpuAddressSpace; words: Uint32Array } {
  const words = new Uint32Array((PAGES * GTT_PAGE_SIZE) / 4);
  const inside = (addr: number, length: number) =>
    addr >= BASE && addr + length <= BASE + PAGES * GTT_PAGE_SIZE;
  const gm: GpuAddressSpace = {
    inside,
    pageWords: (addr) =>
      inside(addr, 1)
        ? { words, base: Math.floor((addr - BASE) / GTT_PAGE_SIZE) * (GTT_PAGE_SIZE / 4) }
        : undefined,
    read: () => false,
    write: () => false,
    fill: () => false,
  };
  return { gm, words };
}

/** What a scan found, without the addresses (they differ with the placement). */
function outcome(s: CommandScanner, r: ScanResult) {
  return r.ok
    ? { ok: true, dwords: r.dwords, commands: r.commands, trace: [...s.trace.subarray(0, r.traceLength)] }
    : { ok: false, problem: r.problem.replace(/0x[0-9a-f]+/g, 'ADDR') };
}

describe('command scanner fetch', () => {
  it('scans the same commands alike wherever the page boundaries fall and whatever the limit (property)', () => {
    const sdi = [MI_STORE_DATA_IMM | MI_USE_GGTT | 2, BASE + 64, 0, 7];
    const blt = [XY_COLOR_BLT_CMD | 5, (3 << 24) | 256, 0, (1 << 16) | 1, BASE + 256, 0, 0xff];
    const lri = [miLoadRegisterImm(1), RCS_GPR_BASE, 1];
    const command = fc.oneof(
      fc.constantFrom(sdi, blt, lri, [MI_NOOP], [MI_USER_INTERRUPT]),
      fc.array(fc.nat({ max: 0xffffffff }), { minLength: 1, maxLength: 4 }),
    );
    fc.assert(
      fc.property(
        fc.array(command, { maxLength: 40 }),
        fc.nat({ max: GTT_PAGE_SIZE / 4 - 1 }),
        fc.nat({ max: GTT_PAGE_SIZE / 4 - 1 }),
        fc.integer({ min: 1, max: 400 }),
        (commands, at1, at2, maxDwords) => {
          const stream = [...commands.flat(), MI_BATCH_BUFFER_END];
          const results = [at1, at2].map((at) => {
            const { gm, words } = space();
            words.set(stream.slice(0, words.length - at), at);
            const s = new CommandScanner(gm, (o) => o === RCS_GPR_BASE, { maxDwords, maxDepth: 2 });
            return outcome(s, s.scanBatch(BASE + 4 * at));
          });
          expect(results[1]).toEqual(results[0]);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('copies a command that crosses into the next page whole', () => {
    const { gm, words } = space();
    const at = GTT_PAGE_SIZE / 4 - 2; // the store's first two dwords end page 0
    words.set([MI_STORE_DATA_IMM | MI_USE_GGTT | 2, BASE + 64, 0, 0x1234, MI_BATCH_BUFFER_END], at);
    const s = new CommandScanner(gm, () => false);
    const r = s.scanBatch(BASE + 4 * at);
    expect(r.ok).toBe(true);
    expect([...s.trace.subarray(2, 6)]).toEqual([MI_STORE_DATA_IMM | MI_USE_GGTT | 2, BASE + 64, 0, 0x1234]);
  });

  it('refuses a command cut by the scan limit, however much of it lies in the page', () => {
    const { gm, words } = space();
    words.set([MI_NOOP, MI_STORE_DATA_IMM | MI_USE_GGTT | 2, BASE + 64, 0, 7, MI_BATCH_BUFFER_END]);
    const s = new CommandScanner(gm, () => false, { maxDwords: 4, maxDepth: 2 });
    const r = s.scanBatch(BASE);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problem).toContain('more than 4 dwords');
    const enough = new CommandScanner(gm, () => false, { maxDwords: 6, maxDepth: 2 });
    expect(enough.scanBatch(BASE).ok).toBe(true);
  });
});
