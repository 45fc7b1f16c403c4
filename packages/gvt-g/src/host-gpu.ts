/**
 * The host GPU that GVT-g partitions. `HostGpu` is what the mediator needs from a physical IGD
 * (identity, the aperture, the global GTT, fence registers, and the carving of graphics memory
 * into per-vGPU slices); `SimulatedHostGpu` is the one implementation here, so a real backend can
 * take its place later.
 *
 * Graphics memory (GM) model: the GGTT maps `gmSize` bytes of GM in 4 KiB pages. The first
 * `apertureSize` bytes are the mappable part (low GM), reachable by the CPU through BAR2; the
 * rest is the hidden, non-mappable part (high GM). The host keeps HOST_LOW_GM_SIZE of the first
 * and HOST_HIGH_GM_SIZE of the second, and HOST_FENCE fence registers (gvt.h).
 *
 * Where GM bytes live: a present host GGTT entry in high GM points at a pinned guest page; a
 * present entry in low GM is backed by the aperture memory itself. This process cannot remap
 * pages under a CPU mapping, so the aperture stands in for the pages its GGTT entries would
 * route CPU accesses to: the guest's direct (sparse-mmap) writes and the GPU's accesses meet in
 * the same bytes. A low-GM entry must still be valid (checked, translated, pinned) before the
 * GPU or the display may touch that page.
 *
 * Each vGPU's slice of the aperture is memory of its own (`VgpuResources.aperture`), not a view
 * of one memory shared by every vGPU: under vfio-user the client gets the fd of the memory behind
 * BAR2, and may map any page of that fd, so one memfd for the whole aperture would hand vGPU A's
 * user the bytes of vGPU B. A slice's memory is addressed by aperture offset (it spans
 * [0, low.base + low.size); only the slice is ever used, the rest stays a hole), so the BAR2
 * sparse-mmap area sits at the same offset in the region and in the fd, as vfio-user requires.
 */
import { type SharedMemory, VfioError } from '@vfiokit/core';
import {
  GiB,
  GTT_PAGE_SIZE,
  HOST_FENCE,
  HOST_HIGH_GM_SIZE,
  HOST_LOW_GM_SIZE,
  MiB,
  PCI_GMCH_CTRL,
} from './constants.js';
import { MemoryPages } from './memory-pages.js';

export interface GmRange {
  readonly base: number;
  readonly size: number;
}

/** The GM ranges and fences of a vGPU: what its registers (PVINFO) describe. */
export type VgpuSlices = Pick<VgpuResources, 'low' | 'high' | 'fences'>;

/** What one vGPU was given: a slice of each part of GM, some fence registers, its aperture memory. */
export interface VgpuResources {
  readonly low: GmRange;
  readonly high: GmRange;
  /** Host fence register indexes, in the order the vGPU numbers them. */
  readonly fences: readonly number[];
  /**
   * The memory behind this vGPU's aperture slice, addressed by aperture offset: bytes
   * [low.base, low.base + low.size) are the slice, nothing else of it is used. No other vGPU's
   * bytes are in it.
   */
  readonly aperture: SharedMemory;
  /** Which pages of `aperture` may hold data: what a reset or a release has to clear. */
  readonly aperturePages: MemoryPages;
}

export interface HostGpuIdentity {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  readonly classCode: number;
  readonly revision: number;
}

/** The host GGTT: one 8-byte entry per GM page and, for present entries, where the bytes are. */
export class HostGgtt {
  /** Entry values as the hardware holds them (DMA address | flags), exact below 2^53. */
  readonly pte: Float64Array;
  /** For present entries: the pinned guest page behind it. */
  readonly pages: (Uint8Array | undefined)[];
  /** The same pages as 32-bit words, for the command scanner: made on its first look (`wordsOf`). */
  readonly words: (Uint32Array | undefined)[];

  constructor(readonly numPages: number) {
    this.pte = new Float64Array(numPages);
    this.pages = new Array<Uint8Array | undefined>(numPages).fill(undefined);
    this.words = new Array<Uint32Array | undefined>(numPages).fill(undefined);
  }

  set(index: number, value: number, page: Uint8Array | undefined): void {
    this.pte[index] = value;
    if (this.pages[index] !== page) {
      this.pages[index] = page;
      this.words[index] = undefined;
    }
  }

  /** The entry's page as 32-bit words (undefined when not present or not 4-byte aligned). */
  wordsOf(index: number): Uint32Array | undefined {
    const words = this.words[index];
    if (words !== undefined) return words;
    const bytes = this.pages[index];
    if (bytes === undefined || bytes.byteOffset % 4 !== 0) return undefined;
    const made = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
    this.words[index] = made;
    return made;
  }

  /** Point the entry at the scratch page: not present. */
  clear(index: number): void {
    this.pte[index] = 0;
    this.pages[index] = undefined;
    this.words[index] = undefined;
  }
}

