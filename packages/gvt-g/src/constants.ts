/**
 * Numbers of the GVT-g world: limits from gvt.h, the PVINFO page from i915_pvinfo.h, the i915
 * registers and commands a vGPU exposes. One place, each with its source.
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** x86 page, and the GGTT page: one 8-byte PTE maps 4 KiB of graphics memory. */
export const GTT_PAGE_SIZE = 4096;
export const GTT_PAGE_SHIFT = 12;

// ---- gvt.h -------------------------------------------------------------------------------------
/** GVT_MAX_VGPU. */
export const GVT_MAX_VGPU = 8;
/** HOST_LOW_GM_SIZE: mappable graphics memory (aperture) the host keeps for itself. */
export const HOST_LOW_GM_SIZE = 128 * MiB;
/** HOST_HIGH_GM_SIZE: non-mappable graphics memory the host keeps. */
export const HOST_HIGH_GM_SIZE = 384 * MiB;
/** HOST_FENCE: fence registers the host keeps. */
export const HOST_FENCE = 4;
/** VGPU_MAX_WEIGHT (vgpu.c): weight = VGPU_MAX_WEIGHT / nominal instances. */
export const VGPU_MAX_WEIGHT = 16;

// ---- intel_gvt_device_info (gvt.c) --------------------------------------------------------------
/** mmio_size: the register file in the first 2 MiB of BAR0. */
export const GVT_MMIO_SIZE = 2 * MiB;
/** gtt_start_offset: the vGPU's GGTT view starts 8 MiB into BAR0. */
export const GVT_GTT_START_OFFSET = 8 * MiB;
/** gtt_entry_size: 8-byte PTEs (gen8+). */
export const GVT_GTT_ENTRY_SIZE = 8;
/** max_surface_size: the largest surface the display decoder accepts (36 MiB). */
export const GVT_MAX_SURFACE_SIZE = 36 * MiB;

// ---- reg.h / kvmgt.c ------------------------------------------------------------------------------
/** INTEL_GVT_OPREGION_PAGES × 4 KiB. */
export const OPREGION_SIZE = 2 * GTT_PAGE_SIZE;
/**
 * Where BAR0 shows the virtual OpRegion (in the 2..8 MiB hole between the register file and
 * the GGTT). With no firmware to copy the OpRegion into guest RAM and write ASLS (as QEMU's
 * vfio-pci igd quirk and its BIOS do), ASLS reads this window's guest-physical address, so i915
 * maps the OpRegion — and finds its VBT — the way it does on any IGD: ASLS, then memremap.
 */
export const OPREGION_BAR0_WINDOW = 4 * MiB;
/** pci_regs.h: the first BAR and COMMAND's I/O space enable. */
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_COMMAND_IO = 0x1;
/** INTEL_GVT_PCI_OPREGION: ASLS in config space. */
export const PCI_ASLS = 0xfc;
/** INTEL_GVT_PCI_SWSCI. */
export const PCI_SWSCI = 0xe8;
/** SWSCI_SCI_SELECT (i915 SWSCI_SCISEL): 1 = SCI, 0 = SMI. */
export const SWSCI_SCI_SELECT = 1 << 15;
/** SWSCI_SCI_TRIGGER (i915 SWSCI_GSSCIE). */
export const SWSCI_SCI_TRIGGER = 1 << 0;
/** GMCH graphics control (GGC) in config space; gen8+: GMS (stolen size) is bits 15:8. */
export const PCI_GMCH_CTRL = 0x50;
export const GMCH_GMS_MASK_GEN8 = 0xff00;
/** EDID region (kvmgt.c): blob at PAGE_SIZE / 2, at most 128 bytes. */
export const EDID_BLOB_OFFSET = GTT_PAGE_SIZE / 2;
export const EDID_MAX_SIZE = 128;

