/**
 * Display power and clocks (handlers.c): the power well request/state pairs, the fuse
 * distribution status i915 waits for after enabling a power gate, the DBuf power request/state,
 * the SKL DPLLs' enable/lock and DPLL_STATUS built from them, as GVT emulates them.
 */
import type { MmioTable } from './table.js';
import type { Vreg } from './vreg.js';

/** HSW_PWR_WELL_CTL1..4: BIOS, driver, KVMR and debug request registers (intel_display_power_well.c). */
export const HSW_PWR_WELL_CTL = [0x45400, 0x45404, 0x45408, 0x4540c] as const;
/** SKL_FUSE_STATUS: download done (31) and the power gates' distribution status (27 - pg). */
export const SKL_FUSE_STATUS = 0x42000;
export const SKL_FUSE_DOWNLOAD_STATUS = 1 << 31;
export const SKL_FUSE_PG_DIST_STATUS = (pg: number) => 1 << (27 - pg);
/** DBUF_CTL (gen9): power request 31, power state 30. */
export const DBUF_CTL = 0x45008;
export const DBUF_POWER_REQUEST = 1 << 31;
export const DBUF_POWER_STATE = 1 << 30;
/** SKL DPLL0..3 enable registers: LCPLL1_CTL, LCPLL2_CTL, WRPLL_CTL1, WRPLL_CTL2. */
export const SKL_DPLL_ENABLE = [0x46010, 0x46014, 0x46040, 0x46060] as const;
export const LCPLL_PLL_ENABLE = 1 << 31;
export const LCPLL_PLL_LOCK = 1 << 30;
/** DPLL_STATUS: lock bit 8n of DPLL n. */
export const DPLL_STATUS = 0x6c060;
export const DPLL_CTRL1 = 0x6c058;
export const DPLL_CTRL2 = 0x6c05c;
export const CDCLK_CTL = 0x46000;
/** SKL requested power wells' bits on gen9 (skl_power_well_ctl_write keeps these, state = req >> 1). */
const SKL_PW_REQUEST_BITS = (1 << 31) | (1 << 29) | (1 << 9) | (1 << 7) | (1 << 5) | (1 << 3) | (1 << 1);

export function definePowerRegisters(t: MmioTable<Vreg>): void {
  for (const [k, reg] of HSW_PWR_WELL_CTL.entries()) {
    t.define(reg, {
      name: `HSW_PWR_WELL_CTL${k + 1}`,
      // The state bit follows the request bit one below it, at once.
      write: (ctx, offset, value) => {
        const req = value & SKL_PW_REQUEST_BITS;
        ctx.set(offset, (req | (req >>> 1)) >>> 0);
      },
    });
  }
  t.define(SKL_FUSE_STATUS, { name: 'SKL_FUSE_STATUS', roMask: 0xffffffff });
  t.define(DBUF_CTL, {
    name: 'DBUF_CTL',
    write: (ctx, offset, value) =>
      ctx.set(offset, value & DBUF_POWER_REQUEST ? value | DBUF_POWER_STATE : value & ~DBUF_POWER_STATE),
  });
  for (const [k, reg] of SKL_DPLL_ENABLE.entries()) {
    t.define(reg, {
      name: `SKL_DPLL${k}_ENABLE`,
      // skl_lcpll_write: only enable and lock exist; lock follows enable.
      write: (ctx, offset, value) => {
        const v = value & LCPLL_PLL_ENABLE;
        ctx.set(offset, v ? v | LCPLL_PLL_LOCK : 0);
      },
    });
  }
  t.define(DPLL_STATUS, {
    name: 'DPLL_STATUS',
    roMask: 0xffffffff,
    // dpll_status_read: one lock bit per enabled DPLL.
    read: (ctx) => {
      let v = 0;
      SKL_DPLL_ENABLE.forEach((reg, k) => {
        if (ctx.get(reg) & LCPLL_PLL_ENABLE) v |= 1 << (8 * k);
      });
      return v >>> 0;
    },
  });
  t.define(DPLL_CTRL1, { name: 'DPLL_CTRL1' });
  t.define(DPLL_CTRL2, { name: 'DPLL_CTRL2' });
  t.define(CDCLK_CTL, { name: 'CDCLK_CTL' });
}