export interface HostGpu {
  /** The PCI address of the IGD, the mdev parent's name. */
  readonly name: string;
  readonly identity: HostGpuIdentity;
  /** Host config-space values the vGPU's config space is seeded from. */
  readonly gmchControl: number;
  readonly mmioBarSize: number;
  readonly apertureSize: number;
  /** GM the GGTT maps (mappable + hidden). */
  readonly gmSize: number;
  readonly fenceCount: number;
  readonly ggtt: HostGgtt;
  /** Host fence register values (64-bit, exact below 2^53). */
  readonly fenceRegs: Float64Array;
  freeLowGm(): number;
  freeHighGm(): number;
  freeFences(): number;
  allocate(lowSize: number, highSize: number, fences: number): VgpuResources;
  release(resources: VgpuResources): void;
}

export interface SimulatedHostGpuOptions {
  readonly name?: string;
  readonly identity?: Partial<HostGpuIdentity>;
  /** Aperture (BAR2) size in bytes, a power of two of at least 256 MiB. Default 1 GiB. */
  readonly apertureSize?: number;
  /** GM mapped by the GGTT. Default 4 GiB (an 8 MiB GGTT of 8-byte entries, GGMS = 3). */
  readonly gmSize?: number;
  /** Fence registers. Default 32 (gen8+). */
  readonly fenceCount?: number;
  /** Memory for the vGPUs' aperture slices (the plugin host's allocator); shared memory by default. */
  readonly allocateMemory?: (size: number, name: string) => SharedMemory;
}

// i915_pciids.h INTEL_KBL_GT2_IDS: 0x5912 "DT GT2" (Kaby Lake desktop, HD Graphics 630). The
// subsystem and revision are those of the simulated board.
export const SIMULATED_IGD_IDENTITY: HostGpuIdentity = Object.freeze({
  vendorId: 0x8086,
  deviceId: 0x5912,
  subsystemVendorId: 0x8086,
  subsystemId: 0x2212,
  classCode: 0x030000, // display controller, VGA compatible
  revision: 0x04,
});

/** 16 MiB GTTMMADR: 2 MiB of registers, the GGTT in the upper 8 MiB. */
export const SIMULATED_MMIO_BAR_SIZE = 16 * MiB;
/** Host GGC: GGMS = 3 (8 MiB GGTT, bits 7:6) and GMS = 2 (64 MiB stolen, bits 15:8). */
export const SIMULATED_HOST_GGC = (2 << 8) | (3 << 6);

/** First-fit allocator over one address range, in page-aligned pieces. */
class RangeAllocator {
  private free: { base: number; size: number }[];

  constructor(base: number, size: number) {
    this.free = size > 0 ? [{ base, size }] : [];
  }

  get available(): number {
    let n = 0;
    for (const f of this.free) n += f.size;
    return n;
  }

  allocate(size: number): GmRange | undefined {
    for (let i = 0; i < this.free.length; i++) {
      const f = this.free[i];
      if (f.size < size) continue;
      const range = { base: f.base, size };
      if (f.size === size) this.free.splice(i, 1);
      else this.free[i] = { base: f.base + size, size: f.size - size };
      return range;
    }
    return undefined;
  }

  release(range: GmRange): void {
    this.free.push({ base: range.base, size: range.size });
    this.free.sort((a, b) => a.base - b.base);
    const merged: { base: number; size: number }[] = [];
    for (const f of this.free) {
      const last = merged[merged.length - 1];
      if (last && last.base + last.size === f.base) last.size += f.size;
      else merged.push({ ...f });
    }
    this.free = merged;
  }
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

export class SimulatedHostGpu implements HostGpu {
  readonly name: string;
  readonly identity: HostGpuIdentity;
  readonly gmchControl = SIMULATED_HOST_GGC;
  readonly mmioBarSize = SIMULATED_MMIO_BAR_SIZE;
  readonly apertureSize: number;
  readonly gmSize: number;
  readonly fenceCount: number;
  readonly ggtt: HostGgtt;
  readonly fenceRegs: Float64Array;
  private readonly allocateMemory: (size: number, name: string) => SharedMemory;
  private readonly low: RangeAllocator;
  private readonly high: RangeAllocator;
  private readonly freeFenceList: number[] = [];

