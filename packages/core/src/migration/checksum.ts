/**
 * The integrity check of migration streams, one for every stream vfiokit writes (a plugin's
 * device state and memory, the VMM's guest RAM): CRC32, the IEEE 802.3 polynomial of zlib and
 * gzip, computed by @vfiokit/crc32 (a carry-less-multiply kernel, or node:zlib where that is
 * missing: the same numbers). It detects every burst of up to 32 flipped bits. `seed` is the
 * CRC of the bytes before, so a record that arrives in pieces is checked as the pieces pass,
 * without gathering them: checksum(b, checksum(a)) === checksum(a + b).
 */
import { copyCrc32, crc32 } from '@vfiokit/crc32';

/** CRC32 of `bytes`, continued from `seed` (0 to start). An unsigned 32-bit number. */
export function migrationChecksum(bytes: Uint8Array, seed = 0): number {
  return crc32(bytes, seed);
}

/**
 * Copy `bytes` into `target` at `offset` and return migrationChecksum(bytes, seed), reading the
 * bytes once: how a resuming stream puts pages where they belong and checks them as they pass.
 * A RangeError when they do not fit (the caller checks its bounds first).
 */
export function copyWithChecksum(target: Uint8Array, offset: number, bytes: Uint8Array, seed = 0): number {
  return copyCrc32(target, offset, bytes, seed);
}
