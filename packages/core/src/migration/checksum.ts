/**
 * The integrity check of migration streams, one for every stream vfiokit writes (a plugin's
 * device state and memory, the VMM's guest RAM): CRC32, the IEEE 802.3 polynomial of zlib and
 * gzip, computed by @vfiokit/crc32 (a carry-less-multiply kernel, or node:zlib where that is
 * missing: the same numbers). It detects every burst of up to 32 flipped bits. `seed` is the
 * CRC of the bytes before, so a record that arrives in pieces is checked as the pieces pass,
 * without gathering them: checksum(b, checksum(a)) === checksum(a + b).
 */
import { Crc32Ahead, copyCrc32, crc32 } from '@vfiokit/crc32';

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

/** Checksums of ranges of one buffer computed ahead of their use (migrationChecksumAhead). */
export interface ChecksumAhead {
  /** Ranges submitted and not taken yet (at most @vfiokit/crc32's CRC32_AHEAD_SLOTS, 64). */
  readonly pending: number;
  /** Start checking `length` bytes at `offset`; they must not change until next() gives their checksum. */
  submit(offset: number, length: number): void;
  /** migrationChecksum of the oldest range submitted and not taken, waiting for it if need be. */
  next(): number;
  /** Drop the ranges not taken; nothing reads the buffer after this returns. */
  close(): void;
}

/**
 * A checker that computes the checksums of ranges of `memory` on a background thread while the
 * caller moves the bytes before them: how a saving stream checks the pages of a stopped device
 * while the transport carries the previous run (the check reads memory, the transport writes
 * it; on two CPUs the two streams of memory traffic overlap instead of adding up). Without the
 * native kernel next() computes the checksum when asked: the same numbers. Close it before the
 * bytes may change again (before the device runs).
 */
export function migrationChecksumAhead(memory: Uint8Array): ChecksumAhead {
  return new Crc32Ahead(memory);
}
