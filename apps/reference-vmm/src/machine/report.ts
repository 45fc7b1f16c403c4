/**
 * The machine's report: a JSON-serialisable picture of what the guest saw and what the VMM
 * did, and how it is read off the machine's parts (machineReport). Numbers are plain numbers
 * (addresses fit in 2^53); slots are `0000:00:dd.f` strings.
 */
import { formatPciAddress, type PciAddress, type ProbedDevice } from '@vfiokit/core';
import type { DeviceFile, IovaMap } from '@vfiokit/core/host';
import type { AddressMap, MappedRange, RangeKind } from './address-map.js';
import type { HostBridge } from './host-bridge.js';
import { type IgdAssignment, type IgdReport, LPC_SLOT } from './igd/assignment.js';
import type { LpcBridge } from './igd/lpc-bridge.js';
import type { InterruptController } from './interrupt-controller.js';
import {
  ECAM_BASE,
  ECAM_BUS_SIZE,
  IO_WINDOW,
  MMIO32_WINDOW,
  MMIO64_WINDOW,
  MSI_WINDOW_BASE,
  MSI_WINDOW_SIZE,
} from './layout.js';
import type { PartHow } from './vfio-pci/bar-split.js';
import type { MachineError } from './vfio-pci/device-link.js';
import type { VfioPciFunction } from './vfio-pci/function.js';

export interface MachineReport {
  /** Guest RAM in bytes (mapped at GPA 0, and identity-mapped in the IOMMU). */
  readonly ramSize: number;
  /** The machine's windows, as the probe used them. */
  readonly layout: LayoutReport;
  /** Every function on bus 0, the host bridge first. */
  readonly devices: readonly DeviceReport[];
  /** Interrupts the interrupt controller received, per vector (all devices together). */
  readonly interrupts: InterruptsReport;
  /** Accesses that hit nothing: reads answered all-ones, writes dropped. */
  readonly unclaimed: {
    readonly memoryReads: number;
    readonly memoryWrites: number;
    readonly ioReads: number;
    readonly ioWrites: number;
  };
  /** The ranges of guest-physical memory and I/O space, in address order. */
  readonly addressMap: readonly RangeReport[];
  /** IOMMU mappings (IOVA = GPA), as VFIO_IOMMU_MAP_DMA made them. */
  readonly iommu: readonly {
    readonly iova: number;
    readonly size: number;
    readonly read: boolean;
    readonly write: boolean;
  }[];
  /** Errors met by guest accesses and VMM operations: device, region, offset and message. */
  readonly errors: readonly MachineError[];
  /** Errors beyond the kept list (the list is bounded so that a broken device cannot flood it). */
  readonly errorsDropped: number;
  /** What the last probe found (empty before the first probe). */
  readonly probed: readonly ProbedDevice[];
  /** The assigned Intel IGD's VMM side (absent without one): fw_cfg files, emulated registers, legacy mode, firmware. */
  readonly igd?: IgdReport;
}

export interface LayoutReport {
  readonly ecam: { readonly base: number; readonly size: number };
  readonly mmio32: { readonly base: number; readonly limit: number };
  readonly mmio64: { readonly base: number; readonly limit: number };
  readonly io: { readonly base: number; readonly limit: number };
  readonly msi: { readonly base: number; readonly size: number };
}

export interface RangeReport {
  readonly space: 'memory' | 'io';
  readonly start: number;
  readonly size: number;
  readonly kind: RangeKind;
  readonly owner: string;
  readonly reads: number;
  readonly writes: number;
}

/** One mapped range as the report shows it (its access counts taken now). */
function rangeReport(space: RangeReport['space'], r: MappedRange): RangeReport {
  return {
    space,
    start: r.start,
    size: r.size,
    kind: r.kind,
    owner: r.owner,
    reads: r.reads,
    writes: r.writes,
  };
}

export interface DeviceReport {
  /** `0000:00:03.0`. */
  readonly slot: string;
  /** The configuration's label; `host-bridge` for 00:00.0. */
  readonly label: string;
  /** The VfioDevice name (UUID for an mdev). */
  readonly name: string;
  readonly plugin?: string;
  readonly typeId?: string;
  /** True for the VMM's own host bridge; false for an assigned device. */
  readonly emulated: boolean;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly classCode: number;
  /** VFIO_DEVICE_FLAGS_RESET. */
  readonly resettable: boolean;
  readonly regions: readonly RegionReport[];
  readonly interrupts: DeviceInterruptsReport;
  /** DeviceFile counters per region index (trapped accesses only: direct ones never reach the device). */
  readonly access: readonly {
    readonly region: number;
    readonly reads: number;
    readonly writes: number;
    readonly bytesRead: number;
    readonly bytesWritten: number;
    readonly errors: number;
  }[];
}

/** How a region reaches the guest. */
export type RegionMappingKind = 'direct' | 'trapped' | 'mixed' | 'config' | 'unmapped';

