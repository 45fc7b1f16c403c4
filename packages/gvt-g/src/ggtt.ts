/**
 * GGTT shadowing for one vGPU (gvt/gtt.c's ggtt part) and the vGPU's view of graphics memory.
 *
 * A guest PTE written into BAR0's GGTT window is kept as the guest wrote it (reads return it)
 * and, when present, shadowed: its guest frame is pinned through the host context's DMA
 * mappings and the host GGTT entry is written with the resulting DMA address. An index outside
 * the vGPU's ballooned ranges is refused and logged (nothing is stored, reads give 0); a present
 * PTE whose frame is not mapped is stored for the guest but the host entry stays on the scratch
 * page. Nothing here ever writes an entry outside this vGPU's ranges.
 */

import { crc32 } from 'node:zlib';
import type { DirtyLog, DmaSpace, Logger, PinnedRange } from '@vfiokit/core';
import { TWO_32 } from '@vfiokit/core';
import type { GpuAddressSpace } from './address-space.js';
import { GTT_PAGE_SIZE } from './constants.js';
import type { GmRange, HostGpu, VgpuResources } from './host-gpu.js';

/** gen8 PTE: bit 0 present; the frame in bits 45:12 (GVT's ADDR_4K_MASK). */
export const GEN8_PAGE_PRESENT = 1;
const FRAME_LIMIT = 2 ** 34;

interface PinSlot {
  readonly gfn: number;
  readonly pin: PinnedRange;
  refs: number;
}

export interface GgttStats {
  shadowed: number;
  refusedOutOfRange: number;
  refusedUnmapped: number;
}

const LOG_LIMIT = 32;
const BLANK_PAGE = new Uint8Array(GTT_PAGE_SIZE);

export class GgttShadow {
  readonly lowFirst: number;
  readonly lowEnd: number;
  readonly highFirst: number;
  readonly highEnd: number;
  private readonly lowPages: number;
  /** The guest's own entries, low pages then high pages. */
  private readonly guest: Float64Array;
  private readonly slots: (PinSlot | undefined)[];
  /**
   * The entries written since the last reset, each once (`isLive` marks them): a reset and an
   * unmap visit these instead of every entry of the vGPU's ranges.
   */
  private readonly live: Int32Array;
  private readonly isLive: Uint8Array;
  private liveCount = 0;
  private readonly cache = new Map<number, PinSlot>();
  private dma: DmaSpace | undefined;
  private dirty: DirtyLog | undefined;
  private log: Logger | undefined;
  private logged = 0;
  readonly stats: GgttStats = { shadowed: 0, refusedOutOfRange: 0, refusedUnmapped: 0 };
  /**
   * Mappable GM pages whose aperture copy and guest page the engines last made equal: the CRC of
   * that content, to tell which side the guest changed since (GmAccess 'memory'). Forgotten when
   * the entry changes.
   */
  readonly lowSynced = new Map<number, number>();

  constructor(
    private readonly host: HostGpu,
    readonly resources: VgpuResources,
    private readonly name: string,
  ) {
    this.lowFirst = resources.low.base / GTT_PAGE_SIZE;
    this.lowEnd = this.lowFirst + resources.low.size / GTT_PAGE_SIZE;
    this.highFirst = resources.high.base / GTT_PAGE_SIZE;
    this.highEnd = this.highFirst + resources.high.size / GTT_PAGE_SIZE;
    this.lowPages = this.lowEnd - this.lowFirst;
    const n = this.lowPages + (this.highEnd - this.highFirst);
    this.guest = new Float64Array(n);
    this.slots = new Array<PinSlot | undefined>(n).fill(undefined);
    this.live = new Int32Array(n);
    this.isLive = new Uint8Array(n);
  }

  /** The device opened: DMA goes through this context from now on. */
  attach(dma: DmaSpace, dirty: DirtyLog, log: Logger): void {
    this.dma = dma;
    this.dirty = dirty;
    this.log = log;
  }

  /** The device closes: every pin is released and the host entries go back to scratch. */
  detach(): void {
    this.reset();
    this.dma = undefined;
    this.dirty = undefined;
  }

  /** Index into this vGPU's tables for GM page `page`, or -1 outside its ranges. */
  localIndex(page: number): number {
    if (page >= this.lowFirst && page < this.lowEnd) return page - this.lowFirst;
    if (page >= this.highFirst && page < this.highEnd) return this.lowPages + page - this.highFirst;
    return -1;
  }

