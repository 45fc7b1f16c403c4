/**
 * The two ways an NVIDIA host provisions vGPUs, behind one VMM-facing device contract:
 *
 * - Classic mdev (non-SR-IOV GPUs such as the Tesla T4): the GPU is an mdev parent with one type
 *   directory per profile, `nvidia-<typeId>`, `name` "NVIDIA <profile>", `description` the
 *   driver's key=value list; an instance is created by writing a UUID to `create`. An optional
 *   `placement_id` attribute picks the placement.
 * - SR-IOV (Ada and later, the upstream RFC): every vGPU rides on its own virtual function. Each
 *   VF has `nvidia/creatable_vgpu_types` ("ID : name" lines) and `nvidia/current_vgpu_type` (write
 *   a type id to select, 0 to clear; refused while the VF is open); the VF is then an ordinary
 *   vfio-pci device. `SriovParent` presents the VFs through the same ParentDevice contract so a
 *   VMM (and the conformance suite) drive both the same way: create picks a free VF and selects
 *   the type, remove clears it.
 */
import {
  isDeviceOpen,
  isUuid,
  type MdevInstance,
  MdevParent,
  type MdevTypeInfo,
  type ParentDevice,
  VfioError,
} from '@vfiokit/core';
import { type VgpuProfile, vgpuTypeDescription, vgpuTypeName } from './boards.js';
import type { VgpuDevice } from './device.js';
import type { PhysicalGpu } from './gpu.js';

/** Parse the optional `placement_id` attribute. */
function placementAttr(attrs: Readonly<Record<string, string>>): number | undefined {
  const raw = attrs.placement_id;
  if (raw === undefined) return undefined;
  if (!/^\d{1,5}$/.test(raw.trim())) {
    throw new VfioError('EINVAL', `placement_id "${raw}" is not a placement id.`, {
      hint: "Give a decimal placement id from the type's supported placements.",
    });
  }
  return Number(raw.trim());
}

/** Type attributes beyond name/description: the NVML view of the type. */
function typeAttributes(gpu: PhysicalGpu, p: VgpuProfile): Record<string, string> {
  return {
    framebuffer: `${p.framebufferMiB}M`,
    max_instance: String(p.maxInstances),
    series: p.series,
    placement_size: String(Math.ceil(p.framebufferMiB / gpu.board.slotMiB)),
    creatable_placements: gpu.creatablePlacements(p).join(','),
  };
}

/** The classic mdev parent of a GPU. */
export function createMdevParent(gpu: PhysicalGpu): MdevParent<VgpuProfile> {
  return new MdevParent<VgpuProfile>({
    name: gpu.address,
    driver: 'nvidia',
    types: gpu.board.profiles.map((p) => ({
      name: String(p.typeId),
      prettyName: vgpuTypeName(p),
      description: vgpuTypeDescription(p),
      get attributes() {
        return typeAttributes(gpu, p);
      },
      data: p,
    })),
    available: (t) => (t.data ? gpu.available(t.data) : 0),
    create: (t, uuid, attrs) => {
      if (!t.data) throw new VfioError('EINVAL', `type ${t.name} has no profile.`);
      return gpu.createVgpu(t.data, uuid, placementAttr(attrs));
    },
    destroy: (instance) => gpu.destroyVgpu(instance.device as VgpuDevice),
  });
}

/** One SR-IOV virtual function of a GPU with its vGPU type selector. */
export class VirtualFunction {
  private typeId = 0;
  private vgpu: VgpuDevice | undefined;

  constructor(
    readonly gpu: PhysicalGpu,
    /** PCI address of the VF. */
    readonly address: string,
  ) {}