// ---- i915_pvinfo.h --------------------------------------------------------------------------------
export const VGT_PVINFO_PAGE = 0x78000;
export const VGT_PVINFO_SIZE = 0x1000;
/** "vGTvGTvG" as a little-endian u64. */
export const VGT_MAGIC = 0x4776544776544776n;
export const VGT_VERSION_MAJOR = 1;
export const VGT_VERSION_MINOR = 0;
export const VGT_CAPS_FULL_PPGTT = 1 << 2;
export const VGT_CAPS_HWSP_EMULATION = 1 << 3;
export const VGT_CAPS_HUGE_GTT = 1 << 4;
/** Offsets inside struct vgt_if (checked with gcc, see shared/reference/gvt-g.md §3.6). */
export const PVINFO = Object.freeze({
  magic: 0x000,
  versionMajor: 0x008,
  versionMinor: 0x00a,
  vgtId: 0x00c,
  vgtCaps: 0x010,
  mappableBase: 0x040,
  mappableSize: 0x044,
  nonmappableBase: 0x048,
  nonmappableSize: 0x04c,
  fenceNum: 0x050,
  displayReady: 0x804,
  g2vNotify: 0x818,
  cursorXHot: 0x830,
  cursorYHot: 0x834,
  pdp: 0x838,
  execlistContextDescriptorLo: 0x858,
  execlistContextDescriptorHi: 0x85c,
} as const);
/** enum vgt_g2v_type. */
export const VGT_G2V_PPGTT_L3_PAGE_TABLE_CREATE = 2;
export const VGT_G2V_PPGTT_L3_PAGE_TABLE_DESTROY = 3;
export const VGT_G2V_PPGTT_L4_PAGE_TABLE_CREATE = 4;
export const VGT_G2V_PPGTT_L4_PAGE_TABLE_DESTROY = 5;
export const VGT_G2V_EXECLIST_CONTEXT_CREATE = 6;
export const VGT_G2V_EXECLIST_CONTEXT_DESTROY = 7;

// ---- i915_reg.h / intel_gt_regs.h: interrupts ----------------------------------------------------
export const GEN8_MASTER_IRQ = 0x44200;
export const GEN8_MASTER_IRQ_CONTROL = 1 << 31;
export const GEN8_DE_PCH_IRQ = 1 << 23;
export const GEN8_GT_RCS_IRQ = 1 << 0;
/** GEN8_GT_ISR/IMR/IIR/IER(0): bank 0 holds the render (RCS, shift 0) and blitter (shift 16) engines. */
export const GEN8_GT_ISR0 = 0x44300;
export const GEN8_GT_IMR0 = 0x44304;
export const GEN8_GT_IIR0 = 0x44308;
export const GEN8_GT_IER0 = 0x4430c;
/** GT_RENDER_USER_INTERRUPT << GEN8_RCS_IRQ_SHIFT (0). */
export const GT_RENDER_USER_INTERRUPT = 1 << 0;
/** South display engine (PCH) interrupts: hotplug. */
export const SDEISR = 0xc4000;
export const SDEIMR = 0xc4004;
export const SDEIIR = 0xc4008;
export const SDEIER = 0xc400c;
/** SDE_PORTD_HOTPLUG_CPT: GVT's virtual display sits on port D on Skylake and later (kvmgt.c). */
export const SDE_PORTD_HOTPLUG_CPT = 1 << 23;

// ---- intel_engine_regs.h: the render engine's legacy ring buffer, RENDER_RING_BASE 0x2000 ----
export const RENDER_RING_BASE = 0x2000;
export const RING_TAIL = RENDER_RING_BASE + 0x30;
export const RING_HEAD = RENDER_RING_BASE + 0x34;
export const RING_START = RENDER_RING_BASE + 0x38;
export const RING_CTL = RENDER_RING_BASE + 0x3c;
/** RING_VALID in RING_CTL; RING_NR_PAGES is bits 20:12 as pages - 1. */
export const RING_VALID = 1 << 0;
export const RING_NR_PAGES = 0x001ff000;
/** HEAD_ADDR and TAIL_ADDR: byte offsets inside the ring. */
export const HEAD_ADDR = 0x001ffffc;
export const TAIL_ADDR = 0x001ffff8;
/** GEN8_RING_CS_GPR(base, n) = base + 0x600 + 8n, sixteen 64-bit general purpose registers. */
export const RCS_GPR_BASE = RENDER_RING_BASE + 0x600;
export const RCS_GPR_COUNT = 16;

// ---- i915_reg.h: fences -------------------------------------------------------------------------
/** FENCE_REG_GEN6_LO(i) = 0x100000 + 8i (64-bit). */
export const FENCE_REG_GEN6_BASE = 0x100000;

