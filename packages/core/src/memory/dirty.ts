/**
 * Device DMA dirty tracking, VFIO_DEVICE_FEATURE_DMA_LOGGING_START / _STOP / _REPORT.
 *
 * The checks are those of drivers/vfio/vfio_main.c (vfio_ioctl_device_feature_logging_start and
 * _report) and of the reference tracker drivers/vfio/pci/mlx5/cmd.c (start while running → EINVAL,
 * stop while stopped → 0, report while stopped → EINVAL). The report bitmap has the layout of
 * the kernel's iova_bitmap: bit i of little-endian u64 word i / 64 stands for the page at
 * `iova + i * pageSize`.
 *
 * Dirty pages are kept in a sparse map of fixed-size chunks, so logging a huge IOVA range costs
 * memory only for the parts that were written.
 */

import { hex } from '../bytes.js';
import { VfioError } from '../errors.js';
import { IOMMU_PAGE_SIZE, IOVA_LIMIT } from './page.js';

/** struct vfio_device_feature_dma_logging_range (linux/vfio.h). */
export interface DirtyRange {
  readonly iova: number;
  readonly length: number;
}

/** sizeof(struct vfio_device_feature_dma_logging_range): two u64 (linux/vfio.h). */
const LOGGING_RANGE_SIZE = 16;
/** LOG_MAX_RANGES in drivers/vfio/vfio_main.c: the ranges must fit one kernel page (PAGE_SIZE / 16 = 256). */
export const DMA_LOGGING_MAX_RANGES = IOMMU_PAGE_SIZE / LOGGING_RANGE_SIZE;
/** The smallest page size DMA_LOGGING_REPORT accepts (SZ_4K in vfio_ioctl_device_feature_logging_report). */
export const DMA_LOGGING_MIN_PAGE_SIZE = 4096;
/** Report bitmaps above this many bytes are refused with ENOMEM rather than allocated. */
const MAX_REPORT_BITMAP_BYTES = 1 << 30;

const CHUNK_SHIFT = 15;
/** Pages per chunk of the sparse dirty map (one 4 KiB bitmap per chunk). */
const CHUNK_PAGES = 1 << CHUNK_SHIFT;
const CHUNK_WORDS = CHUNK_PAGES / 32;

export class DirtyTracker {
  #pageSize = 0;
  /** Logged ranges sorted by IOVA, as [start, end) pairs. */
  #starts: number[] = [];
  #ends: number[] = [];
  /**
   * chunk number → bitmap of its pages (page number = chunk * CHUNK_PAGES + bit); made at the
   * first dirty page (a tracker is made for every attached device, most never log).
   */
  #chunks: Map<number, Uint32Array> | undefined;

  /** Whether logging runs. */
  get started(): boolean {
    return this.#pageSize !== 0;
  }

  /** The tracking page size chosen at start (0 when stopped). */
  get pageSize(): number {
    return this.#pageSize;
  }

  /** The logged ranges in IOVA order. */
  ranges(): DirtyRange[] {
    return this.#starts.map((iova, i) => ({ iova, length: this.#ends[i] - iova }));
  }

