/**
 * The PCI capability walk, once for every side: the VMM's probe, the config space of a device
 * model, the conformance suite and the lspci printer all follow capability pointers through
 * these cursors. A cursor is reused from walk to walk and allocates nothing per step: it reads
 * through a ConfigReader (a guest config cycle, a device's own bytes), keeps the offsets it has
 * visited in a bit mask, stops at the first bad pointer and says what was wrong with it and
 * where. walkCapabilities and walkExtendedCapabilities collect a whole walk into an array for
 * reports.
 *
 * Rules (Linux drivers/pci/pci.c __pci_find_next_cap_ttl and pci_find_next_ext_capability,
 * made exact): the standard list starts at the pointer at 0x34 when STATUS.CAP_LIST is set; a
 * pointer with its low two bits set is 'misaligned', one into the standard header or without room
 * for its ID and next bytes is 'out-of-range', and an offset reached twice is a 'loop'. Each
 * capability's ID and next pointer are read as one 16-bit word, as Linux reads them.
 *
 * With the 'pciutils' rules (lib/caps.c pci_scan_trad_caps / pci_scan_ext_caps, ls-caps.c
 * show_caps / show_ext_caps), which lspci must print exactly: every pointer is taken with its low
 * two bits cleared and none is out of range, a standard capability with ID 0xff is 'broken', an
 * extended list goes on through any next pointer (even one below 0x100) and ends cleanly at any
 * header that is 0 or all ones, and an offset reached twice is a 'loop'.
 */

import {
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_EXT_CAP_ID_MASK,
  PCI_EXT_CAP_NEXT_SHIFT,
  PCI_EXT_CAP_START,
  PCI_EXT_CAP_VER_MASK,
  PCI_EXT_CAP_VER_SHIFT,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STD_HEADER_SIZEOF,
} from './constants.js';

/** Where a walk reads configuration space: `size` little-endian bytes at `offset`. */
export interface ConfigReader {
  configRead(offset: number, size: 1 | 2 | 4): number;
}

export interface FoundCapability {
  id: number;
  offset: number;
}

export interface FoundExtendedCapability extends FoundCapability {
  version: number;
}

/** 'broken' is pciutils' "<chain broken>": a standard capability with ID 0xff. */
export type WalkProblem = 'loop' | 'out-of-range' | 'misaligned' | 'broken';

/** Whose reading of a capability list a walk follows: Linux's (the default) or pciutils' (lspci). */
export type WalkRules = 'linux' | 'pciutils';

export type WalkResult<T> =
  | { ok: true; capabilities: T[] }
  | {
      ok: false;
      reason: WalkProblem;
      /** The offset the bad pointer points at (for a loop: the offset reached a second time). */
      at: number;
      /** The offset of the byte (or header) that holds the bad pointer. */
      from: number;
      /** The capabilities found before the problem. */
      capabilities: T[];
    };

/**
 * A cursor over the standard capability list. `begin(reader)`, then `next()` until it returns
 * false; while it returns true, `id` and `offset` are the current capability. After the end,
 * `problem` is undefined for a list that ended with a 0 pointer, or says what the bad pointer
 * was, `at` where it pointed and `from` where it was read.
 */
export class CapabilityWalk {
  id = 0;
  offset = 0;
  problem: WalkProblem | undefined = undefined;
  at = 0;
  from = 0;
  private reader: ConfigReader | undefined;
  private limit = 0;
  private pending = 0;
  private pciutils = false;
  /** Visited capability offsets, one bit per dword of the 256-byte space. */
  private visitedLow = 0;
  private visitedHigh = 0;

