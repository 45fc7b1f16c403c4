/**
 * @vfiokit/gvt-d — Intel IGD direct assignment. This part: the IGD OpRegion and the VBT it
 * carries (parse, validate, build).
 */
export { bytesToHex, toJsonValue } from './bytes.js';
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
export type {
  ChildDevice,
  DriverFeatures,
  GeneralDefinitions,
  GeneralFeatures,
  LfpOptions,
} from './vbt/blocks.js';
export { type BuildVbtOptions, buildVbt, type VbtBlockInput } from './vbt/build.js';
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
  type BdbHeader,
  findBlock,
  type ParseVbtOptions,
  parseVbt,
  type Vbt,
  type VbtBlock,
  type VbtChecksum,
  type VbtHeader,
} from './vbt/parse.js';
