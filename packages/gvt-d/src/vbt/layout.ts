/**
 * VBT and BDB binary layout. Sources: linux drivers/gpu/drm/i915/display/intel_vbt_defs.h and
 * intel_bios.c; IGT tools/intel_vbt_defs.h (same layout); shared/reference/gvt-d-opregion.md §4.3.
 */

// struct vbt_header (48 bytes, little-endian) — intel_vbt_defs.h
export const VBT_SIGNATURE_PREFIX = '$VBT'; // only these 4 bytes are checked (intel_bios.c)
export const VBT_SIGNATURE_SIZE = 20;
export const VBT_OFF_SIGNATURE = 0x00;
export const VBT_OFF_VERSION = 0x14;
export const VBT_OFF_HEADER_SIZE = 0x16;
export const VBT_OFF_VBT_SIZE = 0x18;
export const VBT_OFF_CHECKSUM = 0x1a;
export const VBT_OFF_BDB_OFFSET = 0x1c;
export const VBT_OFF_AIM_OFFSET = 0x20; // u32 aim_offset[4]
export const VBT_AIM_OFFSET_COUNT = 4;
export const VBT_HEADER_SIZE = 0x30; // sizeof(struct vbt_header)
export const VBT_HEADER_VERSION = 100; // "1.0", every coreboot VBT (reference §6)

// struct bdb_header (22 bytes) — intel_vbt_defs.h
export const BDB_SIGNATURE = 'BIOS_DATA_BLOCK '; // 16 bytes, trailing space
export const BDB_OFF_SIGNATURE = 0x00;
export const BDB_OFF_VERSION = 0x10;
export const BDB_OFF_HEADER_SIZE = 0x12;
export const BDB_OFF_BDB_SIZE = 0x14;
export const BDB_HEADER_SIZE = 22; // sizeof(struct bdb_header)

// Block header: u8 id, u16 size (payload bytes, excluding these 3) — intel_bios.c
export const BLOCK_HEADER_SIZE = 3;
/** Largest payload a u16 block size can describe. */
export const BLOCK_MAX_SIZE_U16 = 0xffff;
/**
 * Block 53 (MIPI sequence) with payload version byte >= 3: the u16 size is not used; a u32 at
 * payload offset +1 gives the sequence data length, and the version byte plus that u32 (5 bytes)
 * come on top (intel_bios.c init_bdb_block; IGT intel_vbt_decode; shared/fixtures/vbt/SOURCES.md).
 */
export const BDB_MIPI_SEQUENCE = 53;
export const MIPI_SEQUENCE_V3 = 3;
export const MIPI_SEQUENCE_V3_PREFIX = 5;

/**
 * A final block may end this many bytes past bdb_size (still inside vbt_size): 279 of 470 coreboot
 * VBTs do, and i915 / intel_vbt_decode then drop that block (reference §6, SOURCES.md).
 */
export const BDB_FINAL_BLOCK_OVERRUN_ALLOWANCE = 1;

// enum bdb_block_id — intel_vbt_defs.h, IGT tools/intel_vbt_defs.h (reference §4.3)
export const BDB_GENERAL_FEATURES = 1;
export const BDB_GENERAL_DEFINITIONS = 2;
export const BDB_DRIVER_FEATURES = 12;
export const BDB_LFP_OPTIONS = 40;

export const BDB_BLOCK_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: 'General Features',
  2: 'General Definitions',
  3: 'Display Toggle',
  4: 'Mode Support List',
  5: 'Generic Mode Table',
  6: 'Ext MMIO Regs',
  7: 'SWF IO',
  8: 'SWF MMIO',
  9: 'PSR',
  10: 'Mode Removal Table',
  11: 'Child Device Table',
  12: 'Driver Features',
  13: 'Driver Persistence',
  14: 'Ext Table Ptrs',
  15: 'Dot Clock Override',
  16: 'Display Select',
  17: 'SV Test Functions',
  18: 'Driver Rotation',
  19: 'Display Remove',
  20: 'OEM Custom',
  21: 'EFP List',
  22: 'SDVO LVDS Options',
  23: 'SDVO LVDS DTD',
  24: 'SDVO LVDS PnP ID',
  25: 'SDVO LVDS PPS',
  26: 'TV Options',
  27: 'eDP',
  28: 'EFP DTD',
  29: 'Display Select IVB',
  30: 'Display Remove IVB',
  31: 'Display Select HSW',
  32: 'Display Remove HSW',
  40: 'LFP Options',
  41: 'LFP Data Pointers',
  42: 'LFP Data',
  43: 'LFP Backlight',
  44: 'LFP Power',
  45: 'eDP BFI',
  46: 'Chromaticity',
  50: 'MIPI',
  51: 'Fixed Set Mode',
  52: 'MIPI Config',
  53: 'MIPI Sequence',
  54: 'RGB Palette',
  55: 'Compression Parameters (old)',
  56: 'Compression Parameters',
  57: 'Vswing/Preemphasis',
  58: 'Generic DTD',
  252: 'INT15 Hook',
  253: 'PRD Table',
  254: 'Skip',
});

export function blockName(id: number): string {
  return BDB_BLOCK_NAMES[id] ?? `Unknown block ${id}`;
}
