/**
 * Registers with no behaviour of their own that the table tracks (intel_gvt_mmio_table.c): they
 * read back what the guest wrote, starting from the host snapshot. Flags say which are masked
 * registers and which the command audit lets commands reach, as handlers.c sets them.
 */
import { F_CMD_ACCESS, F_MODE_MASK, type MmioTable } from './table.js';
import type { Vreg } from './vreg.js';

type Tracked = readonly [offset: number, name: string, flags?: number, size?: number];

const MM = F_MODE_MASK | F_CMD_ACCESS;
const CMD = F_CMD_ACCESS;

export const TRACKED: readonly Tracked[] = [
  // GT: MCR steering, GAM, fault reporting, clock gating, fuses (intel_gt_regs.h)
  [0x0fdc, 'GEN8_MCR_SELECTOR'],
  [0x0d00, 'RPM_CONFIG0'],
  [0x0d08, 'RPM_CONFIG1'],
  [0x20e0, 'GEN7_FF_SLICE_CS_CHICKEN1', MM],
  [0x20e4, 'FF_SLICE_CS_CHICKEN2', MM],
  [0x20ec, 'GEN9_CS_DEBUG_MODE1', MM],
  [0x2248, 'GEN9_CTX_PREEMPT_REG', CMD],
  [0x4024, 'HSW_GTT_CACHE_EN'],
  [0x4030, 'ARB_MODE', MM],
  [0x4080, 'GEN8_GAMW_ECO_DEV_RW_IA'],
  [0x4090, 'GAM_ECOCHK', CMD],
  [0x4094, 'GEN8_RING_FAULT_REG', CMD],
  [0x40e0, 'GEN8_PRIVATE_PAT_LO'],
  [0x40e4, 'GEN8_PRIVATE_PAT_HI'],
  [0x4ab0, 'GEN9_GAMT_ECO_REG_RW_IA', CMD],
  [0x4ab8, 'GAMT_CHKN_BIT_REG', CMD],
  [0x4dd4, 'GEN8_L3_LRA_1_GPGPU'],
  [0x4ddc, 'MMCD_MISC_CTRL', CMD],
  [0x9044, 'FBC_LLC_READ_CTRL'],
  [0x9120, 'GEN8_FUSE2'],
  [0x9134, 'GEN9_EU_DISABLE', 0, 3 * 4],
  [0x940c, 'GEN7_UCGCTL4', CMD],
  [0xa168, 'GEN6_PMINTRMSK'],
  [0xa26c, 'CTC_MODE'],
  [0xb004, 'GEN8_GARBCNTL', CMD],
  [0xb008, 'GEN9_SCRATCH_LNCF1'],
  [0xb020, 'GEN9_LNCFCMOCS', CMD, 32 * 4],
  [0xb118, 'GEN8_L3SQCREG4', CMD],
  [0xb11c, 'BDW_SCRATCH1', CMD],
  [0xc050, 'GUC_WOPCM_SIZE'],
  [0xc340, 'DMA_GUC_WOPCM_OFFSET'],
  // Render and slice chicken bits, cache modes and counters the command audit lets i915's context
  // workarounds and userspace reach (handlers.c init_generic/bdw/skl_mmio_info, F_CMD_ACCESS)
  [0x2088, '_MMIO(0x2088)', MM],
  [0x2090, '_3D_CHICKEN3', MM],
  [0x20a0, '_MMIO(0x20a0)', CMD],
  [0x20dc, '_MMIO(0x20dc)', MM],
  [0x2120, 'CACHE_MODE_0', MM],
  [0x2124, '_MMIO(0x2124)', MM],
  [0x2148, '_MMIO(0x2148)', CMD],
  [0x215c, '_MMIO(0x215c)', CMD],
  [0x2178, '_MMIO(0x2178)', CMD, 8],
  [0x21f0, '_MMIO(0x21f0)', CMD],
  [0x2290, '_MMIO(0x2290)', CMD, 8],
  [0x2300, 'GFXPIPE_STATISTICS', CMD, 0x58],
  [0x2420, '_MMIO(0x2420)', CMD],
  [0x2430, '_MMIO(0x2430)', CMD, 0x10],
  [0x2470, '_MMIO(0x2470)', MM],
  [0x2580, 'GEN8_CS_CHICKEN1', MM],
  [0x4de0, 'TRVATTL3PTRDW', CMD, 0x10],
  [0x4df0, 'TRVADR', CMD],
  [0x4df4, 'TRTTE', CMD],
  [0x4dfc, 'GEN9_TRTT_CHICKEN'],
  [0x5200, '_MMIO(0x5200)', CMD, 32],
  [0x5240, '_MMIO(0x5240)', CMD, 32],
  [0x5280, '_MMIO(0x5280)', CMD, 16],
  [0x5588, 'GEN9_WM_CHICKEN3', MM],
  [0x7000, 'CACHE_MODE_0_GEN7', MM],
  [0x7004, 'CACHE_MODE_1', MM],
  [0x7008, 'GEN7_GT_MODE', MM],
  [0x7010, 'GEN7_COMMON_SLICE_CHICKEN1', MM],
  [0x7014, 'COMMON_SLICE_CHICKEN2', MM],
  [0x7018, '_MMIO(0x7018)', MM],
  [0x7300, 'HDC_CHICKEN0', MM],
  [0x7304, 'GEN8_HDC_CHICKEN1', MM],
  [0x9030, '_MMIO(0x9030)', CMD],
  [0x9430, 'GEN8_UCGCTL6', CMD],
  [0x12178, '_MMIO(0x12178)', CMD, 8],
  [0x12198, '_MMIO(0x12198)', CMD],
  [0x1a178, '_MMIO(0x1a178)', CMD, 8],
  [0x22178, '_MMIO(0x22178)', CMD, 8],
  [0x22200, 'BCS_SWCTRL', CMD],
  [0xe100, 'GEN7_HALF_SLICE_CHICKEN1', MM],
  [0xe180, 'HALF_SLICE_CHICKEN2', MM],
  [0xe184, 'HSW_HALF_SLICE_CHICKEN3', MM],
  [0xe188, 'GEN9_HALF_SLICE_CHICKEN5', MM],
  [0xe194, 'GEN9_HALF_SLICE_CHICKEN7', MM],
  [0xe220, '_MMIO(0xe220)', CMD],
  [0xe230, '_MMIO(0xe230)', CMD],
  [0xe240, '_MMIO(0xe240)', CMD],
  [0xe260, '_MMIO(0xe260)', CMD],
  [0xe270, '_MMIO(0xe270)', CMD],
  [0xe280, '_MMIO(0xe280)', CMD],
  [0xe2a0, '_MMIO(0xe2a0)', CMD],
  [0xe2b0, '_MMIO(0xe2b0)', CMD],
  [0xe2c0, '_MMIO(0xe2c0)', CMD],
  [0xe4cc, '_MMIO(0xe4cc)', CMD],
  [0xe4f0, 'GEN8_ROW_CHICKEN', MM],
  [0xe4f4, 'GEN7_ROW_CHICKEN2', MM],
  // Global MOCS tables (GEN9_GFX_MOCS 0xc800, MFX0 0xc900, MFX1 0xca00, VEBOX 0xcb00, BLT 0xcc00; 64 each)
  [0xc800, 'GEN9_MOCS', CMD, 5 * 64 * 4],
  [0x101008, 'GFX_FLSH_CNTL_GEN6'],
  [0x120000, 'GTFIFODBG', CMD],
  [0x120008, 'GTFIFOCTL', CMD],
  [0x120010, 'HSW_EDRAM_CAP'],
  // MCHBAR mirror (intel_mchbar_regs.h)
  [0x145000, 'SKL_MAD_INTER_CHANNEL_0_0_0_MCHBAR_MCMAIN'],
  [0x14500c, 'SKL_MAD_DIMM_CH0_0_0_0_MCHBAR_MCMAIN'],
  [0x145010, 'SKL_MAD_DIMM_CH1_0_0_0_MCHBAR_MCMAIN'],
  [0x145998, 'GEN6_RP_STATE_CAP'],
  [0x145e04, 'SKL_MC_BIOS_DATA_0_0_0_MCHBAR_PCU'],
  // display: VGA, chicken bits, FBC, arbitration, DC states, audio (i915_reg.h, display/*_regs.h)
  [0x41000, 'CPU_VGACNTRL'],
  [0x42080, 'CHICKEN_PAR1_1'],
  [0x42084, 'CHICKEN_MISC_2'],
  [0x43208, 'ILK_DPFC_CONTROL'],
  [0x45000, 'DISP_ARB_CTL'],
  [0x45004, 'DISP_ARB_CTL2'],
  [0x45504, 'DC_STATE_EN'],
  [0x45520, 'DC_STATE_DEBUG'],
  [0x46408, 'HSW_NDE_RSTWRN_OPT'],
  [0x46430, 'GEN8_CHICKEN_DCPR_1'],
  [0x51000, 'SKL_DFSM'],
  [0x65900, 'AUD_FREQ_CNTRL'],
  // south display (PCH): clock gating, hotplug, GPIO, raw clock, panel power
  [0xc2020, 'SOUTH_DSPCLK_GATE_D'],
  [0xc4030, 'PCH_PORT_HOTPLUG'],
  [0xc403c, 'PCH_PORT_HOTPLUG2'],
  [0xc5010, 'PCH_GPIO', 0, 6 * 4],
  [0xc6204, 'PCH_RAWCLK_FREQ'],
];

export function defineTrackedRegisters(t: MmioTable<Vreg>): void {
  for (const [offset, name, flags, size] of TRACKED) {
    t.define(offset, {
      name,
      ...(flags !== undefined ? { flags } : {}),
      ...(size !== undefined ? { size } : {}),
    });
  }
}