  /** sysfs `nvidia/creatable_vgpu_types`: a header line, then "ID : name" for every type creatable now. */
  creatableVgpuTypes(): string {
    const lines = ['ID    : vGPU Name'];
    if (this.typeId === 0) {
      for (const p of this.gpu.board.profiles) {
        if (this.gpu.available(p) > 0) lines.push(`${String(p.typeId).padEnd(5)} : ${vgpuTypeName(p)}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }

  /** sysfs `nvidia/current_vgpu_type` read: the selected type id, 0 for none. */
  get currentVgpuType(): number {
    return this.typeId;
  }

  /** The VF's vfio-pci device, present while a type is selected. */
  get device(): VgpuDevice | undefined {
    return this.vgpu;
  }

  /** sysfs `nvidia/current_vgpu_type` write: a type id selects, 0 clears; refused while the VF is open. */
  writeCurrentVgpuType(text: string): void {
    const raw = text.trim();
    if (!/^\d{1,10}$/.test(raw)) {
      throw new VfioError('EINVAL', `"${text}" is not a vGPU type id.`, {
        device: this.address,
        hint: 'Write a type id listed in creatable_vgpu_types, or 0 to clear.',
      });
    }
    const id = Number(raw);
    if (this.vgpu && isDeviceOpen(this.vgpu)) {
      throw new VfioError('EBUSY', `VF ${this.address} is open; its vGPU type cannot change.`, {
        device: this.address,
        hint: 'Close the VFIO device (stop the VM) first.',
      });
    }
    if (id === 0) {
      if (this.vgpu) this.gpu.destroyVgpu(this.vgpu);
      this.vgpu = undefined;
      this.typeId = 0;
      return;
    }
    if (this.typeId !== 0) {
      throw new VfioError('EBUSY', `VF ${this.address} already has vGPU type ${this.typeId}.`, {
        device: this.address,
        hint: 'Write 0 to clear the current type before selecting another.',
      });
    }
    const p = this.gpu.profile(id);
    if (!p) {
      throw new VfioError('EINVAL', `vGPU type ${id} does not exist on the ${this.gpu.board.name}.`, {
        device: this.address,
        hint: 'Read creatable_vgpu_types for the ids of this GPU.',
      });
    }
    this.vgpu = this.gpu.createVgpu(p, this.address);
    this.typeId = id;
  }
}

/** Function numbers of the VFs: the first VF at function 4 of the PF's device, as the RFC's example host shows. */
function vfAddress(pf: string, index: number): string {
  const m = /^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/.exec(pf);
  if (!m) throw new VfioError('EINVAL', `"${pf}" is not a PCI address.`);
  const devfn = ((Number.parseInt(m[3], 16) << 3) | Number(m[4])) + 4 + index;
  const dev = (devfn >> 3) & 0x1f;
  const bus = Number.parseInt(m[2], 16) + (devfn >> 8);
  return `${m[1]}:${bus.toString(16).padStart(2, '0')}:${dev.toString(16).padStart(2, '0')}.${devfn & 7}`;
}

/** An SR-IOV GPU: its VFs, and the ParentDevice view a VMM uses. */
export class SriovParent implements ParentDevice {
  readonly name: string;
  readonly vfs: readonly VirtualFunction[];
  private readonly byUuid = new Map<string, VirtualFunction>();

  constructor(
    readonly gpu: PhysicalGpu,
    numVfs?: number,
  ) {
    this.name = gpu.address;
    // One VF per vGPU: enough VFs for the densest profile.
    const count = numVfs ?? Math.max(...gpu.board.profiles.map((p) => p.maxInstances));
    this.vfs = Array.from({ length: count }, (_, i) => new VirtualFunction(gpu, vfAddress(gpu.address, i)));
  }

  private freeVfs(): number {
    return this.vfs.filter((v) => v.currentVgpuType === 0).length;
  }

  types(): readonly MdevTypeInfo[] {
    const free = this.freeVfs();
    return this.gpu.board.profiles.map((p) => ({
      id: `nvidia-${p.typeId}`,
      name: vgpuTypeName(p),
      description: vgpuTypeDescription(p),
      deviceApi: 'vfio-pci' as const,
      availableInstances: Math.min(free, this.gpu.available(p)),
      attributes: typeAttributes(this.gpu, p),
    }));
  }

  create(typeId: string, uuid: string): MdevInstance {
    const p = this.gpu.board.profiles.find((x) => `nvidia-${x.typeId}` === typeId);
    if (!p) {
      throw new VfioError('EINVAL', `GPU ${this.name} has no vGPU type "${typeId}".`, {
        hint: `Known types: ${this.gpu.board.profiles.map((x) => `nvidia-${x.typeId}`).join(', ')}.`,
      });
    }
    if (!isUuid(uuid)) {
      throw new VfioError('EINVAL', `"${uuid}" is not a UUID.`, {
        hint: 'Name the vGPU with a 36-character UUID.',
      });
    }
    const key = uuid.toLowerCase();
    if (this.byUuid.has(key)) {
      throw new VfioError('EEXIST', `a vGPU with UUID ${key} already exists on GPU ${this.name}.`, {
        hint: 'Pick a new UUID or remove the existing vGPU first.',
      });
    }
    const vf = this.vfs.find((v) => v.currentVgpuType === 0);
    if (!vf) {
      throw new VfioError('ENOSPC', `every VF of GPU ${this.name} already carries a vGPU.`, {
        hint: 'Clear current_vgpu_type on a VF, or enable more VFs.',
      });
    }
    if (this.gpu.available(p) < 1) {
      throw new VfioError(
        'ENOSPC',
        `no placement is free for ${p.profile} on GPU ${this.name} (available_instances is 0).`,
        {
          hint: 'Remove a vGPU or choose another profile.',
        },
      );
    }
    vf.writeCurrentVgpuType(String(p.typeId));
    this.byUuid.set(key, vf);
    return { uuid: key, typeId, device: vf.device as VgpuDevice };
  }

  remove(uuid: string): void {
    const key = uuid.toLowerCase();
    const vf = this.byUuid.get(key);
    if (!vf) {
      throw new VfioError('ENODEV', `no vGPU with UUID ${key} on GPU ${this.name}.`, {
        hint: 'List the instances to see which exist.',
      });
    }
    vf.writeCurrentVgpuType('0');
    this.byUuid.delete(key);
  }

  instances(): readonly MdevInstance[] {
    return [...this.byUuid].map(([uuid, vf]) => ({
      uuid,
      typeId: `nvidia-${vf.currentVgpuType}`,
      device: vf.device as VgpuDevice,
    }));
  }
}
