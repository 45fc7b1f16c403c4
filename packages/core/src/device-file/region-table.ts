/**
 * The region table of an open device file: each region index with its file offset, REGION_INFO
 * flags and capability chain resolved once at open, the lookup from a file offset to its region,
 * and the per-region access counters.
 */

import type { RegionCap } from '../abi/codecs.js';
import {
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  vfioPciIndexToOffset,
} from '../abi/constants.js';
import type { RegionInfo, VfioDevice } from '../contract/device.js';

/** A region with its file offset resolved, as the dispatcher routes accesses. */
export interface ResolvedRegion extends RegionInfo {
  readonly offset: number;
  readonly flags: number;
  readonly caps: readonly RegionCap[];
}

/** Access counters per region index. */
export interface RegionCounters {
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
  errors: number;
}

/** vfio-pci's region spacing: a region index is the top bits of a file offset (`index << 40`). */
const INDEX_SPAN = 1099511627776; // 2 ** VFIO_PCI_OFFSET_SHIFT, drivers/vfio/pci/vfio_pci_priv.h

/** Counters kept per region: reads, writes, bytes read, bytes written, errors. */
const COUNTERS = 5;

/**
 * Region tables take their numbers from shared slabs: a typed array past 64 bytes has its own
 * buffer outside the heap, which is dear to make (and to collect), and a device file is opened for
 * every attach. A slab is never handed out twice, so every table starts at zero; it lives as long
 * as one of its tables does.
 */
const SLAB_BYTES = 32768;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

/** The byte offset in `slab` of `count` fresh zeroed numbers (a new slab when this one is full). */
function takeNumbers(count: number): number {
  const bytes = count * 8;
  if (slabUsed + bytes > SLAB_BYTES) {
    slab = new ArrayBuffer(Math.max(SLAB_BYTES, bytes));
    slabUsed = 0;
  }
  const at = slabUsed;
  slabUsed += bytes;
  return at;
}

export class RegionTable {
  /** Every region index of the device, absent ones included (size 0). */
  readonly regions: ResolvedRegion[];
  /** The fast path: regions at vfio-pci's default offsets, looked up by index (the others are holes). */
  private readonly byShift: (ResolvedRegion | undefined)[];
  /**
   * The access counters, COUNTERS numbers per region index (reads, writes, bytes read, bytes
   * written, errors): a typed array, so that counting an access is two stores on the hot path.
   */
  private readonly tally: Float64Array;
  /**
   * Per region index, the size when the region allows reads (writes) and the file is open, else
   * 0: the access path's open, bounds and permission check in one typed-array load, whatever the
   * region objects' shapes. All 0 until setOpen(true).
   */
  readonly readLimit: Float64Array;
  readonly writeLimit: Float64Array;

  constructor(device: VfioDevice, numRegions: number) {
    // Arrays of exactly the table's size (grown by push from empty they would reserve 17 entries
    // and be copied on the way): a device file is opened for every attach.
    const n = numRegions > 0 ? Math.ceil(numRegions) : 0;
    const regions: ResolvedRegion[] = new Array(n);
    const byShift: ResolvedRegion[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const r = device.regionInfo(i);
      if (r && !isAbsent(r)) {
        const resolved = resolvedRegion(r, i);
        regions[i] = resolved;
        if (r.offset === undefined || resolved.offset === defaultOffset(i)) byShift[i] = resolved;
      } else {
        // An absent region sits at its default offset.
        const absent = absentRegion(i);
        regions[i] = absent;
        byShift[i] = absent;
      }
    }
    this.regions = regions;
    this.byShift = byShift;
    const at = takeNumbers(n * (COUNTERS + 2));
    this.tally = new Float64Array(slab, at, n * COUNTERS);
    this.readLimit = new Float64Array(slab, at + n * COUNTERS * 8, n);
    this.writeLimit = new Float64Array(slab, at + n * (COUNTERS + 1) * 8, n);
  }

  /** The file was opened (the limits let the regions' accesses through) or closed (they let none). */
  setOpen(open: boolean): void {
    const regions = this.regions;
    for (let i = 0; i < regions.length; i++) {
      const r = regions[i];
      this.readLimit[i] = open && r.read ? r.size : 0;
      this.writeLimit[i] = open && r.write ? r.size : 0;
    }
  }

  get length(): number {
    return this.regions.length;
  }

  /** Find the region that holds file offset `offset`. */
  lookup(offset: number): ResolvedRegion | undefined {
    const fast = this.byShift[Math.floor(offset / INDEX_SPAN)];
    if (fast !== undefined && offset >= fast.offset && offset < fast.offset + fast.size) return fast;
    for (const r of this.regions)
      if (r.size > 0 && offset >= r.offset && offset < r.offset + r.size) return r;
    return undefined;
  }

  /** The counters of region `index` as they are now, or undefined for an index the device lacks. */
  countersFor(index: number): RegionCounters | undefined {
    if (!Number.isInteger(index) || index < 0 || index >= this.regions.length) return undefined;
    const t = this.tally;
    const k = index * COUNTERS;
    return { reads: t[k], writes: t[k + 1], bytesRead: t[k + 2], bytesWritten: t[k + 3], errors: t[k + 4] };
  }

  /** A read of `n` bytes in region `index` (a valid index) was served. */
  countRead(index: number, n: number): void {
    // reads at k, writes at k + 1, bytes read at k + 2, bytes written at k + 3
    const k = index * COUNTERS;
    this.tally[k]++;
    this.tally[k + 2] += n;
  }

  /** A write of `n` bytes in region `index` (a valid index) was served. */
  countWrite(index: number, n: number): void {
    const k = index * COUNTERS + 1;
    this.tally[k]++;
    this.tally[k + 2] += n;
  }

