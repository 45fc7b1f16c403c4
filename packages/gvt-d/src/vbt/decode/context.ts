/**
 * How intel_vbt_decode (igt-gpu-tools 1.27.1, tools/intel_vbt_decode.c) finds and copies blocks,
 * reproduced step for step so the text it prints can be reproduced too:
 *
 * - find_raw_section: walk the blocks from the BDB header to bdb_size (clipped to the file size);
 *   a block whose data runs past that end ends the walk. The MIPI sequence block v3+ takes its
 *   size from the u32 after its version byte (and the walk skips only that many bytes).
 * - find_section: copy the block into a zeroed buffer at least as large as the structure the
 *   tool knows (block_min_size), warn on stderr when a BDB >= 155 block is larger than that, and
 *   for block 41 (LFP data table pointers) build one when it is absent (BDB >= 155), make its
 *   offsets relative to block 42 and validate them.
 */
import { Mem } from './mem.js';

export const BDB_GENERAL_FEATURES = 1;
export const BDB_GENERAL_DEFINITIONS = 2;
export const BDB_PSR = 9;
export const BDB_CHILD_DEVICE_TABLE = 11;
export const BDB_DRIVER_FEATURES = 12;
export const BDB_SDVO_LVDS_OPTIONS = 22;
export const BDB_SDVO_PANEL_DTDS = 23;
export const BDB_EDP = 27;
export const BDB_LVDS_OPTIONS = 40;
export const BDB_LVDS_LFP_DATA_PTRS = 41;
export const BDB_LVDS_LFP_DATA = 42;
export const BDB_LVDS_BACKLIGHT = 43;
export const BDB_LFP_POWER = 44;
export const BDB_MIPI_CONFIG = 52;
export const BDB_MIPI_SEQUENCE = 53;
export const BDB_COMPRESSION_PARAMETERS = 56;
export const BDB_GENERIC_DTD = 58;

// sizeof() of the structures of intel_vbt_defs.h that 1.27.1 compiles against.
export const SIZEOF = Object.freeze({
  generalFeatures: 7,
  generalDefinitions: 5,
  psr: 100,
  legacyChildDevices: 1,
  driverFeatures: 19,
  sdvoLvdsOptions: 22,
  edp: 812,
  lvdsOptions: 34,
  lfpDataPtrs: 148,
  fpTiming: 46,
  dvoTiming: 18,
  pnpId: 10,
  lfpData: 16 * (46 + 18 + 10),
  panelName: 13,
  lfpDataTail: 310,
  backlight: 305,
  backlightEntry: 6,
  lfpPower: 78,
  mipiConfig: 822,
  mipiConfigEntry: 122,
  mipiSequence: 1,
  compressionParameters: 210,
  dscEntry: 13,
  genericDtd: 2,
  childDevice: 39,
  vbtHeader: 48,
  bdbHeader: 22,
});

/** One block as find_section returns it: id, size and a copy of header + data, zero-padded. */
export interface DecodedBlock {
  id: number;
  /** The block's size (for MIPI sequence v3+: the u32 size plus 5). */
  size: number;
  /** The 3 header bytes and the data, in a buffer of 3 + max(size, min size). */
  raw: Mem;
  /** The data: a view of raw past the 3 header bytes (block 41's fix-up shows in both). */
  data: Mem;
}

export interface DecodeOptions {
  /** PCI device id (intel_vbt_decode --devid); picks the SSC frequencies of Gen2/3/4. */
  devid?: number;
  /** Panel type to show (--panel-type); default: block 40's, else 0. */
  panelType?: number;
  /** Show every panel, not only the current one (--all-panels). */
  allPanels?: boolean;
  /** Hex-dump every block too (--hexdump). */
  hexdump?: boolean;
}

export class VbtContext {
  readonly file: Mem;
  readonly vbtOffset: number;
  readonly bdbOffset: number;
  /** The file size (what the tool clips bdb_size to). */
  readonly size: number;
  readonly devid: number;
  panelType = 0;
  readonly allPanels: boolean;
  readonly hexdump: boolean;
  readonly stderr: string[] = [];

  constructor(file: Uint8Array, vbtOffset: number, options: DecodeOptions) {
    this.file = new Mem(file);
    this.vbtOffset = vbtOffset;
    this.bdbOffset = vbtOffset + this.file.u32(vbtOffset + 0x1c);
    this.size = file.length;
    this.devid = options.devid ?? -1;
    this.allPanels = options.allPanels ?? false;
    this.hexdump = options.hexdump ?? false;
  }

