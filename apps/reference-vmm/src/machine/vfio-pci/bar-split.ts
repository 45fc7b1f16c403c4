/**
 * How a BAR of an assigned function is cut into parts: mmap areas (all of an MMAP region without
 * the sparse-mmap capability) reach the guest directly, the MSI-X table and PBA are the VMM's,
 * the rest is trapped. Without MSIX_MAPPABLE the pages holding the table and the PBA are taken
 * out of the direct areas, as QEMU's vfio_pci_fixup_msix_region does. The split depends on
 * REGION_INFO and the MSI-X capability only, so it is made once, when the device is attached.
 */

import { PAGE_SIZE } from '@vfiokit/core';
import { VFIO_REGION_INFO_CAP_SPARSE_MMAP, VFIO_REGION_INFO_FLAG_MMAP } from '@vfiokit/core/abi';
import type { ResolvedRegion } from '@vfiokit/core/host';

/** How a part of a BAR reaches the guest. */
export type PartHow = 'direct' | 'trapped' | 'msix-table' | 'msix-pba';

/** A piece of a BAR, relative to the BAR's start. */
export interface BarPart {
  readonly offset: number;
  readonly size: number;
  readonly how: PartHow;
}

/** Where the VMM-kept MSI-X table and PBA sit (BAR index and offset in it) and their sizes. */
export interface MsixPlacement {
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly tableBytes: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
  readonly pbaBytes: number;
}

/**
 * Where splitBar puts the parts, in address order: one list kept for every split (attaching runs
 * one at a time), so cutting a BAR makes no objects; the caller reads the parts out before the
 * next split.
 */
export class PartList {
  count = 0;
  readonly offsets: number[] = [];
  readonly sizes: number[] = [];
  readonly hows: PartHow[] = [];

  push(offset: number, size: number, how: PartHow): void {
    const k = this.count++;
    this.offsets[k] = offset;
    this.sizes[k] = size;
    this.hows[k] = how;
  }
}

/**
 * The parts of BAR `region` in address order, into `out` (emptied first). `msix` is the VMM-kept
 * table and PBA (undefined when the VMM keeps none: no MSI-X, or an MSIX_MAPPABLE BAR).
 */
