/**
 * Display engine registers (handlers.c display section): the universal planes and cursors of
 * the three pipes, which the plane decoder (display.ts) reads back.
 */
import type { MmioTable } from './table.js';
import type { Vreg } from './vreg.js';

/** skl_universal_plane_regs.h: plane n (1-based) of pipe p at 0x70180 + 0x1000 p + 0x100 (n - 1). */
export const PLANE_CTL = (pipe: number, plane: number) => 0x70180 + 0x1000 * pipe + 0x100 * (plane - 1);
/** Offsets inside a plane's register block. */
export const PLANE_REG = Object.freeze({
  CTL: 0x00,
  STRIDE: 0x08,
  POS: 0x0c,
  SIZE: 0x10,
  KEYVAL: 0x14,
  KEYMSK: 0x18,
  SURF: 0x1c,
  KEYMAX: 0x20,
  OFFSET: 0x24,
  SURFLIVE: 0x2c,
  AUX_DIST: 0x40,
  AUX_OFFSET: 0x44,
  COLOR_CTL: 0x4c,
} as const);
/** Universal planes per pipe on Kaby Lake (3 planes; the cursor is separate). */
export const PLANES_PER_PIPE = 3;
export const PIPES = 3;
/** i915_reg.h: CURCNTR(pipe) = 0x70080 + 0x1000 pipe; CURBASE +4, CURPOS +8. */
export const CURCNTR = (pipe: number) => 0x70080 + 0x1000 * pipe;

export function defineDisplayRegisters(t: MmioTable<Vreg>): void {
  for (let p = 0; p < PIPES; p++) {
    const pipe = 'ABC'[p];
    for (let n = 1; n <= PLANES_PER_PIPE; n++) {
      const base = PLANE_CTL(p, n);
      for (const [reg, off] of Object.entries(PLANE_REG)) {
        t.define(base + off, { name: `PLANE_${reg}_${n}_${pipe}` });
      }
    }
    t.define(CURCNTR(p), { name: `CURCNTR_${pipe}` });
    t.define(CURCNTR(p) + 4, { name: `CURBASE_${pipe}` });
    t.define(CURCNTR(p) + 8, { name: `CURPOS_${pipe}` });
  }
}
