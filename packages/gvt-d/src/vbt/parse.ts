/**
 * VBT parser and validator: the VBT header, the BDB header and the block list, with blocks 1, 2,
 * 12 and 40 decoded and every other block kept as raw bytes.
 *
 * Validation follows i915 (intel_bios.c intel_bios_is_valid_vbt) and is stricter only where the
 * input would otherwise be meaningless: "$VBT" prefix, vbt_size inside the input, BDB header and
 * bdb_size inside vbt_size, BDB signature, and every block inside the BDB (a final block may end
 * BDB_FINAL_BLOCK_OVERRUN_ALLOWANCE byte(s) late). The checksum is computed and reported but never
 * enforced: about half of the real VBTs fail it and i915 does not check it (reference §4.3, §6).
 */
import { ByteReader } from '../bytes.js';
import {
  type DriverFeatures,
  decodeDriverFeatures,
  decodeGeneralDefinitions,
  decodeGeneralFeatures,
  decodeLfpOptions,
  type GeneralDefinitions,
  type GeneralFeatures,
  type LfpOptions,
} from './blocks.js';
import {
  BDB_DRIVER_FEATURES,
  BDB_FINAL_BLOCK_OVERRUN_ALLOWANCE,
  BDB_GENERAL_DEFINITIONS,
  BDB_GENERAL_FEATURES,
  BDB_HEADER_SIZE,
  BDB_LFP_OPTIONS,
  BDB_MIPI_SEQUENCE,
  BDB_OFF_BDB_SIZE,
  BDB_OFF_HEADER_SIZE,
  BDB_OFF_VERSION,
  BDB_SIGNATURE,
  BLOCK_HEADER_SIZE,
  blockName,
  MIPI_SEQUENCE_V3,
  MIPI_SEQUENCE_V3_PREFIX,
  VBT_AIM_OFFSET_COUNT,
  VBT_HEADER_SIZE,
  VBT_OFF_AIM_OFFSET,
  VBT_OFF_BDB_OFFSET,
  VBT_OFF_CHECKSUM,
  VBT_OFF_HEADER_SIZE,
  VBT_OFF_SIGNATURE,
  VBT_OFF_VBT_SIZE,
  VBT_OFF_VERSION,
  VBT_SIGNATURE_PREFIX,
  VBT_SIGNATURE_SIZE,
} from './layout.js';

export interface VbtHeader {
  /** All 20 signature bytes, e.g. "$VBT SKYLAKE        " (only "$VBT" is checked). */
  signature: string;
  version: number;
  headerSize: number;
  vbtSize: number;
  checksum: number;
  bdbOffset: number;
  aimOffsets: number[];
}

export interface VbtChecksum {
  /** Sum of vbt[0 .. vbtSize) mod 256; 0 when the checksum byte is right. */
  byteSum: number;
  ok: boolean;
}

export interface BdbHeader {
  signature: string;
  version: number;
  headerSize: number;
  bdbSize: number;
}

export interface VbtBlock {
  id: number;
  name: string;
  /** Offset of the block's 3-byte header, from the start of the VBT. */
  offset: number;
  /** Payload length (for a MIPI sequence v3+ block: the u32 length plus its 5-byte prefix). */
  size: number;
  /** The payload ends past bdb_size (allowed for the last block); i915 would not see it. */
  pastBdbSize: boolean;
  /** The payload bytes (a copy). */
  data: Uint8Array;
}

export interface Vbt {
  header: VbtHeader;
  checksum: VbtChecksum;
  bdb: BdbHeader;
  /** Every block in file order. */
  blocks: VbtBlock[];
  generalFeatures?: GeneralFeatures;
  generalDefinitions?: GeneralDefinitions;
  driverFeatures?: DriverFeatures;
  lfpOptions?: LfpOptions;
  /** Bytes given after vbt_size (padding; not part of the VBT). */
  trailingBytes: number;
  /** Things a lenient parser accepted but a person may want to know. */
  warnings: string[];
}

export interface ParseVbtOptions {
  /** Offset of the VBT inside an outer structure (an OpRegion), added to error offsets. */
  base?: number;
  /** Region name used in errors. */
  region?: string;
}

