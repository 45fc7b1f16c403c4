/**
 * The simulated host IGD's register file as GVT snapshots it when a vGPU is created
 * (gvt/firmware.c, mmio.c intel_vgpu_init_mmio copies the host's MMIO into each vreg): a Kaby
 * Lake GT2 after firmware and the host driver brought it up — the power wells the BIOS enabled,
 * the fuses distributed, DPLL0 (the CDCLK source) locked, the DBuf powered, CDCLK at 450 MHz on
 * the 8100 MHz VCO.
 */
import { GVT_MMIO_SIZE } from '../constants.js';
import {
  CDCLK_CTL,
  DBUF_CTL,
  DBUF_POWER_REQUEST,
  DBUF_POWER_STATE,
  DPLL_CTRL1,
  HSW_PWR_WELL_CTL,
  LCPLL_PLL_ENABLE,
  LCPLL_PLL_LOCK,
  SKL_DPLL_ENABLE,
  SKL_FUSE_DOWNLOAD_STATUS,
  SKL_FUSE_PG_DIST_STATUS,
  SKL_FUSE_STATUS,
} from './power-handlers.js';
import { ENGINES, MODE_IDLE, RING, STOP_RING } from './regs.js';

/** The values that differ from zero, by offset. */
export const KBL_HOST_REGISTERS: ReadonlyMap<number, number> = new Map([
  // The host driver's request register: power wells 2 and 1, DDI A/E..D and misc IO requested
  // (bits 2 idx + 1, SKL_PW_CTL_IDX_*) and each in its state (bit 2 idx).
  [HSW_PWR_WELL_CTL[1], 0xf00003ff],
  [
    SKL_FUSE_STATUS,
    (SKL_FUSE_DOWNLOAD_STATUS |
      SKL_FUSE_PG_DIST_STATUS(0) |
      SKL_FUSE_PG_DIST_STATUS(1) |
      SKL_FUSE_PG_DIST_STATUS(2)) >>>
      0,
  ],
  [DBUF_CTL, (DBUF_POWER_REQUEST | DBUF_POWER_STATE) >>> 0],
  [SKL_DPLL_ENABLE[0], (LCPLL_PLL_ENABLE | LCPLL_PLL_LOCK) >>> 0],
  // DPLL0: override on, link rate 810 (VCO 8100 MHz) (DPLL_CTRL1_LINK_RATE_810 = 2 in bits 3:1).
  [DPLL_CTRL1, (2 << 1) | 1],
  // CDCLK_CTL: 450 MHz (frequency select 0 on the 8100 VCO) with its decimal field (450000 - 1000) / 500.
  [CDCLK_CTL, (450_000 - 1000) / 500],
  // One slice of three subslices (subslice 3 fused off), all EUs enabled: KBL GT2, 24 EUs
  // (GEN8_FUSE2: slice enable bits 27:25, GEN9 subslice disable bits 23:20).
  [0x9120, (1 << 25) | (0x8 << 20)],
  // Two channels of DDR4, one 8 GB single-rank x8 DIMM each, at 2133 MT/s (8 × 266.67 MHz).
  [0x14500c, 8],
  [0x145010, 8],
  [0x145e04, 8],
  // RP0 1150 MHz, RP1 1100 MHz, RPn 350 MHz in 50 MHz units.
  [0x145998, (7 << 16) | (22 << 8) | 23],
  // The host driver disabled legacy VGA.
  [0x41000, 1 << 31],
  // DDI buffers of ports A-E disabled and idle; the virtual monitor's port D strapped present
  // (SFUSE_STRAP_DDID_DETECTED), as emulate_monitor_status_change sets it.
  ...[0, 1, 2, 3, 4].map((p): [number, number] => [0x64000 + 0x100 * p, 1 << 7]),
  [0xc2014, 1 << 0],
  // Engines idle with their rings stopped.
  ...ENGINES.map((e): [number, number] => [e.base + RING.MI_MODE, STOP_RING | MODE_IDLE]),
]);

export function kblHostSnapshot(): Uint32Array {
  const words = new Uint32Array(GVT_MMIO_SIZE / 4);
  for (const [offset, value] of KBL_HOST_REGISTERS) words[offset >>> 2] = value >>> 0;
  return words;
}
