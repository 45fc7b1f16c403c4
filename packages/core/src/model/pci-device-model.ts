/**
 * PciDeviceModel: a vfio-pci device as a description plus a few handlers. A plugin builds its
 * ConfigSpace (identity, BARs, capabilities), says what backs each BAR (a trap handler, shared
 * memory for mmap, or both), and gets the whole VfioDevice surface: region and IRQ info derived
 * from the config space as vfio-pci derives them, the config region with per-bit masks and BAR
 * sizing, memory decode gating, reset, and interrupt helpers that pick INTx, MSI or MSI-X the
 * way the guest enabled them.
 */
import {
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_PCI_REQ_IRQ_INDEX,
  VFIO_PCI_ROM_REGION_INDEX,
} from '../abi/constants.js';
import { copyBytes } from '../bytes.js';
import type { DeviceContext } from '../contract/context.js';
import type {
  DeviceDriver,
  DeviceInfo,
  GfxDisplay,
  IrqInfo,
  MmapArea,
  RegionInfo,
  RegionMapping,
  RegionTypeCap,
  SharedMemory,
  ValueSize,
  VfioDevice,
} from '../contract/device.js';
import type { MigrationOps } from '../contract/migration.js';
import { insideMmapArea } from '../device-file/region-table.js';
import { VfioError } from '../errors.js';
import type { ConfigSpace } from '../pci/config-space.js';
import { PCI_CAP_ID_EXP, PCI_INTERRUPT_PIN } from '../pci/constants.js';
import { giveValueBytes, takeValueBytes, ValueBytes } from '../value-bytes.js';

/** Trapped accesses to a region; offsets are relative to the region, bounds already checked. */
export interface RegionHandler {
  read(offset: number, dst: Uint8Array): void;
  write(offset: number, src: Uint8Array): void;
  /**
   * Optional, for a memory BAR: read() of `size` bytes as their little-endian value (a register
   * bank answers with the register, no bytes in between; the guest's trapped MMIO takes this
   * road). It must answer what read() would. Without it such an access goes through read().
   */
  readValue?(offset: number, size: ValueSize): number;
  /** Optional, for a memory BAR: write() of the low `size` bytes of `value`, as readValue() is read(). */
  writeValue?(offset: number, size: ValueSize, value: number): void;
}

/** A memory BAR's handler's value road: its own, or ValueThroughBytes. */
type ValueHandler = Required<Pick<RegionHandler, 'readValue' | 'writeValue'>>;

/**
 * The value road of a handler that has none: read()/write() through bytes of its own, or the
 * ring's (value-bytes.ts) for an access that comes back here while they are in use (the handler
 * reached the same BAR again), so no access inside the handler can change them. Its own bytes are
 * a field and the in-use mark another, not the ring's: this is the trapped-MMIO path of every
 * such handler, and the ring's module state costs ~5 ns more per access there (byte-handler bench).
 * A handler that throws leaves the mark set; later accesses take the ring's bytes, still exact.
 */
class ValueThroughBytes implements ValueHandler {
  private busy = false;
  private readonly own = new ValueBytes(-1);
  constructor(private readonly handler: RegionHandler) {}

  /** Returns what read() returned when that is not undefined (a thenable: the DeviceFile refuses it). */
  readValue(offset: number, size: ValueSize): number {
    if (this.busy) return this.readValueNested(offset, size);
    this.busy = true;
    const s = this.own;
    const ret: unknown = this.handler.read(offset, s.of(size));
    this.busy = false;
    if (ret !== undefined) return ret as number;
    return s.get(size);
  }

  writeValue(offset: number, size: ValueSize, value: number): unknown {
    if (this.busy) return this.writeValueNested(offset, size, value);
    this.busy = true;
    const ret: unknown = this.handler.write(offset, this.own.set(size, value));
    this.busy = false;
    return ret;
  }

