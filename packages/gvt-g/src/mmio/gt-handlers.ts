/**
 * GT registers with behaviour (handlers.c): forcewake requests acknowledged at once, GDRST
 * resets acknowledged by clearing the request, the GuC kept in reset, PCODE mailbox commands
 * answered as GVT answers them, TLB invalidations completed, and the GT status registers i915
 * polls reading idle.
 */
import {
  ENGINES,
  FORCEWAKE_ACK_GT_GEN9,
  FORCEWAKE_ACK_MEDIA_GEN9,
  FORCEWAKE_ACK_RENDER_GEN9,
  FORCEWAKE_GT_GEN9,
  FORCEWAKE_MEDIA_GEN9,
  FORCEWAKE_RENDER_GEN9,
  FPGA_DBG,
  FPGA_DBG_RM_NOCLAIM,
  GEN6_GDRST,
  GEN6_GRDOM_FULL,
  GEN6_GT_CORE_STATUS,
  GEN6_GT_THREAD_STATUS_REG,
  GEN6_PCODE_DATA,
  GEN6_PCODE_DATA1,
  GEN6_PCODE_ERROR_MASK,
  GEN6_PCODE_MAILBOX,
  GEN6_PCODE_READ_RC6VIDS,
  GEN6_PCODE_READY,
  GEN8_GTCR,
  GEN9_GRDOM_GUC,
  GEN9_PCODE_READ_MEM_LATENCY,
  GEN9_PCODE_SAGV_CONTROL,
  GEN9_SAGV_DISABLE,
  GEN9_SAGV_ENABLE,
  GEN9_SAGV_IS_DISABLED,
  GS_MIA_IN_RESET,
  GUC_STATUS,
  SKL_CDCLK_READY_FOR_CHANGE,
  SKL_PCODE_CDCLK_CONTROL,
  TLB_CONTROL,
} from './regs.js';
import type { MmioTable } from './table.js';
import type { Vreg } from './vreg.js';

/** CALC_MODE_MASK_REG: the request keeps the mask half, the value half merges. */
function forcewakeWrite(ack: number) {
  return (ctx: Vreg, offset: number, value: number, old: number) => {
    const mask = value >>> 16;
    const low = ((old & 0xffff & ~mask) | (value & mask)) & 0xffff;
    ctx.set(offset, ((value & 0xffff0000) | low) >>> 0);
    // mul_force_wake_write: the ack follows the request at once.
    ctx.set(ack, low);
  };
}

/** All engines, as intel_gvt_reset_vgpu_locked's ALL_ENGINES. */
const ALL_ENGINES = ENGINES.reduce((m, e) => m | (1 << e.id), 0);

function gdrstWrite(ctx: Vreg, offset: number, value: number): void {
  let mask = 0;
  if (value & GEN6_GRDOM_FULL) mask = ALL_ENGINES;
  else for (const e of ENGINES) if (value & e.resetDomain) mask |= 1 << e.id;
  if (value & GEN9_GRDOM_GUC) ctx.set(GUC_STATUS, (ctx.get(GUC_STATUS) | GS_MIA_IN_RESET) >>> 0);
  if (mask !== 0) ctx.hooks.resetEngines(mask);
  // gdrst_mmio_write: the guest waits for the request bits to clear.
  ctx.set(offset, 0);
}

/**
 * mailbox_write: memory latency, CDCLK change and RC6 VIDs answered as GVT answers them, and
 * SAGV control as the PCODE does (a disable request reads back "is disabled", which i915 polls
 * for); always ready, no error.
 */
