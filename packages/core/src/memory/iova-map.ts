/**
 * The device's view of guest memory through the IOMMU: IOVA ranges mapped with
 * VFIO_IOMMU_MAP_DMA and removed with VFIO_IOMMU_UNMAP_DMA, with the checks and answers of the
 * type1 v2 IOMMU driver (drivers/vfio/vfio_iommu_type1.c: vfio_dma_do_map, vfio_dma_do_unmap).
 *
 * Mappings are kept in an array sorted by IOVA and never overlapping, so a lookup is a binary
 * search. DMA reads and writes may cross from one mapping into the next adjacent one; anything
 * else is a fault that is detected before a single byte moves.
 */

import { hex } from '../bytes.js';
import { toVfioError, VfioError } from '../errors.js';
import { DMA_ENTRY_LIMIT, IOMMU_PAGE_SIZE, IOVA_LIMIT, isPageAligned } from './page.js';

/** What VFIO_IOMMU_MAP_DMA asks for, with the process memory behind it as bytes. */
export interface DmaMapRequest {
  readonly iova: number;
  readonly size: number;
  /** VFIO_DMA_MAP_FLAG_READ: the device may read the range. */
  readonly read: boolean;
  /** VFIO_DMA_MAP_FLAG_WRITE: the device may write the range. */
  readonly write: boolean;
  /** The memory the range maps; `size` bytes from `memoryOffset` must exist. Ignored when `remote`. */
  readonly memory: Uint8Array;
  readonly memoryOffset?: number;
  /** The process virtual address of the memory (struct vfio_iommu_type1_dma_map.vaddr), kept for peers that need it. */
  readonly vaddr?: number;
  /**
   * The memory is not in this process (a vfio-user DMA_MAP without an fd): the range takes part
   * in every mapping rule, but synchronous reads and writes fault; the host reaches it by messages.
   */
  readonly remote?: boolean;
}

export interface DmaMapping {
  readonly iova: number;
  readonly size: number;
  readonly read: boolean;
  readonly write: boolean;
  readonly memory: Uint8Array;
  readonly memoryOffset: number;
  readonly vaddr: number | undefined;
  readonly remote: boolean;
}

/** Called with a mapping's IOVA and size just before the mapping is removed. */
export type UnmapListener = (iova: number, size: number) => void;

/** Called with a mapping just after it was made. */
export type MapListener = (mapping: DmaMapping) => void;

export interface IovaMapOptions {
  /** Most mappings at once; MAP_DMA beyond it fails with ENOSPC. Default: type1's dma_entry_limit, 65535. */
  readonly maxMappings?: number;
}

const MAP_HINT =
  'Map the range with VFIO_IOMMU_MAP_DMA (READ for device reads, WRITE for device writes) first.';
/** The stand-in memory of a remote mapping. */
const NO_MEMORY = new Uint8Array(0);
/** Below this length a byte loop beats creating a subarray view (and allocates nothing). */
const SMALL_COPY = 64;

export class IovaMap {
  readonly #entries: DmaMapping[] = [];
  readonly #listeners = new Set<UnmapListener>();
  readonly #mapListeners = new Set<MapListener>();
  readonly #maxMappings: number;

  constructor(options: IovaMapOptions = {}) {
    const max = options.maxMappings ?? DMA_ENTRY_LIMIT;
    if (!Number.isSafeInteger(max) || max < 0) {
      throw new VfioError('EINVAL', `maxMappings ${String(max)} is not a count of mappings.`, {
        hint: 'Pass a non-negative whole number.',
      });
    }
    this.#maxMappings = max;
  }

  /** Number of mappings. */
  get count(): number {
    return this.#entries.length;
  }

