/**
 * @vfiokit/hw — hardware facts that the VMM and plugins both need, kept in one place both may
 * import: the IGD generation table, stolen-memory (GMS) decoding and override, and the IGD's
 * GGC, BDSM and ASLS registers with their BAR0 mirrors. Byte helpers and the page size are in
 * `@vfiokit/core` (hex, leBytes, readLe, writeLe, PAGE_SIZE, TWO_32).
 */

export {
  type IgdGeneration,
  igdBdsmRegister,
  igdGeneration,
  igdGms,
  igdOverrideGms,
  igdStolenMemorySize,
} from './igd/generation.js';
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
} from './igd/registers.js';
