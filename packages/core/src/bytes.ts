/**
 * Byte helpers every side uses (core, transports, the VMM, plugins): the page size, 2^32 for
 * splitting 64-bit values held in JS numbers, hex for messages, and little-endian values in
 * byte arrays (PCI config space, BARs and the VFIO structs are all little-endian).
 */

/** PAGE_SIZE on x86-64 (arch/x86/include/asm/page_types.h): mmap, DMA mapping and dirty-log granule. */
export const PAGE_SIZE = 4096;

/** 2^32: the weight of the high dword of a 64-bit value kept in a JS number. */
export const TWO_32 = 2 ** 32;

/** `0x` and lower-case hex digits, zero-padded to `width` digits. */
export function hex(value: number, width = 0): string {
  return `0x${value.toString(16).padStart(width, '0')}`;
}

/** `value` as `size` little-endian bytes (up to 8; exact for safe integers). */
export function leBytes(value: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  let v = value;
  for (let i = 0; i < size; i++) {
    b[i] = v % 256;
    v = Math.floor(v / 256);
  }
  return b;
}

/** The little-endian value of `size` bytes (1, 2 or 4) at `at`. */
export function readLe(b: Uint8Array, at: number, size: 1 | 2 | 4): number {
  if (size === 1) return b[at];
  if (size === 2) return b[at] | (b[at + 1] << 8);
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/** Store the low `size` bytes (1, 2 or 4) of `value` little-endian at `at`. */
export function writeLe(b: Uint8Array, at: number, size: 1 | 2 | 4, value: number): void {
  b[at] = value;
  if (size === 1) return;
  b[at + 1] = value >>> 8;
  if (size === 2) return;
  b[at + 2] = value >>> 16;
  b[at + 3] = value >>> 24;
}

/**
 * The longest copy done byte by byte (copyBytes): a register access is 1 to 8 bytes, and for
 * so few a loop costs a few ns where a call of TypedArray.prototype.set costs ~15.
 */
const SHORT_COPY = 16;

/**
 * Copy `n` bytes of `src` from `srcAt` into `dst` at `dstAt` (not overlapping): short copies (an
 * MMIO access) byte by byte, long ones with set, and neither makes a view. A range outside its
 * array is a RangeError, as for set, and nothing is copied.
 */
export function copyBytes(dst: Uint8Array, dstAt: number, src: Uint8Array, srcAt: number, n: number): void {
  if (!(dstAt >= 0 && srcAt >= 0 && n >= 0 && dstAt + n <= dst.length && srcAt + n <= src.length))
    throw new RangeError(
      `copyBytes: ${n} bytes from ${srcAt} of ${src.length} to ${dstAt} of ${dst.length} is out of range.`,
    );
  if (n <= SHORT_COPY) {
    for (let i = 0; i < n; i++) dst[dstAt + i] = src[srcAt + i];
  } else if (srcAt === 0 && n === src.length) dst.set(src, dstAt);
  else dst.set(src.subarray(srcAt, srcAt + n), dstAt);
}
