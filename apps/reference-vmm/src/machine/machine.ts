/**
 * The reference machine: guest RAM, a memory and an I/O address map, bus 0 with the host
 * bridge and the assigned devices (ECAM and 0xCF8/0xCFC config access), an interrupt
 * controller and an IOMMU mapping guest RAM for device DMA. Guest programs see it through
 * `guest` (a GuestView) only.
 *
 * Why one file past 600 lines: devices, guest programs, config access and the report all work on
 * the machine's private slot table and address maps; the report section (and
 * emulatedDeviceReport) is the seam for a split into machine/report.ts.
 */
import {
  type Clock,
  formatPciAddress,
  type GuestDriver,
  type GuestView,
  type Logger,
  type PciAddress,
  type ProbedDevice,
  type SharedMemory,
  type VfioDevice,
  VfioError,
} from '@vfiokit/core';
import { DeviceFile, type DeviceHost, DirtyTracker, HostDma, IovaMap, toVfioError } from '@vfiokit/core/host';
import { igdFirmware } from '../guest/igd-firmware.js';
import { probePciBus } from '../guest/probe.js';
import {
  type AccessHandler,
  type AccessSize,
  AddressMap,
  allOnes,
  type MappedRange,
  MemoryHandler,
} from './address-map.js';
import { FW_CFG_IO_BASE, FwCfg } from './fw-cfg.js';
import { GuestMemory } from './guest-memory.js';
import { type ConfigTarget, HostBridge } from './host-bridge.js';
import {
  assignIgd,
  type IgdAssignment,
  type IgdAssignmentOptions,
  type IgdMachine,
  LPC_SLOT,
} from './igd/assignment.js';
import type { LpcBridge } from './igd/lpc-bridge.js';
import { InterruptController, InterruptSource } from './interrupt-controller.js';
import {
  DEFAULT_RAM_SIZE,
  ECAM_BASE,
  ECAM_BUS_SIZE,
  IO_SPACE_SIZE,
  IO_WINDOW,
  MMIO32_WINDOW,
  MMIO64_WINDOW,
  MSI_WINDOW_BASE,
  MSI_WINDOW_SIZE,
  PCI_CONFIG_ADDRESS_ENABLE,
  PCI_CONFIG_ADDRESS_PORT,
  PCI_WINDOWS,
} from './layout.js';
import { reasonText, watchRejections } from './plugin-rejections.js';
import type { DeviceReport, MachineReport, RegionReport } from './report.js';
import { isBarRange } from './vfio-pci/bars.js';
import { type FunctionHost, type MachineError, slotNameOf } from './vfio-pci/device-link.js';
import { VfioPciFunction } from './vfio-pci/function.js';

export interface MachineOptions {
  /** Bytes of guest RAM; default 256 MiB, at most 2.75 GiB (RAM ends where ECAM starts). */
  ramSize?: number;
  log?: Logger;
  /** The clock handed to devices; a monotonic real-time clock by default. */
  clock?: Clock;
  /**
   * Guest RAM's backing, exactly `size` bytes: shared memory by default; a memfd when a device
   * served over vfio-user must map guest RAM (the fd travels with DMA_MAP).
   */
  allocateRam?: (size: number) => SharedMemory;
}

export interface AttachOptions {
  device: VfioDevice;
  slot: PciAddress;
  label: string;
  plugin?: string;
  typeId?: string;
  /** For an Intel IGD (found by its OpRegion region): QEMU's x-igd-gms and x-igd-legacy-mode. */
  igd?: IgdAssignmentOptions;
}

export interface AttachedDevice {
  readonly slot: PciAddress;
  readonly label: string;
  readonly file: DeviceFile;
}

export interface DriverRun {
  slot: PciAddress;
  driver: string;
  ok: boolean;
  summary: string;
  facts?: Record<string, unknown>;
  error?: string;
}

interface Attached extends AttachedDevice {
  readonly plugin?: string;
  readonly typeId?: string;
  readonly fn: VfioPciFunction;
  readonly dma: HostDma;
  readonly tracker: DirtyTracker;
}