  constructor(opts: SimulatedHostGpuOptions = {}) {
    this.name = opts.name ?? '0000:00:02.0';
    this.identity = Object.freeze({ ...SIMULATED_IGD_IDENTITY, ...opts.identity });
    const aperture = opts.apertureSize ?? 1 * GiB;
    const gm = opts.gmSize ?? 4 * GiB;
    const fences = opts.fenceCount ?? 32;
    if (!isPowerOfTwo(aperture) || aperture < 256 * MiB || aperture > 2 * GiB) {
      throw new VfioError(
        'EINVAL',
        `an aperture of ${String(aperture)} bytes is not a BAR2 size GVT-g supports.`,
        {
          hint: 'Use a power of two from 256 MiB to 2 GiB (the BIOS aperture settings).',
        },
      );
    }
    if (!Number.isSafeInteger(gm) || gm < aperture + HOST_HIGH_GM_SIZE || gm % GTT_PAGE_SIZE !== 0) {
      throw new VfioError(
        'EINVAL',
        `graphics memory of ${String(gm)} bytes cannot hold the aperture and the host's hidden GM.`,
        {
          hint: `Use at least the aperture plus ${HOST_HIGH_GM_SIZE / MiB} MiB, in whole pages (4 GiB is the gen8+ GGTT).`,
        },
      );
    }
    if (!Number.isInteger(fences) || fences < HOST_FENCE || fences > 64) {
      throw new VfioError('EINVAL', `${String(fences)} fence registers is not a count a gen8+ IGD has.`, {
        hint: 'Use 32 (gen8+) or another count from 4 to 64.',
      });
    }
    this.apertureSize = aperture;
    this.gmSize = gm;
    this.fenceCount = fences;
    this.allocateMemory = opts.allocateMemory ?? allocateApertureMemory;
    this.ggtt = new HostGgtt(gm / GTT_PAGE_SIZE);
    this.fenceRegs = new Float64Array(fences);
    this.low = new RangeAllocator(HOST_LOW_GM_SIZE, aperture - HOST_LOW_GM_SIZE);
    this.high = new RangeAllocator(aperture + HOST_HIGH_GM_SIZE, gm - aperture - HOST_HIGH_GM_SIZE);
    for (let i = HOST_FENCE; i < fences; i++) this.freeFenceList.push(i);
  }

  /** The value of config register `offset` in the host IGD's own config space (GGC only). */
  hostConfigField(offset: number): number | undefined {
    return offset === PCI_GMCH_CTRL ? this.gmchControl : undefined;
  }

  freeLowGm(): number {
    return this.low.available;
  }

  freeHighGm(): number {
    return this.high.available;
  }

  freeFences(): number {
    return this.freeFenceList.length;
  }

  allocate(lowSize: number, highSize: number, fences: number): VgpuResources {
    if (fences > this.freeFenceList.length)
      throw noSpace('fence registers', fences, this.freeFenceList.length);
    const low = this.low.allocate(lowSize);
    if (!low) throw noSpace('bytes of mappable GM', lowSize, this.low.available);
    const high = this.high.allocate(highSize);
    if (!high) {
      this.low.release(low);
      throw noSpace('bytes of non-mappable GM', highSize, this.high.available);
    }
    let aperture: SharedMemory;
    try {
      aperture = this.allocateMemory(
        low.base + low.size,
        `${this.name} aperture slice 0x${low.base.toString(16)}+0x${low.size.toString(16)}`,
      );
    } catch (err) {
      this.low.release(low);
      this.high.release(high);
      throw err;
    }
    const taken = this.freeFenceList.splice(0, fences);
    return Object.freeze({
      low,
      high,
      fences: Object.freeze(taken),
      aperture,
      aperturePages: new MemoryPages(aperture),
    });
  }

  release(resources: VgpuResources): void {
    this.low.release(resources.low);
    this.high.release(resources.high);
    for (const f of resources.fences) this.fenceRegs[f] = 0;
    this.freeFenceList.push(...resources.fences);
    this.freeFenceList.sort((a, b) => a - b);
    for (const range of [resources.low, resources.high]) {
      const first = range.base / GTT_PAGE_SIZE;
      const end = first + range.size / GTT_PAGE_SIZE;
      for (let p = first; p < end; p++) this.ggtt.clear(p);
    }
    // The slice's memory goes with the vGPU; what it held is given back now, not when it is collected.
    resources.aperturePages.clear(resources.low.base, resources.low.base + resources.low.size, true);
  }
}

function noSpace(what: string, wanted: number, left: number): VfioError {
  return new VfioError('ENOSPC', `the host GPU has ${left} ${what} left, not ${wanted}.`, {
    hint: 'Remove a vGPU or create a smaller type.',
  });
}

function allocateApertureMemory(size: number): SharedMemory {
  let buffer: SharedArrayBuffer;
  try {
    buffer = new SharedArrayBuffer(size);
  } catch (cause) {
    throw new VfioError('ENOMEM', `cannot allocate ${size / MiB} MiB for an aperture slice.`, {
      hint: 'Configure a smaller apertureSize for the simulated host GPU, or create fewer vGPUs.',
      cause,
    });
  }
  return Object.freeze({ size, bytes: new Uint8Array(buffer) });
}
