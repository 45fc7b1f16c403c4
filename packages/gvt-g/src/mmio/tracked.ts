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
  [0x20d4, 'GEN9_CSFE_CHICKEN1_RCS', CMD],
  [0x20e0, 'FF_SLICE_CS_CHICKEN1', F_MODE_MASK],
  [0x20e4, 'FF_SLICE_CS_CHICKEN2', MM],
  [0x20ec, 'GEN9_CS_DEBUG_MODE1', MM],
  [0x2248, 'GEN9_CTX_PREEMPT_REG', CMD],
  [0x4024, 'HSW_GTT_CACHE_EN'],
  [0x4080, 'GEN8_GAMW_ECO_DEV_RW_IA'],
  [0x4090, 'GAM_ECOCHK', CMD],
  [0x4094, 'GEN8_RING_FAULT_REG', CMD],
  [0x40e0, 'GEN8_PRIVATE_PAT_LO'],
  [0x40e4, 'GEN8_PRIVATE_PAT_HI'],
  [0x4ab0, 'GEN9_GAMT_ECO_REG_RW_IA', CMD],
  [0x4ab8, 'GAMT_CHKN_BIT_REG'],
  [0x4dd4, 'GEN8_L3_LRA_1_GPGPU'],
  [0x4ddc, 'MMCD_MISC_CTRL'],
  [0x9044, 'FBC_LLC_READ_CTRL'],
  [0x9120, 'GEN8_FUSE2'],
  [0x9134, 'GEN9_EU_DISABLE', 0, 3 * 4],
  [0x940c, 'GEN7_UCGCTL4'],
  [0xa168, 'GEN6_PMINTRMSK'],
  [0xa26c, 'CTC_MODE'],
  [0xb004, 'GEN8_GARBCNTL'],
  [0xb008, 'GEN9_SCRATCH_LNCF1'],
  [0xb020, 'GEN9_LNCFCMOCS', CMD, 32 * 4],
  [0xb118, 'GEN8_L3SQCREG4', CMD],
  [0xb11c, 'GEN9_SCRATCH1'],
  [0xc050, 'GUC_WOPCM_SIZE'],
  [0xc340, 'DMA_GUC_WOPCM_OFFSET'],
  // Global MOCS tables (GEN9_GFX_MOCS 0xc800, MFX0 0xc900, MFX1 0xca00, VEBOX 0xcb00, BLT 0xcc00; 64 each)
  [0xc800, 'GEN9_MOCS', CMD, 5 * 64 * 4],
  [0x101008, 'GFX_FLSH_CNTL_GEN6'],
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