/** Errors kept in the report; beyond this they are counted only. */
const MAX_ERRORS = 256;
const DEVICES_PER_BUS = 32;
const FUNCTIONS_PER_DEVICE = 8;
// PCI Local Bus Specification 3.0 §6.1: config space is 256 bytes, PCI Express extends it to 4096
const ECAM_FUNCTION_SIZE = 4096;

const REGION_NAMES = ['BAR0', 'BAR1', 'BAR2', 'BAR3', 'BAR4', 'BAR5', 'ROM', 'CONFIG', 'VGA'];

export class Machine {
  readonly guest: GuestView;
  readonly ram: GuestMemory;
  /** Guest-physical memory space. */
  readonly memory: AddressMap;
  /** x86 I/O port space. */
  readonly io: AddressMap;
  readonly interrupts: InterruptController;
  /** The IOMMU: guest RAM identity-mapped (IOVA = GPA) for every device's DMA. */
  readonly iommu: IovaMap;
  readonly log: Logger;
  readonly clock: Clock;
  private readonly hostBridge = new HostBridge();
  /** QEMU's fw_cfg at I/O 0x510-0x511: files for the guest firmware (the IGD's OpRegion and stolen size). */
  readonly fwCfg = new FwCfg();
  /** The assigned IGD's VMM side (at most one, as on a real machine). */
  private igd: IgdAssignment | undefined;
  /** What an IGD assignment may touch, made at the first attach (see igdMachine). */
  private igdHost: IgdMachine | undefined;
  /** The LPC bridge IGD legacy mode put at 00:1f.0. */
  private lpcBridge: LpcBridge | undefined;
  /** The guest has probed the bus since power-on or reset (a later attach is a hot-add). */
  private booted = false;
  /** Bus 0: index device * 8 + function. */
  private readonly slots: (ConfigTarget | undefined)[] = new Array(
    DEVICES_PER_BUS * FUNCTIONS_PER_DEVICE,
  ).fill(undefined);
  private readonly attached = new Map<number, Attached>();
  private readonly errors: MachineError[] = [];
  private errorsDropped = 0;
  private probed: readonly ProbedDevice[] = [];
  /** What every function gets from the machine (one object for all of them). */
  private readonly functionHost: FunctionHost;
  private configAddress = 0;
  private closed = false;
  /** The ECAM range of the memory map (it stays there for the machine's life): guest config accesses count in it. */
  private readonly ecam: MappedRange;

