/**
 * A VBT builder: header, BDB header and blocks, with a checksum that makes the byte sum 0.
 * Used to make synthetic VBTs for tests and for a VMM that has no host VBT to pass through.
 */
import { VfioError } from '@vfiokit/core';
import {
  BDB_HEADER_SIZE,
  BDB_MIPI_SEQUENCE,
  BDB_OFF_BDB_SIZE,
  BDB_OFF_HEADER_SIZE,
  BDB_OFF_VERSION,
  BDB_SIGNATURE,
  BLOCK_HEADER_SIZE,
  BLOCK_MAX_SIZE_U16,
  MIPI_SEQUENCE_V3,
  MIPI_SEQUENCE_V3_PREFIX,
  VBT_HEADER_SIZE,
  VBT_HEADER_VERSION,
  VBT_OFF_BDB_OFFSET,
  VBT_OFF_CHECKSUM,
  VBT_OFF_HEADER_SIZE,
  VBT_OFF_VBT_SIZE,
  VBT_OFF_VERSION,
  VBT_SIGNATURE_PREFIX,
  VBT_SIGNATURE_SIZE,
} from './layout.js';

export interface VbtBlockInput {
  id: number;
  /**
   * The payload. For block 53 with a first byte >= 3 (MIPI sequence v3+), the payload includes the
   * version byte and the u32 length; the builder writes that u32 (payload length - 5) and a u16 size of 0.
   */
  data: Uint8Array;
}

export interface BuildVbtOptions {
  /** Platform name after "$VBT " in the 20-byte signature (default "SYNTHETIC"). */
  platform?: string;
  /** BDB version (default 229). */
  bdbVersion?: number;
  /** Leave the checksum byte 0 instead of making the byte sum 0. */
  skipChecksum?: boolean;
}

const VBT_MAX_SIZE = 0xffff; // vbt_size is a u16 (intel_vbt_defs.h)

export function buildVbt(blocks: readonly VbtBlockInput[], options: BuildVbtOptions = {}): Uint8Array {
  const platform = options.platform ?? 'SYNTHETIC';
  const bdbVersion = options.bdbVersion ?? 229;
  if (!Number.isInteger(bdbVersion) || bdbVersion < 0 || bdbVersion > 0xffff) {
    throw new VfioError('EINVAL', `BDB version ${bdbVersion} does not fit the u16 version field.`, {
      region: 'VBT',
      offset: VBT_HEADER_SIZE + BDB_OFF_VERSION,
      hint: 'Pass an integer 0..65535.',
    });
  }
  let size = VBT_HEADER_SIZE + BDB_HEADER_SIZE;
  for (const [i, block] of blocks.entries()) {
    const place = { region: 'VBT', offset: size };
    if (!Number.isInteger(block.id) || block.id < 0 || block.id > 0xff) {
      throw new VfioError('EINVAL', `block #${i} has id ${block.id}, which does not fit the u8 block id.`, {
        ...place,
        hint: 'Block ids are 0..255.',
      });
    }
    if (block.id === BDB_MIPI_SEQUENCE && block.data.length === 0) {
      throw new VfioError(
        'EINVAL',
        `block #${i} (MIPI sequence) is empty; readers take its version byte from the byte after the block header, which would be the next block's id.`,
        { ...place, hint: 'Give the block at least its version byte.' },
      );
    }
    const mipiV3 = isMipiV3(block);
    if (mipiV3 && block.data.length < MIPI_SEQUENCE_V3_PREFIX) {
      throw new VfioError(
        'EINVAL',
        `block #${i} (MIPI sequence v3+) has ${block.data.length} byte(s); it needs at least the version byte and the u32 length (5).`,
        { ...place, hint: 'Include the 5-byte prefix in the payload.' },
      );
    }
    if (!mipiV3 && block.data.length > BLOCK_MAX_SIZE_U16) {
      throw new VfioError(
        'EINVAL',
        `block #${i} (id ${block.id}) has ${block.data.length} bytes, more than the u16 block size allows.`,
        { ...place, hint: 'Split the data or shorten it.' },
      );
    }
    size += BLOCK_HEADER_SIZE + block.data.length;
  }
  if (size > VBT_MAX_SIZE) {
    throw new VfioError(
      'EINVAL',
      `the blocks make a ${size}-byte VBT; vbt_size (u16) allows at most 65535.`,
      {
        region: 'VBT',
        offset: VBT_OFF_VBT_SIZE,
        hint: 'Drop or shorten blocks.',
      },
    );
  }

  const out = new Uint8Array(size);
  const sig = `${VBT_SIGNATURE_PREFIX} ${platform}`
    .padEnd(VBT_SIGNATURE_SIZE, ' ')
    .slice(0, VBT_SIGNATURE_SIZE);
  writeAscii(out, 0, sig);
  writeU16(out, VBT_OFF_VERSION, VBT_HEADER_VERSION);
  writeU16(out, VBT_OFF_HEADER_SIZE, VBT_HEADER_SIZE);
  writeU16(out, VBT_OFF_VBT_SIZE, size);
  writeU32(out, VBT_OFF_BDB_OFFSET, VBT_HEADER_SIZE);

  const bdb = VBT_HEADER_SIZE;
  writeAscii(out, bdb, BDB_SIGNATURE);
  writeU16(out, bdb + BDB_OFF_VERSION, bdbVersion);
  writeU16(out, bdb + BDB_OFF_HEADER_SIZE, BDB_HEADER_SIZE);
  writeU16(out, bdb + BDB_OFF_BDB_SIZE, size - VBT_HEADER_SIZE);

  let pos = bdb + BDB_HEADER_SIZE;
  for (const block of blocks) {
    out[pos] = block.id;
    out.set(block.data, pos + BLOCK_HEADER_SIZE);
    if (isMipiV3(block)) {
      writeU16(out, pos + 1, 0);
      writeU32(out, pos + BLOCK_HEADER_SIZE + 1, block.data.length - MIPI_SEQUENCE_V3_PREFIX);
    } else {
      writeU16(out, pos + 1, block.data.length);
    }
    pos += BLOCK_HEADER_SIZE + block.data.length;
  }

  if (!options.skipChecksum) {
    let sum = 0;
    for (let i = 0; i < size; i++) sum += out[i];
    out[VBT_OFF_CHECKSUM] = (256 - (sum & 0xff)) & 0xff;
  }
  return out;
}

function isMipiV3(block: VbtBlockInput): boolean {
  return block.id === BDB_MIPI_SEQUENCE && block.data.length > 0 && block.data[0] >= MIPI_SEQUENCE_V3;
}

export function writeU16(out: Uint8Array, off: number, v: number): void {
  out[off] = v & 0xff;
  out[off + 1] = (v >>> 8) & 0xff;
}

export function writeU32(out: Uint8Array, off: number, v: number): void {
  out[off] = v & 0xff;
  out[off + 1] = (v >>> 8) & 0xff;
  out[off + 2] = (v >>> 16) & 0xff;
  out[off + 3] = (v >>> 24) & 0xff;
}

export function writeAscii(out: Uint8Array, off: number, s: string): void {
  for (let i = 0; i < s.length; i++) out[off + i] = s.charCodeAt(i) & 0xff;
}
