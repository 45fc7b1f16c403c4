/**
 * The BARs of an assigned function in the guest's address spaces, as QEMU's
 * pci_update_mappings and vfio_region_mmap: each BAR's parts (see bar-split.ts) are placed where
 * the device decodes the BAR, direct parts through an mmap of the region, trapped parts through
 * the device file, and moved or removed when the guest writes COMMAND or a BAR.
 */
import { type ConfigReader, type RegionMapping, TWO_32 } from '@vfiokit/core';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_STD_NUM_BARS,
} from '@vfiokit/core/abi';
import type { ResolvedRegion } from '@vfiokit/core/host';
import {
  type AccessHandler,
  hexOf,
  type MappedRange,
  MemoryHandler,
  type RangeKind,
  RegionTrap,
} from '../address-map.js';
import { type BarPart, type PartHow, PartList, splitBar } from './bar-split.js';
import { overlaps } from './bytes.js';
import type { DeviceLink } from './device-link.js';
import type { Msix } from './msix.js';

/**
 * A part of a BAR with the handler that serves it. Made once, when the device is attached;
 * mapping the BAR at an address only places the parts.
 */
class Part implements BarPart {
  /** Guest accesses through this part while it was mapped before (direct ones never reach the device). */
  reads = 0;
  writes = 0;
  /** The address-map kind of the part's range. */
  readonly kind: RangeKind;

  constructor(
    readonly offset: number,
    readonly size: number,
    readonly how: PartHow,
    /** Replaced only by interceptBar (a BAR quirk in front of the part). */
    public handler: AccessHandler,
  ) {
    this.kind = how;
  }
}

export interface BarState {
  readonly index: number;
  readonly region: ResolvedRegion;
  readonly kind: 'mem32' | 'mem64' | 'io';
  readonly prefetchable: boolean;
  readonly parts: Part[];
  /** Where the BAR is mapped; undefined while it is not. */
  address: number | undefined;
  /** The address-map ranges of the parts, one per part while the BAR is mapped, else undefined. */
  readonly ranges: (MappedRange | undefined)[];
}

/** splitBar's lists, taken by a constructor while it cuts its BARs (kept for the next one). */
const SPLITS: PartList[] = [];

/** `n` empty range slots, room for exactly `n` (most BARs have one part). */
function noRanges(n: number): (MappedRange | undefined)[] {
  return n === 1 ? [undefined] : new Array(n);
}

/** The COMMAND bit that turns a BAR's decode on. */
function decodeBit(bar: BarState): number {
  return bar.kind === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
}

export class Bars {
  readonly list: BarState[] = [];
  /** The mmaps behind the direct parts. */
  readonly mappings: RegionMapping[] = [];
  /**
   * The COMMAND decode bits (I/O, memory) the BAR mappings follow: QEMU's pci_update_mappings
   * works from its copy of COMMAND, so a config write moves BARs only when it changes these bits
   * or writes a BAR while its decode is on. Nothing decodes until the guest writes COMMAND.
   */
  private decode = 0;

