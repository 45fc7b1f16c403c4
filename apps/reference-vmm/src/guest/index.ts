export { type FwCfgFile, fwCfgFiles, fwCfgPresent, fwCfgRead, fwCfgReadFile } from './fw-cfg.js';
export { type IgdFirmwareResult, igdFirmware, isAssignedIgd } from './igd-firmware.js';
export type { ProbeOptions, VectorBlockAllocator } from './probe.js';
export { probePciBus } from './probe.js';
