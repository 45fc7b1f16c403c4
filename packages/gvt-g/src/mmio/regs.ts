/**
 * Register offsets of the Kaby Lake register file that the vGPU's table tracks, named as i915
 * names them (i915_reg.h, gt/intel_gt_regs.h, gt/intel_engine_regs.h, display/*_regs.h).
 */

// ---- engines (intel_engine_regs.h, intel_engine_cs.c intel_engines[]) ------------------------------
export interface EngineDesc {
  /** i915's engine id order: RCS0, BCS0, VCS0, VCS1, VECS0 (intel_engine_types.h). */
  readonly id: number;
  readonly name: string;
  readonly base: number;
  /** GEN8_GT_IIR bank and the shift of the engine's bits in it (gen8_gt_irq_handler). */
  readonly bank: number;
  readonly shift: number;
  /** The engine's bit in GEN8_MASTER_IRQ. */
  readonly masterBit: number;
  /** Its GEN6_GRDOM_* bit in GDRST (intel_reset.c gen8_engine_reset_domains). */
  readonly resetDomain: number;
}

export const RCS0 = 0;
export const BCS0 = 1;
export const VCS0 = 2;
export const VECS0 = 4;

/** Kaby Lake GT2 (the simulated 0x5912): render, blitter, one video decode, one video enhance. */
export const ENGINES: readonly EngineDesc[] = Object.freeze([
  { id: RCS0, name: 'rcs0', base: 0x2000, bank: 0, shift: 0, masterBit: 1 << 0, resetDomain: 1 << 1 },
  { id: BCS0, name: 'bcs0', base: 0x22000, bank: 0, shift: 16, masterBit: 1 << 1, resetDomain: 1 << 3 },
  { id: VCS0, name: 'vcs0', base: 0x12000, bank: 1, shift: 0, masterBit: 1 << 2, resetDomain: 1 << 2 },
  { id: VECS0, name: 'vecs0', base: 0x1a000, bank: 3, shift: 0, masterBit: 1 << 6, resetDomain: 1 << 4 },
]);

/** Per-engine registers, relative to the engine's mmio base. */
export const RING = Object.freeze({
  TAIL: 0x30,
  HEAD: 0x34,
  START: 0x38,
  CTL: 0x3c,
  SYNC_0: 0x40,
  PSMI_CTL: 0x50,
  MAX_IDLE: 0x54,
  ACTHD_UDW: 0x5c,
  IPEIR: 0x64,
  IPEHR: 0x68,
  INSTDONE: 0x6c,
  INSTPS: 0x70,
  ACTHD: 0x74,
  DMA_FADD: 0x78,
  HWS_PGA: 0x80,
  NOPID: 0x94,
  HWSTAM: 0x98,
  MI_MODE: 0x9c,
  IMR: 0xa8,
  EIR: 0xb0,
  EMR: 0xb4,
  ESR: 0xb8,
  INSTPM: 0xc0,
  CMD_CCTL: 0xc4,
  RESET_CTL: 0xd0,
  BBSTATE: 0x110,
  BBADDR: 0x140,
  DMA_FADD_UDW: 0x60,
  BBADDR_UDW: 0x168,
  CCID: 0x180,
  PP_DIR_DCLV: 0x220,
  PP_DIR_BASE: 0x228,
  ELSP: 0x230,
  EXECLIST_STATUS_LO: 0x234,
  EXECLIST_STATUS_HI: 0x238,
  SEMA_WAIT_POLL: 0x24c,
  PDP_BASE: 0x270,
  MODE_GEN7: 0x29c,
  TIMESTAMP: 0x358,
  TIMESTAMP_UDW: 0x35c,
  CONTEXT_STATUS_BUF: 0x370,
  CONTEXT_STATUS_PTR: 0x3a0,
  CTX_TIMESTAMP: 0x3a8,
  FORCE_TO_NONPRIV: 0x4d0,
  CS_GPR: 0x600,
} as const);

/** RING_MI_MODE bits. */
export const STOP_RING = 1 << 8;
export const MODE_IDLE = 1 << 9;
/** RING_MODE_GEN7 bits. */
export const GFX_RUN_LIST_ENABLE = 1 << 15;
export const GFX_PPGTT_ENABLE = 1 << 9;
/** RING_RESET_CTL bits. */
export const RESET_CTL_REQUEST_RESET = 1 << 0;
export const RESET_CTL_READY_TO_RESET = 1 << 1;
/** GEN8_CSB_ENTRIES (gen8..gen10), with a 3-bit read and write pointer. */
export const CSB_ENTRIES = 6;
export const GEN8_CSB_PTR_MASK = 0x7;