  /** GM page of index `i` into this vGPU's tables. */
  private pageOf(i: number): number {
    return i < this.lowPages ? this.lowFirst + i : this.highFirst + i - this.lowPages;
  }

  /** The guest's value of the entry for GM page `page` (0 outside the vGPU's ranges). */
  readEntry(page: number): number {
    const i = this.localIndex(page);
    return i < 0 ? 0 : this.guest[i];
  }

  /**
   * A 4-byte guest write of half an entry (`high` selects bits 63:32); the merged entry is
   * shadowed at once, as GVT does for each MMIO write into the GGTT.
   */
  writeHalf(page: number, high: boolean, value: number): void {
    const i = this.localIndex(page);
    if (i < 0) {
      this.refuseOutOfRange(page);
      return;
    }
    const old = this.guest[i];
    const lo = old % TWO_32;
    const hi = Math.floor(old / TWO_32);
    this.writeEntry(page, high ? lo + (value >>> 0) * TWO_32 : hi * TWO_32 + (value >>> 0));
  }

  /** Write the guest entry for GM page `page` and shadow it into the host GGTT. */
  writeEntry(page: number, value: number): void {
    const i = this.localIndex(page);
    if (i < 0) {
      this.refuseOutOfRange(page);
      return;
    }
    this.guest[i] = value;
    if (this.isLive[i] === 0) {
      this.isLive[i] = 1;
      this.live[this.liveCount++] = i;
    }
    const ggtt = this.host.ggtt;
    if (i < this.lowPages) this.lowSynced.delete(page);
    if (value % 2 !== GEN8_PAGE_PRESENT) {
      this.release(i);
      ggtt.clear(page);
      return;
    }
    const gfn = Math.floor(value / GTT_PAGE_SIZE) % FRAME_LIMIT;
    let slot = this.slots[i];
    if (slot === undefined || slot.gfn !== gfn) {
      const next = this.acquire(gfn);
      this.release(i);
      if (next === undefined) {
        ggtt.clear(page);
        this.stats.refusedUnmapped++;
        this.note(
          `GGTT entry for GM page 0x${page.toString(16)} points at guest frame 0x${gfn.toString(16)}, which is not mapped; the entry stays on the scratch page.`,
        );
        return;
      }
      slot = next;
      this.slots[i] = slot;
    }
    // The host entry: the page's DMA address with the guest's flag bits; low pages too keep the
    // guest page, which the engines reach through the entry (GmAccess 'memory').
    ggtt.set(page, slot.gfn * GTT_PAGE_SIZE + (value % GTT_PAGE_SIZE), slot.pin.bytes);
    this.stats.shadowed++;
  }

  /** Every entry back to not present (vGPU reset): pins released, host entries on scratch. */
  reset(): void {
    this.lowSynced.clear();
    const ggtt = this.host.ggtt;
    // Only written entries can be non-zero or hold a pin.
    for (let k = 0; k < this.liveCount; k++) {
      const i = this.live[k];
      this.isLive[i] = 0;
      if (this.guest[i] !== 0 || this.slots[i] !== undefined) {
        this.release(i);
        this.guest[i] = 0;
        ggtt.clear(this.pageOf(i));
      }
    }
    this.liveCount = 0;
    for (const slot of this.cache.values()) slot.pin.unpin();
    this.cache.clear();
  }

  /** Pages currently pinned for this vGPU. */
  get pinnedFrames(): number {
    return this.cache.size;
  }

  /** Mark a device write through a pinned page as dirty for migration. */
  markDirty(iova: number, length: number): void {
    this.dirty?.markDirty(iova, length);
  }

  private acquire(gfn: number): PinSlot | undefined {
    const cached = this.cache.get(gfn);
    if (cached !== undefined) {
      cached.refs++;
      return cached;
    }
    const dma = this.dma;
    if (dma === undefined) return undefined;
    let pin: PinnedRange;
    try {
      pin = dma.pin(gfn * GTT_PAGE_SIZE, GTT_PAGE_SIZE, true);
    } catch {
      return undefined;
    }
    const slot: PinSlot = { gfn, pin, refs: 1 };
    pin.onUnmap = () => this.invalidate(slot);
    this.cache.set(gfn, slot);
    return slot;
  }

  private release(i: number): void {
    const slot = this.slots[i];
    if (slot === undefined) return;
    this.slots[i] = undefined;
    if (--slot.refs === 0) {
      this.cache.delete(slot.gfn);
      slot.pin.unpin();
    }
  }