// ---- skl_universal_plane_regs.h / i915_reg.h: display, pipe A ----------------------------------
export const PLANE_CTL_1_A = 0x70180;
export const PLANE_STRIDE_1_A = 0x70188;
export const PLANE_POS_1_A = 0x7018c;
export const PLANE_SIZE_1_A = 0x70190;
export const PLANE_SURF_1_A = 0x7019c;
export const PLANE_OFFSET_1_A = 0x701a4;
export const PLANE_CTL_ENABLE = 1 << 31;
export const PLANE_CTL_FORMAT_MASK = 0xf << 24;
export const PLANE_CTL_FORMAT_XRGB_8888 = 0x4 << 24;
export const PLANE_CTL_ORDER_RGBX = 1 << 20;
export const PLANE_CTL_TILED_MASK = 0x7 << 10;
/** Linear plane strides are in 64-byte units. */
export const PLANE_STRIDE_UNIT = 64;
export const CURCNTR_A = 0x70080;
export const CURBASE_A = 0x70084;
export const CURPOS_A = 0x70088;
/** MCURSOR_MODE: the low bits of CURCNTR; ARGB cursor modes 64/128/256 pixels square. */
export const MCURSOR_MODE_MASK = 0x27;
export const MCURSOR_MODE_64_ARGB_AX = 0x27;
export const MCURSOR_MODE_128_ARGB_AX = 0x22;
export const MCURSOR_MODE_256_ARGB_AX = 0x23;
export const CURSOR_POS_SIGN = 0x8000;

// ---- drm_fourcc.h (the formats live in the core, beside its PNG encoder) ---------------------------
export { DRM_FORMAT_ARGB8888, DRM_FORMAT_XBGR8888, DRM_FORMAT_XRGB8888 } from '@vfiokit/core';

// ---- intel_gpu_commands.h ---------------------------------------------------------------------------
/** Bits 31:29 of every command: the client. */
export const INSTR_CLIENT_SHIFT = 29;
export const INSTR_MI_CLIENT = 0x0;
export const INSTR_BC_CLIENT = 0x2;
/** MI_INSTR(opcode, flags) = opcode << 23 | flags. */
export const miInstr = (opcode: number, flags: number): number => ((opcode << 23) | flags) >>> 0;
export const MI_OPCODE_NOOP = 0x00;
export const MI_OPCODE_USER_INTERRUPT = 0x02;
export const MI_OPCODE_BATCH_BUFFER_END = 0x0a;
export const MI_OPCODE_STORE_DATA_IMM = 0x20;
export const MI_OPCODE_LOAD_REGISTER_IMM = 0x22;
export const MI_OPCODE_BATCH_BUFFER_START = 0x31;
export const MI_NOOP = miInstr(MI_OPCODE_NOOP, 0);
export const MI_USER_INTERRUPT = miInstr(MI_OPCODE_USER_INTERRUPT, 0);
export const MI_BATCH_BUFFER_END = miInstr(MI_OPCODE_BATCH_BUFFER_END, 0);
/** MI_STORE_DATA_IMM with the gen8 64-bit address: 4 dwords (one dword stored) or 5 (a qword). */
export const MI_STORE_DATA_IMM = miInstr(MI_OPCODE_STORE_DATA_IMM, 0);
/** MI_USE_GGTT (bit 22): the address is a global GTT address. */
export const MI_USE_GGTT = 1 << 22;
/** MI_LOAD_REGISTER_IMM(n) = MI_INSTR(0x22, 2n - 1). */
export const miLoadRegisterImm = (n: number): number => miInstr(MI_OPCODE_LOAD_REGISTER_IMM, 2 * n - 1);
/** MI_BATCH_BUFFER_START_GEN8 = MI_INSTR(0x31, 1): 3 dwords with a 64-bit address. */
export const MI_BATCH_BUFFER_START_GEN8 = miInstr(MI_OPCODE_BATCH_BUFFER_START, 1);
/** MI_BATCH_PPGTT_GEN8 (bit 8, address space indicator) and the second-level bit (22). */
export const MI_BATCH_PPGTT_GEN8 = 1 << 8;
export const MI_BATCH_SECOND_LEVEL = 1 << 22;
/** XY_COLOR_BLT_CMD = 2 << 29 | 0x50 << 22; gen8 length 7 dwords (field 5). */
export const BLT_OPCODE_XY_COLOR_BLT = 0x50;
export const XY_COLOR_BLT_CMD =
  ((INSTR_BC_CLIENT << INSTR_CLIENT_SHIFT) | (BLT_OPCODE_XY_COLOR_BLT << 22)) >>> 0;
export const XY_COLOR_BLT_GEN8_DWORDS = 7;
export const BLT_WRITE_ALPHA = 1 << 21;
export const BLT_WRITE_RGB = 1 << 20;
/** BR13: bits 25:24 colour depth (0 8bpp, 1 565, 2 1555, 3 32bpp), 23:16 ROP, 15:0 pitch. */
export const BR13_DEPTH_SHIFT = 24;
export const BR13_ROP_PATCOPY = 0xf0;
