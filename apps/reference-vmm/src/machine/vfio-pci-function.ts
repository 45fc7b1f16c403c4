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
  type IrqTrigger,
  type Logger,
  msiCapabilitySize,
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_MFD,
  PCI_INTERRUPT_PIN,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_32,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSI_MASK_32,
  PCI_MSI_MASK_64,
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
  walkCapabilities,
} from '@vfiokit/core';
import {
  type AccessHandler,
  type AccessSize,
  type AddressMap,
  allOnes,
  hexOf,
  type MappedRange,
  MemoryHandler,
} from './address-map.js';
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

interface Part extends BarPart {
  readonly handler: AccessHandler;
  /** Guest accesses through this part (direct ones never reach the device). */
  reads: number;
  writes: number;
}

export interface BarState {
  readonly index: number;
  readonly region: ResolvedRegion;
  readonly kind: 'mem32' | 'mem64' | 'io';
  readonly prefetchable: boolean;
  readonly parts: Part[];
  address: number | undefined;
  ranges: MappedRange[];
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
  readonly table: Uint8Array;
  readonly tableView: DataView;
  readonly pba: Uint8Array;
  readonly pbaView: DataView;
  readonly triggers: IrqTrigger[];
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

/** Scratch buffers for trapped accesses: allocated once per function. */
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

/**
 * A trapped part of a BAR: each access is a DeviceFile read or write at the region's offset.
 * The handler owns its buffers, so an access allocates nothing and makes one call into the core.
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
    private readonly fileOffset: number,
    private readonly regionOffset: number,
  ) {
    const buffer = new ArrayBuffer(4);
    this.view = new DataView(buffer);
    this.b1 = new Uint8Array(buffer, 0, 1);
    this.b2 = new Uint8Array(buffer, 0, 2);
    this.b4 = new Uint8Array(buffer, 0, 4);
  }

  read(offset: number, size: AccessSize): number {
    const v = this.view;
    try {
      this.file.read(this.fileOffset + offset, size === 4 ? this.b4 : size === 2 ? this.b2 : this.b1);
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
      this.file.write(this.fileOffset + offset, size === 4 ? this.b4 : size === 2 ? this.b2 : this.b1);
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
  private readonly scratch = new Scratch();
  private readonly msix: MsixState | undefined;
  private readonly msi: MsiState | undefined;
  private readonly intxTrigger: IrqTrigger;
  private readonly intxCount: number;
  private intxOn = false;
  /** MSI-X messages held in the PBA because their vector was masked. */
  msixPendingSet = 0;
  setIrqsCalls = 0;

  constructor(opts: VfioPciFunctionOptions) {
    this.file = opts.file;
    this.slot = opts.slot;
    this.label = opts.label;
    this.host = opts.host;
    this.source = opts.source;
    this.slotName = formatPciAddress(opts.slot);
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
    this.intxTrigger = {
      signal: () => this.host.irq.deliver(this.intxVector(), this.source),
    };

    const caps = walkCapabilities((o) => this.deviceConfigRead(o, 1), PCI_CFG_SPACE_SIZE);
    const msiCap = caps.capabilities.find((c) => c.id === PCI_CAP_ID_MSI);
    const msixCap = caps.capabilities.find((c) => c.id === PCI_CAP_ID_MSIX);
    this.msi = msiCap ? this.setupMsi(msiCap.offset) : undefined;
    this.msix = msixCap ? this.setupMsix(msixCap.offset) : undefined;
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
    return value;
  }