  constructor(opts: MachineOptions = {}) {
    this.log = opts.log ?? silentLogger();
    this.clock = opts.clock ?? realClock();
    this.ram = new GuestMemory(opts.ramSize ?? DEFAULT_RAM_SIZE, opts.allocateRam);
    this.memory = new AddressMap('memory', MMIO64_WINDOW.limit + 1);
    this.io = new AddressMap('io', IO_SPACE_SIZE);
    this.interrupts = new InterruptController({
      pinOf: (a) => this.functionAt(a)?.pin ?? 0,
      onEoi: (vector) => {
        for (const d of this.attached.values()) d.fn.eoi(vector);
      },
    });
    this.iommu = new IovaMap();
    this.iommu.map({ iova: 0, size: this.ram.size, read: true, write: true, memory: this.ram.bytes });
    this.slots[0] = this.hostBridge;
    this.functionHost = {
      memory: this.memory,
      io: this.io,
      irq: this.interrupts,
      log: this.log,
      recordError: (e) => this.recordError(e),
      slotIsMultifunction: (device) => this.slotIsMultifunction(device),
    };

    this.memory.add({
      start: 0,
      size: this.ram.size,
      kind: 'ram',
      owner: 'ram',
      handler: new MemoryHandler(this.ram.bytes),
    });
    this.ecam = this.memory.add({
      start: ECAM_BASE,
      size: ECAM_BUS_SIZE,
      kind: 'ecam',
      owner: 'host-bridge',
      handler: this.ecamHandler(),
    });
    this.memory.add({
      start: MSI_WINDOW_BASE,
      size: MSI_WINDOW_SIZE,
      kind: 'msi',
      owner: 'interrupt-controller',
      handler: this.msiHandler(),
    });
    this.io.add({
      start: PCI_CONFIG_ADDRESS_PORT,
      size: 8,
      kind: 'config-port',
      owner: 'host-bridge',
      handler: this.configPortHandler(),
    });
    // docs/specs/fw_cfg.rst: selector at 0x510 (16-bit), data at 0x511 (8-bit)
    this.io.add({ start: FW_CFG_IO_BASE, size: 2, kind: 'emulated', owner: 'fw-cfg', handler: this.fwCfg });
    // The guest's memory accesses call the map held here, not through the machine (one load less
    // on the path of every guest access).
    const memory = this.memory;
    const io = this.io;
    this.guest = {
      configRead: (a, offset, size) => this.guestConfigRead(a, offset, size),
      configWrite: (a, offset, size, value) => this.guestConfigWrite(a, offset, size, value),
      mmioRead: (gpa, size) => memory.read(gpa, size),
      mmioWrite: (gpa, size, value) => memory.write(gpa, size, value),
      mmioRead64: (gpa) => memory.read64(gpa),
      mmioWrite64: (gpa, value) => memory.write64(gpa, value),
      ioRead: (port, size) => io.read(port, size),
      ioWrite: (port, size, value) => io.write(port, size, value),
      ram: this.ram,
      interrupts: this.interrupts,
      devices: () => this.probed,
      log: (message) => this.log.info(`guest: ${message}`),
    };
  }

  // ---- devices -----------------------------------------------------------------------------------

  /** Open the device (a core DeviceFile) and put it on the bus at `slot`; works while running (hot-add). */
  attach(opts: AttachOptions): AttachedDevice {
    this.checkOpen();
    const key = slotKey(opts.slot);
    if (this.slots[key] !== undefined) {
      throw new VfioError(
        'EBUSY',
        `slot ${formatPciAddress(opts.slot)} is already in use${key === 0 ? ' by the host bridge' : ''}.`,
        {
          device: opts.label,
          hint: 'Pick a free device number from 1 to 31 on bus 0.',
        },
      );
    }
    const tracker = new DirtyTracker();
    const dma = new HostDma({ map: this.iommu, dirty: tracker, device: opts.label });
    const host: DeviceHost = {
      dma,
      dirty: dma,
      clock: this.clock,
      log: new PrefixedLogger(this.log, slotNameOf(opts.slot), opts.label),
      // The tracker answers DMA_LOGGING_START/STOP/REPORT itself.
      dmaLogging: tracker,
    };
    const file = new DeviceFile(opts.device, host);
    file.open();
    let fn: VfioPciFunction;
    try {
      fn = new VfioPciFunction({
        file,
        slot: opts.slot,
        label: opts.label,
        source: new InterruptSource(opts.label),
        host: this.functionHost,
      });
      // Power-on, or a hot-add: QEMU resets every device at system reset, the one that starts the
      // machine included, and resets a hot-plugged one as it is realized (device_set_realized).
      // An mdev keeps its state from close to open (mtty.c, kvmgt.c), so this is where the
      // previous user's COMMAND, BARs, MSI/MSI-X and device registers go.
      fn.reset();
    } catch (err) {
      file.close();
      dma.dispose();
      throw toVfioError(err, { device: opts.label });
    }
    const entry: { -readonly [K in keyof Attached]: Attached[K] } = {
      slot: { bus: opts.slot.bus, device: opts.slot.device, function: opts.slot.function },
      label: opts.label,
      file,
      fn,
      dma,
      tracker,
    };
    if (opts.plugin !== undefined) entry.plugin = opts.plugin;
    if (opts.typeId !== undefined) entry.typeId = opts.typeId;
    if (this.igd === undefined) {
      try {
        this.igd = assignIgd(fn, this.igdMachine(), opts.igd);
      } catch (err) {
        file.close();
        dma.dispose();
        throw toVfioError(err, { device: opts.label });
      }
    }
    this.attached.set(key, entry);
    this.slots[key] = fn;
    this.log.info(`attached ${opts.label} (${file.name}) at ${fn.slotName}`);
    return entry;
  }