  /** The guest unmapped memory under live entries: they fall back to the scratch page. */
  private invalidate(slot: PinSlot): void {
    const ggtt = this.host.ggtt;
    for (let k = 0; k < this.liveCount; k++) {
      const i = this.live[k];
      if (this.slots[i] !== slot) continue;
      this.slots[i] = undefined;
      ggtt.clear(this.pageOf(i));
    }
    this.cache.delete(slot.gfn);
    slot.refs = 0;
  }

  private refuseOutOfRange(page: number): void {
    this.stats.refusedOutOfRange++;
    this.note(
      `GGTT write for GM page 0x${page.toString(16)} is outside this vGPU's ballooned ranges; it was dropped.`,
    );
  }

  private note(message: string): void {
    if (this.logged >= LOG_LIMIT || this.log === undefined) return;
    this.logged++;
    this.log.warn(
      `${this.name}: ${message}${this.logged === LOG_LIMIT ? ' (further GGTT refusals are not logged)' : ''}`,
    );
  }
}

/** True when [addr, addr + length) lies inside one of the ranges. */
export function insideRanges(addr: number, length: number, a: GmRange, b: GmRange): boolean {
  return (
    (addr >= a.base && addr + length <= a.base + a.size) ||
    (addr >= b.base && addr + length <= b.base + b.size)
  );
}

/**
 * Where the mappable part of GM (below the aperture size) lives for an access:
 * - 'memory': the engines' and the command scanner's view. On the hardware the aperture is a
 *   window onto the page each GGTT entry names; here BAR2 is host memory mapped straight into
 *   the guest, so a mappable page has two copies: the aperture (what the guest wrote through
 *   BAR2) and its guest page (what it wrote through its own mapping: i915 writes contexts,
 *   rings and batches so, and binds them in the mappable range too). Before the engines touch
 *   such a page the two are made equal, the side the guest changed since they last were winning
 *   (a CRC of the last equal content tells; the first time, the side that is not blank, else the
 *   guest page); engine writes go to both.
 * - 'aperture': the aperture memory alone — the display's view (fbcon writes through BAR2).
 */
export type LowGmView = 'memory' | 'aperture';

/**
 * The vGPU's accesses to graphics memory as the GPU makes them (the engine, the display and the
 * command scanner): bounded to its ranges, through present host GGTT entries only.
 */
export class GmAccess implements GpuAddressSpace {
  private readonly aperture: Uint8Array;
  private readonly aperture32: Uint32Array;

  constructor(
    private readonly host: HostGpu,
    private readonly shadow: GgttShadow,
    readonly lowGm: LowGmView = 'memory',
  ) {
    this.aperture = shadow.resources.aperture.bytes;
    this.aperture32 = new Uint32Array(
      this.aperture.buffer,
      this.aperture.byteOffset,
      this.aperture.length >>> 2,
    );
  }

  inside(addr: number, length: number): boolean {
    return (
      Number.isSafeInteger(addr) &&
      addr >= 0 &&
      length >= 0 &&
      insideRanges(addr, length, this.shadow.resources.low, this.shadow.resources.high)
    );
  }

  /**
   * The 32-bit words of the page holding `addr` and the index of the page's first word in it, or
   * -1 when the page is outside the vGPU or its entry is not present.
   */
  pageWords(addr: number): { words: Uint32Array; base: number } | undefined {
    if (!this.inside(addr, 1)) return undefined;
    const page = Math.floor(addr / GTT_PAGE_SIZE);
    const ggtt = this.host.ggtt;
    if (ggtt.pte[page] % 2 !== GEN8_PAGE_PRESENT) return undefined;
    if (addr < this.host.apertureSize) {
      if (this.lowGm === 'aperture') return { words: this.aperture32, base: page * (GTT_PAGE_SIZE / 4) };
      this.syncLow(page);
    }
    const words = ggtt.wordsOf(page);
    return words === undefined ? undefined : { words, base: 0 };
  }

  /** Bytes of the page holding `addr` and the offset of `addr` in them; undefined if not reachable. */
  private page(addr: number): { bytes: Uint8Array; at: number; page: number } | undefined {
    const page = Math.floor(addr / GTT_PAGE_SIZE);
    const ggtt = this.host.ggtt;
    if (ggtt.pte[page] % 2 !== GEN8_PAGE_PRESENT) return undefined;
    if (addr < this.host.apertureSize) {
      if (this.lowGm === 'aperture') return { bytes: this.aperture, at: addr, page };
      this.syncLow(page);
    }
    const bytes = ggtt.pages[page];
    return bytes === undefined ? undefined : { bytes, at: addr % GTT_PAGE_SIZE, page };
  }