/** Parse and validate a VBT. Trailing bytes after vbt_size are allowed and ignored. */
export function parseVbt(bytes: Uint8Array, options: ParseVbtOptions = {}): Vbt {
  const r = new ByteReader(bytes, options.region ?? 'VBT', options.base ?? 0);
  const warnings: string[] = [];

  r.need(0, VBT_HEADER_SIZE, 'VBT header (48 bytes)');
  if (!r.startsWith(VBT_OFF_SIGNATURE, VBT_SIGNATURE_PREFIX)) {
    throw r.invalid(
      VBT_OFF_SIGNATURE,
      `VBT signature does not start with "${VBT_SIGNATURE_PREFIX}" (found "${printable(r.text(VBT_OFF_SIGNATURE, 4, 'signature'))}").`,
      'This is not a Video BIOS Table; check the file or the OpRegion mailbox it came from.',
    );
  }
  const header: VbtHeader = {
    signature: r.text(VBT_OFF_SIGNATURE, VBT_SIGNATURE_SIZE, 'VBT signature'),
    version: r.u16(VBT_OFF_VERSION, 'VBT version'),
    headerSize: r.u16(VBT_OFF_HEADER_SIZE, 'VBT header_size'),
    vbtSize: r.u16(VBT_OFF_VBT_SIZE, 'vbt_size'),
    checksum: r.u8(VBT_OFF_CHECKSUM, 'VBT checksum'),
    bdbOffset: r.u32(VBT_OFF_BDB_OFFSET, 'bdb_offset'),
    aimOffsets: [],
  };
  for (let i = 0; i < VBT_AIM_OFFSET_COUNT; i++) {
    header.aimOffsets.push(r.u32(VBT_OFF_AIM_OFFSET + 4 * i, `aim_offset[${i}]`));
  }
  const { vbtSize, bdbOffset, headerSize } = header;
  if (vbtSize > bytes.length) {
    throw r.invalid(
      VBT_OFF_VBT_SIZE,
      `vbt_size (u16 at 0x18) is ${vbtSize} bytes but only ${bytes.length} byte(s) were given.`,
      'The VBT is truncated or vbt_size is corrupt.',
    );
  }
  if (vbtSize < VBT_HEADER_SIZE) {
    throw r.invalid(
      VBT_OFF_VBT_SIZE,
      `vbt_size (u16 at 0x18) is ${vbtSize}, smaller than the 48-byte VBT header.`,
      'vbt_size is corrupt.',
    );
  }
  if (headerSize < VBT_HEADER_SIZE || headerSize > vbtSize) {
    throw r.invalid(
      VBT_OFF_HEADER_SIZE,
      `VBT header_size (u16 at 0x16) is ${headerSize}; it must be at least 48 and at most vbt_size (${vbtSize}).`,
      'header_size is corrupt.',
    );
  }
  if (bdbOffset < headerSize || bdbOffset + BDB_HEADER_SIZE > vbtSize) {
    throw r.invalid(
      VBT_OFF_BDB_OFFSET,
      `bdb_offset (u32 at 0x1c) is ${bdbOffset}; the 22-byte BDB header must start after the VBT header (${headerSize}) and end inside vbt_size (${vbtSize}).`,
      'bdb_offset or vbt_size is corrupt.',
    );
  }

  let sum = 0;
  for (let i = 0; i < vbtSize; i++) sum += bytes[i];
  const byteSum = sum & 0xff;
  if (byteSum !== 0) {
    warnings.push(
      `checksum: the bytes of the VBT sum to ${byteSum} mod 256, not 0 (checksum byte 0x${header.checksum.toString(16)}); accepted, as i915 does not check it.`,
    );
  }

  // The BDB is read only inside vbt_size.
  const v = new ByteReader(bytes.subarray(0, vbtSize), r.region, r.base);
  if (!v.startsWith(bdbOffset, BDB_SIGNATURE)) {
    throw v.invalid(
      bdbOffset,
      `BDB signature at bdb_offset is "${printable(v.text(bdbOffset, 16, 'BDB signature'))}", not "${BDB_SIGNATURE}".`,
      'bdb_offset points at the wrong place or the BDB is corrupt.',
    );
  }
  const bdb: BdbHeader = {
    signature: BDB_SIGNATURE,
    version: v.u16(bdbOffset + BDB_OFF_VERSION, 'BDB version'),
    headerSize: v.u16(bdbOffset + BDB_OFF_HEADER_SIZE, 'BDB header_size'),
    bdbSize: v.u16(bdbOffset + BDB_OFF_BDB_SIZE, 'bdb_size'),
  };
  const bdbEnd = bdbOffset + bdb.bdbSize;
  if (bdbEnd > vbtSize) {
    throw v.invalid(
      bdbOffset + BDB_OFF_BDB_SIZE,
      `bdb_size is ${bdb.bdbSize}: the BDB would end at 0x${bdbEnd.toString(16)}, past vbt_size (0x${vbtSize.toString(16)}).`,
      'bdb_size or vbt_size is corrupt.',
    );
  }
  if (bdb.headerSize < BDB_HEADER_SIZE || bdb.headerSize > bdb.bdbSize) {
    throw v.invalid(
      bdbOffset + BDB_OFF_HEADER_SIZE,
      `BDB header_size is ${bdb.headerSize}; it must be at least 22 and at most bdb_size (${bdb.bdbSize}).`,
      'The BDB header is corrupt.',
    );
  }

  const blocks: VbtBlock[] = [];
  let pos = bdbOffset + bdb.headerSize;
  while (pos + BLOCK_HEADER_SIZE <= bdbEnd) {
    const id = v.u8(pos, 'block id');
    let size = v.u16(pos + 1, `block ${id} size`);
    const dataStart = pos + BLOCK_HEADER_SIZE;
    if (id === BDB_MIPI_SEQUENCE && dataStart < vbtSize && bytes[dataStart] >= MIPI_SEQUENCE_V3) {
      size = v.u32(dataStart + 1, 'block 53 (MIPI sequence v3+) u32 size') + MIPI_SEQUENCE_V3_PREFIX;
    }
    const dataEnd = dataStart + size;
    let pastBdbSize = false;
    if (dataEnd > bdbEnd) {
      const last = dataEnd <= bdbEnd + BDB_FINAL_BLOCK_OVERRUN_ALLOWANCE && dataEnd <= vbtSize;
      if (!last) {
        throw v.invalid(
          pos,
          `block ${id} (${blockName(id)}) of ${size} byte(s) ends at 0x${dataEnd.toString(16)}, ${dataEnd - bdbEnd} byte(s) past the end of the BDB (0x${bdbEnd.toString(16)}).`,
          `Only the final block may overrun bdb_size, by at most ${BDB_FINAL_BLOCK_OVERRUN_ALLOWANCE} byte; the block size or bdb_size is corrupt.`,
        );
      }
      pastBdbSize = true;
      warnings.push(
        `block ${id} (${blockName(id)}) at 0x${pos.toString(16)} ends ${dataEnd - bdbEnd} byte(s) past bdb_size; kept, though i915 would not see it.`,
      );
    }
    blocks.push({
      id,
      name: blockName(id),
      offset: pos,
      size,
      pastBdbSize,
      data: v.slice(dataStart, size, `block ${id} data`),
    });
    pos = dataEnd;
  }

  const vbt: Vbt = {
    header,
    checksum: { byteSum, ok: byteSum === 0 },
    bdb,
    blocks,
    trailingBytes: bytes.length - vbtSize,
    warnings,
  };
  const seen = new Set<number>();
  for (const block of blocks) {
    if (seen.has(block.id)) continue;
    seen.add(block.id);
    switch (block.id) {
      case BDB_GENERAL_FEATURES:
        vbt.generalFeatures = decodeGeneralFeatures(block.data);
        break;
      case BDB_GENERAL_DEFINITIONS:
        vbt.generalDefinitions = decodeGeneralDefinitions(block.data, warnings);
        break;
      case BDB_DRIVER_FEATURES:
        vbt.driverFeatures = decodeDriverFeatures(block.data);
        break;
      case BDB_LFP_OPTIONS:
        vbt.lfpOptions = decodeLfpOptions(block.data, bdb.version);
        break;
    }
  }
  return vbt;
}

/** The first block with this id, if any. */
export function findBlock(vbt: Vbt, id: number): VbtBlock | undefined {
  return vbt.blocks.find((b) => b.id === id);
}

function printable(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 0x20 && c < 0x7f ? s[i] : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return out;
}