  /** Hot-remove: unmap the BARs, disable interrupts, close the device file. ENODEV for an empty slot. */
  detach(slot: PciAddress): void {
    const key = slotKey(slot);
    const entry = this.attached.get(key);
    if (!entry) {
      throw new VfioError('ENODEV', `no assigned device sits at ${formatPciAddress(slot)}.`, {
        hint: 'List the attached devices with devices().',
      });
    }
    entry.fn.unmapAll();
    entry.fn.disableInterrupts();
    entry.file.close();
    entry.dma.dispose();
    if (this.igd !== undefined && slotKey(this.igd.slot) === key) {
      this.igd.remove();
      this.igd = undefined;
    }
    this.attached.delete(key);
    this.slots[key] = undefined;
    this.log.info(`detached ${entry.label} from ${entry.fn.slotName}`);
  }

  devices(): readonly AttachedDevice[] {
    return [...this.attached.values()];
  }

  /** The VMM's model of the function at `address` (for tests and the report). */
  functionAt(address: PciAddress): VfioPciFunction | undefined {
    if (address.bus !== 0) return undefined;
    return this.attached.get(slotKey(address))?.fn;
  }

  // ---- guest programs ----------------------------------------------------------------------------

  /** The generic PCI probe guest program (what Linux's PCI core does at boot). */
  async probe(): Promise<readonly ProbedDevice[]> {
    this.checkOpen();
    this.probed = probePciBus(this.guest, { windows: PCI_WINDOWS, previous: this.probed });
    this.booted = true;
    // The firmware's IGD step (SeaBIOS / OVMF IgdAssignmentDxe): once per boot, after the bus is set up.
    const igd = this.igd;
    if (igd !== undefined && igd.firmware === undefined) {
      igd.firmware = igdFirmware(this.guest) ?? {
        ok: false,
        summary: 'the firmware found no Intel display function at 00:02.0, so ASLS and BDSM stay 0',
      };
    }
    return this.probed;
  }

  /** Run each driver on each probed device it matches, one after the other; results per device. */
  async runDrivers(drivers: readonly GuestDriver[]): Promise<readonly DriverRun[]> {
    this.checkOpen();
    const runs: DriverRun[] = [];
    for (const device of this.probed) {
      for (const driver of drivers) {
        let matches = false;
        try {
          matches = driver.matches(device);
        } catch (err) {
          runs.push(failedRun(device, driver, err, 'matches() threw'));
          continue;
        }
        if (!matches) continue;
        // A driver's rejected Promise (awaited or left behind) is that driver's failure, never the process's.
        const { result, rejections } = await watchRejections(() => driver.run(this.guest, device));
        if (result.status === 'rejected') runs.push(failedRun(device, driver, result.reason, 'run() threw'));
        else if (rejections.length > 0)
          runs.push(
            failedRun(
              device,
              driver,
              rejections.map(reasonText).join('; '),
              `run() left ${rejections.length === 1 ? 'a Promise' : `${rejections.length} Promises`} rejected that it never awaited`,
            ),
          );
        else if (typeof result.value !== 'object' || result.value === null)
          runs.push(failedRun(device, driver, `it returned ${String(result.value)}`, 'run() gave no result'));
        else {
          const r = result.value;
          runs.push({
            slot: device.address,
            driver: driver.name,
            ok: r.ok,
            summary: r.summary,
            ...(r.facts !== undefined ? { facts: { ...r.facts } } : {}),
          });
        }
      }
    }
    return runs;
  }