  private readValueNested(offset: number, size: ValueSize): number {
    const s = takeValueBytes();
    const ret: unknown = this.handler.read(offset, s.of(size));
    giveValueBytes(s);
    if (ret !== undefined) return ret as number;
    return s.get(size);
  }

  private writeValueNested(offset: number, size: ValueSize, value: number): unknown {
    const s = takeValueBytes();
    const ret: unknown = this.handler.write(offset, s.set(size, value));
    giveValueBytes(s);
    return ret;
  }
}

/** What backs one BAR. */
export interface BarBacking {
  /** Trapped accesses. Without a handler, accesses go straight to `memory`. */
  readonly handler?: RegionHandler;
  /** Memory the user may mmap (all of it, or the `sparseMmap` areas). */
  readonly memory?: SharedMemory;
  readonly sparseMmap?: readonly MmapArea[];
  readonly msixMappable?: boolean;
  /** Refuse writes (a read-only BAR). */
  readonly readOnly?: boolean;
}

/** A device-specific region (index 9 and up): it must carry a type. */
export interface ExtraRegion {
  readonly index: number;
  readonly size: number;
  readonly type: RegionTypeCap;
  readonly read: boolean;
  readonly write: boolean;
  readonly handler?: RegionHandler;
  readonly memory?: SharedMemory;
  readonly sparseMmap?: readonly MmapArea[];
}

export interface PciDeviceModelOptions {
  /** The instance name (the UUID for a mediated device). */
  readonly name: string;
  readonly config: ConfigSpace;
  readonly bars?: Readonly<Partial<Record<0 | 1 | 2 | 3 | 4 | 5, BarBacking>>>;
  /** Expansion ROM contents (the ROM BAR must be defined in the config space). */
  readonly rom?: Uint8Array;
  readonly extraRegions?: readonly ExtraRegion[];
  /** Override the IRQ info derived from the config space (mtty reports REQ, GVT-g lacks ERR...). */
  readonly irqs?: Readonly<Partial<Record<number, Omit<IrqInfo, 'index'> | null>>>;
  /** VFIO_DEVICE_FLAGS_RESET (default true). */
  readonly resettable?: boolean;
  /** The kernel driver the device stands for (default 'mdev'): what opening and closing its file do. */
  readonly driver?: DeviceDriver;
  readonly migration?: MigrationOps;
  readonly display?: GfxDisplay;
}

interface Region {
  readonly info: RegionInfo;
  readonly handler: RegionHandler | undefined;
  readonly memory: SharedMemory | undefined;
  /** Memory BARs are refused while COMMAND.MEMORY is clear, as vfio-pci refuses them (EIO). */
  readonly gatedByMemoryDecode: boolean;
}

/** RegionInfo of the indexes a model does not implement: alike for every model, so made once each. */
const absentRegionInfos: RegionInfo[] = [];

function absentRegionInfo(index: number): RegionInfo {
  let info = absentRegionInfos[index];
  if (info === undefined) {
    info = Object.freeze({ index, size: 0, read: false, write: false, mmap: false });
    absentRegionInfos[index] = info;
  }
  return info;
}

export class PciDeviceModel implements VfioDevice {
  readonly name: string;
  readonly config: ConfigSpace;
  readonly migration?: MigrationOps;
  readonly display?: GfxDisplay;
  readonly driver?: DeviceDriver;
  private readonly regions: (Region | undefined)[] = [];
  /**
   * Per region index, the handler of a memory BAR that has one (else undefined): the trapped-MMIO
   * path looks it up here, one load from the index, where through `regions` it would load the
   * region and test two of its fields first.
   */
  private readonly memoryHandlers: (RegionHandler | undefined)[] = [];
  /** The same handlers' value roads (the handler itself when it has readValue and writeValue). */
  private readonly valueHandlers: (ValueHandler | undefined)[] = [];
  private readonly irqInfos: (IrqInfo | undefined)[] = [];
  private readonly numRegions: number;
  private readonly resettable: boolean;
  private context: DeviceContext | undefined;
  /** Config accesses are the model's own (readConfig/writeConfig not overridden): values need no bytes. */
  private readonly ownConfigRead: boolean;
  private readonly ownConfigWrite: boolean;