  /**
   * Start a walk of `reader`'s list; `size` is how many bytes of config space it has, `pointer`
   * where the first pointer is (0x34, or 0x14 in a CardBus bridge's header).
   */
  begin(
    reader: ConfigReader,
    size: number = PCI_CFG_SPACE_SIZE,
    rules: WalkRules = 'linux',
    pointer: number = PCI_CAPABILITY_LIST,
  ): this {
    this.reader = reader;
    this.limit = Math.min(size, PCI_CFG_SPACE_SIZE);
    this.pciutils = rules === 'pciutils';
    this.problem = undefined;
    this.id = 0;
    this.offset = 0;
    this.at = 0;
    this.visitedLow = 0;
    this.visitedHigh = 0;
    this.from = pointer;
    const listed =
      (this.pciutils || this.limit >= PCI_STD_HEADER_SIZEOF) &&
      (reader.configRead(PCI_STATUS, 1) & PCI_STATUS_CAP_LIST) !== 0;
    this.pending = listed ? reader.configRead(pointer, 1) & (this.pciutils ? 0xfc : 0xff) : 0;
    return this;
  }

  /** Step to the next capability; false at the end of the list or at a bad pointer. */
  next(): boolean {
    const reader = this.reader;
    const pos = this.pending;
    if (reader === undefined || pos === 0) return false;
    this.pending = 0;
    if (!this.pciutils) {
      if ((pos & 3) !== 0) return this.fail('misaligned', pos);
      if (pos < PCI_STD_HEADER_SIZEOF || pos + 2 > this.limit) return this.fail('out-of-range', pos);
    }
    const dword = pos >>> 2;
    const bit = 1 << (dword & 31);
    if (dword < 32) {
      if (this.visitedLow & bit) return this.fail('loop', pos);
      this.visitedLow |= bit;
    } else {
      if (this.visitedHigh & bit) return this.fail('loop', pos);
      this.visitedHigh |= bit;
    }
    const header = reader.configRead(pos + PCI_CAP_LIST_ID, 2);
    this.id = header & 0xff;
    if (this.pciutils && this.id === 0xff) return this.fail('broken', pos);
    this.offset = pos;
    this.from = pos + PCI_CAP_LIST_NEXT;
    this.pending = (header >>> ((PCI_CAP_LIST_NEXT - PCI_CAP_LIST_ID) * 8)) & (this.pciutils ? 0xfc : 0xff);
    return true;
  }

  private fail(problem: WalkProblem, at: number): false {
    this.problem = problem;
    this.at = at;
    return false;
  }
}

/**
 * A cursor over the extended capability list of a 4096-byte configuration space, from 0x100:
 * as CapabilityWalk, with `version` beside `id`. The list is empty when the space is 256 bytes or
 * the first header is 0 or all ones; a next pointer with its low two bits set is 'misaligned', one
 * below 0x100 (other than 0, the end) or without room for a header is 'out-of-range', and an
 * offset reached twice is a 'loop'. (The 'pciutils' rules: see the top of this file.)
 */
export class ExtendedCapabilityWalk {
  id = 0;
  version = 0;
  offset = 0;
  problem: WalkProblem | undefined = undefined;
  at = 0;
  from = 0;
  private reader: ConfigReader | undefined;
  private pending = 0;
  private pciutils = false;
  /** Visited header offsets, one bit per dword of the 4096-byte space (pciutils may go below 0x100). */
  private readonly visited = new Int32Array(PCI_CFG_SPACE_EXP_SIZE / 4 / 32);

  /** Start a walk of `reader`'s extended list; `size` is how many bytes of config space it has. */
  begin(reader: ConfigReader, size: number = PCI_CFG_SPACE_EXP_SIZE, rules: WalkRules = 'linux'): this {
    this.reader = reader;
    this.pciutils = rules === 'pciutils';
    this.problem = undefined;
    this.id = 0;
    this.version = 0;
    this.offset = 0;
    this.at = 0;
    this.from = 0;
    this.visited.fill(0);
    this.pending = 0;
    if (this.pciutils) {
      // show_ext_caps reads the first header in its loop; reads past the space are the reader's.
      this.pending = PCI_EXT_CAP_START;
    } else if (size >= PCI_CFG_SPACE_EXP_SIZE) {
      const header = reader.configRead(PCI_EXT_CAP_START, 4) >>> 0;
      if (header !== 0 && header !== 0xffffffff) this.pending = PCI_EXT_CAP_START;
    }
    return this;
  }