  get bdbVersion(): number {
    return this.file.u16(this.bdbOffset + 0x10);
  }

  /** A byte of the BDB (offset from the BDB header). */
  bdb(off: number): number {
    return this.file.u8(this.bdbOffset + off);
  }

  private blockSizeAt(off: number): number {
    // _get_blocksize: MIPI sequence v3+ has a u32 size after its version byte.
    if (this.bdb(off) === BDB_MIPI_SEQUENCE && this.bdb(off + 3) >= 3)
      return this.file.u32(this.bdbOffset + off + 4);
    return this.file.u16(this.bdbOffset + off + 1);
  }

  /** find_raw_section: offset (from the BDB header) of a block's data, or -1. */
  findRaw(id: number): number {
    let index = this.file.u16(this.bdbOffset + 0x12);
    let total = this.file.u16(this.bdbOffset + 0x14);
    if (total > this.size) total = this.size;
    while (index + 3 < total) {
      const currentId = this.bdb(index);
      const size = this.blockSizeAt(index);
      index += 3;
      if (index + size > total) return -1;
      if (currentId === id) return index;
      index += size;
    }
    return -1;
  }

  /** The size field of the block whose data starts at `dataOff` (from the BDB header). */
  rawSize(dataOff: number): number {
    return this.blockSizeAt(dataOff - 3);
  }

  private minSize(id: number): number {
    switch (id) {
      case BDB_GENERAL_FEATURES:
        return SIZEOF.generalFeatures;
      case BDB_GENERAL_DEFINITIONS:
        return SIZEOF.generalDefinitions;
      case BDB_PSR:
        return SIZEOF.psr;
      case BDB_CHILD_DEVICE_TABLE:
        return SIZEOF.legacyChildDevices;
      case BDB_DRIVER_FEATURES:
        return SIZEOF.driverFeatures;
      case BDB_SDVO_LVDS_OPTIONS:
        return SIZEOF.sdvoLvdsOptions;
      case BDB_EDP:
        return SIZEOF.edp;
      case BDB_LVDS_OPTIONS:
        return SIZEOF.lvdsOptions;
      case BDB_LVDS_LFP_DATA_PTRS:
        return SIZEOF.lfpDataPtrs;
      case BDB_LVDS_LFP_DATA:
        return this.lfpDataMinSize();
      case BDB_LVDS_BACKLIGHT:
        return SIZEOF.backlight;
      case BDB_LFP_POWER:
        return SIZEOF.lfpPower;
      case BDB_MIPI_CONFIG:
        return SIZEOF.mipiConfig;
      case BDB_MIPI_SEQUENCE:
        return SIZEOF.mipiSequence;
      case BDB_COMPRESSION_PARAMETERS:
        return SIZEOF.compressionParameters;
      case BDB_GENERIC_DTD:
        return SIZEOF.genericDtd;
      default:
        return 0;
    }
  }

  private lfpDataMinSize(): number {
    const ptrs = this.find(BDB_LVDS_LFP_DATA_PTRS);
    if (!ptrs) return 0;
    let size = SIZEOF.lfpData;
    if (ptrs.data.u8(PANEL_NAME_PTR + 2))
      size = Math.max(size, ptrs.data.u16(PANEL_NAME_PTR) + SIZEOF.lfpDataTail);
    return size;
  }

  /** find_section: the block, copied and (for 41) generated and fixed up; undefined if absent. */
  find(id: number): DecodedBlock | undefined {
    const minSize = this.minSize(id);
    let source: Mem | undefined; // header + data
    const off = this.findRaw(id);
    if (off >= 0) {
      const size = this.rawSize(off);
      const extra = id === BDB_MIPI_SEQUENCE && this.bdb(off) >= 3 ? 5 : 0;
      source = this.file.slice(this.bdbOffset + off - 3, 3 + size + extra);
    } else if (id === BDB_LVDS_LFP_DATA_PTRS) {
      this.stderr.push('Generating LVDS data table pointers');
      const generated = this.generateLfpDataPtrs();
      if (generated) source = generated;
    }
    if (!source) return undefined;
    let size = id === BDB_MIPI_SEQUENCE ? sizeFromHeader(source) : source.u16(1);
    if (id === BDB_MIPI_SEQUENCE && source.u8(3) >= 3) size += 5;
    if (
      minSize &&
      size > minSize &&
      id !== BDB_CHILD_DEVICE_TABLE &&
      id !== BDB_SDVO_LVDS_OPTIONS &&
      id !== BDB_GENERAL_DEFINITIONS &&
      this.bdbVersion >= 155
    ) {
      this.stderr.push(`Block ${id} min size ${minSize} less than block size ${size}`);
    }
    const raw = source.slice(0, 3 + Math.max(size, minSize));
    const block: DecodedBlock = { id, size, raw, data: raw.view(3) };
    if (id === BDB_LVDS_LFP_DATA_PTRS) {
      if (!this.fixupLfpDataPtrs(block)) {
        this.stderr.push('VBT has malformed LFP data table pointers');
        return undefined;
      }
    }
    return block;
  }

