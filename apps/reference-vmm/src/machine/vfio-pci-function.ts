/**
 * One assigned device as the VMM sees it, the way QEMU's hw/vfio/pci.c sees a vfio-pci device:
 * config space is the device's config region (at the offset REGION_INFO gives); config writes
 * are watched so that BARs are (re)mapped when COMMAND or a BAR changes, and MSI/MSI-X are
 * routed with SET_IRQS when the guest enables them; mmappable BAR areas are mapped directly,
 * the rest of each BAR is trapped through the DeviceFile; the MSI-X table and PBA are kept by
 * the VMM; INTx is a level-triggered, automasked line unmasked at EOI.
 */
import {
  type DeviceFile,
  formatPciAddress,
  type IrqSetRequest,
  type IrqTrigger,
  type Logger,
  msiCapabilitySize,
  msiLayout,
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_MFD,
  PCI_INTERRUPT_PIN,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_LOWER_ADDR,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_PBA_BIR,
  PCI_MSIX_PBA_OFFSET,
  PCI_MSIX_TABLE,
  PCI_MSIX_TABLE_BIR,
  PCI_MSIX_TABLE_OFFSET,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STD_HEADER_SIZEOF,
  PCI_STD_NUM_BARS,
  type PciAddress,
  type RegionMapping,
  type ResolvedRegion,
  toVfioError,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_FLAG_MMAP,
  VfioError,
} from '@vfiokit/core';
import {
  type AccessHandler,
  type AccessSize,
  type AddressMap,
  allOnes,
  hexOf,
  type MappedRange,
  MemoryHandler,
  type RangeKind,
} from './address-map.js';
import type { EmulatedConfig } from './emulated-config.js';
import type { InterruptController, InterruptSource } from './interrupt-controller.js';
import { intxVectorFor } from './interrupt-controller.js';
import { MSI_WINDOW_BASE, MSI_WINDOW_SIZE } from './layout.js';

const PAGE = 4096;
const TWO_32 = 2 ** 32;

/** How a part of a BAR reaches the guest. */
export type PartHow = 'direct' | 'trapped' | 'msix-table' | 'msix-pba';

/** A piece of a BAR, relative to the BAR's start. */
export interface BarPart {
  readonly offset: number;
  readonly size: number;
  readonly how: PartHow;
}

/** An error that one guest access (or one VMM operation) on a device ran into. */
export interface MachineError {
  readonly device: string;
  readonly slot: string;
  readonly region?: number;
  readonly offset?: number;
  readonly operation: string;
  readonly code: string;
  readonly message: string;
}

/** What the machine gives each function. */
export interface FunctionHost {
  readonly memory: AddressMap;
  readonly io: AddressMap;
  readonly irq: InterruptController;
  readonly log: Logger;
  recordError(error: MachineError): void;
  /** Whether other functions share this function's slot (the multi-function bit of function 0). */
  slotIsMultifunction(device: number): boolean;
}

/**
 * A part of a BAR with the handler that serves it. The parts of a BAR depend on REGION_INFO and
 * the MSI-X structures only, so they are made once, when the device is attached; mapping the BAR
 * at an address only places them.
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
  address: number | undefined;
  /** The address-map ranges of the parts while the BAR is mapped (one per part), else empty. */
  readonly ranges: MappedRange[];
}

interface MsixState {
  readonly capOffset: number;
  readonly tableSize: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
  /** The VMM keeps the table and PBA (false when the BAR is MSIX_MAPPABLE). */
  readonly emulated: boolean;
  /** The table and PBA as the VMM keeps them, little endian (read with getLe/setLe). */
  readonly table: Uint8Array;
  readonly pba: Uint8Array;
  readonly triggers: IrqTrigger[];
  /** SET_IRQS that routes every vector the device offers (made once; the core copies the triggers). */
  readonly enableRequest: IrqSetRequest;
  enabled: boolean;
  functionMask: boolean;
}

interface MsiState {
  readonly capOffset: number;
  readonly length: number;
  readonly triggers: IrqTrigger[];
  enabled: boolean;
  vectors: number;
  address: number;
  data: number;
  mask: number;
  pending: number;
}

export type InterruptMode = 'msix' | 'msi' | 'intx' | 'none';

/**
 * Scratch bytes for one access at a time. A guest access runs to its end before the next one
 * starts (devices never make guest accesses), so the few buffers below serve every function of
 * every machine and attaching a device allocates none.
 */
class Scratch {
  readonly buffer = new ArrayBuffer(8);
  readonly b1 = new Uint8Array(this.buffer, 0, 1);
  readonly b2 = new Uint8Array(this.buffer, 0, 2);
  readonly b4 = new Uint8Array(this.buffer, 0, 4);
  readonly view = new DataView(this.buffer);

  of(size: AccessSize): Uint8Array {
    return size === 4 ? this.b4 : size === 2 ? this.b2 : this.b1;
  }

  get(size: AccessSize): number {
    return size === 4
      ? this.view.getUint32(0, true)
      : size === 2
        ? this.view.getUint16(0, true)
        : this.view.getUint8(0);
  }

  set(size: AccessSize, value: number): void {
    if (size === 4) this.view.setUint32(0, value >>> 0, true);
    else if (size === 2) this.view.setUint16(0, value & 0xffff, true);
    else this.view.setUint8(0, value & 0xff);
  }
}

/** Config accesses the VMM makes for the guest or for itself. */
const CONFIG_SCRATCH = new Scratch();
/** Trapped BAR accesses. */
const TRAP_SCRATCH = new Scratch();
/** Reads of a device-kept (MSIX_MAPPABLE) MSI-X table when a vector fires. */
const MSIX_SCRATCH = new Scratch();

/**
 * A trapped part of a BAR: each access is a DeviceFile read or write in the BAR's region (at the
 * REGION_INFO offset plus the offset inside the region). The handler uses the shared trap scratch
 * and names the region by index, so an access allocates nothing and makes one call into the core.
 */
