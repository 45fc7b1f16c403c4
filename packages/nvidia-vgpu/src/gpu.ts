/**
 * A simulated physical GPU: its framebuffer cut into placement slots, the vGPUs placed on it,
 * and the engine they share under the scheduler.
 *
 * Placement follows NVML's model: the framebuffer is a row of slots (the smallest profile's
 * size), and a vGPU of a profile occupies `placementSize` consecutive slots starting at a
 * placement id, which is a multiple of that size. In equal-size mode (NVML_VGPU_PGPU_HOMOGENEOUS_MODE,
 * the default) every vGPU on the GPU has the same type, at most `maxInstances` of it; in
 * mixed-size mode (NVML_VGPU_PGPU_HETEROGENEOUS_MODE, only where the board supports it, and only
 * with best effort or equal share scheduling) profiles of different sizes share the GPU, each at a
 * free aligned placement. available_instances is the number of placements a type could take now.
 */
import { type Clock, type Logger, type SharedMemory, VfioError } from '@vfiokit/core';
import { BAR3_SIZE, MAILBOX_OFFSET, MAILBOX_SIZE } from './abi.js';
import { type BoardSpec, placementSize, type VgpuProfile } from './boards.js';
import { type GpuLink, VgpuDevice } from './device.js';
import { GpuScheduler, type SchedulerSettings, VGPU_SCHEDULER_POLICY_FIXED_SHARE } from './scheduler.js';

// nvml.h
export const NVML_VGPU_PGPU_HETEROGENEOUS_MODE = 0;
export const NVML_VGPU_PGPU_HOMOGENEOUS_MODE = 1;
export const NVML_INVALID_VGPU_PLACEMENT_ID = 0xffff;

export type MemoryAllocator = (size: number, name: string) => SharedMemory;

export interface PhysicalGpuOptions {
  readonly board: BoardSpec;
  /** PCI address of the GPU, e.g. `0000:3b:00.0`. */
  readonly address: string;
  readonly clock: Clock;
  readonly log: Logger;
  readonly allocate: MemoryAllocator;
  /** Bytes of simulated framebuffer per GiB of the profile's framebuffer. */
  readonly bytesPerGiB: number;
  readonly scheduler?: Partial<SchedulerSettings>;
  readonly mixedSize?: boolean;
  readonly payloadChecksum?: boolean;
}

export class PhysicalGpu implements GpuLink {
  readonly board: BoardSpec;
  readonly address: string;
  readonly scheduler: GpuScheduler;
  readonly payloadChecksum: boolean;
  readonly slots: number;
  private readonly occupied: Int32Array;
  private readonly vgpus = new Map<number, VgpuDevice>();
  private nextHandle = 1;
  private mixed = false;
  private pumpScheduled = false;

  constructor(private readonly opts: PhysicalGpuOptions) {
    this.board = opts.board;
    this.address = opts.address;
    this.payloadChecksum = opts.payloadChecksum ?? true;
    this.slots = Math.floor(opts.board.framebufferMiB / opts.board.slotMiB);
    this.occupied = new Int32Array(this.slots).fill(0);
    this.scheduler = new GpuScheduler(opts.scheduler ?? {}, 1);
    if (opts.mixedSize) this.setMixedSize(true);
  }

  // ---- mode and scheduler -------------------------------------------------------------------------

  /** NVML_VGPU_PGPU_HETEROGENEOUS_MODE (0) or NVML_VGPU_PGPU_HOMOGENEOUS_MODE (1). */
  get mode(): number {
    return this.mixed ? NVML_VGPU_PGPU_HETEROGENEOUS_MODE : NVML_VGPU_PGPU_HOMOGENEOUS_MODE;
  }

  setMixedSize(on: boolean): void {
    if (on === this.mixed) return;
    if (on && !this.board.mixedSizeSupported) {
      throw new VfioError('EOPNOTSUPP', `the ${this.board.name} at ${this.address} has no mixed-size mode.`, {
        hint: 'Only boards that support heterogeneous vGPU sizes can leave equal-size mode.',
      });
    }
    if (this.vgpus.size > 0) {
      throw new VfioError('EBUSY', `GPU ${this.address} has vGPUs; its size mode cannot change now.`, {
        hint: 'Remove every vGPU of the GPU first.',
      });
    }
    if (on && this.scheduler.settings.policy === VGPU_SCHEDULER_POLICY_FIXED_SHARE) {
      throw new VfioError('EINVAL', 'mixed-size mode does not work with the fixed share scheduler.', {
        hint: 'Use best effort or equal share scheduling with mixed-size mode.',
      });
    }
    this.mixed = on;
  }

  configureScheduler(settings: Partial<SchedulerSettings>): void {
    if (this.mixed && settings.policy === VGPU_SCHEDULER_POLICY_FIXED_SHARE) {
      throw new VfioError('EINVAL', 'the fixed share scheduler does not work in mixed-size mode.', {
        hint: 'Leave mixed-size mode first, or use best effort or equal share.',
      });
    }
    this.scheduler.configure(settings);
  }

  // ---- placement ----------------------------------------------------------------------------------

  profile(typeId: number): VgpuProfile | undefined {
    return this.board.profiles.find((p) => p.typeId === typeId);
  }

