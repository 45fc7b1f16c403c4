/**
 * The VMM's own reading of an IGD's generation and stolen memory, as QEMU's hw/vfio/igd.c does
 * it (igd_gen, igd_stolen_memory_size, vfio_pci_igd_override_gms). The device side keeps its own
 * table; QEMU and the kernel each have theirs too.
 */
import { VfioError } from '@vfiokit/core';

// qemu hw/vfio/igd.c: config registers of the IGD
export const IGD_GMCH = 0x50; // Graphics Control (GGC)
export const IGD_BDSM = 0x5c; // Base Data of Stolen Memory, 4 bytes, before gen 11
export const IGD_BDSM_GEN11 = 0xc0; // 8 bytes from gen 11
export const IGD_ASLS = 0xfc; // ASL Storage: the guest address of the OpRegion
// qemu hw/vfio/igd.c: GMCH bits
export const IGD_GMCH_VGA_DISABLE = 0x2;
const IGD_GMCH_GEN6_GMS_SHIFT = 3;
const IGD_GMCH_GEN6_GMS_MASK = 0x1f;
const IGD_GMCH_GEN8_GMS_SHIFT = 8;
const IGD_GMCH_GEN8_GMS_MASK = 0xff;
// qemu hw/vfio/igd.c: where BAR0 mirrors GGC and BDSM (vfio_probe_igd_bar0_quirk)
export const IGD_GGC_MMIO_OFFSET = 0x108040;
export const IGD_BDSM_MMIO_OFFSET = 0x1080c0;

const MIB = 0x10_0000;

// qemu hw/vfio/igd.c igd_gen(): device ID & 0xff00 -> generation
const GENERATIONS: ReadonlyMap<number, number> = new Map([
  [0x0100, 6], // SandyBridge, IvyBridge
  [0x0400, 7], // Haswell
  [0x0a00, 7], // Haswell
  [0x0c00, 7], // Haswell
  [0x0d00, 7], // Haswell
  [0x0f00, 7], // Valleyview / Bay Trail
  [0x1600, 8], // Broadwell
  [0x2200, 8], // Cherryview
  [0x1900, 9], // Skylake
  [0x3100, 9], // Gemini Lake
  [0x5900, 9], // Kaby Lake
  [0x3e00, 9], // Coffee Lake
  [0x9b00, 9], // Comet Lake
  [0x8a00, 11], // Ice Lake
  [0x4500, 11], // Elkhart Lake
  [0x4e00, 11], // Jasper Lake
  [0x9a00, 12], // Tiger Lake
  [0x4c00, 12], // Rocket Lake
  [0x4600, 12], // Alder Lake
  [0xa700, 12], // Raptor Lake
]);

/**
 * The generation of an IGD device ID, -1 when QEMU does not know it. Broxton / Apollo Lake
 * (bits 11..1 equal to 0xa84) come first: their 0x0a prefix is otherwise Haswell's.
 */
export function igdGeneration(deviceId: number): number {
  if ((deviceId & 0xffe) === 0xa84) return 9;
  return GENERATIONS.get(deviceId & 0xff00) ?? -1;
}

/** GMS, the stolen-memory size field of GGC: bits 7..3 before gen 8, bits 15..8 from gen 8. */
export function igdGms(generation: number, ggc: number): number {
  return generation < 8
    ? (ggc >>> IGD_GMCH_GEN6_GMS_SHIFT) & IGD_GMCH_GEN6_GMS_MASK
    : (ggc >>> IGD_GMCH_GEN8_GMS_SHIFT) & IGD_GMCH_GEN8_GMS_MASK;
}

/**
 * Bytes of data stolen memory GGC asks for (igd_stolen_memory_size): GMS x 32 MiB, except from
 * gen 9, where GMS 0xf0..0xfe count 4 MiB steps from 4 MiB. An unknown generation asks for none.
 */
export function igdStolenSize(generation: number, ggc: number): number {
  if (generation < 0) return 0;
  const gms = igdGms(generation, ggc);
  if (generation >= 9 && gms >= 0xf0) return (gms - 0xf0 + 1) * 4 * MIB;
  return gms * 32 * MIB;
}

/** The BDSM register: a dword at 0x5c before gen 11, a qword at 0xc0 from gen 11. */
export function igdBdsmRegister(generation: number): { readonly offset: number; readonly size: 4 | 8 } {
  return generation >= 11 ? { offset: IGD_BDSM_GEN11, size: 8 } : { offset: IGD_BDSM, size: 4 };
}

/**
 * GGC with GMS replaced, as x-igd-gms does (vfio_pci_igd_override_gms): gen < 8 takes 0..0x10,
 * gen 8 0..0x40, gen >= 9 0..0x40 or 0xf0..0xfe; an IGD of unknown generation takes none.
 */
export function igdOverrideGms(generation: number, gms: number, ggc: number, device: string): number {
  const refuse = (allowed: string) =>
    new VfioError(
      'EINVAL',
      `the GMS override ${String(gms)} does not suit an IGD of generation ${generation}.`,
      { device, hint: allowed },
    );
  if (!Number.isInteger(gms) || gms < 0) throw refuse('GMS is a whole number, such as 2 (64 MiB).');
  if (generation < 0) throw refuse('Leave out the GMS override: QEMU allows it only for a known generation.');
  if (generation < 8) {
    if (gms > 0x10) throw refuse('Use 0 to 0x10 (steps of 32 MiB).');
    return (
      ((ggc & ~(IGD_GMCH_GEN6_GMS_MASK << IGD_GMCH_GEN6_GMS_SHIFT)) | (gms << IGD_GMCH_GEN6_GMS_SHIFT)) >>> 0
    );
  }
  const ok = generation === 8 ? gms <= 0x40 : gms <= 0x40 || (gms >= 0xf0 && gms <= 0xfe);
  if (!ok) {
    throw refuse(
      generation === 8
        ? 'Use 0 to 0x40 (steps of 32 MiB).'
        : 'Use 0 to 0x40 (steps of 32 MiB) or 0xf0 to 0xfe (steps of 4 MiB).',
    );
  }
  return (
    ((ggc & ~(IGD_GMCH_GEN8_GMS_MASK << IGD_GMCH_GEN8_GMS_SHIFT)) | (gms << IGD_GMCH_GEN8_GMS_SHIFT)) >>> 0
  );
}
