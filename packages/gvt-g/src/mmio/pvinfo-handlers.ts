/**
 * The PVINFO page (i915_pvinfo.h struct vgt_if, handlers.c pvinfo_mmio_read/write) and the fence
 * registers a vGPU owns (fence_mmio_read/write).
 */
import {
  FENCE_REG_GEN6_BASE,
  PVINFO,
  VGT_CAPS_FULL_PPGTT,
  VGT_CAPS_HUGE_GTT,
  VGT_CAPS_HWSP_EMULATION,
  VGT_PVINFO_PAGE,
  VGT_VERSION_MAJOR,
  VGT_VERSION_MINOR,
} from '../constants.js';
import type { VgpuSlices } from '../host-gpu.js';
import { F_RO, type MmioTable } from './table.js';
import type { Vreg } from './vreg.js';

const pv = (offset: number) => VGT_PVINFO_PAGE + offset;
/** "vGTvGTvG" as two little-endian dwords. */
const MAGIC_LO = 0x76544776;
const MAGIC_HI = 0x47765447;
/** Fence registers on gen8+ (FENCE_REG_GEN6_LO(0..31)). */
export const FENCE_REGS = 32;

/** populate_pvinfo_page. */
export function populatePvinfo(ctx: Vreg, vgpuId: number, r: VgpuSlices): void {
  ctx.set(pv(PVINFO.magic), MAGIC_LO);
  ctx.set(pv(PVINFO.magic + 4), MAGIC_HI);
  ctx.set(pv(PVINFO.versionMajor), (VGT_VERSION_MINOR << 16) | VGT_VERSION_MAJOR);
  ctx.set(pv(PVINFO.vgtId), vgpuId);
  ctx.set(pv(PVINFO.vgtCaps), VGT_CAPS_FULL_PPGTT | VGT_CAPS_HWSP_EMULATION | VGT_CAPS_HUGE_GTT);
  ctx.set(pv(PVINFO.mappableBase), r.low.base);
  ctx.set(pv(PVINFO.mappableSize), r.low.size);
  ctx.set(pv(PVINFO.nonmappableBase), r.high.base);
  ctx.set(pv(PVINFO.nonmappableSize), r.high.size);
  ctx.set(pv(PVINFO.fenceNum), r.fences.length);
  ctx.set(pv(PVINFO.cursorXHot), 0xffffffff);
  ctx.set(pv(PVINFO.cursorYHot), 0xffffffff);
}

export function definePvinfoRegisters(t: MmioTable<Vreg>, fenceCount: (ctx: Vreg) => number): void {
  t.define(pv(PVINFO.magic), { name: 'vgt_if.magic', size: 8, flags: F_RO });
  t.define(pv(PVINFO.versionMajor), { name: 'vgt_if.version', flags: F_RO });
  t.define(pv(PVINFO.vgtId), { name: 'vgt_if.vgt_id', flags: F_RO });
  t.define(pv(PVINFO.vgtCaps), { name: 'vgt_if.vgt_caps', flags: F_RO });
  t.define(pv(PVINFO.mappableBase), { name: 'vgt_if.avail_rs', size: 5 * 4, flags: F_RO });
  t.define(pv(PVINFO.displayReady), { name: 'vgt_if.display_ready' });
  t.define(pv(PVINFO.g2vNotify), {
    name: 'vgt_if.g2v_notify',
    write: (ctx, offset, value) => {
      ctx.set(offset, value);
      ctx.hooks.g2vNotify(value);
    },
  });
  t.define(pv(PVINFO.cursorXHot), { name: 'vgt_if.cursor_x_hot' });
  t.define(pv(PVINFO.cursorYHot), { name: 'vgt_if.cursor_y_hot' });
  t.define(pv(PVINFO.pdp), { name: 'vgt_if.pdp', size: 8 * 4 });
  t.define(pv(PVINFO.execlistContextDescriptorLo), { name: 'vgt_if.execlist_context_descriptor', size: 8 });
  for (let k = 0; k < FENCE_REGS; k++) {
    const lo = FENCE_REG_GEN6_BASE + 8 * k;
    const owned = (ctx: Vreg) => k < fenceCount(ctx);
    const entry = (half: string) => ({
      name: `FENCE_REG_GEN6_${half}(${k})`,
      // sanitize_fence_mmio_access: a fence beyond the vGPU's reads 0 and takes no writes.
      read: (ctx: Vreg, offset: number) => (owned(ctx) ? ctx.get(offset) : 0),
      write: (ctx: Vreg, offset: number, value: number) => {
        if (!owned(ctx)) return;
        ctx.set(offset, value);
        ctx.hooks.fenceWritten(k, ctx.get(lo) + ctx.get(lo + 4) * 2 ** 32);
      },
    });
    t.define(lo, entry('LO'));
    t.define(lo + 4, entry('HI'));
  }
}