  /** VMM reset: every device reset (VFIO_DEVICE_RESET where offered), BAR mappings and interrupt routes cleared. */
  reset(): void {
    this.checkOpen();
    for (const d of this.attached.values()) d.fn.reset();
    this.hostBridge.reset();
    this.igd?.reset();
    this.fwCfg.reset();
    this.booted = false;
    this.interrupts.resetAllocation();
    this.ram.resetAllocator();
    this.configAddress = 0;
    this.probed = [];
    this.log.info('machine reset');
  }

  /**
   * Shut the machine down. Unlike a hot-remove (detach) nothing is taken apart piece by piece: the
   * address maps drop every BAR range in one sweep, and closing each device file turns its
   * interrupts off and lets the plugin go.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const d of this.attached.values()) {
      d.fn.shutdown();
      d.file.close();
      d.dma.dispose();
      this.slots[slotKey(d.slot)] = undefined;
      this.log.info(`detached ${d.label} from ${d.fn.slotName}`);
    }
    this.attached.clear();
    if (this.igd !== undefined) {
      this.igd.remove();
      this.igd = undefined;
    }
    this.memory.retain(isMachineRange);
    this.io.retain(isMachineRange);
  }

  // ---- config access -----------------------------------------------------------------------------

  private target(device: number, fn: number): ConfigTarget | undefined {
    return this.slots[device * FUNCTIONS_PER_DEVICE + fn];
  }

  /**
   * A guest config access is an ECAM access: it is counted in the ECAM range and answered as an
   * access through the memory map at ECAM_BASE would be. The ECAM range is always in the map at
   * the same place (nothing can overlap it), so the access goes to its handler without the lookup.
   */
  private guestConfigRead(a: PciAddress, offset: number, size: AccessSize): number {
    if (!isFunctionAddress(a) || !isConfigOffset(offset, size)) return allOnes(size);
    this.ecam.reads++;
    // ecamRead() at the function's ECAM offset, without taking the offset apart again.
    const t = this.target(a.device, a.function);
    if (t === undefined || offset & (size - 1)) return allOnes(size);
    return t.configRead(offset, size);
  }

  private guestConfigWrite(a: PciAddress, offset: number, size: AccessSize, value: number): void {
    if (!isFunctionAddress(a) || !isConfigOffset(offset, size)) return;
    this.ecam.writes++;
    const t = this.target(a.device, a.function);
    if (t === undefined || offset & (size - 1)) return;
    t.configWrite(offset, size, value);
  }

  /** ECAM for bus 0: offset = device << 15 | function << 12 | register. Misaligned accesses master-abort. */
  private ecamHandler(): AccessHandler {
    return {
      read: (offset, size) => this.ecamRead(offset, size),
      write: (offset, size, value) => this.ecamWrite(offset, size, value),
    };
  }

  private ecamRead(offset: number, size: AccessSize): number {
    const reg = offset & 0xfff;
    const t = this.target(offset >>> 15, (offset >>> 12) & 7);
    if (t === undefined || reg & (size - 1)) return allOnes(size);
    return t.configRead(reg, size);
  }

  private ecamWrite(offset: number, size: AccessSize, value: number): void {
    const reg = offset & 0xfff;
    const t = this.target(offset >>> 15, (offset >>> 12) & 7);
    if (t === undefined || reg & (size - 1)) return;
    t.configWrite(reg, size, value);
  }

  /** Configuration mechanism #1: CONFIG_ADDRESS at 0xCF8 (32-bit writes latch it), CONFIG_DATA at 0xCFC-0xCFF. */
  private configPortHandler(): AccessHandler {
    return {
      read: (offset, size) => {
        if (offset < 4) return offset === 0 && size === 4 ? this.configAddress : allOnes(size);
        const t = this.legacyTarget();
        const reg = (this.configAddress & 0xfc) + (offset - 4);
        if (t === undefined || reg & (size - 1)) return allOnes(size);
        return t.configRead(reg, size);
      },
      write: (offset, size, value) => {
        if (offset < 4) {
          // Only a dword write to 0xCF8 is CONFIG_ADDRESS; narrower ones go to other chipset registers.
          if (offset === 0 && size === 4) this.configAddress = value >>> 0;
          return;
        }
        const t = this.legacyTarget();
        const reg = (this.configAddress & 0xfc) + (offset - 4);
        if (t === undefined || reg & (size - 1)) return;
        t.configWrite(reg, size, value);
      },
    };
  }