class TrappedHandler implements AccessHandler {
  private readonly view: DataView;
  private readonly b1: Uint8Array;
  private readonly b2: Uint8Array;
  private readonly b4: Uint8Array;

  constructor(
    private readonly fn: VfioPciFunction,
    private readonly file: DeviceFile,
    private readonly region: number,
    private readonly regionOffset: number,
    scratch: Scratch,
  ) {
    this.view = scratch.view;
    this.b1 = scratch.b1;
    this.b2 = scratch.b2;
    this.b4 = scratch.b4;
  }

  read(offset: number, size: AccessSize): number {
    const v = this.view;
    try {
      this.file.readRegion(
        this.region,
        this.regionOffset + offset,
        size === 4 ? this.b4 : size === 2 ? this.b2 : this.b1,
      );
    } catch (err) {
      this.fn.accessFault(err, 'read', this.region, this.regionOffset + offset);
      return allOnes(size);
    }
    return size === 4 ? v.getUint32(0, true) : size === 2 ? v.getUint16(0, true) : v.getUint8(0);
  }

  write(offset: number, size: AccessSize, value: number): void {
    const v = this.view;
    if (size === 4) v.setUint32(0, value >>> 0, true);
    else if (size === 2) v.setUint16(0, value & 0xffff, true);
    else v.setUint8(0, value & 0xff);
    try {
      this.file.writeRegion(
        this.region,
        this.regionOffset + offset,
        size === 4 ? this.b4 : size === 2 ? this.b2 : this.b1,
      );
    } catch (err) {
      this.fn.accessFault(err, 'write', this.region, this.regionOffset + offset);
    }
  }
}

class MsixTableHandler implements AccessHandler {
  constructor(private readonly fn: VfioPciFunction) {}
  read(offset: number, size: AccessSize): number {
    return this.fn.msixTableRead(offset, size);
  }
  write(offset: number, size: AccessSize, value: number): void {
    this.fn.msixTableWrite(offset, size, value);
  }
}

class MsixPbaHandler implements AccessHandler {
  constructor(private readonly fn: VfioPciFunction) {}
  read(offset: number, size: AccessSize): number {
    return this.fn.msixPbaRead(offset, size);
  }
  write(): void {
    // PCI Local Bus Specification 3.0 §6.8.2.10: the PBA is read-only; writes are dropped.
  }
}

/** INTx's eventfd: the line's vector at the interrupt controller. */
class IntxTrigger implements IrqTrigger {
  constructor(private readonly fn: VfioPciFunction) {}
  signal(): void {
    this.fn.intxSignal();
  }
}

/** The eventfd of MSI vector `vector`. */
class MsiTrigger implements IrqTrigger {
  constructor(
    private readonly fn: VfioPciFunction,
    private readonly vector: number,
  ) {}
  signal(): void {
    this.fn.msiSignal(this.vector);
  }
}

/** The eventfd of MSI-X entry `entry`. */
class MsixTrigger implements IrqTrigger {
  constructor(
    private readonly fn: VfioPciFunction,
    private readonly entry: number,
  ) {}
  signal(): void {
    this.fn.msixSignal(this.entry);
  }
}

// SET_IRQS requests that carry no per-device data, shared by every function.
const DISABLE_INTX: IrqSetRequest = Object.freeze({
  action: 'trigger',
  index: VFIO_PCI_INTX_IRQ_INDEX,
  start: 0,
  count: 0,
  data: 'none',
});
const UNMASK_INTX: IrqSetRequest = Object.freeze({
  action: 'unmask',
  index: VFIO_PCI_INTX_IRQ_INDEX,
  start: 0,
  count: 1,
  data: 'none',
});
const DISABLE_MSI: IrqSetRequest = Object.freeze({
  action: 'trigger',
  index: VFIO_PCI_MSI_IRQ_INDEX,
  start: 0,
  count: 0,
  data: 'none',
});
const DISABLE_MSIX: IrqSetRequest = Object.freeze({
  action: 'trigger',
  index: VFIO_PCI_MSIX_IRQ_INDEX,
  start: 0,
  count: 0,
  data: 'none',
});

/** Slot names of bus 0 (`0000:00:dd.f`), made once each. */
const slotNames: string[] = [];

/** formatPciAddress of a slot, kept once made for the 256 functions of bus 0. */
export function slotNameOf(slot: PciAddress): string {
  const onBus0 =
    slot.bus === 0 &&
    Number.isInteger(slot.device) &&
    slot.device >= 0 &&
    slot.device < 32 &&
    Number.isInteger(slot.function) &&
    slot.function >= 0 &&
    slot.function < 8;
  if (!onBus0) return formatPciAddress(slot);
  const key = slot.device * 8 + slot.function;
  let name = slotNames[key];
  if (name === undefined) {
    name = formatPciAddress(slot);
    slotNames[key] = name;
  }
  return name;
}

export interface VfioPciFunctionOptions {
  readonly file: DeviceFile;
  readonly slot: PciAddress;
  readonly label: string;
  readonly host: FunctionHost;
  readonly source: InterruptSource;
}

export class VfioPciFunction {
  readonly file: DeviceFile;
  readonly slot: PciAddress;
  readonly label: string;
  readonly slotName: string;
  readonly source: InterruptSource;
  readonly configOffset: number;
  readonly configSize: number;
  readonly bars: BarState[] = [];
  readonly pin: number;
  readonly mappings: RegionMapping[] = [];
  private readonly host: FunctionHost;
  private readonly msix: MsixState | undefined;
  private readonly msi: MsiState | undefined;
  /** SET_IRQS that gives INTx its eventfd (made once; the core copies the trigger). */
  private readonly intxEnable: IrqSetRequest;
  private readonly intxCount: number;
  private intxOn = false;
  /**
   * The COMMAND decode bits (I/O, memory) the BAR mappings follow: QEMU's pci_update_mappings
   * works from its copy of COMMAND, so a config write moves BARs only when it changes these bits
   * or writes a BAR while its decode is on. Nothing decodes until the guest writes COMMAND.
   */
  private decode = 0;
  /** MSI-X messages held in the PBA because their vector was masked. */
  msixPendingSet = 0;
  setIrqsCalls = 0;
  /** Config bytes the VMM answers itself (QEMU's emulated_config_bits), e.g. an IGD's ASLS and BDSM. */
  emulatedConfig: EmulatedConfig | undefined = undefined;

