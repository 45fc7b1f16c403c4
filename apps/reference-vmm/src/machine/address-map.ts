/**
 * An address space as an ordered map of ranges (vm-device's bus): each range has a tiny
 * read/write handler and the map finds it by binary search. Lookups and accesses allocate
 * nothing. An access that hits no range, or runs past the end of the range it starts in, reads
 * all-ones and drops the write, as a PCI master abort does, and is counted. An 8-byte access
 * (read64/write64) is one access to memory and to a trapped device region; a handler that takes
 * at most 4 bytes gets it as two 4-byte accesses, low half first, as QEMU's memory core splits
 * an access wider than a region's ops implement (access_with_adjusted_size).
 */
import { giveValueBytes, takeValueBytes, VfioError } from '@vfiokit/core';
import type { DeviceFile, RegionPort } from '@vfiokit/core/host';

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
  /** An 8-byte access as one; without these the map makes it two 4-byte accesses, low half first. */
  read64?(offset: number): bigint;
  write64?(offset: number, value: bigint): void;
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
  /** The handler of a trapped device range, when it is a RegionTrap (it is told of refused accesses). */
  readonly trap: RegionTrap | undefined;
  /**
   * A trap's access, resolved when the range is added: the region's port and the region offset
   * of address 0 (the trap's region offset minus `start`). The map makes the access itself from
   * these fields, as a value (RegionPort.readValue/writeValue): the guest's trapped access then
   * reaches the core without loading the trap first, and no bytes lie between the device's
   * register and the guest.
   */
  readonly trapPort: RegionPort | undefined;
  readonly trapBase: number;
  /** start + size: the first address past the range. */
  readonly end: number;
  reads: number;
  writes: number;
}

/** The value an unclaimed read of `size` bytes returns. */
export function allOnes(size: AccessSize): number {
  return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
}

/** What an unclaimed 8-byte read returns. */
const ALL_ONES_64 = 0xffff_ffff_ffff_ffffn;

/** Most ranges one chunk of the map holds before it is split in two. */
const CHUNK_MAX = 32;