  private legacyTarget(): ConfigTarget | undefined {
    const a = this.configAddress;
    if (!(a & PCI_CONFIG_ADDRESS_ENABLE) || ((a >>> 16) & 0xff) !== 0) return undefined;
    return this.target((a >>> 11) & 0x1f, (a >>> 8) & 7);
  }

  /** The local APIC's MSI window: a dword write of the message data raises its vector. */
  private msiHandler(): AccessHandler {
    return {
      read: () => 0,
      write: (_offset, size, value) => {
        if (size === 4) this.interrupts.deliver(value & 0xff);
      },
    };
  }

  /** What the IGD assignment may touch: fw_cfg, the host bridge, slot 00:1f.0. */
  private igdMachine(): IgdMachine {
    // Asked at every attach (the IGD check runs for any device), so it is made once; `hotplugged`
    // is read when the assignment is made, during attach, so a getter gives the value of that time.
    let host = this.igdHost;
    if (host === undefined) {
      const machine = this;
      const lpcKey = LPC_SLOT.device * FUNCTIONS_PER_DEVICE + LPC_SLOT.function;
      host = {
        fwCfg: this.fwCfg,
        hostBridge: this.hostBridge,
        log: this.log,
        get hotplugged() {
          return machine.booted;
        },
        lpcSlotFree: () => this.slots[lpcKey] === undefined,
        placeLpcBridge: (bridge) => {
          this.slots[lpcKey] = bridge;
          this.lpcBridge = bridge;
        },
      };
      this.igdHost = host;
    }
    return host;
  }

  private slotIsMultifunction(device: number): boolean {
    let n = 0;
    for (let f = 0; f < FUNCTIONS_PER_DEVICE; f++)
      if (this.slots[device * FUNCTIONS_PER_DEVICE + f] !== undefined) n++;
    return n > 1;
  }

  private recordError(e: MachineError): void {
    if (this.errors.length < MAX_ERRORS) this.errors.push(e);
    else this.errorsDropped++;
  }

  private checkOpen(): void {
    if (this.closed) {
      throw new VfioError('EBADF', 'the machine is closed.', { hint: 'Create a new Machine.' });
    }
  }

  // ---- report ------------------------------------------------------------------------------------

  report(): MachineReport {
    const perVector: Record<string, number> = {};
    let total = 0;
    for (const { vector, count } of this.interrupts.delivered()) {
      perVector[vectorName(vector)] = count;
      total += count;
    }
    const hb = this.hostBridge.config.identity;
    const devices: DeviceReport[] = [
      emulatedDeviceReport(
        { bus: 0, device: 0, function: 0 },
        'host-bridge',
        hb.vendorId,
        hb.deviceId,
        hb.classCode,
      ),
    ];
    const sorted = [...this.attached.entries()].sort((a, b) => a[0] - b[0]).map(([, d]) => d);
    for (const d of sorted) devices.push(this.deviceReport(d));
    const lpc = this.lpcBridge;
    if (lpc !== undefined) {
      devices.push(
        emulatedDeviceReport(
          { bus: 0, ...LPC_SLOT },
          'igd-lpc-bridge',
          lpc.identity.vendorId,
          lpc.identity.deviceId,
          lpc.config.readU32(8) >>> 8,
        ),
      );
    }
    const addressMap = [
      ...this.memory.ranges().map((r) => ({
        space: 'memory' as const,
        start: r.start,
        size: r.size,
        kind: r.kind,
        owner: r.owner,
        reads: r.reads,
        writes: r.writes,
      })),
      ...this.io.ranges().map((r) => ({
        space: 'io' as const,
        start: r.start,
        size: r.size,
        kind: r.kind,
        owner: r.owner,
        reads: r.reads,
        writes: r.writes,
      })),
    ];
    return {
      ramSize: this.ram.size,
      layout: {
        ecam: { base: ECAM_BASE, size: ECAM_BUS_SIZE },
        mmio32: { ...MMIO32_WINDOW },
        mmio64: { ...MMIO64_WINDOW },
        io: { ...IO_WINDOW },
        msi: { base: MSI_WINDOW_BASE, size: MSI_WINDOW_SIZE },
      },
      devices,
      interrupts: { perVector, total, spurious: this.interrupts.spurious, eois: this.interrupts.eois },
      unclaimed: {
        memoryReads: this.memory.unclaimedReads,
        memoryWrites: this.memory.unclaimedWrites,
        ioReads: this.io.unclaimedReads,
        ioWrites: this.io.unclaimedWrites,
      },
      addressMap,
      iommu: this.iommu.mappings().map((m) => ({ iova: m.iova, size: m.size, read: m.read, write: m.write })),
      errors: this.errors.map((e) => ({ ...e })),
      errorsDropped: this.errorsDropped,
      probed: this.probed,
      ...(this.igd !== undefined ? { igd: this.igd.report() } : {}),
    };
  }