  /** An access to region `index` (a valid index) was refused or failed. */
  countError(index: number): void {
    this.tally[index * COUNTERS + 4]++;
  }
}

/**
 * Whether [rel, rel + length) lies inside one mmap area of `r` (all of it without sparse areas):
 * the one rule for DeviceFile.mmap and PciDeviceModel.mmap.
 */
export function insideMmapArea(
  r: Pick<ResolvedRegion, 'size' | 'sparseMmap'>,
  rel: number,
  length: number,
): boolean {
  const areas = r.sparseMmap;
  if (areas === undefined) return rel >= 0 && rel + length <= r.size;
  for (const a of areas) if (rel >= a.offset && rel + length <= a.offset + a.size) return true;
  return false;
}

/** Whether REGION_INFO lets `r` be mmapped at all. */
export function isMmappable(r: ResolvedRegion): boolean {
  return (r.flags & VFIO_REGION_INFO_FLAG_MMAP) !== 0;
}

/** The capability chain of a region without capabilities (shared, never written). */
const NO_CAPS: readonly RegionCap[] = Object.freeze([]);

/**
 * Whether `r` says no more than "not implemented": size 0, no access, at the default offset and
 * without optional fields. Such a region resolves to exactly what absentRegion() shares.
 */
function isAbsent(r: RegionInfo): boolean {
  return (
    r.size === 0 &&
    !r.read &&
    !r.write &&
    !r.mmap &&
    r.offset === undefined &&
    r.sparseMmap === undefined &&
    r.type === undefined &&
    r.msixMappable === undefined
  );
}

/**
 * Each RegionInfo object a device answered, resolved: resolving is a pure function of the info's
 * fields and index, and a device file is opened at every attach (the same device again at every
 * boot of a machine), so the frozen result is kept for the next open. It is used only while the
 * info still holds what it was made from (a plugin may change its RegionInfo objects in place);
 * an info with a region type (whose fields the chain copies) is resolved every time.
 */
const resolvedInfos = new WeakMap<RegionInfo, ResolvedRegion>();

function resolvedRegion(r: RegionInfo, index: number): ResolvedRegion {
  if (r.type !== undefined || typeof r !== 'object') return resolveRegion(r, index);
  const kept = resolvedInfos.get(r);
  if (
    kept !== undefined &&
    kept.index === index &&
    kept.size === r.size &&
    kept.read === r.read &&
    kept.write === r.write &&
    kept.mmap === r.mmap &&
    kept.offset === (r.offset ?? defaultOffset(index)) &&
    kept.sparseMmap === r.sparseMmap &&
    kept.msixMappable === r.msixMappable
  )
    return kept;
  const made = resolveRegion(r, index);
  resolvedInfos.set(r, made);
  return made;
}

/**
 * The region as the dispatcher keeps it: the plugin's RegionInfo with its file offset, REGION_INFO
 * flags and capability chain resolved. Built field by field (one object shape for every region,
 * no spread): a device file is opened for every attach, so this runs once per region per open.
 */
function resolveRegion(r: RegionInfo, index: number): ResolvedRegion {
  // Most regions carry no capability: they share the frozen empty chain.
  let caps: readonly RegionCap[] = NO_CAPS;
  if ((r.mmap && r.sparseMmap) || r.type || r.msixMappable) {
    const chain: RegionCap[] = [];
    if (r.mmap && r.sparseMmap) chain.push({ id: VFIO_REGION_INFO_CAP_SPARSE_MMAP, areas: r.sparseMmap });
    if (r.type) chain.push({ id: VFIO_REGION_INFO_CAP_TYPE, type: r.type.type, subtype: r.type.subtype });
    if (r.msixMappable) chain.push({ id: VFIO_REGION_INFO_CAP_MSIX_MAPPABLE });
    caps = chain;
  }
  const flags =
    (r.read ? VFIO_REGION_INFO_FLAG_READ : 0) |
    (r.write ? VFIO_REGION_INFO_FLAG_WRITE : 0) |
    (r.mmap ? VFIO_REGION_INFO_FLAG_MMAP : 0);
  const resolved: {
    -readonly [K in keyof ResolvedRegion]: ResolvedRegion[K];
  } = {
    index,
    size: r.size,
    read: r.read,
    write: r.write,
    mmap: r.mmap,
    offset: r.offset ?? defaultOffset(index),
    flags,
    caps,
  };
  // The optional fields are present only when the plugin gave them, as in its RegionInfo.
  if (r.sparseMmap !== undefined) resolved.sparseMmap = r.sparseMmap;
  if (r.type !== undefined) resolved.type = r.type;
  if (r.msixMappable !== undefined) resolved.msixMappable = r.msixMappable;
  return Object.freeze(resolved);
}

/** vfio-pci's file offset of each region index (`index << 40`), worked out once per index. */
const defaultOffsets: number[] = [];

function defaultOffset(index: number): number {
  let offset = defaultOffsets[index];
  if (offset === undefined) {
    offset = vfioPciIndexToOffset(index);
    if (Number.isInteger(index) && index >= 0 && index < 256) defaultOffsets[index] = offset;
  }
  return offset;
}

/** Regions that are not implemented, by index: frozen and alike for every device, so made once. */
const absentRegions: ResolvedRegion[] = [];

/** A region index the device does not implement (size 0) at vfio-pci's default offset. */
function absentRegion(index: number): ResolvedRegion {
  let r = absentRegions[index];
  if (r === undefined) {
    r = Object.freeze({
      index,
      size: 0,
      read: false,
      write: false,
      mmap: false,
      offset: defaultOffset(index),
      flags: 0,
      caps: NO_CAPS,
    });
    if (Number.isInteger(index) && index >= 0 && index < 256) absentRegions[index] = r;
  }
  return r;
}
