/**
 * CRC32 with zlib's polynomial (IEEE 802.3, bit-reflected; the same number zlib.crc32, gzip and
 * PNG give), over bytes or while copying them. The native kernel (native/crc32.c) folds 64 or
 * 256 bytes at a time with carry-less multiplies and stores the blocks it has loaded, so a copy
 * with its check costs about what the copy alone costs. Without the addon, or on a CPU without
 * PCLMULQDQ (detected when the addon loads), node:zlib computes the same numbers.
 * Crc32Ahead computes the CRCs of ranges of one buffer on a background thread, ahead of their use.
 */
import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';

interface Crc32Addon {
  crc32(bytes: Uint8Array, seed: number): number;
  copyCrc32(target: Uint8Array, offset: number, bytes: Uint8Array, seed: number): number;
  Ahead: new (memory: Uint8Array) => NativeAhead;
  /** The CPU has PCLMULQDQ; `wide`: AVX-512 with VPCLMULQDQ as well. */
  readonly accelerated: boolean;
  readonly wide: boolean;
}

interface NativeAhead {
  submit(offset: number, length: number): void;
  next(): number;
  close(): void;
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

/** Ranges a Crc32Ahead holds submitted and not yet taken, at most (native/crc32.c AHEAD_SLOTS). */
export const CRC32_AHEAD_SLOTS = 64;

/**
 * CRC32s of ranges of one buffer, computed ahead of their use on a background thread of the
 * native kernel, in the order they were submitted: submit a range, do something else (move the
 * bytes before it), then next() gives its CRC32 from 0, waiting for the thread if it is not done.
 * The bytes of a submitted range must not change until next() has given its CRC (the thread
 * reads them in between), and `memory`'s buffer must not be transferred while the checker is
 * open. close() drops the ranges not taken and returns once the thread has stopped reading;
 * close the checker before the bytes may change again. Without the native kernel, next()
 * computes the CRC with node:zlib at that moment: the same numbers.
 */
export class Crc32Ahead {
  readonly #memory: Uint8Array;
  #native: NativeAhead | undefined;
  /** The ranges submitted and not taken (offset, length pairs in a ring), for next() without the native kernel. */
  readonly #ring = new Float64Array(2 * CRC32_AHEAD_SLOTS);
  #head = 0;
  #count = 0;
  #closed = false;

  constructor(memory: Uint8Array) {
    if (!(memory instanceof Uint8Array))
      throw new RangeError('a Crc32Ahead checks ranges of a Uint8Array; pass the bytes it will read.');
    this.#memory = memory;
    if (addon !== undefined) this.#native = new addon.Ahead(memory);
  }

  /** Ranges submitted and not taken yet. */
  get pending(): number {
    return this.#count;
  }

  /** Start computing the CRC32 of `length` bytes at `offset` of the memory. */
  submit(offset: number, length: number): void {
    this.#checkOpen('submit');
    if (
      !Number.isSafeInteger(length) ||
      length < 0 ||
      !Number.isSafeInteger(offset) ||
      offset < 0 ||
      offset + length > this.#memory.length
    )
      throw new RangeError(
        `the range of ${length} bytes at offset ${offset} does not lie in the checker's ${this.#memory.length}-byte memory.`,
      );
    if (this.pending === CRC32_AHEAD_SLOTS)
      throw new RangeError(
        `${CRC32_AHEAD_SLOTS} ranges wait already in this Crc32Ahead; take the oldest with next() before submitting another.`,
      );
    this.#native?.submit(offset, length);
    const at = 2 * ((this.#head + this.#count) % CRC32_AHEAD_SLOTS);
    this.#ring[at] = offset;
    this.#ring[at + 1] = length;
    this.#count++;
  }

  /** The CRC32 of the oldest range submitted and not taken yet, waiting for it if need be. */
  next(): number {
    this.#checkOpen('next');
    if (this.pending === 0)
      throw new RangeError('this Crc32Ahead has no range waiting; submit() one before asking for its CRC32.');
    const offset = this.#ring[2 * this.#head];
    const length = this.#ring[2 * this.#head + 1];
    this.#head = (this.#head + 1) % CRC32_AHEAD_SLOTS;
    this.#count--;
    if (this.#native !== undefined) return this.#native.next();
    return zlibChecksum(this.#memory.subarray(offset, offset + length));
  }

  /** Drop the ranges not taken and stop the thread: it reads nothing after this returns. Again is nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native?.close();
    this.#native = undefined;
    this.#count = 0;
  }

  #checkOpen(what: string): void {
    if (this.#closed)
      throw new Error(`Crc32Ahead.${what}: the checker is closed; make a new one for more ranges.`);
  }
}
