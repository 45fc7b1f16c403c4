/**
 * A bounds-checked little-endian view of firmware bytes (OpRegion, VBT). Every read names the
 * field it is for, so a short or corrupt input ends in a VfioError that says which field, at
 * which offset, ran past the end: never a RangeError, never an `undefined` read.
 */
import { VfioError } from '@vfiokit/core';

export class ByteReader {
  /**
   * @param bytes the bytes this reader may touch (nothing outside them is ever read)
   * @param region the name used in errors ("IGD OpRegion", "VBT")
   * @param base where bytes[0] sits in the outer structure, so errors give outer offsets
   */
  constructor(
    readonly bytes: Uint8Array,
    readonly region: string,
    readonly base = 0,
  ) {}

  get length(): number {
    return this.bytes.length;
  }

  /** Throws EINVAL unless [offset, offset + size) lies inside the bytes. */
  need(offset: number, size: number, field: string): void {
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(size) ||
      offset < 0 ||
      size < 0 ||
      offset + size > this.bytes.length
    ) {
      throw this.invalid(
        offset,
        `${field} needs ${size} byte(s) at offset 0x${hex(this.base + offset)} but the ${this.region} ends at 0x${hex(this.base + this.bytes.length)}.`,
        'The input is truncated or a size/offset field is corrupt; supply the complete image.',
      );
    }
  }

  u8(offset: number, field: string): number {
    this.need(offset, 1, field);
    return this.bytes[offset];
  }

  u16(offset: number, field: string): number {
    this.need(offset, 2, field);
    const b = this.bytes;
    return b[offset] | (b[offset + 1] << 8);
  }

  u32(offset: number, field: string): number {
    this.need(offset, 4, field);
    const b = this.bytes;
    return (b[offset] | (b[offset + 1] << 8) | (b[offset + 2] << 16) | (b[offset + 3] << 24)) >>> 0;
  }

  /** A u64, exact (toJsonValue writes a bigint as a "0x…" string). */
  u64Big(offset: number, field: string): bigint {
    const lo = this.u32(offset, field);
    const hi = this.u32(offset + 4, field);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** A u64 that must be exact as a JS number (addresses and offsets: at most 2^53 - 1). */
  u64(offset: number, field: string): number {
    const lo = this.u32(offset, field);
    const hi = this.u32(offset + 4, field);
    if (hi > 0x1fffff) {
      throw this.invalid(
        offset,
        `${field} = 0x${this.u64Big(offset, field).toString(16)} is larger than any physical address or offset (2^53 - 1).`,
        'The field is corrupt; rebuild the OpRegion.',
      );
    }
    return hi * 0x1_0000_0000 + lo;
  }

  /** A copy of [offset, offset + size). */
  slice(offset: number, size: number, field: string): Uint8Array {
    this.need(offset, size, field);
    return this.bytes.slice(offset, offset + size);
  }

  /** A view of [offset, offset + size), sharing the bytes. */
  view(offset: number, size: number, field: string): Uint8Array {
    this.need(offset, size, field);
    return this.bytes.subarray(offset, offset + size);
  }

  /** A fixed-width byte string, cut at the first NUL (Latin-1, as firmware writes ASCII). */
  text(offset: number, size: number, field: string): string {
    this.need(offset, size, field);
    let s = '';
    for (let i = offset; i < offset + size; i++) {
      const c = this.bytes[i];
      if (c === 0) break;
      s += String.fromCharCode(c);
    }
    return s;
  }

  /** True when the bytes at offset equal the ASCII signature (false if they do not fit). */
  startsWith(offset: number, signature: string): boolean {
    if (offset < 0 || offset + signature.length > this.bytes.length) return false;
    for (let i = 0; i < signature.length; i++) {
      if (this.bytes[offset + i] !== signature.charCodeAt(i)) return false;
    }
    return true;
  }

  /** An EINVAL error at an offset of this reader, reported as an outer offset. */
  invalid(offset: number, problem: string, hint?: string): VfioError {
    return new VfioError('EINVAL', problem, { region: this.region, offset: this.base + offset, hint });
  }
}

export function hex(n: number): string {
  return n.toString(16);
}

const HEX_DIGITS = '0123456789abcdef';

/** Lower-case hex of a byte string, two digits a byte. */
export function bytesToHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    s += HEX_DIGITS[b >> 4] + HEX_DIGITS[b & 15];
  }
  return s;
}

/**
 * A JSON-safe copy of a parsed OpRegion or VBT: every Uint8Array becomes a lower-case hex string
 * and every bigint (the 64-bit fields: RVDA, FDSS, a physical address) a "0x…" hex string, exact.
 * `JSON.stringify(toJsonValue(parseVbt(bytes)))` gives a stable, bigint-free document.
 */
export function toJsonValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return bytesToHex(value);
  if (typeof value === 'bigint') return `0x${value.toString(16)}`;
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJsonValue(v);
    return out;
  }
  return value;
}
