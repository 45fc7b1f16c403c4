/**
 * IGD generation and stolen memory, decided the way QEMU decides them (qemu hw/vfio/igd.c
 * igd_gen(), igd_stolen_memory_size(), vfio_pci_igd_override_gms(); reference §4.4). The VMM's
 * IGD assignment and the gvt-d plugin both read them from here.
 */
import { VfioError } from '@vfiokit/core';
import {
  IGD_BDSM,
  IGD_BDSM_GEN11,
  IGD_GMCH_GEN6_GMS_MASK,
  IGD_GMCH_GEN6_GMS_SHIFT,
  IGD_GMCH_GEN8_GMS_MASK,
  IGD_GMCH_GEN8_GMS_SHIFT,
} from './registers.js';

/** -1: a device QEMU does not know; no generation-specific quirk applies and stolen size is 0. */
export type IgdGeneration = -1 | 6 | 7 | 8 | 9 | 11 | 12;

// qemu hw/vfio/igd.c igd_gen(): device ID & 0xff00 -> generation
const GEN_BY_PREFIX: ReadonlyMap<number, IgdGeneration> = new Map([
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
 * The IGD generation of a device ID as qemu igd_gen() computes it. Broxton/Apollo Lake
 * (0x0a84, 0x1a84, 0x1a85, 0x5a84, 0x5a85: bits 11..1 equal 0xa84) is matched first because the
 * 0x0a prefix is Haswell.
 */
export function igdGeneration(deviceId: number): IgdGeneration {
  if ((deviceId & 0xffe) === 0xa84) return 9;
  return GEN_BY_PREFIX.get(deviceId & 0xff00) ?? -1;
}

/** The GMS field of GGC: bits 7..3 before gen 8, bits 15..8 from gen 8 (qemu igd.c). */
export function igdGms(generation: number, ggc: number): number {
  return generation < 8
    ? (ggc >>> IGD_GMCH_GEN6_GMS_SHIFT) & IGD_GMCH_GEN6_GMS_MASK
    : (ggc >>> IGD_GMCH_GEN8_GMS_SHIFT) & IGD_GMCH_GEN8_GMS_MASK;
}

const MIB = 1 << 20;

/**
 * Data stolen memory in bytes, from GGC (qemu igd_stolen_memory_size): GMS x 32 MiB, except from
 * gen 9 on, where GMS 0xf0..0xfe mean (GMS - 0xf0 + 1) x 4 MiB. An unknown generation has none.
 */
export function igdStolenMemorySize(generation: number, ggc: number): number {
  if (generation < 0) return 0;
  const gms = igdGms(generation, ggc);
  if (generation >= 9 && gms >= 0xf0) return (gms - 0xf0 + 1) * 4 * MIB;
  return gms * 32 * MIB;
}

/** Where BDSM lives: a dword at 0x5c before gen 11, a qword at 0xc0 from gen 11 (qemu igd.c). */
export function igdBdsmRegister(generation: number): { readonly offset: number; readonly size: 4 | 8 } {
  return generation >= 11 ? { offset: IGD_BDSM_GEN11, size: 8 } : { offset: IGD_BDSM, size: 4 };
}

/**
 * GGC with GMS replaced, as QEMU's x-igd-gms does (vfio_pci_igd_override_gms): gen < 8 takes
 * 0..0x10, gen 8 0..0x40, gen >= 9 0..0x40 or 0xf0..0xfe; an IGD of unknown generation takes
 * none. A refusal is EINVAL naming `device` when given.
 */
export function igdOverrideGms(generation: number, gms: number, ggc: number, device?: string): number {
  const refuse = (allowed: string) =>
    new VfioError(
      'EINVAL',
      `the GMS override ${String(gms)} does not suit an IGD of generation ${generation}.`,
      {
        ...(device === undefined ? {} : { device }),
        hint: allowed,
      },
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
