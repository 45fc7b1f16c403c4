/**
 * @vfiokit/gvt-d — Intel IGD direct assignment: the IGD OpRegion and VBT (parse, validate,
 * build), host sources, the passthrough device with vfio-pci's IGD regions, the plugin, a guest
 * OpRegion driver and an OpRegion dump.
 */

/** The IGD facts gvt-d shares with the VMM (@vfiokit/hw), re-exported here as before. */
export {
  IGD_ASLS,
  IGD_BDSM,
  IGD_BDSM_GEN11,
  IGD_BDSM_MMIO_OFFSET,
  IGD_GGC_MMIO_OFFSET,
  IGD_GMCH,
  IGD_GMCH_GEN6_GMS_MASK,
  IGD_GMCH_GEN6_GMS_SHIFT,
  IGD_GMCH_GEN8_GMS_MASK,
  IGD_GMCH_GEN8_GMS_SHIFT,
  IGD_GMCH_SIZE,
  IGD_GMCH_VGA_DISABLE,
  type IgdGeneration,
  igdBdsmRegister,
  igdGeneration,
  igdGms,
  igdOverrideGms,
  igdStolenMemorySize,
} from '@vfiokit/hw';
export { bytesToHex, toJsonValue } from './bytes.js';
export {
  IGD_REGION_TYPE,
  type IgdDeviceOptions,
  IgdPassthroughDevice,
  igdConfigSpace,
  igdRegions,
} from './device/igd-device.js';
export { type OpRegionView, presentOpRegion } from './device/opregion-view.js';
export {
  type EmulatedRegister,
  type IgdAssignmentPlan,
  type IgdPlanOptions,
  igdAssignmentPlan,
} from './device/vmm-plan.js';
export { type OpRegionDumpOptions, opregionDump } from './dump.js';
export {
  type OpRegionReport,
  opRegionDriver,
  opRegionReport,
  readGuestOpRegion,
} from './guest/opregion-driver.js';
export { identityFromConfig, igdRegisters, makeFacts } from './host/facts.js';
export { type FixtureSourceOptions, fixtureSource, syntheticSource, toOpRegion } from './host/fixture.js';
export { type LinuxSourceOptions, linuxSource } from './host/linux.js';
export {
  configImage,
  DEFAULT_PROFILE,
  HOST_PROFILES,
  hostProfile,
  igdConfigImage,
  profileBars,
} from './host/profiles.js';
export type {
  HostProfile,
  IgdBarSizes,
  IgdHostFacts,
  IgdHostSource,
  IgdIdentity,
  PciIds,
} from './host/types.js';
export * from './igd/constants.js';
export {
  type AsleInput,
  type BuildOpRegionOptions,
  buildOpRegion,
  type OpRegionVersionInput,
} from './opregion/build.js';
export {
  MBOX_ACPI,
  MBOX_ASLE,
  MBOX_ASLE_EXT,
  MBOX_BACKLIGHT,
  MBOX_SWSCI,
  MBOX_VBT,
  MBOX4_SIZE_WITH_MBOX5,
  MBOX4_SIZE_WITHOUT_MBOX5,
  OPREGION_SIGNATURE,
  OPREGION_SIZE,
} from './opregion/layout.js';
export {
  type AcpiMailbox,
  type Asle,
  type Mailboxes,
  type OpRegion,
  type OpRegionVersion,
  parseOpRegion,
  type SwsciMailbox,
  type VbtLocation,
} from './opregion/parse.js';
export { createIgdParent, default, IGD_DRIVER, IGD_TYPE_NAME, sourceFromOptions } from './plugin.js';
export { SYNTHETIC_PANEL_TYPE, syntheticVbt } from './synthetic-vbt.js';
export type {
  ChildDevice,
  DriverFeatures,
  GeneralDefinitions,
  GeneralFeatures,
  LfpOptions,
} from './vbt/blocks.js';
export { type BuildVbtOptions, buildVbt, type VbtBlockInput } from './vbt/build.js';
export {
  findVbtSignature,
  type IntelVbtDecodeOptions,
  type IntelVbtDecodeResult,
  intelVbtDecode,
  VBT_DECODERS,
  vbiosDeviceId,
  vbtDecoderBlockIds,
} from './vbt/decode/index.js';
export {
  BDB_BLOCK_NAMES,
  BDB_DRIVER_FEATURES,
  BDB_GENERAL_DEFINITIONS,
  BDB_GENERAL_FEATURES,
  BDB_LFP_OPTIONS,
  BDB_MIPI_SEQUENCE,
  blockName,
} from './vbt/layout.js';
export {
  type EdpPanel,
  encodeDtd,
  type LfpPanel,
  type LfpPanelInput,
  lfpDataBlocks,
  type PanelTiming,
  type VbtPanels,
  vbtPanels,
} from './vbt/lfp.js';
export {
  type BdbHeader,
  findBlock,
  type ParseVbtOptions,
  parseVbt,
  type Vbt,
  type VbtBlock,
  type VbtChecksum,
  type VbtHeader,
} from './vbt/parse.js';
