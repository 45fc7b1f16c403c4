export { type KernelTarget, type KernelTargetOptions, kernelTarget } from './conformance-target.js';
export { type KernelRegion, VfioDeviceFd } from './device/device-fd.js';
export { type IommuPath, type OpenedDevice, type OpenOptions, openVfioDevice } from './device/open.js';
export {
  type CheckRow,
  compareRuns,
  type Difference,
  type Differential,
  type Explanation,
  type Finding,
  type RefusalRow,
  type SideRun,
  type Verdict,
} from './differential/compare.js';
export { type DeviceFacts, deviceFacts, type IrqFact, type RegionFact } from './differential/facts.js';
export { describeIoctl, type RecordedCall, recordCalls } from './differential/record.js';
export { renderDifferential } from './differential/report.js';
export { runSide } from './differential/run.js';
export { type HostEventfd, type HostSystem, linuxSystem } from './host/system.js';
export { CONTAINER_PATH, VfioContainer } from './iommu/container.js';
export type { DmaMapper, DmaMapping } from './iommu/dma.js';
export { type GroupStatus, VfioGroup } from './iommu/group.js';
export { IOMMUFD_PATH, IommufdIoas, iommufdAvailable } from './iommu/iommufd.js';
export { KernelDeviceFile } from './kernel-file.js';
export {
  blockingMembers,
  type GroupMember,
  groupMembers,
  type HostDevice,
  isVfioPciDriver,
  requireVfioReady,
  resolveHostDevice,
} from './sysfs/resolve.js';
export { LinuxVfioDevice, type LinuxVfioDeviceOptions } from './vfio-device.js';
