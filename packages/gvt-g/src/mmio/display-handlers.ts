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

/** Transcoders A, B, C and EDP: their timing blocks and TRANSCONF (i915_reg.h). */
export const TRANSCODER_BASE = [0x60000, 0x61000, 0x62000, 0x6f000] as const;
export const TRANSCONF = (pipe: number) => 0x70008 + 0x1000 * pipe;
export const TRANSCONF_EDP = 0x7f008;
export const TRANSCONF_ENABLE = 1 << 31;
export const TRANSCONF_STATE_ENABLE = 1 << 30;
export const PIPEDSL = (pipe: number) => 0x70000 + 0x1000 * pipe;
export const PIPE_FRMCOUNT = (pipe: number) => 0x70040 + 0x1000 * pipe;
export const PIPE_FLIPCOUNT = (pipe: number) => 0x70044 + 0x1000 * pipe;
/** DDI ports A..E: DDI_BUF_CTL, DP_TP_CTL, DP_TP_STATUS; AUX channels A..D. */
export const DDI_BUF_CTL = (port: number) => 0x64000 + 0x100 * port;
export const DP_TP_CTL = (port: number) => 0x64040 + 0x100 * port;
export const DP_TP_STATUS = (port: number) => 0x64044 + 0x100 * port;
export const DP_AUX_CH_CTL = (ch: number) => 0x64010 + 0x100 * ch;
export const DDI_BUF_CTL_ENABLE = 1 << 31;
export const DDI_BUF_IS_IDLE = 1 << 7;
export const DP_TP_STATUS_IDLE_DONE = 1 << 25;
const DP_TP_CTL_LINK_TRAIN_IDLE = 2;

