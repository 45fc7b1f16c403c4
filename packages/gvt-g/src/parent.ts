/**
 * The mdev parent: one host IGD, its GVT-g types and its vGPUs. Creating a vGPU carves its
 * slices out of the host's GM and fences; removing it gives them back.
 */
import {
  allocateDeviceMemory,
  type MdevInstance,
  MdevParent,
  type PluginHost,
  type SharedMemory,
  VfioError,
} from '@vfiokit/core';
import { GVT_MAX_VGPU, MiB } from './constants.js';
import { type HostGpu, SimulatedHostGpu } from './host-gpu.js';
import { GvtMmioModel } from './mmio/index.js';
import { TimeSliceScheduler } from './scheduler.js';
import { GvtgVgpu } from './vgpu.js';
import {
  availableInstances,
  resolutionString,
  typeDescription,
  typesForHost,
  type VgpuTypeConfig,
} from './vgpu-types.js';

/** The driver name prefixing every type id (`i915-GVTg_V5_4`). */
export const GVTG_DRIVER = 'i915';

export interface GvtParentOptions {
  /** The host GPU; a SimulatedHostGpu built from the plugin options by default. */
  readonly gpu?: HostGpu;
  /** Aperture in MiB for the simulated host (plugin option `apertureMiB`). */
  readonly apertureMiB?: number;
}

export interface GvtParent extends MdevParent<VgpuTypeConfig> {
  readonly gpu: HostGpu;
  readonly scheduler: TimeSliceScheduler;
  vgpu(uuid: string): GvtgVgpu | undefined;
}

/** Memory for mmappable regions: the host's allocator when it has one (a memfd under vfio-user). */
function allocator(
  host: Partial<Pick<PluginHost, 'allocateMemory'>>,
): (size: number, name: string) => SharedMemory {
  return (size, name) => allocateDeviceMemory(host, size, name);
}

export function createGvtParent(
  host: Pick<PluginHost, 'clock'> & Partial<PluginHost>,
  opts: GvtParentOptions = {},
): GvtParent {
  const allocate = allocator(host);
  const option = opts.apertureMiB ?? host.options?.apertureMiB;
  if (option !== undefined && (typeof option !== 'number' || !Number.isInteger(option))) {
    throw new VfioError(
      'EINVAL',
      `plugin option apertureMiB ${String(option)} is not a whole number of MiB.`,
      {
        hint: 'Give apertureMiB as 256, 512, 1024 or 2048.',
      },
    );
  }
  const gpu =
    opts.gpu ??
    new SimulatedHostGpu({
      ...(option !== undefined ? { apertureSize: option * MiB } : {}),
      allocateMemory: allocate,
    });
  const scheduler = new TimeSliceScheduler(host.clock);
  const mmio = new GvtMmioModel();
  const vgpus = new Map<string, GvtgVgpu>();
  const ids = new Set<number>();
  const types = typesForHost(gpu);
  const parent = new MdevParent<VgpuTypeConfig>({
    name: gpu.name,
    driver: GVTG_DRIVER,
    types: types.map((t) => ({
      name: t.name,
      prettyName: t.name,
      description: typeDescription(t),
      attributes: {
        low_gm_size: String(t.lowGmSize / MiB),
        high_gm_size: String(t.highGmSize / MiB),
        fence: String(t.fences),
        resolution: resolutionString(t.resolution),
        weight: String(t.weight),
      },
      data: t,
    })),
    available: (spec) => availableInstances(gpu, spec.data!, vgpus.size),
    create: (spec, uuid) => {
      const type = spec.data!;
      let id = 1;
      while (ids.has(id)) id++;
      if (id > GVT_MAX_VGPU) {
        throw new VfioError('ENOSPC', `the host GPU already runs ${GVT_MAX_VGPU} vGPUs.`, {
          hint: 'Remove a vGPU first (GVT_MAX_VGPU).',
        });
      }
      const resources = gpu.allocate(type.lowGmSize, type.highGmSize, type.fences);
      try {
        const vgpu = new GvtgVgpu({
          uuid,
          id,
          type,
          host: gpu,
          resources,
          scheduler,
          mmio,
          allocateMemory: allocate,
        });
        vgpus.set(uuid, vgpu);
        ids.add(id);
        return vgpu;
      } catch (err) {
        gpu.release(resources);
        throw err;
      }
    },
    destroy: (instance: MdevInstance) => {
      const vgpu = vgpus.get(instance.uuid);
      if (!vgpu) return;
      vgpu.destroy();
      gpu.release(vgpu.resources);
      vgpus.delete(instance.uuid);
      ids.delete(vgpu.vgpuId);
    },
  });
  return Object.assign(parent, {
    gpu,
    scheduler,
    vgpu: (uuid: string) => vgpus.get(uuid.toLowerCase()),
  });
}
