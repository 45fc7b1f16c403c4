/**
 * The reference machine: guest RAM, a memory and an I/O address map, bus 0 with the host bridge
 * and the assigned devices, an interrupt controller and an IOMMU mapping guest RAM for device
 * DMA. This file powers it on, plugs devices in and out (attach, detach, hot-add), runs the guest
 * programs, resets and closes it. Guest programs see it through `guest` (a GuestView) only.
 *
 * Beside it: how a guest's config access reaches a slot (pci-bus.ts), how guest drivers are run
 * (driver-runs.ts), what the report says and how it is read (report.ts), the clock and logs it
 * hands devices (clock-and-log.ts).
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
import { type AccessHandler, AddressMap, type MappedRange, MemoryHandler } from './address-map.js';
import { PrefixedLogger, realClock, silentLogger } from './clock-and-log.js';
import { type DriverRun, runGuestDrivers } from './driver-runs.js';
import { FW_CFG_IO_BASE, FwCfg } from './fw-cfg.js';
import { GuestMemory } from './guest-memory.js';
import { HostBridge } from './host-bridge.js';
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
  IO_SPACE_SIZE,
  MMIO64_WINDOW,
  MSI_WINDOW_BASE,
  MSI_WINDOW_SIZE,
  PCI_WINDOWS,
} from './layout.js';
import { PciBus, slotKey } from './pci-bus.js';
import { type MachineReport, machineReport } from './report.js';
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

interface Attached extends AttachedDevice {
  readonly plugin?: string;
  readonly typeId?: string;
  readonly fn: VfioPciFunction;
  readonly dma: HostDma;
  readonly tracker: DirtyTracker;
}

/** Errors kept in the report; beyond this they are counted only. */
const MAX_ERRORS = 256;

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
  /** Bus 0: the slot table and config access (ECAM, 0xCF8/0xCFC). */
  private readonly bus: PciBus;
  private readonly attached = new Map<number, Attached>();
  private readonly errors: MachineError[] = [];
  private errorsDropped = 0;
  private probed: readonly ProbedDevice[] = [];
  /** What every function gets from the machine (one object for all of them). */
  private readonly functionHost: FunctionHost;
  private closed = false;

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
    this.functionHost = {
      memory: this.memory,
      io: this.io,
      irq: this.interrupts,
      log: this.log,
      recordError: (e) => this.recordError(e),
      slotIsMultifunction: (device) => this.bus.slotIsMultifunction(device),
    };

    this.memory.add({
      start: 0,
      size: this.ram.size,
      kind: 'ram',
      owner: 'ram',
      handler: new MemoryHandler(this.ram.bytes),
    });
    const bus = new PciBus(this.memory, this.io);
    bus.place(0, this.hostBridge);
    this.bus = bus;
    this.memory.add({
      start: MSI_WINDOW_BASE,
      size: MSI_WINDOW_SIZE,
      kind: 'msi',
      owner: 'interrupt-controller',
      handler: this.msiHandler(),
    });
    // docs/specs/fw_cfg.rst: selector at 0x510 (16-bit), data at 0x511 (8-bit)
    this.io.add({ start: FW_CFG_IO_BASE, size: 2, kind: 'emulated', owner: 'fw-cfg', handler: this.fwCfg });
    // The guest's accesses call the bus and maps held here, not through the machine (one load less
    // on the path of every guest access).
    const memory = this.memory;
    const io = this.io;
    this.guest = {
      configRead: (a, offset, size) => bus.configRead(a, offset, size),
      configWrite: (a, offset, size, value) => bus.configWrite(a, offset, size, value),
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
    if (this.bus.at(key) !== undefined) {
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
    this.bus.place(key, fn);
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
    this.bus.place(key, undefined);
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
    return runGuestDrivers(this.guest, this.probed, drivers);
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
    this.bus.reset();
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
      this.bus.place(slotKey(d.slot), undefined);
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

  // ---- machine parts ----------------------------------------------------------------------------

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
      const lpcKey = slotKey({ bus: 0, ...LPC_SLOT });
      host = {
        fwCfg: this.fwCfg,
        hostBridge: this.hostBridge,
        log: this.log,
        get hotplugged() {
          return machine.booted;
        },
        lpcSlotFree: () => this.bus.at(lpcKey) === undefined,
        placeLpcBridge: (bridge) => {
          this.bus.place(lpcKey, bridge);
          this.lpcBridge = bridge;
        },
      };
      this.igdHost = host;
    }
    return host;
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
    return machineReport({
      ramSize: this.ram.size,
      memory: this.memory,
      io: this.io,
      interrupts: this.interrupts,
      iommu: this.iommu,
      hostBridge: this.hostBridge,
      lpcBridge: this.lpcBridge,
      assigned: [...this.attached.entries()].sort((a, b) => a[0] - b[0]).map(([, d]) => d),
      errors: this.errors,
      errorsDropped: this.errorsDropped,
      probed: this.probed,
      igd: this.igd,
    });
  }
}

/** Ranges the machine itself puts in its maps (RAM, ECAM, MSI window, config ports), not BARs. */
function isMachineRange(range: MappedRange): boolean {
  return !isBarRange(range);
}
