/**
 * @vfiokit/core — what a plugin author needs: the plugin contract (plugin, parent, device,
 * context, migration, guest driver), the building blocks of a PCI device (PciDeviceModel,
 * ConfigSpace and its capability builders, register banks, device memory), the migration
 * stream helpers, VfioError, and the few linux/vfio.h numbers a device itself names (region
 * and IRQ indexes, region types). The VMM and transport side is `@vfiokit/core/host`; every
 * linux/vfio.h and PCI table and the struct codecs are `@vfiokit/core/abi`.
 */

// ---- the linux/vfio.h numbers a device names itself ------------------------------------------
export {
  VFIO_DEVICE_GFX_LINK_STATE_DOWN,
  VFIO_DEVICE_GFX_LINK_STATE_UP,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_BAR1_REGION_INDEX,
  VFIO_PCI_BAR2_REGION_INDEX,
  VFIO_PCI_BAR3_REGION_INDEX,
  VFIO_PCI_BAR4_REGION_INDEX,
  VFIO_PCI_BAR5_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_PCI_REQ_IRQ_INDEX,
  VFIO_PCI_ROM_REGION_INDEX,
  VFIO_PCI_VGA_REGION_INDEX,
  VFIO_REGION_SUBTYPE_GFX_EDID,
  VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG,
  VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG,
  VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION,
  VFIO_REGION_TYPE_GFX,
  VFIO_REGION_TYPE_PCI_VENDOR_TYPE,
} from './abi/constants.js';
export { vfio_region_gfx_edid } from './abi/layout.js';
// ---- bytes -----------------------------------------------------------------------------------
export { hex, leBytes, PAGE_SIZE, readLe, TWO_32, writeLe } from './bytes.js';
export type {
  Clock,
  DeviceContext,
  DirtyLog,
  DmaSpace,
  IommuListener,
  IommuMapping,
  IrqSignals,
  Logger,
  PinnedRange,
} from './contract/context.js';
// ---- the device ------------------------------------------------------------------------------
export {
  type DeviceDriver,
  type DeviceInfo,
  DRM_PLANE_TYPE_CURSOR,
  DRM_PLANE_TYPE_OVERLAY,
  DRM_PLANE_TYPE_PRIMARY,
  disabledGfxPlane,
  type GfxDisplay,
  type GfxPlaneInfo,
  type IrqInfo,
  type MmapArea,
  type RegionInfo,
  type RegionMapping,
  type RegionTypeCap,
  type SharedMemory,
  type ValueSize,
  type VfioDevice,
} from './contract/device.js';
// ---- the guest driver a plugin ships for the reference VMM -----------------------------------
export {
  formatPciAddress,
  type GuestDriver,
  type GuestDriverResult,
  type GuestInterrupts,
  type GuestMigrationProgram,
  type GuestProgramState,
  type GuestRam,
  type GuestView,
  type PciAddress,
  type ProbedBar,
  type ProbedDevice,
} from './contract/guest.js';
// ---- migration -------------------------------------------------------------------------------
export {
  type MigrationCaps,
  type MigrationOps,
  type MigrationStream,
  MigState,
  type PrecopyInfo,
} from './contract/migration.js';
// ---- the plugin, its parents and its mdev types --------------------------------------------
export {
  CONTRACT_VERSION,
  definePlugin,
  type MdevInstance,
  type MdevTypeInfo,
  type ParentDevice,
  type PluginDefinition,
  type PluginHost,
  type VfioPlugin,
} from './contract/plugin.js';
export { isDeviceOpen } from './device-file/device-file.js';
export { DRM_FORMAT_ARGB8888, DRM_FORMAT_XBGR8888, DRM_FORMAT_XRGB8888 } from './display/drm-format.js';
export { encodePng, type PngFrame } from './display/png.js';
// ---- errors ----------------------------------------------------------------------------------
export { type ErrnoName, type ErrorPlace, VfioError, type VfioErrorOptions } from './errors.js';
export { isUuid, MdevParent, type MdevParentOptions, type MdevTypeSpec } from './mdev/parent.js';
export { allocateDeviceMemory, allocateSharedMemory, wrapMemory } from './memory/shared-memory.js';
export {
  type ChecksumAhead,
  copyWithChecksum,
  migrationChecksum,
  migrationChecksumAhead,
} from './migration/checksum.js';
export {
  type ResumingStream,
  type SavingStream,
  StreamArcs,
  type StreamEnds,
  StreamQueue,
  StreamRefusal,
} from './migration/streams.js';
export {
  type BarBacking,
  type ExtraRegion,
  PciDeviceModel,
  type PciDeviceModelOptions,
  type RegionHandler,
} from './model/pci-device-model.js';
export {
  type CapabilityBody,
  type CapabilityMasks,
  extendedCapability,
  type MsiOptions,
  type MsixOptions,
  msiCapability,
  msixCapability,
  type PciExpressOptions,
  pciExpressCapability,
  powerManagementCapability,
  vendorCapability,
} from './pci/capabilities.js';
export {
  type BarDefinition,
  type BarKind,
  type BarSpec,
  ConfigSpace,
  type ConfigSpaceOptions,
  type ConfigWriteListener,
  type FieldMasks,
  type MsiState,
  type MsixState,
  type PciIdentity,
  type PlacedCapability,
  type PlacedExtendedCapability,
  type RomState,
} from './pci/config-space.js';
export {
  CapabilityWalk,
  type ConfigReader,
  ExtendedCapabilityWalk,
  type FoundCapability,
  type FoundExtendedCapability,
  findCapability,
  type WalkProblem,
  type WalkResult,
  type WalkRules,
  walkCapabilities,
  walkExtendedCapabilities,
} from './pci/walk.js';
export {
  type AccessWidth,
  RegisterBank,
  type RegisterBankOptions,
  type RegisterHandle,
  type RegisterSpec,
} from './regs/register-bank.js';
export { giveValueBytes, takeValueBytes, type ValueBytes } from './value-bytes.js';
