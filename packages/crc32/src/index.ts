/**
 * CRC32 with zlib's polynomial (IEEE 802.3, bit-reflected; the same number zlib.crc32, gzip and
 * PNG give), over bytes or while copying them. The native kernel (native/crc32.c) folds 64 or
 * 256 bytes at a time with carry-less multiplies and stores the blocks it has loaded, so a copy
 * with its check costs about what the copy alone costs. Without the addon, or on a CPU without
 * PCLMULQDQ (detected when the addon loads), node:zlib computes the same numbers.
 */
import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';

interface Crc32Addon {
  crc32(bytes: Uint8Array, seed: number): number;
  copyCrc32(target: Uint8Array, offset: number, bytes: Uint8Array, seed: number): number;
  /** The CPU has PCLMULQDQ; `wide`: AVX-512 with VPCLMULQDQ as well. */
  readonly accelerated: boolean;
  readonly wide: boolean;
}

/** Where node-gyp puts the addon, relative to this file (src/ or dist/). */
const ADDON_PATH = '../build/Release/vfiokit_crc32.node';

/** Below this many bytes node:zlib is as fast (the call costs more than the bytes). */
const NATIVE_MIN = 256;

function load(): { addon: Crc32Addon | undefined; reason: string } {
  if (process.env.VFIOKIT_CRC32 === 'zlib') return { addon: undefined, reason: 'VFIOKIT_CRC32=zlib' };
  let addon: Crc32Addon;
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as Crc32Addon;
  } catch (err) {
    return { addon: undefined, reason: `the addon is not built (${(err as Error).message.split('\n')[0]})` };
  }
  if (!addon.accelerated) return { addon: undefined, reason: 'the CPU has no PCLMULQDQ' };
  return { addon, reason: '' };
}

const { addon, reason } = load();

/** Which implementation computes the checks in this process, in words (benches print it). */
export const crc32Implementation: string = addon
  ? `native ${addon.wide ? 'AVX-512 VPCLMULQDQ' : 'PCLMULQDQ'}`
  : `node:zlib (${reason})`;

function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new RangeError(`a CRC32 seed is an unsigned 32-bit integer, not ${seed}.`);
}

function checkFits(target: Uint8Array, offset: number, length: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + length > target.length)
    throw new RangeError(`${length} bytes do not fit at offset ${offset} of a ${target.length}-byte target.`);
}

/**
 * node:zlib's CRC32 of `bytes` continued from `seed`: the reference the native kernel matches.
 * No bytes leave the seed as it is. (node:zlib hands zlib a null pointer for an empty view of a
 * zero-length buffer, and zlib's crc32() answers a null buffer with 0, its initial value, instead
 * of the seed: zlib.h, crc32. A stream continued over an empty piece would lose its check.)
 */
export function zlibChecksum(bytes: Uint8Array, seed = 0): number {
  return bytes.length === 0 ? seed : zlibCrc32(bytes, seed) >>> 0;
}

/** Copy `bytes` to `target` at `offset` and return their CRC32 from `seed`, with node:zlib. */
export function zlibCopyChecksum(target: Uint8Array, offset: number, bytes: Uint8Array, seed = 0): number {
  checkSeed(seed);
  checkFits(target, offset, bytes.length);
  const crc = zlibChecksum(bytes, seed);
  target.set(bytes, offset);
  return crc;
}

/**
 * CRC32 of `bytes` continued from `seed` (the CRC of the bytes before, 0 to start):
 * crc32(b, crc32(a)) === crc32(a + b). An unsigned 32-bit number.
 */
export function crc32(bytes: Uint8Array, seed = 0): number {
  checkSeed(seed);
  if (addon === undefined || bytes.length < NATIVE_MIN) return zlibChecksum(bytes, seed);
  return addon.crc32(bytes, seed);
}

/**
 * Copy `bytes` into `target` at `offset` and return their CRC32 continued from `seed`, in one
 * pass over the bytes. Overlapping views of one buffer are checked first, then moved (as
 * Uint8Array.set moves them). A RangeError when the bytes do not fit.
 */
export function copyCrc32(target: Uint8Array, offset: number, bytes: Uint8Array, seed = 0): number {
  if (addon === undefined || bytes.length < NATIVE_MIN) return zlibCopyChecksum(target, offset, bytes, seed);
  checkSeed(seed);
  checkFits(target, offset, bytes.length);
  return addon.copyCrc32(target, offset, bytes, seed);
}
