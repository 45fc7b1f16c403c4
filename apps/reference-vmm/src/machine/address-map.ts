/**
 * An address space as an ordered map of ranges (vm-device's bus): each range has a tiny
 * read/write handler and the map finds it by binary search. Lookups and accesses allocate
 * nothing. An access that hits no range, or runs past the end of the range it starts in, reads
 * all-ones and drops the write, as a PCI master abort does, and is counted.
 */
import { VfioError } from '@vfiokit/core';

export type AccessSize = 1 | 2 | 4;

/** What a range is, for the report. */
export type RangeKind =
  | 'ram'
  | 'direct'
  | 'trapped'
  | 'msix-table'
  | 'msix-pba'
  | 'ecam'
  | 'msi'
  | 'config-port'
  | 'emulated';

export interface AccessHandler {
  /** Read `size` bytes at `offset` inside the range, little endian. */
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
}

export interface RangeSpec {
  readonly start: number;
  readonly size: number;
  readonly kind: RangeKind;
  /** Who put it there: a device label, `ram`, `host-bridge`... */
  readonly owner: string;
  readonly handler: AccessHandler;
}

/** A range in the map, with its access counters. */
export interface MappedRange extends RangeSpec {
  /** The memory behind a RAM or direct range: accessed inline, without a handler call. */
  readonly view: DataView | undefined;
  reads: number;
  writes: number;
}

/** The value an unclaimed read of `size` bytes returns. */
export function allOnes(size: AccessSize): number {
  return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
}

export class AddressMap {
  readonly #entries: MappedRange[] = [];
  #last: MappedRange | undefined;
  /** Reads that hit nothing (answered all-ones). */
  unclaimedReads = 0;
  /** Writes that hit nothing (dropped). */
  unclaimedWrites = 0;

  /**
   * @param name the space's name for messages (`memory`, `io`).
   * @param limit the first address past the space.
   */
  constructor(
    readonly name: string,
    readonly limit: number,
  ) {}

  /** Put a range in the map. EINVAL for an empty or out-of-space range, EEXIST for an overlap. */
  add(spec: RangeSpec): MappedRange {
    const { start, size } = spec;
    if (
      !Number.isSafeInteger(start) ||
      !Number.isSafeInteger(size) ||
      start < 0 ||
      size <= 0 ||
      start + size > this.limit
    ) {
      throw new VfioError(
        'EINVAL',
        `${spec.owner} asks for ${String(size)} bytes of ${this.name} space at ${hexOf(start)}, outside 0..${hexOf(this.limit)}.`,
        { hint: 'Map a non-empty range inside the address space.' },
      );
    }
    const at = this.#lowerBound(start);
    const before = this.#entries[at - 1];
    const after = this.#entries[at];
    const clash =
      before !== undefined && before.start + before.size > start
        ? before
        : after !== undefined && after.start < start + size
          ? after
          : undefined;
    if (clash !== undefined) {
      throw new VfioError(
        'EEXIST',
        `${spec.owner} asks for ${this.name} ${hexOf(start)}-${hexOf(start + size - 1)}, which overlaps ${clash.owner} (${clash.kind}) at ${hexOf(clash.start)}-${hexOf(clash.start + clash.size - 1)}.`,
        { hint: 'Program the BAR at a free address inside the PCI windows.' },
      );
    }
    const view = spec.handler instanceof MemoryHandler ? spec.handler.view : undefined;
    // Every entry has the same shape, so the access path stays monomorphic.
    const entry: MappedRange = {
      start: spec.start,
      size: spec.size,
      kind: spec.kind,
      owner: spec.owner,
      handler: spec.handler,
      view,
      reads: 0,
      writes: 0,
    };
    this.#entries.splice(at, 0, entry);
    return entry;
  }

  /** Take a range out of the map (no-op when it is not there). */
  remove(range: MappedRange): void {
    const i = this.#entries.indexOf(range);
    if (i >= 0) this.#entries.splice(i, 1);
    if (this.#last === range) this.#last = undefined;
  }

  /** The ranges in address order (a snapshot). */
  ranges(): readonly MappedRange[] {
    return this.#entries.slice();
  }

  /** The range containing `addr`, if any. */
  find(addr: number): MappedRange | undefined {
    const last = this.#last;
    if (last !== undefined && addr >= last.start && addr < last.start + last.size) return last;
    const entries = this.#entries;
    let lo = 0;
    let hi = entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = entries[mid];
      if (addr < e.start) hi = mid - 1;
      else if (addr >= e.start + e.size) lo = mid + 1;
      else {
        this.#last = e;
        return e;
      }
    }
    return undefined;
  }

  read(addr: number, size: AccessSize): number {
    const e = this.find(addr);
    if (e === undefined || addr + size > e.start + e.size) {
      this.unclaimedReads++;
      return allOnes(size);
    }
    e.reads++;
    const v = e.view;
    if (v !== undefined) {
      const off = addr - e.start;
      return size === 4 ? v.getUint32(off, true) : size === 2 ? v.getUint16(off, true) : v.getUint8(off);
    }
    return e.handler.read(addr - e.start, size);
  }

  write(addr: number, size: AccessSize, value: number): void {
    const e = this.find(addr);
    if (e === undefined || addr + size > e.start + e.size) {
      this.unclaimedWrites++;
      return;
    }
    e.writes++;
    const v = e.view;
    if (v !== undefined) {
      const off = addr - e.start;
      if (size === 4) v.setUint32(off, value >>> 0, true);
      else if (size === 2) v.setUint16(off, value & 0xffff, true);
      else v.setUint8(off, value & 0xff);
      return;
    }
    e.handler.write(addr - e.start, size, value);
  }

  /** Index of the first entry whose start is >= `addr`. */
  #lowerBound(addr: number): number {
    const entries = this.#entries;
    let lo = 0;
    let hi = entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (entries[mid].start < addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Memory the VMM reads and writes itself: guest RAM and directly mapped device areas. */
export class MemoryHandler implements AccessHandler {
  readonly view: DataView;

  constructor(bytes: Uint8Array, offset = 0, size = bytes.length - offset) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset + offset, size);
  }

  read(offset: number, size: AccessSize): number {
    const v = this.view;
    if (size === 4) return v.getUint32(offset, true);
    if (size === 2) return v.getUint16(offset, true);
    return v.getUint8(offset);
  }

  write(offset: number, size: AccessSize, value: number): void {
    const v = this.view;
    if (size === 4) v.setUint32(offset, value >>> 0, true);
    else if (size === 2) v.setUint16(offset, value & 0xffff, true);
    else v.setUint8(offset, value & 0xff);
  }
}

export function hexOf(n: number): string {
  return Number.isSafeInteger(n) && n >= 0 ? `0x${n.toString(16)}` : String(n);
}
