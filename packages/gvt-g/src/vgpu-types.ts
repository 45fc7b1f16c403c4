/**
 * The vGPU types GVT-g offers (intel_vgpu_configs in gvt/vgpu.c) and how it counts them.
 */
import { GVT_MAX_VGPU, HOST_LOW_GM_SIZE, MiB, VGPU_MAX_WEIGHT } from './constants.js';
import type { HostGpu } from './host-gpu.js';

export interface VgpuResolution {
  readonly xres: number;
  readonly yres: number;
}

export interface VgpuTypeConfig {
  /** The type's sysfs name, `GVTg_V5_8`. */
  readonly name: string;
  /** Nominal instances per GPU: the number in the name. */
  readonly nominal: 8 | 4 | 2 | 1;
  readonly lowGmSize: number;
  readonly highGmSize: number;
  readonly fences: number;
  readonly weight: number;
  /** The virtual display's EDID resolution (GVT_EDID_1024_768 or GVT_EDID_1920_1200). */
  readonly resolution: VgpuResolution;
}

/** gvt/vgpu.c intel_vgpu_configs, in table order. */
const CONFIGS = [
  { nominal: 8, low: 64, high: 384, fences: 4, res: { xres: 1024, yres: 768 } },
  { nominal: 4, low: 128, high: 512, fences: 4, res: { xres: 1920, yres: 1200 } },
  { nominal: 2, low: 256, high: 1024, fences: 4, res: { xres: 1920, yres: 1200 } },
  { nominal: 1, low: 512, high: 2048, fences: 4, res: { xres: 1920, yres: 1200 } },
] as const;

/** GVTg_V4_* on Broadwell (gen8), GVTg_V5_* on Skylake and later (gvt/vgpu.c). */
export const GVT_TYPE_GEN = 5;

export const GVTG_TYPE_TABLE: readonly VgpuTypeConfig[] = Object.freeze(
  CONFIGS.map((c) =>
    Object.freeze({
      name: `GVTg_V${GVT_TYPE_GEN}_${c.nominal}`,
      nominal: c.nominal,
      lowGmSize: c.low * MiB,
      highGmSize: c.high * MiB,
      fences: c.fences,
      weight: VGPU_MAX_WEIGHT / c.nominal,
      resolution: Object.freeze({ ...c.res }),
    }),
  ),
);

/**
 * The types a host offers: generated in table order, stopping at the first whose aperture slice
 * no longer fits the aperture left after the host's reservation (intel_gvt_init_vgpu_types).
 */
export function typesForHost(host: Pick<HostGpu, 'apertureSize'>): VgpuTypeConfig[] {
  const out: VgpuTypeConfig[] = [];
  for (const t of GVTG_TYPE_TABLE) {
    if (Math.floor((host.apertureSize - HOST_LOW_GM_SIZE) / t.lowGmSize) === 0) break;
    out.push(t);
  }
  return out;
}

/**
 * available_instances (intel_vgpu_get_available): the smallest of what the free aperture,
 * free hidden GM and free fences allow, and never beyond GVT_MAX_VGPU vGPUs in all.
 */
export function availableInstances(
  host: Pick<HostGpu, 'freeLowGm' | 'freeHighGm' | 'freeFences'>,
  type: VgpuTypeConfig,
  vgpus: number,
): number {
  const byLow = Math.floor(host.freeLowGm() / type.lowGmSize);
  const byHigh = Math.floor(host.freeHighGm() / type.highGmSize);
  const byFence = Math.floor(host.freeFences() / type.fences);
  return Math.max(0, Math.min(byLow, byHigh, byFence, GVT_MAX_VGPU - vgpus));
}

/** The resolution string GVT prints (vgpu_edid_str). */
export function resolutionString(r: VgpuResolution): string {
  return `${r.xres}x${r.yres}`;
}

/** The sysfs `description` text (kvmgt.c description_show), one attribute a line. */
export function typeDescription(t: VgpuTypeConfig): string {
  return (
    `low_gm_size: ${t.lowGmSize / MiB}MB\nhigh_gm_size: ${t.highGmSize / MiB}MB\n` +
    `fence: ${t.fences}\nresolution: ${resolutionString(t.resolution)}\nweight: ${t.weight}\n`
  );
}