  constructor(opts: PciDeviceModelOptions) {
    this.name = opts.name;
    this.config = opts.config;
    this.resettable = opts.resettable ?? true;
    this.ownConfigRead = this.readConfig === PciDeviceModel.prototype.readConfig;
    this.ownConfigWrite = this.writeConfig === PciDeviceModel.prototype.writeConfig;
    if (opts.migration) this.migration = opts.migration;
    if (opts.display) this.display = opts.display;
    if (opts.driver) this.driver = opts.driver;

    for (const bar of this.config.bars()) {
      const backing = opts.bars?.[bar.index as 0 | 1 | 2 | 3 | 4 | 5];
      const mmap = backing?.memory !== undefined;
      this.regions[VFIO_PCI_BAR0_REGION_INDEX + bar.index] = {
        info: {
          index: bar.index,
          size: bar.size,
          read: true,
          write: !backing?.readOnly,
          mmap,
          ...(mmap && backing?.sparseMmap ? { sparseMmap: backing.sparseMmap } : {}),
          ...(backing?.msixMappable ? { msixMappable: true } : {}),
        },
        handler: backing?.handler,
        memory: backing?.memory,
        gatedByMemoryDecode: bar.kind !== 'io',
      };
    }
    const rom = this.config.rom();
    if (rom && opts.rom) {
      const data = opts.rom;
      this.regions[VFIO_PCI_ROM_REGION_INDEX] = {
        info: { index: VFIO_PCI_ROM_REGION_INDEX, size: rom.size, read: true, write: false, mmap: false },
        handler: {
          read: (offset, dst) => {
            dst.fill(0);
            if (offset < data.length)
              dst.set(data.subarray(offset, Math.min(data.length, offset + dst.length)));
          },
          write: () => {},
        },
        memory: undefined,
        gatedByMemoryDecode: false,
      };
    }
    this.regions[VFIO_PCI_CONFIG_REGION_INDEX] = {
      info: {
        index: VFIO_PCI_CONFIG_REGION_INDEX,
        size: this.config.size,
        read: true,
        write: true,
        mmap: false,
      },
      handler: {
        read: (offset, dst) => this.readConfig(offset, dst),
        write: (offset, src) => this.writeConfig(offset, src),
      },
      memory: undefined,
      gatedByMemoryDecode: false,
    };
    let maxIndex = VFIO_PCI_NUM_REGIONS - 1;
    for (const r of opts.extraRegions ?? []) {
      if (r.index < VFIO_PCI_NUM_REGIONS || this.regions[r.index]) {
        throw new VfioError('EINVAL', `device-specific region index ${r.index} is below 9 or used twice.`, {
          device: this.name,
          hint: 'Device-specific regions take indexes from VFIO_PCI_NUM_REGIONS (9) upward, one each.',
        });
      }
      const mmap = r.memory !== undefined;
      this.regions[r.index] = {
        info: {
          index: r.index,
          size: r.size,
          read: r.read,
          write: r.write,
          mmap,
          type: r.type,
          ...(mmap && r.sparseMmap ? { sparseMmap: r.sparseMmap } : {}),
        },
        handler: r.handler,
        memory: r.memory,
        gatedByMemoryDecode: false,
      };
      maxIndex = Math.max(maxIndex, r.index);
    }
    this.numRegions = maxIndex + 1;
    for (let i = 0; i < this.numRegions; i++) {
      const r = this.regions[i];
      const h = r?.gatedByMemoryDecode === true ? r.handler : undefined;
      this.memoryHandlers.push(h);
      this.valueHandlers.push(
        h === undefined
          ? undefined
          : typeof h.readValue === 'function' && typeof h.writeValue === 'function'
            ? (h as ValueHandler)
            : new ValueThroughBytes(h),
      );
    }
    this.deriveIrqs(opts.irqs ?? {});
  }