  /** A guest config write: to the device, then the VMM reacts as vfio_pci_write_config does. */
  configWrite(offset: number, size: AccessSize, value: number): void {
    if (offset + size > this.configSize) return;
    const s = this.scratch;
    s.set(size, value);
    try {
      this.file.write(this.configOffset + offset, s.of(size));
    } catch (err) {
      this.fault(err, 'config write', VFIO_PCI_CONFIG_REGION_INDEX, offset);
      return;
    }
    const end = offset + size;
    if (
      overlaps(offset, end, PCI_COMMAND, PCI_COMMAND + 2) ||
      overlaps(offset, end, PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_0 + 24)
    ) {
      this.updateBars();
    }
    const msi = this.msi;
    if (msi && overlaps(offset, end, msi.capOffset, msi.capOffset + msi.length)) this.updateMsi();
    const msix = this.msix;
    if (msix && overlaps(offset, end, msix.capOffset + PCI_MSIX_FLAGS, msix.capOffset + PCI_MSIX_FLAGS + 2))
      this.updateMsix();
  }

  /** Read the device's config region; a failing read answers all-ones and is recorded. */
  deviceConfigRead(offset: number, size: AccessSize): number {
    const s = this.scratch;
    try {
      this.file.read(this.configOffset + offset, s.of(size));
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
   * QEMU's vfio_pci_fixup_msix_region does.
   */
  private splitBar(region: ResolvedRegion, io: boolean): Part[] {
    const size = region.size;
    const cuts = new Set<number>([0, size]);
    const direct: { offset: number; size: number }[] = [];
    if (!io && region.flags & VFIO_REGION_INFO_FLAG_MMAP) {
      const sparse = region.caps.find((c) => c.id === VFIO_REGION_INFO_CAP_SPARSE_MMAP);
      const areas = sparse && 'areas' in sparse ? sparse.areas : [{ offset: 0, size }];
      for (const a of areas)
        if (a.size > 0 && a.offset + a.size <= size) direct.push({ offset: a.offset, size: a.size });
    }
    const special: { offset: number; size: number; how: PartHow }[] = [];
    const msix = this.msix;
    if (msix?.emulated) {
      if (msix.tableBar === region.index)
        special.push({ offset: msix.tableOffset, size: msix.table.length, how: 'msix-table' });
      if (msix.pbaBar === region.index)
        special.push({ offset: msix.pbaOffset, size: msix.pba.length, how: 'msix-pba' });
    }
    // The pages holding an emulated structure are not mapped (the rest of those pages is trapped).
    const holes = special
      .filter((sp) => sp.offset < size)
      .map((sp) => {
        const from = Math.floor(sp.offset / PAGE) * PAGE;
        return { offset: from, size: Math.ceil((sp.offset + sp.size) / PAGE) * PAGE - from };
      });
    for (const d of direct) {
      cuts.add(d.offset);
      cuts.add(d.offset + d.size);
    }
    for (const h of holes) {
      cuts.add(Math.min(h.offset, size));
      cuts.add(Math.min(h.offset + h.size, size));
    }
    for (const s of special) {
      cuts.add(Math.min(s.offset, size));
      cuts.add(Math.min(s.offset + s.size, size));
    }
    const points = [...cuts].sort((a, b) => a - b);
    // `area` keeps direct pieces of different mmap areas apart: one mmap never spans two areas.
    const raw: { offset: number; size: number; how: PartHow; area: number }[] = [];
    for (let k = 0; k + 1 < points.length; k++) {
      const offset = points[k];
      const end = points[k + 1];
      if (end <= offset) continue;
      const inside = (r: { offset: number; size: number }) => offset >= r.offset && end <= r.offset + r.size;
      const sp = special.find(inside);
      const area = direct.findIndex(inside);
      let how: PartHow;
      if (sp) how = sp.how;
      else if (area >= 0 && !holes.some(inside)) how = 'direct';
      else how = 'trapped';
      const prev = raw[raw.length - 1];
      const joins =
        prev !== undefined &&
        prev.how === how &&
        (how === 'trapped' || (how === 'direct' && prev.area === area));
      if (joins) raw[raw.length - 1] = { offset: prev.offset, size: end - prev.offset, how, area };
      else raw.push({ offset, size: end - offset, how, area });
    }
    return raw.map(({ offset, size: n, how }) => this.makePart(region, { offset, size: n, how }));
  }

  private makePart(region: ResolvedRegion, p: { offset: number; size: number; how: PartHow }): Part {
    let handler: AccessHandler;
    if (p.how === 'direct') {
      try {
        const mapping = this.file.mmap(region.offset + p.offset, p.size);
        this.mappings.push(mapping);
        handler = new MemoryHandler(mapping.memory.bytes, mapping.memoryOffset, p.size);
        return { ...p, handler, reads: 0, writes: 0 };
      } catch (err) {
        // QEMU falls back to the slow path when an mmap fails; so does the VMM.
        this.fault(err, `mmap BAR${region.index} area`, region.index, p.offset);
        return this.makePart(region, { ...p, how: 'trapped' });
      }
    }
    if (p.how === 'msix-table') handler = new MsixTableHandler(this);
    else if (p.how === 'msix-pba') handler = new MsixPbaHandler(this);
    else handler = new TrappedHandler(this, this.file, region.index, region.offset + p.offset, p.offset);
    return { ...p, handler, reads: 0, writes: 0 };
  }

  /** Re-read COMMAND and the BARs from the device and (re)map what changed (vfio_sub_page_bar_update_mapping's caller, pci_update_mappings). */
  updateBars(): void {
    const command = this.deviceConfigRead(PCI_COMMAND, 2);
    for (const bar of this.bars) {
      const target = this.decodedAddress(bar, command);
      if (target === bar.address) continue;
      this.unmapBar(bar);
      if (target !== undefined) this.mapBar(bar, target);
    }
  }

  /** pci_bar_address in QEMU: the BAR's address when decode is on and the address is usable. */
  private decodedAddress(bar: BarState, command: number): number | undefined {
    const size = bar.region.size;
    // Decode off: nothing to read (this is every BAR write while the guest sizes BARs).
    if (!(command & (bar.kind === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY))) return undefined;
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

  private mapBar(bar: BarState, address: number): void {
    const map = bar.kind === 'io' ? this.host.io : this.host.memory;
    const added: MappedRange[] = [];
    try {
      for (const part of bar.parts) {
        const kind = part.how === 'direct' ? 'direct' : part.how === 'trapped' ? 'trapped' : part.how;
        added.push(
          map.add({
            start: address + part.offset,
            size: part.size,
            kind,
            owner: this.label,
            handler: part.handler,
          }),
        );
      }
    } catch (err) {
      for (const r of added) map.remove(r);
      this.fault(err, `map BAR${bar.index} at ${hexOf(address)}`, bar.index, 0);
      return;
    }
    bar.address = address;
    bar.ranges = added;
  }

  private unmapBar(bar: BarState): void {
    const map = bar.kind === 'io' ? this.host.io : this.host.memory;
    // The ranges follow the parts one to one; their counters are kept in the parts.
    bar.ranges.forEach((r, i) => {
      bar.parts[i].reads += r.reads;
      bar.parts[i].writes += r.writes;
      map.remove(r);
    });
    bar.ranges = [];
    bar.address = undefined;
  }

  unmapAll(): void {
    for (const bar of this.bars) this.unmapBar(bar);
  }

  // ---- interrupts --------------------------------------------------------------------------------

  get interruptMode(): InterruptMode {
    if (this.msix?.enabled) return 'msix';
    if (this.msi?.enabled) return 'msi';
    return this.intxOn ? 'intx' : 'none';
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

  private setIrqs(operation: string, run: () => void): boolean {
    this.setIrqsCalls++;
    try {
      run();
      return true;
    } catch (err) {
      this.fault(err, operation, -1, 0);
      return false;
    }
  }

  /** vfio_intx_enable: one eventfd on INTx vector 0. */
  enableIntx(): void {
    if (this.intxOn || this.pin === 0 || this.intxCount === 0) return;
    const triggers = [this.intxTrigger];
    this.intxOn = this.setIrqs('enable INTx', () =>
      this.file.setIrqs({
        action: 'trigger',
        index: VFIO_PCI_INTX_IRQ_INDEX,
        start: 0,
        count: 1,
        data: 'eventfd',
        triggers,
      }),
    );
  }

  disableIntx(): void {
    if (!this.intxOn) return;
    this.intxOn = false;
    this.setIrqs('disable INTx', () =>
      this.file.setIrqs({
        action: 'trigger',
        index: VFIO_PCI_INTX_IRQ_INDEX,
        start: 0,
        count: 0,
        data: 'none',
      }),
    );
  }

  /** vfio_intx_eoi: the guest ended the interrupt, so unmask the automasked line. */
  eoi(vector: number): void {
    if (!this.intxOn || vector !== this.intxVector()) return;
    this.setIrqs('unmask INTx', () =>
      this.file.setIrqs({
        action: 'unmask',
        index: VFIO_PCI_INTX_IRQ_INDEX,
        start: 0,
        count: 1,
        data: 'none',
      }),
    );
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
    for (let i = 0; i < capable; i++) triggers.push({ signal: () => this.msiSignal(i) });
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

  private msiSignal(i: number): void {
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
    const data = this.deviceConfigRead(at + (addr64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32), 2);
    const mask =
      flags & PCI_MSI_FLAGS_MASKBIT
        ? this.deviceConfigRead(at + (addr64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32), 4)
        : 0;
    const unmasked = msi.mask & ~mask;
    msi.mask = mask;
    if (!enabled) {
      if (msi.enabled) {
        msi.enabled = false;
        msi.pending = 0;
        this.setIrqs('disable MSI', () =>
          this.file.setIrqs({
            action: 'trigger',
            index: VFIO_PCI_MSI_IRQ_INDEX,
            start: 0,
            count: 0,
            data: 'none',
          }),
        );
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
        this.setIrqs('resize MSI', () =>
          this.file.setIrqs({
            action: 'trigger',
            index: VFIO_PCI_MSI_IRQ_INDEX,
            start: 0,
            count: 0,
            data: 'none',
          }),
        );
      }
      msi.vectors = vectors;
      msi.address = address;
      msi.data = data;
      const triggers = msi.triggers.slice(0, vectors);
      msi.enabled = this.setIrqs('enable MSI', () =>
        this.file.setIrqs({
          action: 'trigger',
          index: VFIO_PCI_MSI_IRQ_INDEX,
          start: 0,
          count: vectors,
          data: 'eventfd',
          triggers,
        }),
      );
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
      emulated = !this.file
        .regionInfo(tableBar)
        .caps.some((c) => c.id === VFIO_REGION_INFO_CAP_MSIX_MAPPABLE);
    } catch {
      emulated = true;
    }
    const tableBytes = new Uint8Array(tableSize * PCI_MSIX_ENTRY_SIZE);
    // PCI Local Bus Specification 3.0 §6.8.2.9: the PBA is an array of QWORDs, one bit per entry.
    const pbaBytes = new Uint8Array(Math.ceil(tableSize / 64) * 8);
    const triggers: IrqTrigger[] = [];
    for (let i = 0; i < tableSize; i++) triggers.push({ signal: () => this.msixSignal(i) });
    const state: MsixState = {
      capOffset,
      tableSize,
      tableBar,
      tableOffset: (table & PCI_MSIX_TABLE_OFFSET) >>> 0,
      pbaBar: pba & PCI_MSIX_PBA_BIR,
      pbaOffset: (pba & PCI_MSIX_PBA_OFFSET) >>> 0,
      emulated,
      table: tableBytes,
      tableView: new DataView(tableBytes.buffer),
      pba: pbaBytes,
      pbaView: new DataView(pbaBytes.buffer),
      triggers,
      enabled: false,
      functionMask: false,
    };
    resetMsixTable(state);
    return state;
  }

  msixTableRead(offset: number, size: AccessSize): number {
    const m = this.msix as MsixState;
    const v = m.tableView;
    return size === 4
      ? v.getUint32(offset, true)
      : size === 2
        ? v.getUint16(offset, true)
        : v.getUint8(offset);
  }

  msixTableWrite(offset: number, size: AccessSize, value: number): void {
    const m = this.msix as MsixState;
    const entry = Math.floor(offset / PCI_MSIX_ENTRY_SIZE);
    const ctrl = entry * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL;
    const wasMasked = this.msixMasked(entry);
    const v = m.tableView;
    if (size === 4) v.setUint32(offset, value >>> 0, true);
    else if (size === 2) v.setUint16(offset, value & 0xffff, true);
    else v.setUint8(offset, value & 0xff);
    // PCI Local Bus Specification 3.0 §6.8.2.9: only the Mask Bit of Vector Control is defined.
    v.setUint32(ctrl, v.getUint32(ctrl, true) & PCI_MSIX_ENTRY_CTRL_MASKBIT, true);
    if (wasMasked && !this.msixMasked(entry)) this.msixReleasePending(entry);
  }

  msixPbaRead(offset: number, size: AccessSize): number {
    const v = (this.msix as MsixState).pbaView;
    return size === 4
      ? v.getUint32(offset, true)
      : size === 2
        ? v.getUint16(offset, true)
        : v.getUint8(offset);
  }

  private msixEntryMasked(entry: number): boolean {
    const m = this.msix as MsixState;
    if (!m.emulated)
      return (this.mappableEntry(entry, PCI_MSIX_ENTRY_VECTOR_CTRL) & PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0;
    return (
      (m.tableView.getUint32(entry * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, true) &
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
    const region = this.file.regionInfo(m.tableBar);
    const s = this.scratch;
    try {
      this.file.read(region.offset + m.tableOffset + entry * PCI_MSIX_ENTRY_SIZE + field, s.b4);
    } catch (err) {
      this.fault(err, 'MSI-X table read', m.tableBar, m.tableOffset + entry * PCI_MSIX_ENTRY_SIZE + field);
      return field === PCI_MSIX_ENTRY_VECTOR_CTRL ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0;
    }
    return s.view.getUint32(0, true);
  }

  private msixSignal(entry: number): void {
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
        m.tableView.getUint32(base + PCI_MSIX_ENTRY_LOWER_ADDR, true) +
        m.tableView.getUint32(base + PCI_MSIX_ENTRY_UPPER_ADDR, true) * TWO_32;
      data = m.tableView.getUint32(base + PCI_MSIX_ENTRY_DATA, true);
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
      const count = Math.min(m.tableSize, this.irqCount(VFIO_PCI_MSIX_IRQ_INDEX));
      const triggers = m.triggers.slice(0, count);
      // Every vector gets its trigger; masking is applied when a vector fires (the PBA holds it).
      m.enabled = this.setIrqs('enable MSI-X', () =>
        this.file.setIrqs({
          action: 'trigger',
          index: VFIO_PCI_MSIX_IRQ_INDEX,
          start: 0,
          count,
          data: 'eventfd',
          triggers,
        }),
      );
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
    this.setIrqs('disable MSI-X', () =>
      this.file.setIrqs({
        action: 'trigger',
        index: VFIO_PCI_MSIX_IRQ_INDEX,
        start: 0,
        count: 0,
        data: 'none',
      }),
    );
  }

  private disableMsi(): void {
    const msi = this.msi as MsiState;
    msi.enabled = false;
    msi.pending = 0;
    this.setIrqs('disable MSI', () =>
      this.file.setIrqs({
        action: 'trigger',
        index: VFIO_PCI_MSI_IRQ_INDEX,
        start: 0,
        count: 0,
        data: 'none',
      }),
    );
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
          m.tableView.getUint32(base + PCI_MSIX_ENTRY_LOWER_ADDR, true) +
          m.tableView.getUint32(base + PCI_MSIX_ENTRY_UPPER_ADDR, true) * TWO_32,
        data: m.tableView.getUint32(base + PCI_MSIX_ENTRY_DATA, true),
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
    m.tableView.setUint32(
      i * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL,
      PCI_MSIX_ENTRY_CTRL_MASKBIT,
      true,
    );
  }
}

function overlaps(a0: number, a1: number, b0: number, b1: number): boolean {
  return a0 < b1 && b0 < a1;
}