  /** Placement ids the type can ever take in the current mode. */
  supportedPlacements(p: VgpuProfile): number[] {
    const size = placementSize(this.board, p);
    const ids: number[] = [];
    const count = this.mixed ? Math.floor(this.slots / size) : p.maxInstances;
    for (let k = 0; k < count && (k + 1) * size <= this.slots; k++) ids.push(k * size);
    return ids;
  }

  /** Placement ids the type can take now. */
  creatablePlacements(p: VgpuProfile): number[] {
    if (!this.mixed) {
      for (const v of this.vgpus.values()) if (v.profile.typeId !== p.typeId) return [];
    }
    const size = placementSize(this.board, p);
    return this.supportedPlacements(p).filter((id) => {
      for (let s = id; s < id + size; s++) if (this.occupied[s] !== 0) return false;
      return true;
    });
  }

  available(p: VgpuProfile): number {
    return this.creatablePlacements(p).length;
  }

  instances(): VgpuDevice[] {
    return [...this.vgpus.values()];
  }

  /** Create a vGPU at `placementId` (or the lowest creatable one). ENOSPC when none is left. */
  createVgpu(p: VgpuProfile, name: string, placementId?: number): VgpuDevice {
    const creatable = this.creatablePlacements(p);
    let id: number;
    if (placementId === undefined) {
      if (creatable.length === 0) {
        throw new VfioError('ENOSPC', `no placement is free for ${p.profile} on GPU ${this.address}.`, {
          hint: this.mixed
            ? 'Remove a vGPU or choose a smaller profile.'
            : 'In equal-size mode every vGPU on a GPU has the same type; remove the others or use another GPU.',
        });
      }
      id = creatable[0];
    } else {
      if (!this.supportedPlacements(p).includes(placementId)) {
        throw new VfioError('EINVAL', `placement id ${placementId} is not a placement of ${p.profile}.`, {
          hint: `Supported placement ids: ${this.supportedPlacements(p).join(', ')}.`,
        });
      }
      if (!creatable.includes(placementId)) {
        throw new VfioError('ENOSPC', `placement id ${placementId} of ${p.profile} is taken or blocked.`, {
          hint: `Creatable placement ids now: ${creatable.join(', ') || 'none'}.`,
        });
      }
      id = placementId;
    }
    const fbBytes = simulatedFramebuffer(p, this.opts.bytesPerGiB);
    const framebuffer = this.opts.allocate(fbBytes, `${name}-framebuffer`);
    // A new vGPU's framebuffer is scrubbed before the guest sees it (the RFC scrubs with the copy engine).
    framebuffer.bytes.fill(0);
    // The backing starts at BAR0 offset 0 so that a mapping's memory offset equals its BAR0
    // offset (one fd at one distance, as a vfio-user REGION_INFO reply describes it).
    const mailbox = this.opts.allocate(MAILBOX_OFFSET + MAILBOX_SIZE, `${name}-bar0-mailbox`);
    const instanceMemory = this.opts.allocate(BAR3_SIZE, `${name}-bar3`);
    const size = placementSize(this.board, p);
    const device = new VgpuDevice({
      name,
      gpu: this,
      profile: p,
      placementId: id,
      slot: Math.floor(id / size),
      framebuffer,
      mailbox,
      instanceMemory,
    });
    const handle = this.nextHandle++;
    this.vgpus.set(handle, device);
    for (let s = id; s < id + size; s++) this.occupied[s] = handle;
    this.scheduler.add(device);
    if (!this.mixed) this.scheduler.setSlots(p.maxInstances);
    return device;
  }

  destroyVgpu(device: VgpuDevice): void {
    for (const [handle, v] of this.vgpus) {
      if (v !== device) continue;
      this.vgpus.delete(handle);
      for (let s = 0; s < this.slots; s++) if (this.occupied[s] === handle) this.occupied[s] = 0;
      this.scheduler.remove(device);
      device.migration.reset();
      return;
    }
  }

  // ---- the engine ---------------------------------------------------------------------------------

  /** Work was submitted: run the engine on the host clock, one slice at a time, while there is work. */
  kick(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    this.scheduler.skipTo(this.opts.clock.now());
    this.opts.clock.schedule(this.scheduler.settings.timesliceNs, () => this.pump());
  }

  private pump(): void {
    this.pumpScheduled = false;
    try {
      this.scheduler.runUntil(this.opts.clock.now());
    } catch (err) {
      this.opts.log.error(`GPU ${this.address}: the engine stopped on an error: ${String(err)}`);
      return;
    }
    if (this.instances().some((v) => v.running() && v.hasPendingWork())) this.kick();
  }

  /** Run the engine for `ns` of engine time now (tests and benches drive it directly). */
  advance(ns: number): void {
    this.scheduler.runUntil(this.scheduler.now + ns);
  }
}

/** Simulated framebuffer bytes of a profile: `bytesPerGiB` per GiB, whole pages. */
export function simulatedFramebuffer(p: VgpuProfile, bytesPerGiB: number): number {
  const bytes = Math.round((p.framebufferMiB / 1024) * bytesPerGiB);
  return Math.max(4096, Math.ceil(bytes / 4096) * 4096);
}
