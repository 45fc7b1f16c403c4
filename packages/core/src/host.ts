/**
 * @vfiokit/core/host — what a VMM, a transport or a test harness needs to drive devices: the
 * device file (the kernel-exact dispatcher), interrupt and migration state, IOVA maps and host
 * DMA, dirty tracking, and the conversion of any failure into a
 * VfioError. Plugins do not need it: they implement the contract of `@vfiokit/core`.
 */

export {
  DeviceFile,
  type DeviceHost,
  type DmaLogging,
  type IoctlResult,
  irqInfoFlags,
  type RegionCounters,
  RegionPort,
  type ResolvedRegion,
} from './device-file/device-file.js';
export {
  type IrqAction,
  type IrqCounters,
  type IrqSetRequest,
  IrqState,
  type IrqTrigger,
} from './device-file/irq-state.js';
export { toVfioError } from './errors.js';
export {
  type DirtyRange,
  DirtyTracker,
  DMA_LOGGING_MAX_RANGES,
  DMA_LOGGING_MIN_PAGE_SIZE,
} from './memory/dirty.js';
export { HostDma, type HostDmaOptions, type RemoteDma } from './memory/host-dma.js';
export {
  type DmaMapping,
  type DmaMapRequest,
  IovaMap,
  type IovaMapOptions,
  type MapListener,
  type UnmapListener,
} from './memory/iova-map.js';
export { DMA_ENTRY_LIMIT, IOMMU_PAGE_SIZE, IOVA_LIMIT } from './memory/page.js';
export { arcOpensStream, MigrationController } from './migration/controller.js';
export {
  isSavingState,
  isStateSupported,
  migNextState,
  migPath,
  migrationFlags,
  migStateName,
} from './migration/fsm.js';
export {
  CAPABILITY_HEADER_SIZE,
  EXTENDED_CAPABILITY_HEADER_SIZE,
  type MsiLayout,
  msiCapabilitySize,
  msiLayout,
} from './pci/capabilities.js';