  constructor(opts: VfioPciFunctionOptions) {
    this.file = opts.file;
    this.slot = opts.slot;
    this.label = opts.label;
    this.host = opts.host;
    this.source = opts.source;
    this.slotName = slotNameOf(opts.slot);
    const config = this.file.regionInfo(VFIO_PCI_CONFIG_REGION_INDEX);
    if (config.size < PCI_CFG_SPACE_SIZE) {
      throw new VfioError(
        'EINVAL',
        `the config region is ${config.size} bytes, less than a PCI header needs.`,
        {
          device: this.file.name,
          region: VFIO_PCI_CONFIG_REGION_INDEX,
          hint: 'A vfio-pci device reports at least 256 bytes of config space in region 7.',
        },
      );
    }
    this.configOffset = config.offset;
    this.configSize = config.size;
    this.pin = this.deviceConfigRead(PCI_INTERRUPT_PIN, 1) & 0xff;
    this.intxCount = this.irqCount(VFIO_PCI_INTX_IRQ_INDEX);
    this.intxEnable = {
      action: 'trigger',
      index: VFIO_PCI_INTX_IRQ_INDEX,
      start: 0,
      count: 1,
      data: 'eventfd',
      triggers: [new IntxTrigger(this)],
    };

    // The first MSI and MSI-X capabilities, in one walk of the standard list. The walk keeps
    // walkCapabilities' rules (it stops at a misaligned or out-of-range pointer) but needs no
    // table of visited offsets: as Linux's __pci_find_next_cap_ttl it takes at most one step per
    // dword of the device-dependent header, so a looped list ends too.
    let msiAt = -1;
    let msixAt = -1;
    if (this.deviceConfigRead(PCI_STATUS, 1) & PCI_STATUS_CAP_LIST) {
      const limit = Math.min(this.configSize, PCI_CFG_SPACE_SIZE);
      let pos = this.deviceConfigRead(PCI_CAPABILITY_LIST, 1);
      for (let steps = (PCI_CFG_SPACE_SIZE - PCI_STD_HEADER_SIZEOF) / 4; steps > 0 && pos !== 0; steps--) {
        if ((pos & 3) !== 0 || pos < PCI_STD_HEADER_SIZEOF || pos + 2 > limit) break;
        // The ID and the next pointer in one word, as Linux reads a capability header.
        const header = this.deviceConfigRead(pos + PCI_CAP_LIST_ID, 2);
        const id = header & 0xff;
        if (id === PCI_CAP_ID_MSI && msiAt < 0) msiAt = pos;
        else if (id === PCI_CAP_ID_MSIX && msixAt < 0) msixAt = pos;
        if (msiAt >= 0 && msixAt >= 0) break;
        pos = (header >>> ((PCI_CAP_LIST_NEXT - PCI_CAP_LIST_ID) * 8)) & 0xff;
      }
    }
    this.msi = msiAt >= 0 ? this.setupMsi(msiAt) : undefined;
    this.msix = msixAt >= 0 ? this.setupMsix(msixAt) : undefined;
    this.setupBars();
    // QEMU's vfio_realize ends with INTx enabled when the device has a pin.
    this.enableIntx();
  }

  // ---- config space ----------------------------------------------------------------------------

  /** A guest config read (ECAM or 0xCF8/0xCFC). Beyond the config region: all-ones. */
  configRead(offset: number, size: AccessSize): number {
    if (offset + size > this.configSize) return allOnes(size);
    let value = this.deviceConfigRead(offset, size);
    if (offset <= PCI_HEADER_TYPE && offset + size > PCI_HEADER_TYPE && this.slot.function === 0) {
      // QEMU sets the multi-function bit of function 0 itself when the slot holds more functions.
      const shift = (PCI_HEADER_TYPE - offset) * 8;
      const mfd = this.host.slotIsMultifunction(this.slot.device) ? PCI_HEADER_TYPE_MFD : 0;
      value = ((value & ~(PCI_HEADER_TYPE_MFD << shift)) | (mfd << shift)) >>> 0;
    }
    const emulated = this.emulatedConfig;
    if (emulated?.covers(offset, size)) value = emulated.merge(offset, size, value);
    return value;
  }

  /** A guest config write: to the device, then the VMM reacts as vfio_pci_write_config does. */
  configWrite(offset: number, size: AccessSize, value: number): void {
    if (offset + size > this.configSize) return;
    const s = CONFIG_SCRATCH;
    s.set(size, value);
    // vfio_pci_write_config: the write goes to the device whole; emulated bits are kept here too
    const emulated = this.emulatedConfig;
    if (emulated?.covers(offset, size)) emulated.write(offset, size, value);
    try {
      this.file.writeRegion(VFIO_PCI_CONFIG_REGION_INDEX, offset, s.of(size));
    } catch (err) {
      this.fault(err, 'config write', VFIO_PCI_CONFIG_REGION_INDEX, offset);
      return;
    }
    const end = offset + size;
    if (overlaps(offset, end, PCI_COMMAND, PCI_COMMAND + 2)) this.commandWritten();
    else if (overlaps(offset, end, PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_0 + 4 * PCI_STD_NUM_BARS))
      this.barWritten(offset, end);
    const msi = this.msi;
    if (msi && overlaps(offset, end, msi.capOffset, msi.capOffset + msi.length)) this.updateMsi();
    const msix = this.msix;
    if (msix && overlaps(offset, end, msix.capOffset + PCI_MSIX_FLAGS, msix.capOffset + PCI_MSIX_FLAGS + 2))
      this.updateMsix();
  }

