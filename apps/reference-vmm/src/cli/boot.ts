/**
 * Boot a configuration: load and probe the plugins, create the devices on their parents, build
 * the machine and attach every device at its slot. The caller runs the probe and the drivers,
 * then calls `shutdown()`, which closes the machine and removes the instances again.
 */
import { type Logger, toVfioError, VfioError } from '@vfiokit/core';
import { formatSlot, type VmmConfig } from '../config/index.js';
import {
  type CreatedDevice,
  createDevices,
  type ProbedPlugin,
  probePlugins,
  removeDevices,
  systemClock,
} from '../loader/index.js';
import { Machine } from '../machine/index.js';
import type { Progress } from './progress.js';

export interface Booted {
  readonly config: VmmConfig;
  readonly plugins: readonly ProbedPlugin[];
  readonly devices: readonly CreatedDevice[];
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
  const vfioUser = config.devices.find((d) => d.kind === 'vfio-user');
  if (vfioUser && vfioUser.kind === 'vfio-user') {
    throw new VfioError(
      'EOPNOTSUPP',
      `${vfioUser.origin}: the vfio-user device at ${formatSlot(vfioUser.slot)} (${vfioUser.socket}) needs the vfio-user client, which this build of @vfiokit/vfio-user does not provide yet.`,
      { hint: 'Remove the vfioUser entry, or attach the plugin in process with plugin and type.' },
    );
  }
  const progress = opts.progress;
  const plugins = await probePlugins(
    config.plugins,
    { clock: systemClock, log: opts.log },
    { cwd: opts.cwd },
  );
  for (const p of plugins) progress?.step(`probed ${p.specifier}`);
  const devices = createDevices(config, plugins);
  let machine: Machine;
  try {
    machine = new Machine({ ramSize: config.machine.ramSize, log: opts.log });
  } catch (err) {
    removeDevices(devices);
    throw toVfioError(err);
  }
  const shutdown = (): VfioError[] => {
    const problems: VfioError[] = [];
    try {
      machine.close();
    } catch (err) {
      problems.push(toVfioError(err));
    }
    return [...problems, ...removeDevices(devices)];
  };
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
  } catch (err) {
    shutdown();
    const e = toVfioError(err);
    throw new VfioError(e.code, `attaching a device failed: ${e.problem}`, {
      ...e.place,
      hint: e.hint,
      cause: err,
    });
  }
  return { config, plugins, devices, machine, shutdown };
}
