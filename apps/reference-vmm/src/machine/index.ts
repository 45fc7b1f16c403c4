export type { AccessHandler, AccessSize, MappedRange, RangeKind, RangeSpec } from './address-map.js';
export { AddressMap, allOnes, MemoryHandler } from './address-map.js';
export { realClock, silentLogger } from './clock-and-log.js';
export type { DriverRun } from './driver-runs.js';
export { EmulatedConfig } from './emulated-config.js';
export * from './fw-cfg.js';
export { GuestMemory, MIN_RAM_SIZE } from './guest-memory.js';
export type { ConfigTarget } from './host-bridge.js';
export {
  HostBridge,
  PCI_CLASS_BRIDGE_HOST,
  Q35_MCH_DEVICE_ID,
  Q35_MCH_REVISION,
  Q35_MCH_VENDOR_ID,
} from './host-bridge.js';
export * from './igd/index.js';
export type { InterruptControllerOptions } from './interrupt-controller.js';
export { InterruptController, InterruptSource, intxVectorFor } from './interrupt-controller.js';
export * from './layout.js';
export type { AttachedDevice, AttachOptions, MachineOptions } from './machine.js';
export { Machine } from './machine.js';
export type {
  DeviceInterruptsReport,
  DeviceReport,
  InterruptsReport,
  LayoutReport,
  MachineReport,
  RangeReport,
  RegionMappingKind,
  RegionReport,
} from './report.js';
export type { BarPart, PartHow } from './vfio-pci/bar-split.js';
export type { BarState } from './vfio-pci/bars.js';
export type { FunctionHost, MachineError } from './vfio-pci/device-link.js';
export type { InterruptMode, VfioPciFunctionOptions } from './vfio-pci/function.js';
export { VfioPciFunction } from './vfio-pci/function.js';