  next(): boolean {
    const reader = this.reader;
    const pos = this.pending;
    if (reader === undefined || pos === 0) return false;
    this.pending = 0;
    let header = 0;
    if (this.pciutils) {
      // pci_scan_ext_caps: a 0 or all-ones header ends the list wherever it is.
      header = reader.configRead(pos, 4) >>> 0;
      if (header === 0 || header === 0xffffffff) return false;
    } else if (pos !== PCI_EXT_CAP_START) {
      if ((pos & 3) !== 0) return this.fail('misaligned', pos);
      if (pos < PCI_EXT_CAP_START || pos + 4 > PCI_CFG_SPACE_EXP_SIZE) return this.fail('out-of-range', pos);
    }
    const dword = pos >>> 2;
    const bit = 1 << (dword & 31);
    if (this.visited[dword >>> 5] & bit) return this.fail('loop', pos);
    this.visited[dword >>> 5] |= bit;
    if (!this.pciutils) header = reader.configRead(pos, 4) >>> 0;
    this.id = header & PCI_EXT_CAP_ID_MASK;
    this.version = (header >>> PCI_EXT_CAP_VER_SHIFT) & PCI_EXT_CAP_VER_MASK;
    this.offset = pos;
    this.from = pos;
    this.pending = this.pciutils
      ? (header >>> PCI_EXT_CAP_NEXT_SHIFT) & ~3
      : header >>> PCI_EXT_CAP_NEXT_SHIFT;
    return true;
  }

  private fail(problem: WalkProblem, at: number): false {
    this.problem = problem;
    this.at = at;
    return false;
  }
}

/** The cursor findCapability reuses: a find never runs inside another (no callbacks). */
const findWalk = new CapabilityWalk();

/** The offset of the first standard capability with `id` (pci_find_capability), or -1. */
export function findCapability(reader: ConfigReader, id: number, size: number = PCI_CFG_SPACE_SIZE): number {
  const w = findWalk.begin(reader, size);
  while (w.next()) if (w.id === id) return w.offset;
  return -1;
}

/** Reads of a byte-wise source, for the walks that collect into arrays. */
class ByteReader implements ConfigReader {
  constructor(private readonly readU8: (offset: number) => number) {}
  configRead(offset: number, size: 1 | 2 | 4): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.readU8(offset + i) & 0xff);
    return v;
  }
}

/** Reads of a dword-wise source (the extended space is walked a header at a time). */
class DwordReader implements ConfigReader {
  constructor(private readonly readU32: (offset: number) => number) {}
  configRead(offset: number, size: 1 | 2 | 4): number {
    const v = this.readU32(offset & ~3) >>> ((offset & 3) * 8);
    return size === 4 ? v >>> 0 : v & (size === 2 ? 0xffff : 0xff);
  }
}

/** The whole standard list, read a byte at a time through `readU8` (see CapabilityWalk for the rules). */
export function walkCapabilities(
  readU8: (offset: number) => number,
  size: number,
): WalkResult<FoundCapability> {
  const capabilities: FoundCapability[] = [];
  const w = new CapabilityWalk().begin(new ByteReader(readU8), size);
  while (w.next()) capabilities.push({ id: w.id, offset: w.offset });
  if (w.problem === undefined) return { ok: true, capabilities };
  return { ok: false, reason: w.problem, at: w.at, from: w.from, capabilities };
}

/** The whole extended list, read a dword at a time through `readU32` (see ExtendedCapabilityWalk). */
export function walkExtendedCapabilities(
  readU32: (offset: number) => number,
  size: number,
): WalkResult<FoundExtendedCapability> {
  const capabilities: FoundExtendedCapability[] = [];
  const w = new ExtendedCapabilityWalk().begin(new DwordReader(readU32), size);
  while (w.next()) capabilities.push({ id: w.id, version: w.version, offset: w.offset });
  if (w.problem === undefined) return { ok: true, capabilities };
  return { ok: false, reason: w.problem, at: w.at, from: w.from, capabilities };
}
