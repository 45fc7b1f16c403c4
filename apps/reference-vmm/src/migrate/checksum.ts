/**
 * The migration channel's integrity check: core's migrationChecksum (CRC32, the one check every
 * vfiokit migration stream uses) over a message made of several parts (a prefix and a view of
 * guest RAM), checked as if joined, with no copy.
 */
import { migrationChecksum } from '@vfiokit/core';

/** CRC32 of `parts` as one byte string, continuing from `seed` (the CRC of what came before). */
export function checksum(parts: readonly Uint8Array[], seed = 0): number {
  let crc = seed;
  for (const p of parts) crc = migrationChecksum(p, crc);
  return crc;
}