  /** Read the device's config region; a failing read answers all-ones and is recorded. */
  deviceConfigRead(offset: number, size: AccessSize): number {
    const s = CONFIG_SCRATCH;
    try {
      this.file.readRegion(VFIO_PCI_CONFIG_REGION_INDEX, offset, s.of(size));
    } catch (err) {
      this.fault(err, 'config read', VFIO_PCI_CONFIG_REGION_INDEX, offset);
      return allOnes(size);
    }
    return s.get(size);
  }

  /** A guest access the device refused or failed: logged and recorded, the guest goes on. */
  accessFault(err: unknown, operation: string, region: number, offset: number): void {
    this.fault(err, operation, region, offset);
  }

  private fault(err: unknown, operation: string, region: number, offset: number): void {
    const e = toVfioError(err, { device: this.file.name, region, offset });
    this.host.log.error(`${this.slotName} ${this.label}: ${operation} failed: ${e.message}`);
    this.host.recordError({
      device: this.label,
      slot: this.slotName,
      region,
      offset,
      operation,
      code: e.code,
      message: e.message,
    });
  }

  // ---- BARs ----------------------------------------------------------------------------------

  private setupBars(): void {
    for (let i = 0; i < PCI_STD_NUM_BARS; i++) {
      const region = this.file.regionInfo(i);
      if (region.size === 0) continue;
      const low = this.deviceConfigRead(PCI_BASE_ADDRESS_0 + 4 * i, 4);
      const io = (low & PCI_BASE_ADDRESS_SPACE_IO) !== 0;
      const mem64 = !io && (low & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64;
      const kind = io ? 'io' : mem64 ? 'mem64' : 'mem32';
      this.bars.push({
        index: i,
        region,
        kind,
        prefetchable: !io && (low & 0x8) !== 0,
        parts: this.splitBar(region, io),
        address: undefined,
        ranges: [],
      });
      if (mem64) i++;
    }
  }

  /**
   * Split a BAR into parts: mmap areas (all of an MMAP region without the sparse capability)
   * are direct, the MSI-X table and PBA are the VMM's, the rest is trapped. Without
   * MSIX_MAPPABLE the pages holding the table and PBA are taken out of the direct areas, as
   * QEMU's vfio_pci_fixup_msix_region does. Done once per BAR, when the device is attached.
   */
  private splitBar(region: ResolvedRegion, io: boolean): Part[] {
    const size = region.size;
    const mappable = !io && (region.flags & VFIO_REGION_INFO_FLAG_MMAP) !== 0;
    // undefined: the whole region maps (it has no sparse-mmap capability).
    const areas = mappable ? sparseAreas(region) : undefined;
    const msix = this.msix?.emulated ? this.msix : undefined;
    const hasTable = msix !== undefined && msix.tableBar === region.index;
    const hasPba = msix !== undefined && msix.pbaBar === region.index;
    // Most BARs are all direct or all trapped: one part, nothing to cut.
    if (!hasTable && !hasPba && areas === undefined)
      return [this.makePart(region, 0, size, mappable ? 'direct' : 'trapped')];
    // The emulated structures, and the pages holding them (not mapped; the rest of those pages
    // is trapped). An absent structure is the empty span [-1, -1).
    const tableStart = hasTable ? msix.tableOffset : -1;
    const tableEnd = hasTable ? msix.tableOffset + msix.table.length : -1;
    const pbaStart = hasPba ? msix.pbaOffset : -1;
    const pbaEnd = hasPba ? msix.pbaOffset + msix.pba.length : -1;
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
    const parts: Part[] = [];
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
        runHow !== undefined &&
        runHow === how &&
        (how === 'trapped' || (how === 'direct' && runArea === area));
      if (joins) {
        runEnd = end;
        runArea = area;
        continue;
      }
      if (runHow !== undefined) parts.push(this.makePart(region, runOffset, runEnd - runOffset, runHow));
      runOffset = offset;
      runEnd = end;
      runHow = how;
      runArea = area;
    }
    if (runHow !== undefined) parts.push(this.makePart(region, runOffset, runEnd - runOffset, runHow));
    return parts;
  }

  private makePart(region: ResolvedRegion, offset: number, size: number, how: PartHow): Part {
    if (how === 'direct') {
      try {
        const mapping = this.file.mmap(region.offset + offset, size);
        this.mappings.push(mapping);
        return new Part(
          offset,
          size,
          how,
          new MemoryHandler(mapping.memory.bytes, mapping.memoryOffset, size),
        );
      } catch (err) {
        // QEMU falls back to the slow path when an mmap fails; so does the VMM.
        this.fault(err, `mmap BAR${region.index} area`, region.index, offset);
        return this.makePart(region, offset, size, 'trapped');
      }
    }
    let handler: AccessHandler;
    if (how === 'msix-table') handler = new MsixTableHandler(this);
    else if (how === 'msix-pba') handler = new MsixPbaHandler(this);
    else handler = new TrappedHandler(this, this.file, region.index, offset, TRAP_SCRATCH);
    return new Part(offset, size, how, handler);
  }

  /**
   * Re-read COMMAND and every BAR from the device and (re)map what changed (QEMU's
   * pci_update_mappings). Config writes take the shorter roads below; this one is for reset.
   */
  updateBars(): void {
    this.decode = this.deviceConfigRead(PCI_COMMAND, 2) & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    for (const bar of this.bars) this.updateBar(bar);
  }

  /** The guest wrote COMMAND: the BARs move only when a decode bit changed. */
  private commandWritten(): void {
    const decode = this.deviceConfigRead(PCI_COMMAND, 2) & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    if (decode === this.decode) return;
    this.decode = decode;
    for (const bar of this.bars) this.updateBar(bar);
  }