  /** `msix`: the function's MSI-X, whose table and PBA the VMM keeps when it is emulated. */
  constructor(
    private readonly link: DeviceLink,
    private readonly msix: Msix | undefined,
    /** Where the BAR types are read (the function's config image). */
    config: ConfigReader = link,
  ) {
    const file = link.file;
    const kept = msix?.emulated ? msix : undefined;
    // A list of its own for this constructor: a plugin's mmap (in makePart) cannot reach the
    // list being read, even if it attached another device.
    const split = SPLITS.pop() ?? new PartList();
    for (let i = 0; i < PCI_STD_NUM_BARS; i++) {
      const region = file.regionInfo(i);
      if (region.size === 0) continue;
      const low = config.configRead(PCI_BASE_ADDRESS_0 + 4 * i, 4);
      const io = (low & PCI_BASE_ADDRESS_SPACE_IO) !== 0;
      const mem64 = !io && (low & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
      splitBar(region, io, kept, split);
      const n = split.count;
      const parts: Part[] =
        n === 1 ? [this.makePart(region, split.offsets[0], split.sizes[0], split.hows[0])] : new Array(n);
      if (n !== 1)
        for (let k = 0; k < n; k++)
          parts[k] = this.makePart(region, split.offsets[k], split.sizes[k], split.hows[k]);
      this.list.push({
        index: i,
        region,
        kind: io ? 'io' : mem64 ? 'mem64' : 'mem32',
        prefetchable: !io && (low & 0x8) !== 0,
        parts,
        address: undefined,
        ranges: noRanges(n),
      });
      if (mem64) i++;
    }
    SPLITS.push(split);
  }

  private makePart(region: ResolvedRegion, offset: number, size: number, how: PartHow): Part {
    const link = this.link;
    if (how === 'direct') {
      try {
        const mapping = link.file.mmap(region.offset + offset, size);
        this.mappings.push(mapping);
        return new Part(
          offset,
          size,
          how,
          new MemoryHandler(mapping.memory.bytes, mapping.memoryOffset, size),
        );
      } catch (err) {
        // QEMU falls back to the slow path when an mmap fails; so does the VMM.
        link.fault(err, `mmap BAR${region.index} area`, region.index, offset);
        return this.makePart(region, offset, size, 'trapped');
      }
    }
    let handler: AccessHandler;
    const msix = this.msix;
    if (how === 'msix-table' && msix) handler = msix.tableHandler;
    else if (how === 'msix-pba' && msix) handler = msix.pbaHandler;
    else handler = new RegionTrap(link, link.file, region.index, offset);
    return new Part(offset, size, how, handler);
  }

  /**
   * Re-read COMMAND and every BAR from the device and (re)map what changed (QEMU's
   * pci_update_mappings). Config writes take the shorter roads below; this one is for reset.
   */
  updateAll(): void {
    this.decode = this.link.configRead(PCI_COMMAND, 2) & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    for (const bar of this.list) this.update(bar);
  }

  /** The guest wrote COMMAND: the BARs move only when a decode bit changed. */
  commandWritten(): void {
    const decode = this.link.configRead(PCI_COMMAND, 2) & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    if (decode === this.decode) return;
    this.decode = decode;
    for (const bar of this.list) this.update(bar);
  }

  /**
   * The guest wrote BAR registers in [offset, end): re-read those BARs whose decode is on. With
   * decode off (every write while the guest sizes BARs) a BAR is unmapped already and stays so.
   */
  barWritten(offset: number, end: number): void {
    if (this.decode === 0) return;
    for (const bar of this.list) {
      if (!(this.decode & decodeBit(bar))) continue;
      const register = PCI_BASE_ADDRESS_0 + 4 * bar.index;
      if (overlaps(offset, end, register, register + (bar.kind === 'mem64' ? 8 : 4))) this.update(bar);
    }
  }

  /** Map the BAR where the device now decodes it, or unmap it; nothing when the address is the same. */
  private update(bar: BarState): void {
    const target = this.decode & decodeBit(bar) ? this.decodedAddress(bar) : undefined;
    if (target === bar.address) return;
    this.unmap(bar);
    if (target !== undefined) this.map(bar, target);
  }

  /** pci_bar_address in QEMU, with decode on: the BAR's address when it is usable. */
  private decodedAddress(bar: BarState): number | undefined {
    const link = this.link;
    const size = bar.region.size;
    const low = link.configRead(PCI_BASE_ADDRESS_0 + 4 * bar.index, 4);
    if (bar.kind === 'io') {
      const addr = (low & PCI_BASE_ADDRESS_IO_MASK & ~(size - 1)) >>> 0;
      // An x86 port address is 16 bits; a BAR being sized reads as a mask far above that.
      if (addr === 0 || addr + size > link.host.io.limit) return undefined;
      return addr;
    }
    let addr = (low & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
    if (bar.kind === 'mem64') addr += link.configRead(PCI_BASE_ADDRESS_0 + 4 * bar.index + 4, 4) * TWO_32;
    addr -= addr % size;
    const last = addr + size - 1;
    // QEMU: a zero base, a wrap, or a 32-bit BAR ending at 4 GiB - 1 (all-ones while sizing) is unmapped.
    if (addr === 0 || last >= link.host.memory.limit || (bar.kind === 'mem32' && last >= 0xffffffff))
      return undefined;
    return addr;
  }

  /** Place the BAR's parts at `address`: one range per part, each with the part's own handler. */
  private map(bar: BarState, address: number): void {
    const link = this.link;
    const map = bar.kind === 'io' ? link.host.io : link.host.memory;
    const parts = bar.parts;
    const ranges = bar.ranges;
    try {
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i];
        ranges[i] = map.addRange(address + part.offset, part.size, part.kind, link.label, part.handler);
      }
    } catch (err) {
      for (let i = 0; i < ranges.length; i++) {
        const r = ranges[i];
        if (r !== undefined) map.remove(r);
        ranges[i] = undefined;
      }
      link.fault(err, `map BAR${bar.index} at ${hexOf(address)}`, bar.index, 0);
      return;
    }
    bar.address = address;
  }

