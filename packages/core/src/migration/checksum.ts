/**
 * The integrity check of migration streams, one for every stream vfiokit writes (a plugin's
 * device state and memory, the VMM's guest RAM): CRC32, the IEEE 802.3 polynomial of zlib and
 * gzip, computed by node:zlib. It detects every burst of up to 32 flipped bits. `seed` is the
 * CRC of the bytes before, so a record that arrives in pieces is checked as the pieces pass,
 * without gathering them: checksum(b, checksum(a)) === checksum(a + b).
 */
import { crc32 } from 'node:zlib';

/** CRC32 of `bytes`, continued from `seed` (0 to start). An unsigned 32-bit number. */
export function migrationChecksum(bytes: Uint8Array, seed = 0): number {
  return crc32(bytes, seed) >>> 0;
}