  /**
   * The guest wrote BAR registers in [offset, end): re-read those BARs whose decode is on. With
   * decode off (every write while the guest sizes BARs) a BAR is unmapped already and stays so.
   */
  private barWritten(offset: number, end: number): void {
    if (this.decode === 0) return;
    for (const bar of this.bars) {
      if (!(this.decode & decodeBit(bar))) continue;
      const register = PCI_BASE_ADDRESS_0 + 4 * bar.index;
      if (overlaps(offset, end, register, register + (bar.kind === 'mem64' ? 8 : 4))) this.updateBar(bar);
    }
  }

  /** Map the BAR where the device now decodes it, or unmap it; nothing when the address is the same. */
  private updateBar(bar: BarState): void {
    const target = this.decode & decodeBit(bar) ? this.decodedAddress(bar) : undefined;
    if (target === bar.address) return;
    this.unmapBar(bar);
    if (target !== undefined) this.mapBar(bar, target);
  }

  /** pci_bar_address in QEMU, with decode on: the BAR's address when it is usable. */
  private decodedAddress(bar: BarState): number | undefined {
    const size = bar.region.size;
    const low = this.deviceConfigRead(PCI_BASE_ADDRESS_0 + 4 * bar.index, 4);
    if (bar.kind === 'io') {
      const addr = (low & PCI_BASE_ADDRESS_IO_MASK & ~(size - 1)) >>> 0;
      // An x86 port address is 16 bits; a BAR being sized reads as a mask far above that.
      if (addr === 0 || addr + size > this.host.io.limit) return undefined;
      return addr;
    }
    let addr = (low & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
    if (bar.kind === 'mem64')
      addr += this.deviceConfigRead(PCI_BASE_ADDRESS_0 + 4 * bar.index + 4, 4) * TWO_32;
    addr -= addr % size;
    const last = addr + size - 1;
    // QEMU: a zero base, a wrap, or a 32-bit BAR ending at 4 GiB - 1 (all-ones while sizing) is unmapped.
    if (addr === 0 || last >= this.host.memory.limit || (bar.kind === 'mem32' && last >= 0xffffffff))
      return undefined;
    return addr;
  }

  /** Place the BAR's parts at `address`: one range per part, each with the part's own handler. */
  private mapBar(bar: BarState, address: number): void {
    const map = bar.kind === 'io' ? this.host.io : this.host.memory;
    const parts = bar.parts;
    const ranges = bar.ranges;
    try {
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i];
        ranges.push(map.addRange(address + part.offset, part.size, part.kind, this.label, part.handler));
      }
    } catch (err) {
      for (const r of ranges) map.remove(r);
      clear(ranges);
      this.fault(err, `map BAR${bar.index} at ${hexOf(address)}`, bar.index, 0);
      return;
    }
    bar.address = address;
  }

  private unmapBar(bar: BarState): void {
    const ranges = bar.ranges;
    bar.address = undefined;
    if (ranges.length === 0) return;
    const map = bar.kind === 'io' ? this.host.io : this.host.memory;
    // The ranges follow the parts one to one; their counters are kept in the parts.
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i];
      bar.parts[i].reads += r.reads;
      bar.parts[i].writes += r.writes;
      map.remove(r);
    }
    clear(ranges);
  }

  unmapAll(): void {
    for (const bar of this.bars) this.unmapBar(bar);
  }

  /**
   * Put a handler in front of the part of BAR `index` that holds `offset` (QEMU's BAR quirks, such
   * as the IGD's config mirrors): `wrap` gets the part's handler and the part's offset in the BAR.
   * A mapped BAR is mapped again with it. False when the BAR has no part holding `offset`.
   */
  interceptBar(
    index: number,
    offset: number,
    wrap: (inner: AccessHandler, partOffset: number) => AccessHandler,
  ): boolean {
    const bar = this.bars.find((b) => b.index === index);
    const part = bar?.parts.find((p) => offset >= p.offset && offset < p.offset + p.size);
    if (bar === undefined || part === undefined) return false;
    part.handler = wrap(part.handler, part.offset);
    const at = bar.address;
    if (at !== undefined) {
      this.unmapBar(bar);
      this.mapBar(bar, at);
    }
    return true;
  }

  /**
   * The machine shuts down: its address maps go with it (they drop every BAR range in one sweep,
   * see isBarRange), and closing the device file turns every interrupt index off, as releasing a
   * vfio device fd does. The function only forgets its mappings and routes; each part keeps the
   * accesses it counted.
   */
  shutdown(): void {
    for (const bar of this.bars) {
      const ranges = bar.ranges;
      for (let i = 0; i < ranges.length; i++) {
        bar.parts[i].reads += ranges[i].reads;
        bar.parts[i].writes += ranges[i].writes;
      }
      clear(ranges);
      bar.address = undefined;
    }
    if (this.msix) this.msix.enabled = false;
    if (this.msi) {
      this.msi.enabled = false;
      this.msi.pending = 0;
    }
    this.intxOn = false;
  }

  // ---- interrupts --------------------------------------------------------------------------------

  get interruptMode(): InterruptMode {
    if (this.msix?.enabled) return 'msix';
    if (this.msi?.enabled) return 'msi';
    return this.intxOn ? 'intx' : 'none';
  }

  /** INTx fired (its trigger's signal): the line's vector at the interrupt controller. */
  intxSignal(): void {
    this.host.irq.deliver(this.intxVector(), this.source);
  }

  intxVector(): number {
    return intxVectorFor(this.slot.device, this.pin === 0 ? 1 : this.pin);
  }

  get intxEnabled(): boolean {
    return this.intxOn;
  }

  private irqCount(index: number): number {
    try {
      return this.file.irqInfo(index).count;
    } catch {
      return 0;
    }
  }

  /** VFIO_DEVICE_SET_IRQS; a refusal is recorded as a fault and answered false. */
  private setIrqs(operation: string, req: IrqSetRequest): boolean {
    this.setIrqsCalls++;
    try {
      this.file.setIrqs(req);
      return true;
    } catch (err) {
      this.fault(err, operation, -1, 0);
      return false;
    }
  }

  /** vfio_intx_enable: one eventfd on INTx vector 0. */
  enableIntx(): void {
    if (this.intxOn || this.pin === 0 || this.intxCount === 0) return;
    this.intxOn = this.setIrqs('enable INTx', this.intxEnable);
  }

  disableIntx(): void {
    if (!this.intxOn) return;
    this.intxOn = false;
    this.setIrqs('disable INTx', DISABLE_INTX);
  }

  /** vfio_intx_eoi: the guest ended the interrupt, so unmask the automasked line. */
  eoi(vector: number): void {
    if (!this.intxOn || vector !== this.intxVector()) return;
    this.setIrqs('unmask INTx', UNMASK_INTX);
  }

  /** An MSI or MSI-X message: a write of `data` to `address`, which the local APIC takes in its window. */
  private message(address: number, data: number, what: string): void {
    if (address >= MSI_WINDOW_BASE && address < MSI_WINDOW_BASE + MSI_WINDOW_SIZE) {
      this.host.irq.deliver(data & 0xff, this.source);
      return;
    }
    this.fault(
      new VfioError('EFAULT', `${what} message goes to ${hexOf(address)}, outside the MSI window.`, {
        hint: `Program the message address to 0x${MSI_WINDOW_BASE.toString(16)}.`,
      }),
      what,
      -1,
      0,
    );
  }

  // MSI ---------------------------------------------------------------------------------------

  private setupMsi(capOffset: number): MsiState {
    const flags = this.deviceConfigRead(capOffset + PCI_MSI_FLAGS, 2);
    const length = msiCapabilitySize(
      (flags & PCI_MSI_FLAGS_64BIT) !== 0,
      (flags & PCI_MSI_FLAGS_MASKBIT) !== 0,
    );
    const capable = 1 << ((flags & PCI_MSI_FLAGS_QMASK) >>> 1);
    const triggers: IrqTrigger[] = [];
    for (let i = 0; i < capable; i++) triggers.push(new MsiTrigger(this, i));
    return {
      capOffset,
      length,
      triggers,
      enabled: false,
      vectors: 0,
      address: 0,
      data: 0,
      mask: 0,
      pending: 0,
    };
  }

  /** MSI vector `i` fired (its trigger's signal). */
  msiSignal(i: number): void {
    const msi = this.msi as MsiState;
    if (!msi.enabled || i >= msi.vectors) return;
    if (msi.mask & (1 << i)) {
      msi.pending |= 1 << i;
      return;
    }
    // PCI Local Bus Specification 3.0 §6.8.1.6: vector i replaces the low log2(n) bits of the data.
    this.message(msi.address, (msi.data & ~(msi.vectors - 1)) | i, 'MSI');
  }

  /** vfio_msi_enable / vfio_update_msi / vfio_msi_disable, after the guest wrote the MSI capability. */
  private updateMsi(): void {
    const msi = this.msi as MsiState;
    const at = msi.capOffset;
    const flags = this.deviceConfigRead(at + PCI_MSI_FLAGS, 2);
    const addr64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
    const enabled = (flags & PCI_MSI_FLAGS_ENABLE) !== 0;
    const capable = 1 << ((flags & PCI_MSI_FLAGS_QMASK) >>> 1);
    const vectors = Math.min(
      1 << ((flags & PCI_MSI_FLAGS_QSIZE) >>> 4),
      capable,
      this.irqCount(VFIO_PCI_MSI_IRQ_INDEX),
    );
    const address =
      this.deviceConfigRead(at + PCI_MSI_ADDRESS_LO, 4) +
      (addr64 ? this.deviceConfigRead(at + PCI_MSI_ADDRESS_HI, 4) * TWO_32 : 0);
    const layout = msiLayout(flags);
    const data = this.deviceConfigRead(at + layout.data, 2);
    const mask = layout.perVectorMask ? this.deviceConfigRead(at + layout.mask, 4) : 0;
    const unmasked = msi.mask & ~mask;
    msi.mask = mask;
    if (!enabled) {
      if (msi.enabled) {
        msi.enabled = false;
        msi.pending = 0;
        this.setIrqs('disable MSI', DISABLE_MSI);
        this.enableIntx();
      }
      return;
    }
    if (vectors < 1) return;
    const changed = !msi.enabled || vectors !== msi.vectors || address !== msi.address || data !== msi.data;
    if (changed) {
      if (!msi.enabled) {
        // vfio_msi_enable starts with vfio_disable_interrupts: INTx, MSI and MSI-X are exclusive.
        this.disableIntx();
        if (this.msix?.enabled) this.disableMsix();
      } else if (vectors !== msi.vectors) {
        // MSI is NORESIZE: a new vector count means disable, then set all vectors again.
        this.setIrqs('resize MSI', DISABLE_MSI);
      }
      msi.vectors = vectors;
      msi.address = address;
      msi.data = data;
      msi.enabled = this.setIrqs('enable MSI', {
        action: 'trigger',
        index: VFIO_PCI_MSI_IRQ_INDEX,
        start: 0,
        count: vectors,
        data: 'eventfd',
        triggers: msi.triggers.slice(0, vectors),
      });
      if (!msi.enabled) this.enableIntx();
    }
    const release = unmasked & msi.pending;
    if (release) {
      msi.pending &= ~release;
      for (let i = 0; i < msi.vectors; i++) if (release & (1 << i)) this.msiSignal(i);
    }
  }

  // MSI-X -------------------------------------------------------------------------------------

  private setupMsix(capOffset: number): MsixState {
    const flags = this.deviceConfigRead(capOffset + PCI_MSIX_FLAGS, 2);
    const table = this.deviceConfigRead(capOffset + PCI_MSIX_TABLE, 4);
    const pba = this.deviceConfigRead(capOffset + PCI_MSIX_PBA, 4);
    const tableSize = (flags & PCI_MSIX_FLAGS_QSIZE) + 1;
    const tableBar = table & PCI_MSIX_TABLE_BIR;
    let emulated = true;
    try {
      const caps = this.file.regionInfo(tableBar).caps;
      for (let i = 0; i < caps.length; i++)
        if (caps[i].id === VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) emulated = false;
    } catch {
      emulated = true;
    }
    const tableBytes = new Uint8Array(tableSize * PCI_MSIX_ENTRY_SIZE);
    // PCI Local Bus Specification 3.0 §6.8.2.9: the PBA is an array of QWORDs, one bit per entry.
    const pbaBytes = new Uint8Array(Math.ceil(tableSize / 64) * 8);
    const triggers: IrqTrigger[] = [];
    for (let i = 0; i < tableSize; i++) triggers.push(new MsixTrigger(this, i));
    // Every vector gets its trigger; masking is applied when a vector fires (the PBA holds it).
    const count = Math.min(tableSize, this.irqCount(VFIO_PCI_MSIX_IRQ_INDEX));
    const state: MsixState = {
      capOffset,
      tableSize,
      tableBar,
      tableOffset: (table & PCI_MSIX_TABLE_OFFSET) >>> 0,
      pbaBar: pba & PCI_MSIX_PBA_BIR,
      pbaOffset: (pba & PCI_MSIX_PBA_OFFSET) >>> 0,
      emulated,
      table: tableBytes,
      pba: pbaBytes,
      triggers,
      enableRequest: {
        action: 'trigger',
        index: VFIO_PCI_MSIX_IRQ_INDEX,
        start: 0,
        count,
        data: 'eventfd',
        triggers: count === tableSize ? triggers : triggers.slice(0, count),
      },
      enabled: false,
      functionMask: false,
    };
    resetMsixTable(state);
    return state;
  }

  msixTableRead(offset: number, size: AccessSize): number {
    return getLe((this.msix as MsixState).table, offset, size);
  }

  msixTableWrite(offset: number, size: AccessSize, value: number): void {
    const m = this.msix as MsixState;
    const entry = Math.floor(offset / PCI_MSIX_ENTRY_SIZE);
    const ctrl = entry * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL;
    const wasMasked = this.msixMasked(entry);
    const t = m.table;
    setLe(t, offset, size, value);
    // PCI Local Bus Specification 3.0 §6.8.2.9: only the Mask Bit of Vector Control is defined.
    setLe(t, ctrl, 4, getLe(t, ctrl, 4) & PCI_MSIX_ENTRY_CTRL_MASKBIT);
    if (wasMasked && !this.msixMasked(entry)) this.msixReleasePending(entry);
  }

  msixPbaRead(offset: number, size: AccessSize): number {
    return getLe((this.msix as MsixState).pba, offset, size);
  }

  private msixEntryMasked(entry: number): boolean {
    const m = this.msix as MsixState;
    if (!m.emulated)
      return (this.mappableEntry(entry, PCI_MSIX_ENTRY_VECTOR_CTRL) & PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0;
    return (
      (getLe(m.table, entry * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4) &
        PCI_MSIX_ENTRY_CTRL_MASKBIT) !==
      0
    );
  }

  private msixMasked(entry: number): boolean {
    return (this.msix as MsixState).functionMask || this.msixEntryMasked(entry);
  }

  /** An entry of a MSIX_MAPPABLE table: the device keeps it, so read it from the device. */
  private mappableEntry(entry: number, field: number): number {
    const m = this.msix as MsixState;
    // Its own buffer: a device may raise MSI-X while a config or trapped access is under way.
    const s = MSIX_SCRATCH;
    try {
      this.file.readRegion(m.tableBar, m.tableOffset + entry * PCI_MSIX_ENTRY_SIZE + field, s.b4);
    } catch (err) {
      this.fault(err, 'MSI-X table read', m.tableBar, m.tableOffset + entry * PCI_MSIX_ENTRY_SIZE + field);
      return field === PCI_MSIX_ENTRY_VECTOR_CTRL ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0;
    }
    return s.view.getUint32(0, true);
  }

  /** MSI-X entry `entry` fired (its trigger's signal). */
  msixSignal(entry: number): void {
    const m = this.msix as MsixState;
    if (!m.enabled) return;
    if (this.msixMasked(entry)) {
      // A masked vector's message is held: its Pending Bit is set until the vector is unmasked.
      const byte = entry >>> 3;
      const bit = 1 << (entry & 7);
      if (!(m.pba[byte] & bit)) this.msixPendingSet++;
      m.pba[byte] |= bit;
      return;
    }
    const base = entry * PCI_MSIX_ENTRY_SIZE;
    let address: number;
    let data: number;
    if (m.emulated) {
      address =
        getLe(m.table, base + PCI_MSIX_ENTRY_LOWER_ADDR, 4) +
        getLe(m.table, base + PCI_MSIX_ENTRY_UPPER_ADDR, 4) * TWO_32;
      data = getLe(m.table, base + PCI_MSIX_ENTRY_DATA, 4);
    } else {
      address =
        this.mappableEntry(entry, PCI_MSIX_ENTRY_LOWER_ADDR) +
        this.mappableEntry(entry, PCI_MSIX_ENTRY_UPPER_ADDR) * TWO_32;
      data = this.mappableEntry(entry, PCI_MSIX_ENTRY_DATA);
    }
    this.message(address, data, 'MSI-X');
  }

  private msixReleasePending(entry: number): void {
    const m = this.msix as MsixState;
    const byte = entry >>> 3;
    const bit = 1 << (entry & 7);
    if (!m.enabled || !(m.pba[byte] & bit)) return;
    m.pba[byte] &= ~bit;
    this.msixSignal(entry);
  }

  /** vfio_msix_enable / vfio_msix_disable and the function mask, after the guest wrote Message Control. */
  private updateMsix(): void {
    const m = this.msix as MsixState;
    const flags = this.deviceConfigRead(m.capOffset + PCI_MSIX_FLAGS, 2);
    const enabled = (flags & PCI_MSIX_FLAGS_ENABLE) !== 0;
    const functionMask = (flags & PCI_MSIX_FLAGS_MASKALL) !== 0;
    const unmaskedAll = m.functionMask && !functionMask;
    m.functionMask = functionMask;
    if (enabled && !m.enabled) {
      this.disableIntx();
      if (this.msi?.enabled) this.disableMsi();
      m.enabled = this.setIrqs('enable MSI-X', m.enableRequest);
      if (!m.enabled) this.enableIntx();
    } else if (!enabled && m.enabled) {
      this.disableMsix();
      this.enableIntx();
      return;
    }
    if (m.enabled && unmaskedAll) for (let i = 0; i < m.tableSize; i++) this.msixReleasePending(i);
  }

  private disableMsix(): void {
    const m = this.msix as MsixState;
    m.enabled = false;
    this.setIrqs('disable MSI-X', DISABLE_MSIX);
  }

  private disableMsi(): void {
    const msi = this.msi as MsiState;
    msi.enabled = false;
    msi.pending = 0;
    this.setIrqs('disable MSI', DISABLE_MSI);
  }

  /** Every interrupt route off (reset, hot-remove). */
  disableInterrupts(): void {
    if (this.msix?.enabled) this.disableMsix();
    if (this.msi?.enabled) this.disableMsi();
    this.disableIntx();
  }

  /** The MSI-X table as the VMM keeps it: entry i's address, data and mask; the PBA bits. */
  msixSnapshot():
    | {
        enabled: boolean;
        functionMask: boolean;
        emulated: boolean;
        entries: { address: number; data: number; masked: boolean; pending: boolean }[];
      }
    | undefined {
    const m = this.msix;
    if (!m) return undefined;
    const entries = [];
    for (let i = 0; i < m.tableSize; i++) {
      const base = i * PCI_MSIX_ENTRY_SIZE;
      entries.push({
        address:
          getLe(m.table, base + PCI_MSIX_ENTRY_LOWER_ADDR, 4) +
          getLe(m.table, base + PCI_MSIX_ENTRY_UPPER_ADDR, 4) * TWO_32,
        data: getLe(m.table, base + PCI_MSIX_ENTRY_DATA, 4),
        masked: this.msixEntryMasked(i),
        pending: (m.pba[i >>> 3] & (1 << (i & 7))) !== 0,
      });
    }
    return { enabled: m.enabled, functionMask: m.functionMask, emulated: m.emulated, entries };
  }

  // ---- reset ---------------------------------------------------------------------------------

  /**
   * System reset as QEMU's vfio_pci_reset: interrupts off, BARs unmapped, VFIO_DEVICE_RESET when
   * the device offers it, then the power-on state (MSI-X entries masked, INTx enabled).
   * Returns whether the device itself was reset.
   */
  reset(): boolean {
    this.disableInterrupts();
    this.unmapAll();
    let resetDone = false;
    if (this.file.deviceInfo().reset) {
      try {
        this.file.reset();
        resetDone = true;
      } catch (err) {
        this.fault(err, 'reset', -1, 0);
      }
    } else {
      this.host.log.warn(
        `${this.slotName} ${this.label}: the device offers no VFIO_DEVICE_RESET; its state is kept.`,
      );
    }
    if (this.msix) {
      resetMsixTable(this.msix);
      this.msix.functionMask = false;
    }
    if (this.msi) {
      this.msi.mask = 0;
      this.msi.pending = 0;
    }
    this.updateBars();
    this.enableIntx();
    return resetDone;
  }

  /** Parts of each BAR with their guest accesses, for the report. */
  barParts(bar: BarState): (BarPart & { reads: number; writes: number })[] {
    return bar.parts.map((p, i) => ({
      offset: p.offset,
      size: p.size,
      how: p.how,
      reads: p.reads + (bar.ranges[i]?.reads ?? 0),
      writes: p.writes + (bar.ranges[i]?.writes ?? 0),
    }));
  }
}