  /** Copy GM into `dst`; false (and nothing guaranteed in `dst`) when any page is unreachable. */
  read(addr: number, dst: Uint8Array): boolean {
    if (!this.inside(addr, dst.length)) return false;
    let done = 0;
    while (done < dst.length) {
      const p = this.page(addr + done);
      if (p === undefined) return false;
      const n = Math.min(dst.length - done, GTT_PAGE_SIZE - ((addr + done) % GTT_PAGE_SIZE));
      dst.set(p.bytes.subarray(p.at, p.at + n), done);
      done += n;
    }
    return true;
  }

  /** Copy `src` into GM; false when the range is outside the vGPU (nothing written) or a page is unreachable. */
  write(addr: number, src: Uint8Array): boolean {
    if (!this.inside(addr, src.length)) return false;
    let done = 0;
    while (done < src.length) {
      const p = this.page(addr + done);
      if (p === undefined) return false;
      const n = Math.min(src.length - done, GTT_PAGE_SIZE - ((addr + done) % GTT_PAGE_SIZE));
      p.bytes.set(src.subarray(done, done + n), p.at);
      this.written(addr + done, p, n);
      done += n;
    }
    return true;
  }

  /** Fill `length` bytes at `addr` with the repeating `pattern` (1, 2 or 4 bytes). */
  fill(addr: number, length: number, pattern: Uint8Array): boolean {
    if (!this.inside(addr, length)) return false;
    const plen = pattern.length;
    let done = 0;
    while (done < length) {
      const p = this.page(addr + done);
      if (p === undefined) return false;
      const n = Math.min(length - done, GTT_PAGE_SIZE - ((addr + done) % GTT_PAGE_SIZE));
      const b = p.bytes;
      if (plen === 1) b.fill(pattern[0], p.at, p.at + n);
      else {
        // The pattern once (in phase with the start), then doubled with copyWithin.
        const first = Math.min(n, plen);
        for (let k = 0; k < first; k++) b[p.at + k] = pattern[(done + k) % plen];
        for (let have = first; have < n; ) {
          const take = Math.min(have - (have % plen), n - have);
          b.copyWithin(p.at + have, p.at, p.at + take);
          have += take;
        }
      }
      this.written(addr + done, p, n);
      done += n;
    }
    return true;
  }

  /**
   * `n` bytes at GM `at` were written into `p`: the guest page is dirty for migration; in the
   * mappable range the aperture holds the same bytes (copied there from the guest page in the
   * 'memory' view) and its pages are marked written.
   */
  private written(at: number, p: { bytes: Uint8Array; at: number; page: number }, n: number): void {
    if (at >= this.host.apertureSize) {
      this.markDirty(p.page, p.at, n);
      return;
    }
    if (this.lowGm === 'memory') {
      this.markDirty(p.page, p.at, n);
      this.aperture.set(p.bytes.subarray(p.at, p.at + n), at);
      this.shadow.lowSynced.set(p.page, crc32(p.bytes));
    }
    this.shadow.resources.aperturePages.written(at, n);
  }

  /** Make a mappable page's aperture copy and guest page equal (see LowGmView). */
  private syncLow(page: number): void {
    const g = this.host.ggtt.pages[page];
    if (g === undefined) return;
    const a = this.aperture.subarray(page * GTT_PAGE_SIZE, (page + 1) * GTT_PAGE_SIZE);
    if (Buffer.compare(a, g) === 0) {
      if (!this.shadow.lowSynced.has(page)) this.shadow.lowSynced.set(page, crc32(g));
      return;
    }
    const last = this.shadow.lowSynced.get(page);
    const apertureWins =
      last === undefined
        ? Buffer.compare(g, BLANK_PAGE) === 0 && Buffer.compare(a, BLANK_PAGE) !== 0
        : crc32(a) !== last;
    if (apertureWins) {
      g.set(a);
      this.markDirty(page, 0, GTT_PAGE_SIZE);
    } else {
      a.set(g);
      this.shadow.resources.aperturePages.written(page * GTT_PAGE_SIZE, GTT_PAGE_SIZE);
    }
    this.shadow.lowSynced.set(page, crc32(g));
  }

  private markDirty(page: number, at: number, length: number): void {
    const dmaAddress = this.host.ggtt.pte[page] - (this.host.ggtt.pte[page] % GTT_PAGE_SIZE);
    this.shadow.markDirty(dmaAddress + at, length);
  }
}