  /**
   * DMA_LOGGING_START. Returns the page size the tracker uses (the kernel writes it back into
   * control.page_size): the requested one, which must be a power of two of at least 4 KiB.
   */
  start(pageSize: number, ranges: readonly DirtyRange[]): number {
    if (this.started) {
      throw new VfioError('EINVAL', 'DMA logging is already running.', {
        hint: 'Stop it with DMA_LOGGING_STOP before starting it again.',
      });
    }
    if (!isPowerOfTwoPageSize(pageSize)) {
      throw new VfioError(
        'EINVAL',
        `DMA logging page size ${String(pageSize)} is not a power of two of at least 4096.`,
        {
          hint: 'Ask for 4096 or a larger power of two.',
        },
      );
    }
    if (!Array.isArray(ranges) || ranges.length === 0) {
      throw new VfioError('EINVAL', 'DMA logging needs at least one range (num_ranges is 0).', {
        hint: 'Pass the IOVA ranges to log.',
      });
    }
    if (ranges.length > DMA_LOGGING_MAX_RANGES) {
      // vfio_main.c answers -E2BIG here: the ranges must fit in one page.
      throw new VfioError(
        'E2BIG',
        `DMA logging was given ${ranges.length} ranges; at most ${DMA_LOGGING_MAX_RANGES} fit.`,
        {
          hint: 'Merge neighbouring ranges into fewer, larger ones.',
        },
      );
    }
    const sorted: Array<[number, number]> = [];
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i];
      const iova = r?.iova;
      const length = r?.length;
      if (!Number.isSafeInteger(iova) || !Number.isSafeInteger(length) || iova < 0 || length < 0) {
        throw new VfioError(
          'EINVAL',
          `DMA logging range ${i} (${String(iova)}, ${String(length)}) is not a u64 pair this host can represent.`,
          {
            hint: `Use whole numbers from 0 to ${hex(Number.MAX_SAFE_INTEGER)}.`,
          },
        );
      }
      if (iova % pageSize !== 0 || length % pageSize !== 0) {
        throw new VfioError(
          'EINVAL',
          `DMA logging range ${i} (iova ${hex(iova)}, length ${hex(length)}) is not aligned to the page size ${hex(pageSize)}.`,
          {
            hint: 'Align iova and length of every range to the page size.',
          },
        );
      }
      if (length === 0) {
        throw new VfioError('EINVAL', `DMA logging range ${i} at iova ${hex(iova)} is empty.`, {
          hint: 'Give every range a non-zero length.',
        });
      }
      // check_add_overflow(iova, length) → -EOVERFLOW
      if (iova + length > IOVA_LIMIT) {
        throw new VfioError(
          'EOVERFLOW',
          `DMA logging range ${i} (iova ${hex(iova)}, length ${hex(length)}) ends beyond ${hex(Number.MAX_SAFE_INTEGER)}.`,
          {
            hint: 'Keep ranges below 2^53.',
          },
        );
      }
      sorted.push([iova, iova + length]);
    }
    sorted.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i][0] < sorted[i - 1][1]) {
        throw new VfioError(
          'EINVAL',
          `DMA logging ranges ${hex(sorted[i - 1][0])}-${hex(sorted[i - 1][1] - 1)} and ${hex(sorted[i][0])}-${hex(sorted[i][1] - 1)} overlap.`,
          {
            hint: 'Pass non-overlapping ranges.',
          },
        );
      }
    }
    this.#starts = sorted.map((r) => r[0]);
    this.#ends = sorted.map((r) => r[1]);
    this.#chunks = undefined;
    this.#pageSize = pageSize;
    return pageSize;
  }

  /** DMA_LOGGING_STOP: forgets the ranges and every dirty bit; stopping a stopped tracker is a no-op. */
  stop(): void {
    this.#pageSize = 0;
    this.#starts = [];
    this.#ends = [];
    this.#chunks = undefined;
  }

  /**
   * Record a device write of `length` bytes at `iova`. Pages outside the logged ranges are not
   * tracked (as a hardware tracker ignores them); nothing happens while logging is stopped.
   */
  markDirty(iova: number, length: number): void {
    const ps = this.#pageSize;
    if (ps === 0 || !(length > 0) || !(iova >= 0)) return;
    const end = iova + length;
    const starts = this.#starts;
    const ends = this.#ends;
    // First range that ends after iova.
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ends[mid] <= iova) lo = mid + 1;
      else hi = mid;
    }
    for (let r = lo; r < starts.length && starts[r] < end; r++) {
      const from = Math.max(iova, starts[r]);
      const to = Math.min(end, ends[r]);
      this.#setPages(Math.floor(from / ps), Math.floor((to - 1) / ps));
    }
  }

  /** Whether the tracking page containing `iova` is dirty (for tests and diagnostics). */
  isDirty(iova: number): boolean {
    if (this.#pageSize === 0) return false;
    const page = Math.floor(iova / this.#pageSize);
    const chunk = this.#chunks?.get(Math.floor(page / CHUNK_PAGES));
    if (chunk === undefined) return false;
    const bit = page % CHUNK_PAGES;
    return (chunk[bit >>> 5] & (1 << (bit & 31))) !== 0;
  }

  /**
   * DMA_LOGGING_REPORT: the dirty bitmap of [iova, iova + length) in `pageSize` pages, and the
   * reported tracking pages become clean. The range must lie inside the logged ranges.
   */
  report(iova: number, length: number, pageSize: number): Uint8Array {
    const what = `DMA logging report of ${String(length)} bytes at IOVA ${Number.isSafeInteger(iova) ? hex(iova) : String(iova)}`;
    if (!isPowerOfTwoPageSize(pageSize)) {
      throw new VfioError(
        'EINVAL',
        `${what}: page size ${String(pageSize)} is not a power of two of at least 4096.`,
        {
          hint: 'Ask for 4096 or a larger power of two.',
        },
      );
    }
    if (!Number.isSafeInteger(iova) || !Number.isSafeInteger(length) || iova < 0 || length < 0) {
      throw new VfioError('EINVAL', `${what}: iova and length must be u64 values this host can represent.`, {
        hint: `Use whole numbers from 0 to ${hex(Number.MAX_SAFE_INTEGER)}.`,
      });
    }
    if (iova + length > IOVA_LIMIT) {
      throw new VfioError('EOVERFLOW', `${what} ends beyond ${hex(Number.MAX_SAFE_INTEGER)}.`, {
        hint: 'Keep the range below 2^53.',
      });
    }
    if (length === 0) {
      throw new VfioError('EINVAL', `${what}: length is 0.`, { hint: 'Report a non-empty range.' });
    }
    if (!this.started) {
      throw new VfioError('EINVAL', `${what}: DMA logging is not running.`, {
        hint: 'Start it with DMA_LOGGING_START first.',
      });
    }
    const end = iova + length;
    if (!this.#covers(iova, end)) {
      throw new VfioError('EINVAL', `${what} is not inside the logged ranges.`, {
        hint: 'Report only ranges that DMA_LOGGING_START covered.',
      });
    }
    const bits = Math.floor((length - 1) / pageSize) + 1;
    const bytes = Math.ceil(bits / 64) * 8;
    if (bytes > MAX_REPORT_BITMAP_BYTES) {
      throw new VfioError('ENOMEM', `${what} needs a ${bytes}-byte bitmap.`, {
        hint: 'Report the range in smaller pieces or with a larger page size.',
      });
    }
    const bitmap = new Uint8Array(bytes);
    const ps = this.#pageSize;
    const firstPage = Math.floor(iova / ps);
    const lastPage = Math.floor((end - 1) / ps);
    const firstChunk = Math.floor(firstPage / CHUNK_PAGES);
    const lastChunk = Math.floor(lastPage / CHUNK_PAGES);
    const chunks = this.#chunks;
    if (chunks === undefined) return bitmap;
    for (const [key, chunk] of [...chunks]) {
      if (key < firstChunk || key > lastChunk) continue;
      const base = key * CHUNK_PAGES;
      const lo = Math.max(firstPage, base) - base;
      const hi = Math.min(lastPage, base + CHUNK_PAGES - 1) - base;
      for (let bit = lo; bit <= hi; bit++) {
        const word = bit >>> 5;
        const mask = 1 << (bit & 31);
        if ((chunk[word] & mask) === 0) continue;
        chunk[word] &= ~mask;
        const from = Math.max((base + bit) * ps, iova);
        const to = Math.min((base + bit + 1) * ps, end);
        const b0 = Math.floor((from - iova) / pageSize);
        const b1 = Math.floor((to - 1 - iova) / pageSize);
        for (let b = b0; b <= b1; b++) bitmap[b >>> 3] |= 1 << (b & 7);
      }
      if (chunk.every((w) => w === 0)) chunks.delete(key);
    }
    return bitmap;
  }

  /** Whether [iova, end) is covered by the union of the logged ranges. */
  #covers(iova: number, end: number): boolean {
    let at = iova;
    for (let r = 0; r < this.#starts.length && at < end; r++) {
      if (this.#ends[r] <= at) continue;
      if (this.#starts[r] > at) return false;
      at = this.#ends[r];
    }
    return at >= end;
  }

  #setPages(first: number, last: number): void {
    let page = first;
    while (page <= last) {
      const key = Math.floor(page / CHUNK_PAGES);
      let chunks = this.#chunks;
      if (chunks === undefined) {
        chunks = new Map();
        this.#chunks = chunks;
      }
      let chunk = chunks.get(key);
      if (chunk === undefined) {
        chunk = new Uint32Array(CHUNK_WORDS);
        chunks.set(key, chunk);
      }
      const base = key * CHUNK_PAGES;
      const stop = Math.min(last, base + CHUNK_PAGES - 1);
      for (let bit = page - base; bit <= stop - base; bit++) chunk[bit >>> 5] |= 1 << (bit & 31);
      page = stop + 1;
    }
  }
}

function isPowerOfTwoPageSize(pageSize: number): boolean {
  return (
    Number.isSafeInteger(pageSize) &&
    pageSize >= DMA_LOGGING_MIN_PAGE_SIZE &&
    Number.isInteger(Math.log2(pageSize))
  );
}