export function splitBar(
  region: ResolvedRegion,
  io: boolean,
  msix: MsixPlacement | undefined,
  out: PartList,
): void {
  out.count = 0;
  const size = region.size;
  const mappable = !io && (region.flags & VFIO_REGION_INFO_FLAG_MMAP) !== 0;
  // undefined: the whole region maps (it has no sparse-mmap capability).
  const areas = mappable ? sparseAreas(region) : undefined;
  const hasTable = msix !== undefined && msix.tableBar === region.index;
  const hasPba = msix !== undefined && msix.pbaBar === region.index;
  // Most BARs are all direct or all trapped: one part, nothing to cut.
  if (!hasTable && !hasPba && areas === undefined) {
    out.push(0, size, mappable ? 'direct' : 'trapped');
    return;
  }
  // The emulated structures, and the pages holding them (not mapped; the rest of those pages
  // is trapped). An absent structure is the empty span [-1, -1).
  const tableStart = hasTable ? msix.tableOffset : -1;
  const tableEnd = hasTable ? msix.tableOffset + msix.tableBytes : -1;
  const pbaStart = hasPba ? msix.pbaOffset : -1;
  const pbaEnd = hasPba ? msix.pbaOffset + msix.pbaBytes : -1;
  const tableHole = hasTable && tableStart < size;
  const pbaHole = hasPba && pbaStart < size;
  const cuts = CUTS;
  cuts.reset(size);
  if (mappable) {
    if (areas === undefined) cuts.add(0, size);
    else for (const a of areas) if (isArea(a, size)) cuts.add(a.offset, a.offset + a.size);
  }
  if (tableHole) cuts.add(pageDown(tableStart), Math.min(pageUp(tableEnd), size));
  if (pbaHole) cuts.add(pageDown(pbaStart), Math.min(pageUp(pbaEnd), size));
  if (hasTable) cuts.add(Math.min(tableStart, size), Math.min(tableEnd, size));
  if (hasPba) cuts.add(Math.min(pbaStart, size), Math.min(pbaEnd, size));
  // Runs of pieces with the same handling become one part; `runArea` keeps direct pieces of
  // different mmap areas apart (one mmap never spans two areas).
  let runOffset = 0;
  let runEnd = 0;
  let runHow: PartHow | undefined;
  let runArea = -1;
  for (let k = 0; k + 1 < cuts.count; k++) {
    const offset = cuts.at(k);
    const end = cuts.at(k + 1);
    if (end <= offset) continue;
    const area = mappable ? areaHolding(areas, size, offset, end) : -1;
    let how: PartHow;
    if (offset >= tableStart && end <= tableEnd) how = 'msix-table';
    else if (offset >= pbaStart && end <= pbaEnd) how = 'msix-pba';
    else if (
      area >= 0 &&
      !(tableHole && offset >= pageDown(tableStart) && end <= pageUp(tableEnd)) &&
      !(pbaHole && offset >= pageDown(pbaStart) && end <= pageUp(pbaEnd))
    )
      how = 'direct';
    else how = 'trapped';
    const joins =
      runHow !== undefined && runHow === how && (how === 'trapped' || (how === 'direct' && runArea === area));
    if (joins) {
      runEnd = end;
      runArea = area;
      continue;
    }
    if (runHow !== undefined) out.push(runOffset, runEnd - runOffset, runHow);
    runOffset = offset;
    runEnd = end;
    runHow = how;
    runArea = area;
  }
  if (runHow !== undefined) out.push(runOffset, runEnd - runOffset, runHow);
}

/**
 * The cut points of one BAR being split, kept sorted: a few numbers, so insertion is quickest,
 * and one list serves every split (attaching runs one at a time).
 */
class CutList {
  readonly #values: number[] = [];
  count = 0;

  reset(size: number): void {
    this.count = 0;
    this.#insert(0);
    this.#insert(size);
  }

  add(a: number, b: number): void {
    this.#insert(a);
    this.#insert(b);
  }

  at(k: number): number {
    return this.#values[k];
  }

  #insert(v: number): void {
    const values = this.#values;
    let i = this.count;
    if (i === values.length) values.push(v);
    while (i > 0 && values[i - 1] > v) {
      values[i] = values[i - 1];
      i--;
    }
    values[i] = v;
    this.count++;
  }
}

const CUTS = new CutList();

function pageDown(offset: number): number {
  return Math.floor(offset / PAGE_SIZE) * PAGE_SIZE;
}

function pageUp(offset: number): number {
  return Math.ceil(offset / PAGE_SIZE) * PAGE_SIZE;
}

/** An mmap area that lies inside the region (others are ignored). */
function isArea(a: { offset: number; size: number }, size: number): boolean {
  return a.size > 0 && a.offset + a.size <= size;
}

/**
 * Which mmap area holds all of [offset, end): its index in `areas` (0 for a region mapped whole,
 * `areas` undefined), or -1.
 */
function areaHolding(
  areas: readonly { offset: number; size: number }[] | undefined,
  size: number,
  offset: number,
  end: number,
): number {
  if (areas === undefined) return offset >= 0 && end <= size ? 0 : -1;
  for (let i = 0; i < areas.length; i++) {
    const a = areas[i];
    if (isArea(a, size) && offset >= a.offset && end <= a.offset + a.size) return i;
  }
  return -1;
}

/** The areas of the region's sparse-mmap capability; undefined when it has none (all of it maps). */
function sparseAreas(region: ResolvedRegion): readonly { offset: number; size: number }[] | undefined {
  for (const c of region.caps) if (c.id === VFIO_REGION_INFO_CAP_SPARSE_MMAP && 'areas' in c) return c.areas;
  return undefined;
}
