// The IGD facts the VMM shares with gvt-d live in @vfiokit/hw; the VMM's entry keeps offering them.
export {
  IGD_ASLS,
  IGD_BDSM,
  IGD_BDSM_GEN11,
  IGD_BDSM_MMIO_OFFSET,
  IGD_GGC_MMIO_OFFSET,
  IGD_GMCH,
  IGD_GMCH_VGA_DISABLE,
  igdBdsmRegister,
  igdGeneration,
  igdGms,
  igdOverrideGms,
  /** The same function as igdStolenMemorySize in @vfiokit/hw, by the name the VMM gave it. */
  igdStolenMemorySize as igdStolenSize,
} from '@vfiokit/hw';
export * from './assignment.js';
export { LpcBridge, type LpcIdentity, PCI_CLASS_BRIDGE_ISA } from './lpc-bridge.js';