export function defineDisplayRegisters(t: MmioTable<Vreg>): void {
  // Transcoder timings, source size, M/N values, DDI function and MSA (plain registers).
  TRANSCODER_BASE.forEach((base, k) => {
    const tr = 'ABCE'[k];
    // HTOTAL .. VSYNC, BCLRPAT, PIPESRC, VSYNCSHIFT, TRANS_MULT.
    t.define(base, { name: `TRANS_TIMINGS_${tr}`, size: 0x30 });
    if (k < 3) t.define(base + 0x30, { name: `PIPE_DATA_LINK_MN_${tr}`, size: 0x20 });
    else t.define(base + 0x30, { name: `PIPE_DATA_LINK_MN_EDP`, size: 0x20 });
    t.define(base + 0x50, { name: `_MMIO(0x${(base + 0x50).toString(16)})` });
    t.define(base + 0x200, { name: `HSW_TVIDEO_DIP_CTL_${tr}` });
    t.define(base + 0x400, { name: `TRANS_DDI_FUNC_CTL_${tr}` });
    t.define(base + 0x410, { name: `TRANS_MSA_MISC_${tr}` });
  });
  for (let p = 0; p < 4; p++) {
    const reg = p < 3 ? TRANSCONF(p) : TRANSCONF_EDP;
    t.define(reg, {
      name: `TRANSCONF_${'ABCE'[p]}`,
      // pipeconf_mmio_write: the state bit follows the enable at once.
      write: (ctx, offset, value) => {
        const on = (value & TRANSCONF_ENABLE) !== 0;
        ctx.set(offset, on ? value | TRANSCONF_STATE_ENABLE : value & ~TRANSCONF_STATE_ENABLE);
        if (p < 3) ctx.hooks.pipeEnabled(p, on);
      },
    });
  }
  for (let p = 0; p < PIPES; p++) {
    t.define(PIPEDSL(p), {
      name: `PIPEDSL_${'ABC'[p]}`,
      roMask: 0xffffffff,
      read: (ctx) => ctx.hooks.scanline(p),
    });
    t.define(PIPE_FRMCOUNT(p), { name: `PIPE_FRMCOUNT_${'ABC'[p]}`, roMask: 0xffffffff });
    t.define(PIPE_FLIPCOUNT(p), { name: `PIPE_FLIPCOUNT_${'ABC'[p]}`, roMask: 0xffffffff });
  }
  for (let port = 0; port < 5; port++) {
    const name = 'ABCDE'[port];
    t.define(DDI_BUF_CTL(port), {
      name: `DDI_BUF_CTL_${name}`,
      // ddi_buf_ctl_mmio_write: an enabled buffer is not idle; a disabled one is.
      write: (ctx, offset, value) =>
        ctx.set(offset, value & DDI_BUF_CTL_ENABLE ? value & ~DDI_BUF_IS_IDLE : value | DDI_BUF_IS_IDLE),
    });
    t.define(DP_TP_CTL(port), {
      name: `DP_TP_CTL_${name}`,
      // dp_tp_ctl_mmio_write: the idle pattern is sent at once.
      write: (ctx, offset, value) => {
        ctx.set(offset, value);
        if (((value >>> 8) & 7) === DP_TP_CTL_LINK_TRAIN_IDLE)
          ctx.set(DP_TP_STATUS(port), (ctx.get(DP_TP_STATUS(port)) | DP_TP_STATUS_IDLE_DONE) >>> 0);
      },
    });
    t.define(DP_TP_STATUS(port), {
      name: `DP_TP_STATUS_${name}`,
      // dp_tp_status_mmio_write: bits 27:26 and 24 are sticky, cleared by writing 1.
      write: (ctx, offset, value, old) => {
        const sticky = (3 << 26) | (1 << 24);
        ctx.set(offset, ((value & ~sticky) | (old & sticky)) & ~(value & sticky));
      },
    });
    t.define(0x64e00 + 0x60 * port, { name: `DDI_BUF_TRANS_${name}`, size: 0x50 });
  }
  for (let ch = 0; ch < 4; ch++) {
    t.define(DP_AUX_CH_CTL(ch), {
      name: `DP_AUX_CH_CTL_${'ABCD'[ch]}`,
      write: (ctx, offset, value) => {
        ctx.set(offset, value);
        ctx.hooks.auxWritten(ch, value);
      },
    });
    t.define(DP_AUX_CH_CTL(ch) + 4, { name: `DP_AUX_CH_DATA_${'ABCD'[ch]}`, size: 5 * 4 });
  }
  for (let p = 0; p < PIPES; p++) {
    const pipe = 'ABC'[p];
    for (let n = 1; n <= PLANES_PER_PIPE; n++) {
      const base = PLANE_CTL(p, n);
      for (const [reg, off] of Object.entries(PLANE_REG)) {
        t.define(base + off, { name: `PLANE_${reg}_${n}_${pipe}` });
      }
    }
    // Watermarks and DDB allocation (skl_watermark_regs.h): planes 1-3 and the cursor.
    for (let n = 1; n <= PLANES_PER_PIPE; n++) {
      const base = PLANE_CTL(p, n);
      t.define(base + 0xc0, { name: `PLANE_WM_${n}_${pipe}`, size: 8 * 4 });
      t.define(base + 0xe8, { name: `PLANE_WM_TRANS_${n}_${pipe}` });
      t.define(base + 0xf8, { name: `PLANE_NV12_BUF_CFG_${n}_${pipe}` });
      t.define(base + 0xfc, { name: `PLANE_BUF_CFG_${n}_${pipe}` });
    }
    const cur = 0x70140 + 0x1000 * p;
    t.define(cur, { name: `CUR_WM_${pipe}`, size: 8 * 4 });
    t.define(cur + 0x28, { name: `CUR_WM_TRANS_${pipe}` });
    t.define(cur + 0x3c, { name: `CUR_BUF_CFG_${pipe}` });
    t.define(0x700a0 + 0x1000 * p, { name: `CUR_FBC_CTL_${pipe}` });
    t.define(0x70030 + 0x1000 * p, { name: `PIPE_MISC_${pipe}` });
    t.define(0x70034 + 0x1000 * p, { name: `SKL_BOTTOM_COLOR_${pipe}` });
    // Pipe scalers (SKL_PS_*): two per pipe, window position, size and control.
    for (let id = 0; id < 2; id++) {
      const ps = 0x68180 + 0x800 * p + 0x100 * id;
      t.define(ps - 0x10, { name: `SKL_PS_WIN_POS_${pipe}_${id}` });
      t.define(ps - 0x0c, { name: `SKL_PS_WIN_SZ_${pipe}_${id}` });
      t.define(ps, { name: `SKL_PS_CTRL_${pipe}_${id}` });
    }
    // Colour: pipe CSC, gamma mode, line time, transcoder chicken bits.
    t.define(0x49010 + 0x100 * p, { name: `PIPE_CSC_${pipe}`, size: 0x3c });
    t.define(0x4a480 + 0x800 * p, { name: `GAMMA_MODE_${pipe}` });
    t.define(0x45270 + 4 * p, { name: `WM_LINETIME_${pipe}` });
    t.define(0x420c0 + 4 * p, { name: `CHICKEN_TRANS_${pipe}` });
    t.define(0x46140 + 4 * p, { name: `TRANS_CLK_SEL_${pipe}` });
    t.define(CURCNTR(p), { name: `CURCNTR_${pipe}` });
    t.define(CURCNTR(p) + 4, { name: `CURBASE_${pipe}` });
    t.define(CURCNTR(p) + 8, { name: `CURPOS_${pipe}` });
  }
}