  private deviceReport(d: Attached): DeviceReport {
    const fn = d.fn;
    const file = d.file;
    const info = file.deviceInfo();
    const regions: RegionReport[] = [];
    for (let i = 0; i < info.numRegions; i++) {
      const r = file.regionInfo(i);
      if (r.size === 0) continue;
      const bar = fn.bars.find((b) => b.index === i);
      const flags = { read: r.read, write: r.write, mmap: r.mmap };
      const name = REGION_NAMES[i] ?? `region ${i}`;
      if (bar) {
        const parts = fn.barParts(bar);
        const direct = parts.filter((p) => p.how === 'direct').length;
        const mapping =
          bar.address === undefined
            ? 'unmapped'
            : direct === parts.length
              ? 'direct'
              : direct === 0
                ? 'trapped'
                : 'mixed';
        regions.push({
          index: i,
          name,
          size: r.size,
          offset: r.offset,
          flags,
          barKind: bar.kind,
          prefetchable: bar.prefetchable,
          guestAddress: bar.address ?? null,
          mapping,
          parts,
        });
      } else {
        regions.push({
          index: i,
          name,
          size: r.size,
          offset: r.offset,
          flags,
          guestAddress: null,
          mapping: i === 7 ? 'config' : 'unmapped',
          parts: [],
        });
      }
    }
    const perVector: Record<string, number> = {};
    fn.source.counts.forEach((n, v) => {
      if (n > 0) perVector[vectorName(v)] = n;
    });
    const irqIndexes = [];
    for (let i = 0; i < info.numIrqs; i++) {
      const c = file.irqCounters(i);
      if (c) irqIndexes.push({ index: i, delivered: [...c.delivered], dropped: c.dropped, held: c.held });
    }
    const access = [];
    for (let i = 0; i < info.numRegions; i++) {
      const c = file.regionCounters(i);
      if (c && (c.reads || c.writes || c.errors)) access.push({ region: i, ...c });
    }
    const msix = fn.msixSnapshot();
    return {
      slot: fn.slotName,
      label: d.label,
      name: file.name,
      ...(d.plugin !== undefined ? { plugin: d.plugin } : {}),
      ...(d.typeId !== undefined ? { typeId: d.typeId } : {}),
      emulated: false,
      vendorId: fn.deviceConfigRead(0, 2),
      deviceId: fn.deviceConfigRead(2, 2),
      classCode: fn.deviceConfigRead(8, 4) >>> 8,
      resettable: info.reset,
      regions,
      interrupts: {
        mode: fn.interruptMode,
        intxVector: fn.pin ? fn.intxVector() : null,
        perVector,
        total: fn.source.total,
        irqIndexes,
        ...(msix ? { msix } : {}),
        setIrqsCalls: fn.setIrqsCalls,
      },
      access,
    };
  }
}