  /** vfio_pci_get_irq_count: INTx if a pin is wired, MSI/MSI-X from their capabilities, ERR on PCIe, REQ always. */
  private deriveIrqs(overrides: Readonly<Partial<Record<number, Omit<IrqInfo, 'index'> | null>>>): void {
    const pin = this.config.readU8(PCI_INTERRUPT_PIN);
    const msi = this.config.msi();
    const msix = this.config.msix();
    const pcie = this.config.capabilities().some((c) => c.id === PCI_CAP_ID_EXP);
    const derived: Record<number, Omit<IrqInfo, 'index'>> = {
      [VFIO_PCI_INTX_IRQ_INDEX]: {
        count: pin ? 1 : 0,
        eventfd: true,
        maskable: true,
        automasked: true,
        noresize: false,
      },
      [VFIO_PCI_MSI_IRQ_INDEX]: {
        count: msi ? msi.vectorsCapable : 0,
        eventfd: true,
        maskable: false,
        automasked: false,
        noresize: true,
      },
      [VFIO_PCI_MSIX_IRQ_INDEX]: {
        count: msix ? msix.tableSize : 0,
        eventfd: true,
        maskable: false,
        automasked: false,
        noresize: true,
      },
      [VFIO_PCI_ERR_IRQ_INDEX]: {
        count: pcie ? 1 : 0,
        eventfd: true,
        maskable: false,
        automasked: false,
        noresize: true,
      },
      [VFIO_PCI_REQ_IRQ_INDEX]: {
        count: 1,
        eventfd: true,
        maskable: false,
        automasked: false,
        noresize: true,
      },
    };
    for (let i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
      const o = overrides[i];
      if (o === null) continue;
      this.irqInfos[i] = { index: i, ...(o ?? derived[i]) };
    }
  }

  // ---- VfioDevice ----------------------------------------------------------------------------

  info(): DeviceInfo {
    return { reset: this.resettable, numRegions: this.numRegions, numIrqs: VFIO_PCI_NUM_IRQS };
  }

  regionInfo(index: number): RegionInfo | undefined {
    if (!Number.isInteger(index) || index < 0 || index >= this.numRegions) return undefined;
    return this.regions[index]?.info ?? absentRegionInfo(index);
  }

  irqInfo(index: number): IrqInfo | undefined {
    return this.irqInfos[index];
  }

  open(ctx: DeviceContext): void {
    this.context = ctx;
    this.onOpen(ctx);
  }

  close(): void {
    this.onClose();
    this.context = undefined;
  }

  /** The open device's host context; throws when the device is not open. */
  get ctx(): DeviceContext {
    if (!this.context) {
      throw new VfioError('EBADF', 'the device is not open.', {
        device: this.name,
        hint: 'Open the device first.',
      });
    }
    return this.context;
  }

  get isOpen(): boolean {
    return this.context !== undefined;
  }

  /** Returns what the BAR's handler returned: the DeviceFile refuses a Promise (an async handler). */
  read(index: number, offset: number, dst: Uint8Array): unknown {
    // The trapped-MMIO path first, in as few bytes as the engine can inline into a VMM's access
    // path: a memory BAR with a handler while COMMAND.MEMORY is set.
    const h = this.memoryHandlers[index];
    if (h !== undefined && this.config.memoryEnabled()) return h.read(offset, dst);
    return this.readOther(this.regions[index], index, offset, dst);
  }