  /** generate_lvds_data_ptrs: block 41 for a VBT that has only block 42 (BDB >= 155). */
  private generateLfpDataPtrs(): Mem | undefined {
    if (this.bdbVersion < 155) return undefined;
    const fpTimingSize = 38;
    const block = this.findRaw(BDB_LVDS_LFP_DATA);
    if (block < 0) return undefined;
    const blockSize = this.rawSize(block);
    let size = fpTimingSize + SIZEOF.dvoTiming + SIZEOF.pnpId;
    if (size * 16 > blockSize) return undefined;
    const out = new Uint8Array(3 + SIZEOF.lfpDataPtrs);
    const dv = new DataView(out.buffer);
    out[0] = BDB_LVDS_LFP_DATA_PTRS;
    dv.setUint16(1, SIZEOF.lfpDataPtrs, true);
    const table = (i: number, t: number) => 3 + 1 + i * 9 + t * 3; // fp 0, dvo 1, pnp 2
    const make = (at: number, tableSize: number, total: number) => {
      if (total < tableSize) return total;
      out[at + 2] = tableSize;
      dv.setUint16(at, total - tableSize, true);
      return total - tableSize;
    };
    size = make(table(0, 2), SIZEOF.pnpId, size);
    size = make(table(0, 1), SIZEOF.dvoTiming, size);
    size = make(table(0, 0), fpTimingSize, size);
    let entries = 0;
    for (let t = 0; t < 3; t++) if (out[table(0, t) + 2]) entries++;
    out[3] = entries;
    if (size !== 0 || entries !== 3) return undefined;
    size = fpTimingSize + SIZEOF.dvoTiming + SIZEOF.pnpId;
    for (let i = 1; i < 16; i++) {
      for (let t = 0; t < 3; t++) {
        out[table(i, t) + 2] = out[table(i - 1, t) + 2];
        dv.setUint16(table(i, t), (dv.getUint16(table(i - 1, t), true) + size) & 0xffff, true);
      }
    }
    if (16 * (size + SIZEOF.panelName) <= blockSize) {
      out[3 + PANEL_NAME_PTR + 2] = SIZEOF.panelName;
      dv.setUint16(3 + PANEL_NAME_PTR, (size * 16) & 0xffff, true);
    }
    const offset = block; // offset of block 42's data from the BDB
    for (let i = 0; i < 16; i++) {
      for (let t = 0; t < 3; t++)
        dv.setUint16(table(i, t), (dv.getUint16(table(i, t), true) + offset) & 0xffff, true);
    }
    if (dv.getUint16(3 + PANEL_NAME_PTR, true)) {
      dv.setUint16(3 + PANEL_NAME_PTR, (dv.getUint16(3 + PANEL_NAME_PTR, true) + offset) & 0xffff, true);
    }
    return new Mem(out);
  }

  /** fixup_lfp_data_ptrs + validate_lfp_data_ptrs, in place on the copy. */
  private fixupLfpDataPtrs(block: DecodedBlock): boolean {
    const p = block.data.bytes;
    const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
    const raw = this.findRaw(BDB_LVDS_LFP_DATA);
    const offset = Math.max(raw, 0); // raw_block_offset (0 when block 42 is absent)
    const ptr = (i: number, t: number) => 1 + i * 9 + t * 3;
    for (let i = 0; i < 16; i++) {
      for (let t = 0; t < 3; t++) if (dv.getUint16(ptr(i, t), true) < offset) return false;
      for (let t = 0; t < 3; t++) dv.setUint16(ptr(i, t), dv.getUint16(ptr(i, t), true) - offset, true);
    }
    if (p[PANEL_NAME_PTR + 2]) {
      if (dv.getUint16(PANEL_NAME_PTR, true) < offset) return false;
      dv.setUint16(PANEL_NAME_PTR, dv.getUint16(PANEL_NAME_PTR, true) - offset, true);
    }
    return this.validateLfpDataPtrs(block.data);
  }