  private unmap(bar: BarState): void {
    // A BAR has an address exactly while all its parts are in the map.
    if (bar.address === undefined) return;
    bar.address = undefined;
    const ranges = bar.ranges;
    const map = bar.kind === 'io' ? this.link.host.io : this.link.host.memory;
    // The ranges follow the parts one to one; their counters are kept in the parts.
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i] as MappedRange;
      bar.parts[i].reads += r.reads;
      bar.parts[i].writes += r.writes;
      map.remove(r);
      ranges[i] = undefined;
    }
  }

  /** vfio_pci_post_reset: every BAR register of the function written 0 on the device (both halves of a 64-bit one). */
  zeroRegisters(): void {
    const link = this.link;
    for (const bar of this.list) {
      const register = PCI_BASE_ADDRESS_0 + 4 * bar.index;
      link.configWrite(register, 4, 0);
      if (bar.kind === 'mem64') link.configWrite(register + 4, 4, 0);
    }
  }

  unmapAll(): void {
    for (const bar of this.list) this.unmap(bar);
  }

  /**
   * Put a handler in front of the part of BAR `index` that holds `offset` (QEMU's BAR quirks, such
   * as the IGD's config mirrors): `wrap` gets the part's handler and the part's offset in the BAR.
   * A mapped BAR is mapped again with it. False when the BAR has no part holding `offset`.
   */
  intercept(
    index: number,
    offset: number,
    wrap: (inner: AccessHandler, partOffset: number) => AccessHandler,
  ): boolean {
    const bar = this.list.find((b) => b.index === index);
    const part = bar?.parts.find((p) => offset >= p.offset && offset < p.offset + p.size);
    if (bar === undefined || part === undefined) return false;
    part.handler = wrap(part.handler, part.offset);
    const at = bar.address;
    if (at !== undefined) {
      this.unmap(bar);
      this.map(bar, at);
    }
    return true;
  }

  /**
   * The address maps are going away with the machine (they drop every BAR range in one sweep,
   * see isBarRange): forget the ranges, keeping the accesses they counted in the parts.
   */
  forget(): void {
    for (const bar of this.list) {
      if (bar.address === undefined) continue;
      bar.address = undefined;
      const ranges = bar.ranges;
      for (let i = 0; i < ranges.length; i++) {
        const r = ranges[i] as MappedRange;
        bar.parts[i].reads += r.reads;
        bar.parts[i].writes += r.writes;
        ranges[i] = undefined;
      }
    }
  }

  /** Parts of a BAR with their guest accesses, for the report. */
  parts(bar: BarState): (BarPart & { reads: number; writes: number })[] {
    return bar.parts.map((p, i) => ({
      offset: p.offset,
      size: p.size,
      how: p.how,
      reads: p.reads + (bar.ranges[i]?.reads ?? 0),
      writes: p.writes + (bar.ranges[i]?.writes ?? 0),
    }));
  }
}

/** Whether an address-map range is a part of some function's BAR. */
export function isBarRange(range: MappedRange): boolean {
  const k = range.kind;
  return k === 'direct' || k === 'trapped' || k === 'msix-table' || k === 'msix-pba';
}
