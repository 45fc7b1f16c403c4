/**
 * The migration channel's integrity check: CRC32 (IEEE 802.3, the polynomial of zlib and
 * gzip) from node:zlib, which runs natively with the CPU's carry-less multiply where there is
 * one. It detects every burst of up to 32 flipped bits in a message, and costs one pass over
 * the bytes, with no copy: a message made of several parts (a prefix and a view of guest RAM)
 * is checked as if joined.
 */
import { crc32 } from 'node:zlib';

/** CRC32 of `parts` as one byte string, continuing from `seed` (the CRC of what came before). */
export function checksum(parts: readonly Uint8Array[], seed = 0): number {
  let crc = seed;
  for (const p of parts) crc = crc32(p, crc);
  return crc >>> 0;
}
