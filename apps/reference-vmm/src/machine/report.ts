/**
 * The machine's report: a JSON-serialisable picture of what the guest saw and what the VMM
 * did. Numbers are plain numbers (addresses fit in 2^53); slots are `0000:00:dd.f` strings.
 */
import type { ProbedDevice } from '@vfiokit/core';
import type { RangeKind } from './address-map.js';
import type { IgdReport } from './igd/assignment.js';
import type { PartHow } from './vfio-pci/bar-split.js';
import type { MachineError } from './vfio-pci/device-link.js';

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