  /** read() of everything else: config space (the model's own, called directly), I/O BARs, memory, errors. */
  private readOther(r: Region | undefined, index: number, offset: number, dst: Uint8Array): unknown {
    if (r === undefined) throw this.noRegion(index, offset);
    if (r.gatedByMemoryDecode === true) {
      if (!this.config.memoryEnabled()) throw this.decodeOff(index, offset);
    } else if (index === VFIO_PCI_CONFIG_REGION_INDEX) return this.readConfig(offset, dst);
    if (r.handler !== undefined) return r.handler.read(offset, dst);
    if (r.memory !== undefined) copyBytes(dst, 0, r.memory.bytes, offset, dst.length);
    else dst.fill(0);
    return undefined;
  }

  /**
   * read() of `size` bytes as their value: a memory BAR's handler answers it (while
   * COMMAND.MEMORY is set) with its readValue(), or read() into bytes when it has none; every
   * other access is read() into bytes of the model's. A handler's thenable (an async read) is returned as it is, for the DeviceFile to refuse.
   */
  readValue(index: number, offset: number, size: ValueSize): number {
    const h = this.valueHandlers[index];
    if (h !== undefined && this.config.memoryEnabled()) return h.readValue(offset, size);
    return this.readValueOther(index, offset, size);
  }

  private readValueOther(index: number, offset: number, size: ValueSize): number {
    // Config space as a value (a VMM's config access), unless a subclass answers it (readConfig).
    if (index === VFIO_PCI_CONFIG_REGION_INDEX && this.ownConfigRead)
      return this.config.configRead(offset, size);
    const s = takeValueBytes();
    const ret = this.read(index, offset, s.of(size));
    giveValueBytes(s);
    if (ret !== undefined) return ret as number;
    return s.get(size);
  }

  /** write() of the low `size` bytes of `value`, readValue()'s twin; returns what write() returns. */
  writeValue(index: number, offset: number, size: ValueSize, value: number): unknown {
    const h = this.valueHandlers[index];
    if (h !== undefined && this.config.memoryEnabled()) return h.writeValue(offset, size, value);
    if (index === VFIO_PCI_CONFIG_REGION_INDEX && this.ownConfigWrite) {
      // writeConfig() of the value's bytes: the masked write, its listeners, then the hook.
      const listener =
        size === 4
          ? this.config.writeU32(offset, value)
          : size === 2
            ? this.config.writeU16(offset, value)
            : this.config.writeU8(offset, value);
      const hook: unknown = this.onConfigWrite(offset, size);
      return listener ?? hook;
    }
    const s = takeValueBytes();
    const ret = this.write(index, offset, s.set(size, value));
    giveValueBytes(s);
    return ret;
  }

  /** Returns what the BAR's handler returned, as read() does. */
  write(index: number, offset: number, src: Uint8Array): unknown {
    const h = this.memoryHandlers[index];
    if (h !== undefined && this.config.memoryEnabled()) return h.write(offset, src);
    return this.writeOther(this.regions[index], index, offset, src);
  }

  private writeOther(r: Region | undefined, index: number, offset: number, src: Uint8Array): unknown {
    if (r === undefined) throw this.noRegion(index, offset);
    if (r.gatedByMemoryDecode === true) {
      if (!this.config.memoryEnabled()) throw this.decodeOff(index, offset);
    } else if (index === VFIO_PCI_CONFIG_REGION_INDEX) return this.writeConfig(offset, src);
    if (r.handler !== undefined) return r.handler.write(offset, src);
    if (r.memory !== undefined) copyBytes(r.memory.bytes, offset, src, 0, src.length);
    return undefined;
  }