export class AddressMap {
  /**
   * The ranges in address order, cut into chunks of at most CHUNK_MAX (a two-level sorted list):
   * adding or removing a range moves the entries of one chunk, not of the whole map, so mapping
   * the BARs of many devices (and unmapping them again) stays linear in the number of devices.
   */
  readonly #chunks: MappedRange[][] = [];
  /** The start of each chunk's first range, for the first level of the search. */
  readonly #heads: number[] = [];
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
    return this.addRange(spec.start, spec.size, spec.kind, spec.owner, spec.handler);
  }

  /** add() with the range's fields as arguments (no spec object to make). */
  addRange(start: number, size: number, kind: RangeKind, owner: string, handler: AccessHandler): MappedRange {
    if (
      !Number.isSafeInteger(start) ||
      !Number.isSafeInteger(size) ||
      start < 0 ||
      size <= 0 ||
      start + size > this.limit
    ) {
      throw new VfioError(
        'EINVAL',
        `${owner} asks for ${String(size)} bytes of ${this.name} space at ${hexOf(start)}, outside 0..${hexOf(this.limit)}.`,
        { hint: 'Map a non-empty range inside the address space.' },
      );
    }
    const chunks = this.#chunks;
    // The chunk to insert into: the last one starting at or before `start` (the first one otherwise).
    const c = Math.max(this.#chunkAt(start), 0);
    const chunk: MappedRange[] | undefined = chunks[c];
    const at = chunk === undefined ? 0 : lowerBound(chunk, start);
    const before = chunk !== undefined && at > 0 ? chunk[at - 1] : c > 0 ? lastOf(chunks[c - 1]) : undefined;
    const after =
      chunk !== undefined && at < chunk.length
        ? chunk[at]
        : c + 1 < chunks.length
          ? chunks[c + 1][0]
          : undefined;
    const clash =
      before !== undefined && before.start + before.size > start
        ? before
        : after !== undefined && after.start < start + size
          ? after
          : undefined;
    if (clash !== undefined) {
      throw new VfioError(
        'EEXIST',
        `${owner} asks for ${this.name} ${hexOf(start)}-${hexOf(start + size - 1)}, which overlaps ${clash.owner} (${clash.kind}) at ${hexOf(clash.start)}-${hexOf(clash.start + clash.size - 1)}.`,
        { hint: 'Program the BAR at a free address inside the PCI windows.' },
      );
    }
    const view = handler instanceof MemoryHandler ? handler.view : undefined;
    const trap = handler instanceof RegionTrap ? handler : undefined;
    // Every entry has the same shape, so the access path stays monomorphic.
    const entry: MappedRange = {
      start,
      size,
      kind,
      owner,
      handler,
      view,
      trap,
      trapPort: trap?.port,
      trapBase: trap === undefined ? 0 : trap.regionOffset - start,
      end: start + size,
      reads: 0,
      writes: 0,
    };
    if (chunk === undefined) {
      chunks.push([entry]);
      this.#heads.push(start);
      return entry;
    }
    insertAt(chunk, at, entry);
    if (at === 0) this.#heads[c] = start;
    if (chunk.length > CHUNK_MAX) {
      const upper = chunk.splice(chunk.length >>> 1);
      chunks.splice(c + 1, 0, upper);
      this.#heads.splice(c + 1, 0, upper[0].start);
    }
    return entry;
  }

  /** Take a range out of the map (no-op when it is not there). */
  remove(range: MappedRange): void {
    if (this.#last === range) this.#last = undefined;
    const c = this.#chunkAt(range.start);
    if (c < 0) return;
    const chunk = this.#chunks[c];
    // Ranges never overlap, so the one starting at range.start is the only candidate.
    const i = lowerBound(chunk, range.start);
    if (chunk[i] !== range) return;
    removeAt(chunk, i);
    if (chunk.length === 0) {
      this.#chunks.splice(c, 1);
      this.#heads.splice(c, 1);
    } else if (i === 0) {
      this.#heads[c] = chunk[0].start;
    }
  }

  /** Keep only the ranges `keep` accepts, in one sweep (many removals at once, such as at shutdown). */
  retain(keep: (range: MappedRange) => boolean): void {
    const all = this.ranges();
    this.#chunks.length = 0;
    this.#heads.length = 0;
    this.#last = undefined;
    let chunk: MappedRange[] | undefined;
    for (const r of all) {
      if (!keep(r)) continue;
      if (chunk === undefined || chunk.length === CHUNK_MAX) {
        chunk = [];
        this.#chunks.push(chunk);
        this.#heads.push(r.start);
      }
      chunk.push(r);
    }
  }

  /** The ranges in address order (a snapshot). */
  ranges(): readonly MappedRange[] {
    const out: MappedRange[] = [];
    for (const chunk of this.#chunks) for (const e of chunk) out.push(e);
    return out;
  }

  /** The range containing `addr`, if any. */
  find(addr: number): MappedRange | undefined {
    // Accesses come in runs to one range: the last range found is tried first. This path stays
    // small so that it inlines into read() and write() (and those into their callers).
    const last = this.#last;
    if (last !== undefined && addr >= last.start && addr < last.start + last.size) return last;
    return this.#search(addr);
  }

  /** find() without the last range: the two-level binary search. */
  #search(addr: number): MappedRange | undefined {
    const c = this.#chunkAt(addr);
    if (c < 0) return undefined;
    // The last range of the chunk starting at or before `addr` is the only one that can hold it.
    const entries = this.#chunks[c];
    let lo = 0;
    let hi = entries.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (entries[mid].start <= addr) lo = mid;
      else hi = mid - 1;
    }
    const e = entries[lo];
    if (addr >= e.start + e.size) return undefined;
    this.#last = e;
    return e;
  }

  // read() and write() are every guest access: one test against the last range found (the access
  // lies whole inside it) leads to the range's memory or trap; anything else (another range, a
  // miss, an access running past the end of its range) takes the search, out of line.
  read(addr: number, size: AccessSize): number {
    const e = this.#last;
    if (e !== undefined && addr >= e.start && addr + size <= e.end) return this.readIn(e, addr, size);
    return this.readSearched(addr, size);
  }

  write(addr: number, size: AccessSize, value: number): void {
    const e = this.#last;
    if (e !== undefined && addr >= e.start && addr + size <= e.end) this.writeIn(e, addr, size, value);
    else this.writeSearched(addr, size, value);
  }

  /** A read lying whole in range `e`. */
  private readIn(e: MappedRange, addr: number, size: AccessSize): number {
    e.reads++;
    const v = e.view;
    if (v !== undefined) {
      const off = addr - e.start;
      return size === 4 ? v.getUint32(off, true) : size === 2 ? v.getUint16(off, true) : v.getUint8(off);
    }
    const port = e.trapPort;
    if (port !== undefined) {
      // RegionTrap.read(), from the fields resolved at add().
      try {
        return port.readValue(addr + e.trapBase, size);
      } catch (err) {
        return (e.trap as RegionTrap).refusedRead(err, addr - e.start, size);
      }
    }
    return e.handler.read(addr - e.start, size);
  }

  /** A write lying whole in range `e`. */
  private writeIn(e: MappedRange, addr: number, size: AccessSize, value: number): void {
    e.writes++;
    const v = e.view;
    if (v !== undefined) {
      const off = addr - e.start;
      if (size === 4) v.setUint32(off, value >>> 0, true);
      else if (size === 2) v.setUint16(off, value & 0xffff, true);
      else v.setUint8(off, value & 0xff);
      return;
    }
    const port = e.trapPort;
    if (port !== undefined) {
      // RegionTrap.write(), from the fields resolved at add().
      try {
        port.writeValue(addr + e.trapBase, size, value);
      } catch (err) {
        (e.trap as RegionTrap).refusedWrite(err, addr - e.start);
      }
      return;
    }
    e.handler.write(addr - e.start, size, value);
  }

  /**
   * An 8-byte read as one access (a 64-bit guest's readq), little endian: memory reads it whole,
   * a handler with read64 (a trapped device region) gets one 8-byte access, any other two 4-byte
   * ones, low half first. Off the common path: the search every time.
   */
  read64(addr: number): bigint {
    const e = this.find(addr);
    if (e === undefined || addr + 8 > e.end) {
      this.unclaimedReads++;
      return ALL_ONES_64;
    }
    e.reads++;
    const off = addr - e.start;
    if (e.view !== undefined) return e.view.getBigUint64(off, true);
    const h = e.handler;
    if (h.read64 !== undefined) return h.read64(off);
    const lo = h.read(off, 4);
    return BigInt(lo) | (BigInt(h.read(off + 4, 4)) << 32n);
  }

  /** An 8-byte write as one access, read64()'s twin (the value's low 64 bits). */
  write64(addr: number, value: bigint): void {
    const e = this.find(addr);
    if (e === undefined || addr + 8 > e.end) {
      this.unclaimedWrites++;
      return;
    }
    e.writes++;
    const off = addr - e.start;
    if (e.view !== undefined) {
      e.view.setBigUint64(off, BigInt.asUintN(64, value), true);
      return;
    }
    const h = e.handler;
    if (h.write64 !== undefined) {
      h.write64(off, BigInt.asUintN(64, value));
      return;
    }
    h.write(off, 4, Number(BigInt.asUintN(32, value)));
    h.write(off + 4, 4, Number(BigInt.asUintN(32, value >> 32n)));
  }

  /** read() outside the last range found. */
  private readSearched(addr: number, size: AccessSize): number {
    const e = this.#search(addr);
    if (e === undefined || addr + size > e.end) return this.unclaimedRead(size);
    return this.readIn(e, addr, size);
  }

  /** write() outside the last range found. */
  private writeSearched(addr: number, size: AccessSize, value: number): void {
    const e = this.#search(addr);
    if (e === undefined || addr + size > e.end) this.unclaimedWrites++;
    else this.writeIn(e, addr, size, value);
  }

  /** A read that hit nothing: out of read() to keep it small enough to inline into its callers. */
  private unclaimedRead(size: AccessSize): number {
    this.unclaimedReads++;
    return allOnes(size);
  }

  /** Index of the last chunk whose first range starts at or before `addr`; -1 when there is none. */
  #chunkAt(addr: number): number {
    const heads = this.#heads;
    let lo = 0;
    let hi = heads.length - 1;
    if (hi < 0 || addr < heads[0]) return -1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (heads[mid] <= addr) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/** Index of the first entry of a sorted chunk whose start is >= `addr`. */
function lowerBound(entries: readonly MappedRange[], addr: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid].start < addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Insert into a chunk in place (splice would also make an array of what it removed). */
function insertAt(chunk: MappedRange[], at: number, entry: MappedRange): void {
  let i = chunk.length;
  chunk.push(entry);
  for (; i > at; i--) chunk[i] = chunk[i - 1];
  chunk[at] = entry;
}

function removeAt(chunk: MappedRange[], at: number): void {
  for (let i = at + 1; i < chunk.length; i++) chunk[i - 1] = chunk[i];
  chunk.pop();
}

function lastOf(entries: readonly MappedRange[]): MappedRange | undefined {
  return entries[entries.length - 1];
}

/** Memory the VMM reads and writes itself: guest RAM and directly mapped device areas. */
export class MemoryHandler implements AccessHandler {
  readonly view: DataView;

  constructor(bytes: Uint8Array, offset = 0, size = bytes.length - offset) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset + offset, size);
  }

  read64(offset: number): bigint {
    return this.view.getBigUint64(offset, true);
  }

  write64(offset: number, value: bigint): void {
    this.view.setBigUint64(offset, BigInt.asUintN(64, value), true);
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

/** Whom a RegionTrap tells of an access the device refused or failed (the VMM logs and records it). */
export interface TrapFaults {
  fault(err: unknown, operation: string, region: number, offset: number): void;
}

/**
 * A range a device region serves through the core: each access is a value read or write of the
 * region's port (RegionPort.readValue/writeValue) at `regionOffset` plus the offset inside the
 * range (a trapped part of a BAR). It allocates nothing and makes one call into the core; a
 * refused access reads all-ones (the write is dropped) and goes to `faults`.
 */
export class RegionTrap implements AccessHandler {
  /** Region `region` of the file, whose accesses count on their own fields (the file adds them up). */
  readonly port: RegionPort;

  constructor(
    private readonly faults: TrapFaults,
    file: DeviceFile,
    readonly region: number,
    readonly regionOffset: number,
  ) {
    this.port = file.regionPort(region);
  }

  read(offset: number, size: AccessSize): number {
    try {
      return this.port.readValue(this.regionOffset + offset, size);
    } catch (err) {
      return this.refusedRead(err, offset, size);
    }
  }

  write(offset: number, size: AccessSize, value: number): void {
    try {
      this.port.writeValue(this.regionOffset + offset, size, value);
    } catch (err) {
      this.refusedWrite(err, offset);
    }
  }

  /** One 8-byte read of the region (through bytes: a value road carries at most 4). */
  read64(offset: number): bigint {
    const s = takeValueBytes();
    try {
      this.port.read(this.regionOffset + offset, s.bytes);
    } catch (err) {
      giveValueBytes(s);
      this.faults.fault(err, 'read', this.region, this.regionOffset + offset);
      return ALL_ONES_64;
    }
    giveValueBytes(s);
    return s.get64();
  }

  /** One 8-byte write of the region: the value's low 64 bits. */
  write64(offset: number, value: bigint): void {
    const s = takeValueBytes();
    try {
      this.port.write(this.regionOffset + offset, s.set64(value));
    } catch (err) {
      this.refusedWrite(err, offset);
    }
    giveValueBytes(s);
  }

  /** A read at `offset` in the range that the device refused: all-ones, and the fault is told. */
  refusedRead(err: unknown, offset: number, size: AccessSize): number {
    this.faults.fault(err, 'read', this.region, this.regionOffset + offset);
    return allOnes(size);
  }

  /** A write at `offset` in the range that the device refused: dropped, and the fault is told. */
  refusedWrite(err: unknown, offset: number): void {
    this.faults.fault(err, 'write', this.region, this.regionOffset + offset);
  }
}

export function hexOf(n: number): string {
  return Number.isSafeInteger(n) && n >= 0 ? `0x${n.toString(16)}` : String(n);
}