// ---- GT: reset, forcewake, power (intel_gt_regs.h) ----------------------------------------------
export const GEN6_GDRST = 0x941c;
export const GEN6_GRDOM_FULL = 1 << 0;
export const GEN9_GRDOM_GUC = 1 << 5;
/** Forcewake request / ack pairs on gen9 (intel_uncore.c fw_domain_init). */
export const FORCEWAKE_RENDER_GEN9 = 0xa278;
export const FORCEWAKE_ACK_RENDER_GEN9 = 0x0d84;
export const FORCEWAKE_MEDIA_GEN9 = 0xa270;
export const FORCEWAKE_ACK_MEDIA_GEN9 = 0x0d88;
export const FORCEWAKE_GT_GEN9 = 0xa188;
export const FORCEWAKE_ACK_GT_GEN9 = 0x130044;
export const GEN6_GT_THREAD_STATUS_REG = 0x13805c;
export const GEN6_GT_CORE_STATUS = 0x138060;
export const GEN6_PCODE_MAILBOX = 0x138124;
export const GEN6_PCODE_DATA = 0x138128;
export const GEN6_PCODE_DATA1 = 0x13812c;
export const GEN6_PCODE_READY = 1 << 31;
export const GEN6_PCODE_ERROR_MASK = 0xff;
export const GEN9_PCODE_READ_MEM_LATENCY = 0x6;
export const SKL_PCODE_CDCLK_CONTROL = 0x7;
export const SKL_CDCLK_READY_FOR_CHANGE = 0x3;
export const GEN6_PCODE_READ_RC6VIDS = 0x5;
/** GEN9_PCODE_SAGV_CONTROL and its arguments / replies (i915_reg.h). */
export const GEN9_PCODE_SAGV_CONTROL = 0x21;
export const GEN9_SAGV_DISABLE = 0x0;
export const GEN9_SAGV_IS_DISABLED = 0x1;
export const GEN9_SAGV_ENABLE = 0x3;
export const GUC_STATUS = 0xc000;
export const GS_MIA_IN_RESET = 1 << 0;
/** FPGA_DBG: RM_NOCLAIM reports unclaimed accesses; a vGPU never has one. */
export const FPGA_DBG = 0x42300;
export const FPGA_DBG_RM_NOCLAIM = 1 << 31;
/** GEN8_GTCR TLB invalidation and the per-engine TLB control registers (handlers.c 0x4260..). */
export const GEN8_GTCR = 0x4274;
export const TLB_CONTROL = [0x4260, 0x4264, 0x4268, 0x426c, 0x4270] as const;
/** GEN8_PRIVATE_PAT_LO / HI. */
export const GEN8_PRIVATE_PAT_LO = 0x40e0;
export const GEN8_PRIVATE_PAT_HI = 0x40e4;
/** The SSEU fuses i915 reads on gen9 (intel_sseu.c gen9_sseu_info_init). */
export const GEN8_FUSE2 = 0x9120;
export const GEN9_EU_DISABLE0 = 0x9134;
export const GEN9_EU_DISABLE1 = 0x9138;
export const GEN9_EU_DISABLE2 = 0x913c;
export const GEN8_GT_SLICE_INFO = 0x138064;
/** MI_PREDICATE / GAM / misc GT regs i915 reads at init. */
export const GEN7_CXT_SIZE = 0x21a8;
export const GEN8_GAMW_ECO_DEV_RW_IA = 0x4080;
export const GAMT_CHKN_BIT_REG = 0x4ab8;

// ---- interrupts (i915_reg.h, intel_gt_regs.h) ----------------------------------------------------
export const GEN8_MASTER_IRQ = 0x44200;
export const GEN8_MASTER_IRQ_CONTROL = 1 << 31;
export const GEN8_GT_ISR = (bank: number) => 0x44300 + 0x10 * bank;
export const GEN8_DE_PIPE_ISR = (pipe: number) => 0x44400 + 0x10 * pipe;
export const GEN8_DE_PORT_ISR = 0x44440;
export const GEN8_DE_MISC_ISR = 0x44460;
export const GEN8_PCU_ISR = 0x444e0;
export const SDEISR = 0xc4000;
/** Master bits of the display interrupt groups. */
export const GEN8_DE_PIPE_IRQ = (pipe: number) => 1 << (16 + pipe);
export const GEN8_DE_PORT_IRQ = 1 << 20;
export const GEN8_DE_MISC_IRQ = 1 << 22;
export const GEN8_DE_PCH_IRQ = 1 << 23;
export const GEN8_PCU_IRQ = 1 << 30;
export const GEN8_GT_PM_IRQ = 1 << 4;
/** Engine interrupt bits (intel_gt_regs.h). */
export const GT_RENDER_USER_INTERRUPT = 1 << 0;
export const GT_CONTEXT_SWITCH_INTERRUPT = 1 << 8;
/** EDP_PSR_IMR / IIR (pre-gen12): GVT answers both as 0. */
export const EDP_PSR_IMR = 0x64834;
export const EDP_PSR_IIR = 0x64838;