  /**
   * The memory behind `size` bytes at `offset` of region `index`: all of it must lie in the
   * region's memory and, when the region lists sparse-mmap areas, inside one of them, as the
   * kernel's vfio-pci refuses a mapping of a BAR's trapped part (DeviceFile checks this too, but
   * a caller of the model need not come through it).
   */
  mmap(index: number, offset: number, size: number): RegionMapping {
    const r = this.regions[index];
    const memory = r?.memory;
    const inMemory = memory !== undefined && offset >= 0 && size > 0 && offset + size <= memory.size;
    if (r === undefined || !inMemory || !insideMmapArea(r.info, offset, size)) {
      throw new VfioError(
        'EINVAL',
        memory === undefined
          ? 'the region has no memory to map.'
          : `mmap of 0x${size.toString(16)} bytes at 0x${offset.toString(16)} is outside ${inMemory ? "the region's mmap areas" : "the region's memory"}.`,
        {
          device: this.name,
          region: index,
          offset,
          hint: 'Map only the areas that REGION_INFO lists (its sparse-mmap capability, when it has one).',
        },
      );
    }
    return { memory, memoryOffset: offset, size };
  }

  reset(): void {
    this.config.reset();
    this.onReset();
  }

  irqsChanged(index: number, count: number): void {
    this.onIrqsChanged(index, count);
  }

  private noRegion(index: number, offset: number): VfioError {
    return new VfioError('EINVAL', 'the region is not implemented.', {
      device: this.name,
      region: index,
      offset,
    });
  }

  private decodeOff(index: number, offset: number): VfioError {
    return new VfioError(
      'EIO',
      'memory decode is disabled in the COMMAND register, so the BAR does not respond.',
      {
        device: this.name,
        region: index,
        offset,
        hint: 'Set COMMAND.MEMORY (bit 1) in config space before accessing a memory BAR.',
      },
    );
  }

  // ---- config space --------------------------------------------------------------------------

  protected readConfig(offset: number, dst: Uint8Array): void {
    this.config.read(offset, dst);
  }

  /**
   * Returns a thenable a write listener or onConfigWrite returned (an async one), which the
   * DeviceFile refuses as it refuses an async BAR handler; otherwise undefined.
   */
  protected writeConfig(offset: number, src: Uint8Array): unknown {
    const listener = this.config.write(offset, src);
    const hook: unknown = this.onConfigWrite(offset, src.length);
    return listener ?? hook;
  }

  // ---- interrupts ----------------------------------------------------------------------------

  /**
   * Raise the device's interrupt the way the guest set it up: MSI-X vector, else MSI vector,
   * else INTx (unless COMMAND.INTX_DISABLE). Returns how it went out.
   */
  raiseInterrupt(vector = 0): 'msix' | 'msi' | 'intx' | 'none' {
    const ctx = this.context;
    if (!ctx) return 'none';
    if (ctx.irq.enabled(VFIO_PCI_MSIX_IRQ_INDEX)) {
      ctx.irq.trigger(VFIO_PCI_MSIX_IRQ_INDEX, vector);
      return 'msix';
    }
    if (ctx.irq.enabled(VFIO_PCI_MSI_IRQ_INDEX)) {
      ctx.irq.trigger(VFIO_PCI_MSI_IRQ_INDEX, vector);
      return 'msi';
    }
    return this.raiseIntx() ? 'intx' : 'none';
  }

  /** Assert INTx: STATUS.INTERRUPT is set; the line fires unless COMMAND.INTX_DISABLE. */
  raiseIntx(): boolean {
    this.config.setInterruptStatus(true);
    if (this.config.intxDisabled() || !this.context) return false;
    this.context.irq.trigger(VFIO_PCI_INTX_IRQ_INDEX, 0);
    return true;
  }

  /** De-assert INTx (the device's interrupt condition cleared). */
  lowerIntx(): void {
    this.config.setInterruptStatus(false);
    this.context?.irq.lower(VFIO_PCI_INTX_IRQ_INDEX, 0);
  }

  // ---- hooks for subclasses ------------------------------------------------------------------

  protected onOpen(_ctx: DeviceContext): void {}
  protected onClose(): void {}
  /** After the config space was restored to its reset state. */
  protected onReset(): void {}
  protected onConfigWrite(_offset: number, _length: number): void {}
  protected onIrqsChanged(_index: number, _count: number): void {}
}