function pcodeMailboxWrite(ctx: Vreg, offset: number, value: number): void {
  const cmd = value & 0xff;
  const data0 = ctx.get(GEN6_PCODE_DATA);
  switch (cmd) {
    case GEN9_PCODE_READ_MEM_LATENCY:
      // Latencies GVT reports for Skylake-class parts: levels 0-3, then 4-7.
      ctx.set(GEN6_PCODE_DATA, data0 === 0 ? 0x1e1a1100 : 0x61514b3d);
      break;
    case SKL_PCODE_CDCLK_CONTROL:
      ctx.set(GEN6_PCODE_DATA, SKL_CDCLK_READY_FOR_CHANGE);
      break;
    case GEN6_PCODE_READ_RC6VIDS:
      ctx.set(GEN6_PCODE_DATA, (data0 | 1) >>> 0);
      break;
    case GEN9_PCODE_SAGV_CONTROL:
      if (data0 === GEN9_SAGV_DISABLE) ctx.set(GEN6_PCODE_DATA, GEN9_SAGV_IS_DISABLED);
      else if (data0 === GEN9_SAGV_ENABLE) ctx.set(GEN6_PCODE_DATA, GEN9_SAGV_ENABLE);
      break;
  }
  ctx.set(offset, (value & ~(GEN6_PCODE_READY | GEN6_PCODE_ERROR_MASK)) >>> 0);
}

export function defineGtRegisters(t: MmioTable<Vreg>): void {
  t.define(FORCEWAKE_RENDER_GEN9, {
    name: 'FORCEWAKE_RENDER_GEN9',
    write: forcewakeWrite(FORCEWAKE_ACK_RENDER_GEN9),
  });
  t.define(FORCEWAKE_MEDIA_GEN9, {
    name: 'FORCEWAKE_MEDIA_GEN9',
    write: forcewakeWrite(FORCEWAKE_ACK_MEDIA_GEN9),
  });
  t.define(FORCEWAKE_GT_GEN9, { name: 'FORCEWAKE_GT_GEN9', write: forcewakeWrite(FORCEWAKE_ACK_GT_GEN9) });
  t.define(FORCEWAKE_ACK_RENDER_GEN9, { name: 'FORCEWAKE_ACK_RENDER_GEN9', roMask: 0xffffffff });
  t.define(FORCEWAKE_ACK_MEDIA_GEN9, { name: 'FORCEWAKE_ACK_MEDIA_GEN9', roMask: 0xffffffff });
  t.define(FORCEWAKE_ACK_GT_GEN9, { name: 'FORCEWAKE_ACK_GT_GEN9', roMask: 0xffffffff });
  t.define(GEN6_GDRST, { name: 'GEN6_GDRST', write: gdrstWrite });
  t.define(GUC_STATUS, {
    name: 'GUC_STATUS',
    roMask: 0xffffffff,
    // guc_status_read: MIA_IN_RESET is seen once, then clears.
    read: (ctx, offset) => {
      const v = ctx.get(offset);
      ctx.set(offset, v & ~GS_MIA_IN_RESET);
      return v;
    },
  });
  t.define(GEN6_PCODE_MAILBOX, { name: 'GEN6_PCODE_MAILBOX', write: pcodeMailboxWrite });
  t.define(GEN6_PCODE_DATA, { name: 'GEN6_PCODE_DATA' });
  t.define(GEN6_PCODE_DATA1, { name: 'GEN6_PCODE_DATA1' });
  t.define(GEN6_GT_THREAD_STATUS_REG, { name: 'GEN6_GT_THREAD_STATUS_REG', roMask: 0xffffffff });
  t.define(GEN6_GT_CORE_STATUS, { name: 'GEN6_GT_CORE_STATUS', roMask: 0xffffffff });
  t.define(FPGA_DBG, {
    name: 'FPGA_DBG',
    // fpga_dbg_mmio_write: RM_NOCLAIM is write-1-to-clear and never set on a vGPU.
    write: (ctx, offset, value) => ctx.set(offset, value & ~FPGA_DBG_RM_NOCLAIM),
  });
  for (const [k, reg] of TLB_CONTROL.entries()) {
    t.define(reg, {
      name: `TLB_CONTROL${k}`,
      // gvt_reg_tlb_control_handler: the invalidation completes at once.
      write: (ctx, offset) => ctx.set(offset, 0),
    });
  }
  t.define(GEN8_GTCR, { name: 'GEN8_GTCR', write: (ctx, offset) => ctx.set(offset, 0) });
}
