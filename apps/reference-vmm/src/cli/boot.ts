/**
 * Boot a configuration: load and probe the plugins, create the devices on their parents, build
 * the machine and attach every device at its slot. The caller runs the probe and the drivers,
 * then calls `shutdown()`, which closes the machine and removes the instances again.
 */
import { type Logger, VfioError } from '@vfiokit/core';
import { formatSlot, type VmmConfig } from '../config/index.js';
import {
  allocateMemfdGuestRam,
  type CreatedDevice,
  closeKernelDevices,
  connectRemoteDevices,
  createDevices,
  disconnectRemoteDevices,
  type GuestRamBacking,
  type KernelDevice,
  kernelDevices,
  openKernelDevices,
  type ProbedPlugin,
  probePlugins,
  type RemoteDevice,
  removeDevices,
  systemClock,
  unexpectedFault,
  vfioUserDevices,
} from '../loader/index.js';
import { Machine } from '../machine/index.js';
import type { Progress } from './progress.js';

export interface Booted {
  readonly config: VmmConfig;
  readonly plugins: readonly ProbedPlugin[];
  readonly devices: readonly CreatedDevice[];
  /** The vfio-user devices: served by another process, attached through a client. */
  readonly remote: readonly RemoteDevice[];
  /** The host kernel's devices, opened through VFIO. */
  readonly kernel: readonly KernelDevice[];
  readonly machine: Machine;
  /** Close the machine and remove the instances; problems are returned, not thrown. */
  shutdown(): VfioError[];
}

export interface BootOptions {
  readonly cwd: string;
  readonly log: Logger;
  readonly progress?: Progress;
}

/** Steps the progress bar counts for a boot: one per plugin, one per device. */
export function bootSteps(config: VmmConfig): number {
  return config.plugins.length + config.devices.length;
}

export async function boot(config: VmmConfig, opts: BootOptions): Promise<Booted> {
  const progress = opts.progress;
  const plugins = await probePlugins(
    config.plugins,
    { clock: systemClock, log: opts.log },
    { cwd: opts.cwd },
  );
  for (const p of plugins) progress?.step(`probed ${p.specifier}`);
  const devices = createDevices(config, plugins);
  // With a vfio-user device, guest RAM is a memfd: DMA_MAP hands its fd to the server. With a
  // kernel device too: VFIO_IOMMU_MAP_DMA needs page-aligned memory, which a memfd mapping is.
  let ramBacking: GuestRamBacking | undefined;
  const releaseRam = () => {
    try {
      ramBacking?.close();
    } catch {
      // the fd is gone already; the mapping goes with the machine
    }
  };
  let machine: Machine;
  try {
    machine = new Machine({
      ramSize: config.machine.ramSize,
      log: opts.log,
      ...(vfioUserDevices(config).length > 0 || kernelDevices(config).length > 0
        ? { allocateRam: (size: number) => (ramBacking = allocateMemfdGuestRam(size)) }
        : {}),
    });
  } catch (err) {
    releaseRam();
    removeDevices(devices);
    throw unexpectedFault(err);
  }
  let remote: RemoteDevice[] = [];
  let kernel: KernelDevice[] = [];
  const shutdown = (): VfioError[] => {
    const problems: VfioError[] = [];
    try {
      machine.close();
    } catch (err) {
      problems.push(unexpectedFault(err));
    }
    problems.push(...disconnectRemoteDevices(remote));
    problems.push(...closeKernelDevices(kernel));
    releaseRam();
    return [...problems, ...removeDevices(devices)];
  };
  try {
    remote = await connectRemoteDevices(config, {
      cwd: opts.cwd,
      guestMemory: machine.ram.memory,
      log: opts.log,
    });
    kernel = openKernelDevices(config, { guestMemory: machine.ram.memory });
  } catch (err) {
    shutdown();
    throw err;
  }
  try {
    for (const d of devices) {
      machine.attach({
        device: d.instance.device,
        slot: d.config.slot,
        label: d.label,
        plugin: d.plugin.specifier,
        typeId: d.config.type,
      });
      progress?.step(`attached ${d.label} at ${formatSlot(d.config.slot)}`);
    }
    for (const r of [...remote, ...kernel]) {
      machine.attach({ device: r.device, slot: r.config.slot, label: r.label });
      progress?.step(`attached ${r.label} at ${formatSlot(r.config.slot)}`);
    }
  } catch (err) {
    shutdown();
    const e = unexpectedFault(err);
    throw new VfioError(e.code, `attaching a device failed: ${e.problem}`, {
      ...e.place,
      hint: e.hint,
      cause: err,
    });
  }
  return { config, plugins, devices, remote, kernel, machine, shutdown };
}