export interface RegionReport {
  readonly index: number;
  /** BAR0..BAR5, ROM, CONFIG, VGA, or `region N` for device-specific ones. */
  readonly name: string;
  readonly size: number;
  readonly offset: number;
  readonly flags: { readonly read: boolean; readonly write: boolean; readonly mmap: boolean };
  /** For BARs: mem32, mem64 or io. */
  readonly barKind?: 'mem32' | 'mem64' | 'io';
  readonly prefetchable?: boolean;
  /** Guest address (memory) or port (I/O) while mapped; null when not mapped. */
  readonly guestAddress: number | null;
  /** direct: every part mmapped; trapped: none; mixed: some of each; config: through ECAM; unmapped: not in the guest. */
  readonly mapping: RegionMappingKind;
  /** The region cut into parts and how each reaches the guest, with guest accesses per part. */
  readonly parts: readonly {
    readonly offset: number;
    readonly size: number;
    readonly how: PartHow;
    readonly reads: number;
    readonly writes: number;
  }[];
}

export interface DeviceInterruptsReport {
  /** What is enabled now. */
  readonly mode: 'msix' | 'msi' | 'intx' | 'none';
  /** Vector of the INTx pin (null without a pin). */
  readonly intxVector: number | null;
  /** Deliveries from this device per vector (hex vector → count). */
  readonly perVector: Readonly<Record<string, number>>;
  readonly total: number;
  /** The core's IRQ counters per IRQ index: delivered per vector, dropped (no trigger), held (masked). */
  readonly irqIndexes: readonly {
    readonly index: number;
    readonly delivered: readonly number[];
    readonly dropped: number;
    readonly held: number;
  }[];
  /** MSI-X table as the VMM keeps it (absent without MSI-X). */
  readonly msix?: {
    readonly enabled: boolean;
    readonly functionMask: boolean;
    readonly emulated: boolean;
    readonly entries: readonly {
      readonly address: number;
      readonly data: number;
      readonly masked: boolean;
      readonly pending: boolean;
    }[];
  };
  /** SET_IRQS calls the VMM made for this device. */
  readonly setIrqsCalls: number;
}

export interface InterruptsReport {
  /** hex vector → deliveries. */
  readonly perVector: Readonly<Record<string, number>>;
  readonly total: number;
  /** Deliveries of a vector outside 0x20-0xfe (dropped). */
  readonly spurious: number;
  readonly eois: number;
}

/** What the report is read from: the machine's parts, none of them changed by reading. */
export interface ReportSources {
  readonly ramSize: number;
  readonly memory: AddressMap;
  readonly io: AddressMap;
  readonly interrupts: InterruptController;
  readonly iommu: IovaMap;
  readonly hostBridge: HostBridge;
  /** The LPC bridge IGD legacy mode put at 00:1f.0. */
  readonly lpcBridge: LpcBridge | undefined;
  /** The assigned functions, in slot order. */
  readonly assigned: readonly ReportedFunction[];
  readonly errors: readonly MachineError[];
  readonly errorsDropped: number;
  readonly probed: readonly ProbedDevice[];
  readonly igd: IgdAssignment | undefined;
}

/** An assigned function as the report reads it: the VMM's model and the device file behind it. */
export interface ReportedFunction {
  readonly label: string;
  readonly file: DeviceFile;
  readonly fn: VfioPciFunction;
  readonly plugin?: string;
  readonly typeId?: string;
}

const REGION_NAMES = ['BAR0', 'BAR1', 'BAR2', 'BAR3', 'BAR4', 'BAR5', 'ROM', 'CONFIG', 'VGA'];

export function machineReport(m: ReportSources): MachineReport {
  const perVector: Record<string, number> = {};
  let total = 0;
  for (const { vector, count } of m.interrupts.delivered()) {
    perVector[vectorName(vector)] = count;
    total += count;
  }
  const hb = m.hostBridge.config.identity;
  const devices: DeviceReport[] = [
    emulatedDeviceReport(
      { bus: 0, device: 0, function: 0 },
      'host-bridge',
      hb.vendorId,
      hb.deviceId,
      hb.classCode,
    ),
  ];
  for (const d of m.assigned) devices.push(deviceReport(d));
  const lpc = m.lpcBridge;
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
    ...m.memory.ranges().map((r) => rangeReport('memory', r)),
    ...m.io.ranges().map((r) => rangeReport('io', r)),
  ];
  return {
    ramSize: m.ramSize,
    layout: {
      ecam: { base: ECAM_BASE, size: ECAM_BUS_SIZE },
      mmio32: { ...MMIO32_WINDOW },
      mmio64: { ...MMIO64_WINDOW },
      io: { ...IO_WINDOW },
      msi: { base: MSI_WINDOW_BASE, size: MSI_WINDOW_SIZE },
    },
    devices,
    interrupts: { perVector, total, spurious: m.interrupts.spurious, eois: m.interrupts.eois },
    unclaimed: {
      memoryReads: m.memory.unclaimedReads,
      memoryWrites: m.memory.unclaimedWrites,
      ioReads: m.io.unclaimedReads,
      ioWrites: m.io.unclaimedWrites,
    },
    addressMap,
    iommu: m.iommu.mappings().map((x) => ({ iova: x.iova, size: x.size, read: x.read, write: x.write })),
    errors: m.errors.map((e) => ({ ...e })),
    errorsDropped: m.errorsDropped,
    probed: m.probed,
    ...(m.igd !== undefined ? { igd: m.igd.report() } : {}),
  };
}

function deviceReport(d: ReportedFunction): DeviceReport {
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

function vectorName(v: number): string {
  return `0x${v.toString(16).padStart(2, '0')}`;
}