  /** VFIO_IOMMU_MAP_DMA. Throws EINVAL for a malformed request, EEXIST for an overlap, ENOSPC past the limit. */
  map(request: DmaMapRequest): void {
    const remote = request.remote === true;
    const { iova, size, read, write } = request;
    const memory = remote ? NO_MEMORY : request.memory;
    const memoryOffset = request.memoryOffset ?? 0;
    const vaddr = request.vaddr;
    const what = `MAP_DMA of ${describeNumber(size)} bytes at IOVA ${describeNumber(iova)}`;
    // vfio_dma_do_map: at least one of READ/WRITE ((!prot && !set_vaddr) → -EINVAL).
    if (!read && !write) {
      throw new VfioError('EINVAL', `${what} grants neither read nor write.`, {
        hint: 'Set read, write or both.',
      });
    }
    for (const [name, value] of [
      ['iova', iova],
      ['size', size],
      ['vaddr', vaddr ?? 0],
    ] as const) {
      // "Verify that none of our __u64 fields overflow": a value the host cannot hold exactly is EINVAL.
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new VfioError(
          'EINVAL',
          `${what}: ${name} ${describeNumber(value)} is not a u64 this host can represent.`,
          {
            hint: `Use whole numbers from 0 to ${hex(Number.MAX_SAFE_INTEGER)}.`,
          },
        );
      }
    }
    // (!size || (size | iova | vaddr) & (pgsize - 1)) → -EINVAL
    if (size === 0) {
      throw new VfioError('EINVAL', `${what}: size is 0.`, { hint: 'Map at least one page.' });
    }
    if (!isPageAligned(size) || !isPageAligned(iova) || !isPageAligned(vaddr ?? 0)) {
      throw new VfioError(
        'EINVAL',
        `${what}${vaddr === undefined ? '' : ` (vaddr ${hex(vaddr)})`} is not page aligned.`,
        {
          hint: `iova, size and vaddr must be multiples of ${IOMMU_PAGE_SIZE}.`,
        },
      );
    }
    // "Don't allow IOVA or virtual address wrap"; here the end must also stay exactly representable.
    if (iova + size > IOVA_LIMIT || (vaddr ?? 0) + size > IOVA_LIMIT) {
      throw new VfioError('EINVAL', `${what} ends beyond ${hex(Number.MAX_SAFE_INTEGER)}.`, {
        hint: 'IOVAs and vaddrs above 2^53 cannot be represented exactly here; map the range lower.',
      });
    }
    if (!(memory instanceof Uint8Array)) {
      throw new VfioError('EINVAL', `${what}: memory is not a Uint8Array.`, {
        hint: 'Pass the bytes of the memory being mapped.',
      });
    }
    if (!Number.isSafeInteger(memoryOffset) || memoryOffset < 0) {
      throw new VfioError(
        'EINVAL',
        `${what}: memoryOffset ${describeNumber(memoryOffset)} is not a byte offset.`,
        {
          hint: 'Pass a non-negative whole number.',
        },
      );
    }
    // type1 pins the pages behind vaddr; pages that do not exist make the pin fail with -EFAULT.
    if (!remote && memoryOffset + size > memory.length) {
      throw new VfioError(
        'EFAULT',
        `${what}: the backing memory has ${memory.length} bytes, but offset ${hex(memoryOffset)} + size needs ${memoryOffset + size}.`,
        { hint: 'Pass memory that covers the whole range.' },
      );
    }
    const at = this.#lowerBound(iova);
    // vfio_find_dma(iommu, iova, size) finds any overlap → -EEXIST.
    const before = this.#entries[at - 1];
    const after = this.#entries[at];
    const overlap =
      before !== undefined && before.iova + before.size > iova
        ? before
        : after !== undefined && after.iova < iova + size
          ? after
          : undefined;
    if (overlap !== undefined) {
      throw new VfioError(
        'EEXIST',
        `${what} overlaps the mapping ${hex(overlap.iova)}-${hex(overlap.iova + overlap.size - 1)}.`,
        { hint: 'Unmap the existing mapping first, or map a free range.' },
      );
    }
    if (this.#entries.length >= this.#maxMappings) {
      throw new VfioError(
        'ENOSPC',
        `${what}: the container already holds ${this.#entries.length} mappings.`,
        {
          hint: 'Unmap something or merge adjacent mappings (type1 dma_entry_limit).',
        },
      );
    }
    const mapping: DmaMapping = Object.freeze({
      iova,
      size,
      read,
      write,
      memory,
      memoryOffset,
      vaddr,
      remote,
    });
    this.#entries.splice(at, 0, mapping);
    for (const listener of [...this.#mapListeners]) listener(mapping);
  }

  /**
   * VFIO_IOMMU_UNMAP_DMA (type1 v2): returns the number of bytes unmapped. The range must not
   * split a mapping (EINVAL); every mapping inside it is removed; a range with no mapping
   * returns 0. Unmap listeners run before each mapping goes.
   */
  unmap(iova: number, size: number): number {
    const what = `UNMAP_DMA of ${describeNumber(size)} bytes at IOVA ${describeNumber(iova)}`;
    if (!Number.isSafeInteger(iova) || iova < 0 || !Number.isSafeInteger(size) || size < 0) {
      throw new VfioError('EINVAL', `${what}: iova and size must be u64 values this host can represent.`, {
        hint: `Use whole numbers from 0 to ${hex(Number.MAX_SAFE_INTEGER)}.`,
      });
    }
    // vfio_dma_do_unmap: iova & (pgsize - 1), !size, size & (pgsize - 1), wrap → -EINVAL.
    if (size === 0) {
      throw new VfioError('EINVAL', `${what}: size is 0.`, {
        hint: 'Give the size of the range, or use unmapAll() (VFIO_DMA_UNMAP_FLAG_ALL).',
      });
    }
    if (!isPageAligned(iova) || !isPageAligned(size)) {
      throw new VfioError('EINVAL', `${what} is not page aligned.`, {
        hint: `iova and size must be multiples of ${IOMMU_PAGE_SIZE}.`,
      });
    }
    if (iova + size > IOVA_LIMIT) {
      throw new VfioError('EINVAL', `${what} ends beyond ${hex(Number.MAX_SAFE_INTEGER)}.`, {
        hint: 'IOVAs above 2^53 cannot be mapped here, so there is nothing to unmap there.',
      });
    }
    const end = iova + size;
    // type1 v2: "Unmap requests must fully cover previous mappings ... there must not be any
    // previous mappings bisected by the range."
    const first = this.find(iova);
    if (first !== undefined && first.iova !== iova) {
      throw new VfioError('EINVAL', `${what} starts inside the mapping ${describeMapping(first)}.`, {
        hint: 'Unmap whole mappings: start the range at the start of a mapping.',
      });
    }
    const last = this.find(end - 1);
    if (last !== undefined && last.iova + last.size !== end) {
      throw new VfioError('EINVAL', `${what} ends inside the mapping ${describeMapping(last)}.`, {
        hint: 'Unmap whole mappings: end the range at the end of a mapping.',
      });
    }
    const from = this.#lowerBound(iova);
    let to = from;
    while (to < this.#entries.length && this.#entries[to].iova < end) to++;
    return this.#remove(this.#entries.slice(from, to));
  }

  /** VFIO_IOMMU_UNMAP_DMA with VFIO_DMA_UNMAP_FLAG_ALL: removes every mapping, returns the bytes unmapped. */
  unmapAll(): number {
    return this.#remove(this.#entries.slice());
  }

  /** The mappings in IOVA order (a snapshot). */
  mappings(): readonly DmaMapping[] {
    return this.#entries.slice();
  }

  /** Register a listener called after each mapping is made; returns a function that unregisters it. */
  onMap(listener: MapListener): () => void {
    this.#mapListeners.add(listener);
    return () => {
      this.#mapListeners.delete(listener);
    };
  }

  /** Register a listener called before a mapping is removed; returns a function that unregisters it. */
  onUnmap(listener: UnmapListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** The mapping that contains `iova`, if any. */
  find(iova: number): DmaMapping | undefined {
    const i = this.#indexOf(iova);
    return i < 0 ? undefined : this.#entries[i];
  }

  /**
   * The backing bytes of [iova, iova + length) when the range lies inside one mapping that allows
   * the access (`write` true: WRITE, false: READ); undefined otherwise. The view aliases guest memory.
   */
  translate(iova: number, length: number, write: boolean): Uint8Array | undefined {
    if (!Number.isSafeInteger(length) || length <= 0) return undefined;
    const i = this.#indexOf(iova);
    if (i < 0) return undefined;
    const m = this.#entries[i];
    if (m.remote || !(write ? m.write : m.read) || iova + length > m.iova + m.size) return undefined;
    const start = m.memoryOffset + (iova - m.iova);
    return m.memory.subarray(start, start + length);
  }

  /** Device DMA read of `dst.length` bytes at `iova`. EFAULT (nothing copied) unless every byte is readable. */
  read(iova: number, dst: Uint8Array): void {
    const first = this.#check(iova, dst.length, false);
    let pos = 0;
    let addr = iova;
    const total = dst.length;
    for (let i = first; pos < total; i++) {
      const m = this.#entries[i];
      const off = m.memoryOffset + (addr - m.iova);
      const n = Math.min(total - pos, m.iova + m.size - addr);
      const mem = m.memory;
      if (n <= SMALL_COPY) {
        for (let k = 0; k < n; k++) dst[pos + k] = mem[off + k];
      } else {
        dst.set(mem.subarray(off, off + n), pos);
      }
      pos += n;
      addr += n;
    }
  }

  /** Device DMA write of `src` at `iova`. EFAULT (nothing copied) unless every byte is writable. */
  write(iova: number, src: Uint8Array): void {
    const first = this.#check(iova, src.length, true);
    let pos = 0;
    let addr = iova;
    const total = src.length;
    for (let i = first; pos < total; i++) {
      const m = this.#entries[i];
      const off = m.memoryOffset + (addr - m.iova);
      const n = Math.min(total - pos, m.iova + m.size - addr);
      const mem = m.memory;
      if (n <= SMALL_COPY) {
        for (let k = 0; k < n; k++) mem[off + k] = src[pos + k];
      } else {
        mem.set(src.subarray(pos, pos + n), off);
      }
      pos += n;
      addr += n;
    }
  }

  /**
   * Check that [iova, iova + length) is covered by adjacent mappings that all allow the access;
   * returns the index of the first one. The message names the first IOVA that faults.
   */
  #check(iova: number, length: number, write: boolean): number {
    const kind = write ? 'write' : 'read';
    // vfio_dma_rw: a zero-length access is -EINVAL.
    if (length === 0) {
      throw new VfioError('EINVAL', `DMA ${kind} of 0 bytes at IOVA ${describeNumber(iova)}.`, {
        hint: 'Skip empty transfers; the kernel refuses them too.',
      });
    }
    if (!Number.isSafeInteger(iova) || iova < 0 || iova + length > IOVA_LIMIT) {
      throw this.#fault(kind, iova, length, iova, 'the address is outside the IOVA space this host can map');
    }
    const first = this.#indexOf(iova);
    if (first < 0) throw this.#fault(kind, iova, length, iova, 'no mapping covers it');
    const end = iova + length;
    for (let i = first; ; i++) {
      const m = this.#entries[i];
      if (!(write ? m.write : m.read)) {
        throw this.#fault(
          kind,
          iova,
          length,
          Math.max(iova, m.iova),
          `the mapping ${describeMapping(m)} is not ${write ? 'writable' : 'readable'}`,
        );
      }
      if (m.remote) {
        throw new VfioError(
          'EFAULT',
          `DMA ${kind} of ${length} bytes at IOVA ${describeNumber(iova)} reaches the mapping ${describeMapping(m)}, whose memory is not in this process (mapped without an fd); nothing was copied.`,
          { hint: `Use the DMA space's ${kind}Async, which reaches such memory by messages.` },
        );
      }
      const mEnd = m.iova + m.size;
      if (mEnd >= end) return first;
      const next = this.#entries[i + 1];
      if (next === undefined || next.iova !== mEnd)
        throw this.#fault(kind, iova, length, mEnd, 'no mapping covers it');
    }
  }

  #fault(kind: string, iova: number, length: number, at: number, why: string): VfioError {
    return new VfioError(
      'EFAULT',
      `DMA ${kind} of ${length} bytes at IOVA ${describeNumber(iova)} faults at IOVA ${describeNumber(at)}: ${why}; nothing was copied.`,
      { hint: MAP_HINT },
    );
  }