/** Ranges the machine itself puts in its maps (RAM, ECAM, MSI window, config ports), not BARs. */
function isMachineRange(range: MappedRange): boolean {
  return !isBarRange(range);
}

function slotKey(a: PciAddress): number {
  if (!isFunctionAddress(a) || a.bus !== 0) {
    throw new VfioError('EINVAL', `${describeAddress(a)} is not a slot on bus 0 of this machine.`, {
      hint: 'Use bus 0, device 1-31, function 0-7 (00:00.0 is the host bridge).',
    });
  }
  return a.device * FUNCTIONS_PER_DEVICE + a.function;
}

function isFunctionAddress(a: PciAddress): boolean {
  return (
    a !== null &&
    typeof a === 'object' &&
    a.bus === 0 &&
    Number.isInteger(a.device) &&
    a.device >= 0 &&
    a.device < DEVICES_PER_BUS &&
    Number.isInteger(a.function) &&
    a.function >= 0 &&
    a.function < FUNCTIONS_PER_DEVICE
  );
}

function isConfigOffset(offset: number, size: number): boolean {
  return (
    Number.isInteger(offset) &&
    offset >= 0 &&
    offset + size <= ECAM_FUNCTION_SIZE &&
    (size === 1 || size === 2 || size === 4)
  );
}

function describeAddress(a: PciAddress): string {
  try {
    return formatPciAddress(a);
  } catch {
    return String(a);
  }
}

function vectorName(v: number): string {
  return `0x${v.toString(16).padStart(2, '0')}`;
}

function failedRun(device: ProbedDevice, driver: GuestDriver, err: unknown, what: string): DriverRun {
  const message = err instanceof Error ? err.message : String(err);
  return {
    slot: device.address,
    driver: driver.name,
    ok: false,
    summary: `${driver.name}: ${what}`,
    error: message,
  };
}

/** A device's log: the machine's, each line prefixed with the slot and label. */
class PrefixedLogger implements Logger {
  /** Made at the first line (most devices log nothing, and one is made at every attach). */
  #prefix: string | undefined;

  constructor(
    private readonly log: Logger,
    private readonly slot: string,
    private readonly label: string,
  ) {}

  private get prefix(): string {
    let p = this.#prefix;
    if (p === undefined) {
      p = `${this.slot} ${this.label}: `;
      this.#prefix = p;
    }
    return p;
  }

  debug(m: string): void {
    this.log.debug(this.prefix + m);
  }
  info(m: string): void {
    this.log.info(this.prefix + m);
  }
  warn(m: string): void {
    this.log.warn(this.prefix + m);
  }
  error(m: string): void {
    this.log.error(this.prefix + m);
  }
}

export function silentLogger(): Logger {
  const nothing = () => {};
  return { debug: nothing, info: nothing, warn: nothing, error: nothing };
}

/** A monotonic clock in nanoseconds; scheduled callbacks do not keep the process alive. */
export function realClock(): Clock {
  return {
    now: () => Number(process.hrtime.bigint()),
    schedule(ns: number, fn: () => void): () => void {
      const t = setTimeout(fn, Math.max(0, ns) / 1e6);
      t.unref?.();
      return () => clearTimeout(t);
    },
  };
}

/** The report entry of a function the VMM emulates itself: no regions, no interrupts. */
function emulatedDeviceReport(
  slot: PciAddress,
  label: string,
  vendorId: number,
  deviceId: number,
  classCode: number,
): DeviceReport {
  return {
    slot: formatPciAddress(slot),
    label,
    name: label,
    emulated: true,
    vendorId,
    deviceId,
    classCode,
    resettable: true,
    regions: [],
    interrupts: { mode: 'none', intxVector: null, perVector: {}, total: 0, irqIndexes: [], setIrqsCalls: 0 },
    access: [],
  };
}