/** PCI Local Bus Specification 3.0 §6.8.2.9: after reset every entry's Mask Bit is set. */
function resetMsixTable(m: MsixState): void {
  m.table.fill(0);
  m.pba.fill(0);
  for (let i = 0; i < m.tableSize; i++) {
    setLe(m.table, i * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, PCI_MSIX_ENTRY_CTRL_MASKBIT);
  }
}

function overlaps(a0: number, a1: number, b0: number, b1: number): boolean {
  return a0 < b1 && b0 < a1;
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
  return Math.floor(offset / PAGE) * PAGE;
}

function pageUp(offset: number): number {
  return Math.ceil(offset / PAGE) * PAGE;
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

/** The COMMAND bit that turns a BAR's decode on. */
function decodeBit(bar: BarState): number {
  return bar.kind === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
}

/** A little-endian value of `size` bytes at `at` (the VMM's MSI-X table and PBA). */
function getLe(b: Uint8Array, at: number, size: AccessSize): number {
  if (size === 1) return b[at];
  if (size === 2) return b[at] | (b[at + 1] << 8);
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

function setLe(b: Uint8Array, at: number, size: AccessSize, value: number): void {
  b[at] = value;
  if (size === 1) return;
  b[at + 1] = value >>> 8;
  if (size === 2) return;
  b[at + 2] = value >>> 16;
  b[at + 3] = value >>> 24;
}

/** Whether an address-map range is a part of some function's BAR. */
export function isBarRange(range: MappedRange): boolean {
  const k = range.kind;
  return k === 'direct' || k === 'trapped' || k === 'msix-table' || k === 'msix-pba';
}

/** Empty an array in place (cheaper than setting its length for a few entries). */
function clear(values: unknown[]): void {
  while (values.length > 0) values.pop();
}