  /** Remove these mappings (each still present), notifying listeners first; returns the bytes removed. */
  #remove(victims: readonly DmaMapping[]): number {
    let unmapped = 0;
    let failure: unknown;
    let failed = false;
    for (const victim of victims) {
      for (const listener of [...this.#listeners]) {
        try {
          listener(victim.iova, victim.size);
        } catch (err) {
          if (!failed) {
            failed = true;
            failure = err;
          }
        }
      }
      // A listener may have unmapped it already; remove it only if it is still here.
      const i = this.#indexOf(victim.iova);
      if (i >= 0 && this.#entries[i] === victim) {
        this.#entries.splice(i, 1);
        unmapped += victim.size;
      }
    }
    if (failed) {
      // The kernel's unmap notifier cannot fail; here the mappings are gone all the same and the
      // first listener error is reported afterwards.
      throw toVfioError(failure);
    }
    return unmapped;
  }

  /** Index of the first mapping whose IOVA is >= `iova`. */
  #lowerBound(iova: number): number {
    const entries = this.#entries;
    let lo = 0;
    let hi = entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (entries[mid].iova < iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the mapping containing `iova`, or -1. */
  #indexOf(iova: number): number {
    const entries = this.#entries;
    let lo = 0;
    let hi = entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const m = entries[mid];
      if (iova < m.iova) hi = mid - 1;
      else if (iova >= m.iova + m.size) lo = mid + 1;
      else return mid;
    }
    return -1;
  }
}

function describeNumber(value: number): string {
  return Number.isSafeInteger(value) && value >= 0 ? hex(value) : String(value);
}

function describeMapping(m: DmaMapping): string {
  return `${hex(m.iova)}-${hex(m.iova + m.size - 1)}`;
}