  private validateLfpDataPtrs(p: Mem): boolean {
    const block = this.findRaw(BDB_LVDS_LFP_DATA);
    if (block < 0) return false;
    const dataBlockSize = this.rawSize(block);
    if (dataBlockSize === 0) return false;
    if (p.u8(0) !== 3) return false;
    const off = (i: number, t: number) => p.u16(1 + i * 9 + t * 3);
    const tsize = (i: number, t: number) => p.u8(1 + i * 9 + t * 3 + 2);
    let fpTimingSize = tsize(0, 0);
    const dvoTimingSize = tsize(0, 1);
    const pnpSize = tsize(0, 2);
    const panelNameSize = p.u8(PANEL_NAME_PTR + 2);
    if (fpTimingSize < 32 || dvoTimingSize !== SIZEOF.dvoTiming || pnpSize !== SIZEOF.pnpId) return false;
    if (panelNameSize !== 0 && panelNameSize !== SIZEOF.panelName) return false;
    const lfpDataSize = off(1, 0) - off(0, 0);
    if (16 * lfpDataSize > dataBlockSize) return false;
    for (let i = 1; i < 16; i++) {
      if (tsize(i, 0) !== fpTimingSize || tsize(i, 1) !== dvoTimingSize || tsize(i, 2) !== pnpSize)
        return false;
      for (let t = 0; t < 3; t++) if (off(i, t) - off(i - 1, t) !== lfpDataSize) return false;
    }
    if (fpTimingSize + 6 + dvoTimingSize + pnpSize === lfpDataSize) fpTimingSize += 6;
    if (fpTimingSize + dvoTimingSize + pnpSize !== lfpDataSize) return false;
    if (
      off(0, 0) + fpTimingSize !== off(0, 1) ||
      off(0, 1) + dvoTimingSize !== off(0, 2) ||
      off(0, 2) + pnpSize !== lfpDataSize
    ) {
      return false;
    }
    for (let i = 0; i < 16; i++) {
      if (
        off(i, 0) + fpTimingSize > dataBlockSize ||
        off(i, 1) + dvoTimingSize > dataBlockSize ||
        off(i, 2) + pnpSize > dataBlockSize
      ) {
        return false;
      }
    }
    if (p.u16(PANEL_NAME_PTR) + 16 * panelNameSize > dataBlockSize) return false;
    for (let i = 0; i < 16; i++) {
      // The fp_timing 0xffff terminator, read where the tool reads it (in the file).
      if (this.file.u16(this.bdbOffset + block + off(i, 0) + fpTimingSize - 2) !== 0xffff) return false;
    }
    return true;
  }

  /** Whether panel i is shown (the current one, or all with --all-panels). */
  shows(i: number): boolean {
    return i === this.panelType || this.allPanels;
  }

  /** "\tPanel N *" or "\tPanel N". */
  panelHeading(i: number, label = 'Panel'): string {
    return `\t${label} ${i}${this.panelType === i ? ' *' : ''}`;
  }

  /** decode_ssc_freq: MHz of an SSC frequency bit for the platform's generation. */
  sscFreq(alternate: boolean | number): number {
    switch (intelGen(this.devid)) {
      case 2:
        return alternate ? 66 : 48;
      case 3:
      case 4:
        return alternate ? 100 : 96;
      default:
        return alternate ? 100 : 120;
    }
  }
}

/** Offset of panel_name (struct lvds_lfp_data_ptr_table) in struct bdb_lvds_lfp_data_ptrs. */
export const PANEL_NAME_PTR = 1 + 16 * 9;

function sizeFromHeader(source: Mem): number {
  return source.u8(3) >= 3 ? source.u32(4) : source.u16(1);
}

// PCI device ids of the generations whose SSC frequencies differ (i915_pciids.h); every other
// device id, and none (-1), decodes as the later generations do.
const GEN2 = [0x3577, 0x2562, 0x3582, 0x358e, 0x2572];
const GEN3 = [0x2582, 0x258a, 0x2592, 0x2772, 0x27a2, 0x27ae, 0x29b2, 0x29c2, 0x29d2, 0xa001, 0xa011];
const GEN4 = [
  0x29a2, 0x2992, 0x2982, 0x2972, 0x2a02, 0x2a12, 0x2a42, 0x2e02, 0x2e12, 0x2e22, 0x2e32, 0x2e42, 0x2e92,
];

/** intel_gen() for the ids that matter to the decoder: 2, 3, 4, or 0 for anything else. */
export function intelGen(devid: number): number {
  if (GEN2.includes(devid)) return 2;
  if (GEN3.includes(devid)) return 3;
  if (GEN4.includes(devid)) return 4;
  return 0;
}
