/**
 * From a checked configuration to device instances: load each plugin, probe its parents, and
 * create each configured mdev on its parent (writing the UUID to `create`, as sysfs does).
 */
import {
  type Clock,
  type Logger,
  type MdevInstance,
  type ParentDevice,
  VfioError,
  type VfioPlugin,
} from '@vfiokit/core';
import type { MdevDeviceConfig, PluginConfig, VmmConfig } from '../config/index.js';
import { formatSlot } from '../config/index.js';
import { type LoadPluginOptions, loadPlugin } from './load-plugin.js';
import { pluginFault } from './plugin-fault.js';

export interface ProbedPlugin {
  readonly specifier: string;
  readonly plugin: VfioPlugin;
  readonly parents: readonly ParentDevice[];
}

export interface CreatedDevice {
  readonly config: MdevDeviceConfig;
  readonly plugin: ProbedPlugin;
  readonly parent: ParentDevice;
  readonly instance: MdevInstance;
  /** `mtty-2 83b8f4f2`: type and the UUID's first group, for reports. */
  readonly label: string;
}

export interface HostServices {
  readonly clock: Clock;
  readonly log: Logger;
}

/** Load and probe each configured plugin, in order. */
export async function probePlugins(
  plugins: readonly PluginConfig[],
  host: HostServices,
  opts: LoadPluginOptions = {},
): Promise<ProbedPlugin[]> {
  const out: ProbedPlugin[] = [];
  for (const cfg of plugins) {
    let plugin: VfioPlugin;
    try {
      ({ plugin } = await loadPlugin(cfg.package, {
        ...opts,
        ...(cfg.baseDir !== undefined ? { baseDir: cfg.baseDir } : {}),
      }));
    } catch (err) {
      // Say where the plugin is listed, as a device's errors do.
      if (!(err instanceof VfioError) || cfg.origin === undefined) throw err;
      throw new VfioError(err.code, `${cfg.origin}: ${err.problem}`, {
        ...err.place,
        hint: err.hint,
        cause: err,
      });
    }
    let parents: readonly ParentDevice[];
    try {
      parents = plugin.probe({ clock: host.clock, log: host.log, options: cfg.options });
    } catch (err) {
      throw pluginFault(err, `plugin "${cfg.package}" failed to probe its parent devices`, cfg.package);
    }
    out.push({ specifier: cfg.package, plugin, parents });
  }
  return out;
}

function list(xs: readonly string[]): string {
  return xs.length === 0 ? 'none' : xs.join(', ');
}

/** Find the plugin and parent for a device: by plugin and parent name, by type, or (mdevctl) by parent name alone. */
export function findParent(
  d: MdevDeviceConfig,
  probed: readonly ProbedPlugin[],
): { plugin: ProbedPlugin; parent: ParentDevice } {
  const candidates = d.plugin === undefined ? probed : probed.filter((p) => p.specifier === d.plugin);
  if (candidates.length === 0) {
    throw new VfioError('ENODEV', `${d.origin}: plugin "${d.plugin}" was not loaded.`, {
      hint: 'List it under plugins.',
    });
  }
  const all = candidates.flatMap((p) => p.parents.map((parent) => ({ plugin: p, parent })));
  if (d.parent !== undefined) {
    // two plugins may name one parent (GVT-g and GVT-d both model 0000:00:02.0): the type picks
    // the one that offers it (cli/parents.ts)
    const named = all.filter((x) => x.parent.name === d.parent);
    if (named.length === 0) {
      throw new VfioError(
        'ENODEV',
        `${d.origin}: parent "${d.parent}" is not a parent device of ${d.plugin === undefined ? 'any loaded plugin' : `plugin "${d.plugin}"`} (parents: ${list([...new Set(all.map((x) => x.parent.name))])}).`,
      );
    }
    const hit = named.find((x) => x.parent.types().some((t) => t.id === d.type));
    if (!hit) {
      throw new VfioError(
        'EINVAL',
        `${d.origin}: parent "${d.parent}" has no mdev type "${d.type}" (types: ${list(named.flatMap((x) => x.parent.types().map((t) => t.id)))}).`,
      );
    }
    return hit;
  }
  const hit = all.find((x) => x.parent.types().some((t) => t.id === d.type));
  if (!hit) {
    const types = [...new Set(all.flatMap((x) => x.parent.types().map((t) => t.id)))];
    throw new VfioError(
      'EINVAL',
      `${d.origin}: plugin "${d.plugin}" offers no mdev type "${d.type}" (types: ${list(types)}).`,
      { hint: 'Run `vfiokit types` to see the parents and types each plugin offers.' },
    );
  }
  return hit;
}

/** Create every configured mdev. On failure the ones already created are removed again. */
export function createDevices(config: VmmConfig, probed: readonly ProbedPlugin[]): CreatedDevice[] {
  const created: CreatedDevice[] = [];
  try {
    for (const d of config.devices) {
      if (d.kind !== 'mdev') continue;
      const { plugin, parent } = findParent(d, probed);
      let instance: MdevInstance;
      try {
        instance = parent.create(d.type, d.uuid, Object.fromEntries(d.attrs));
      } catch (err) {
        throw pluginFault(
          err,
          `${d.origin}: creating ${d.type} ${d.uuid} at ${formatSlot(d.slot)} on parent ${parent.name} failed`,
          plugin.specifier,
        );
      }
      created.push({ config: d, plugin, parent, instance, label: `${d.type} ${d.uuid.slice(0, 8)}` });
    }
  } catch (err) {
    removeDevices(created);
    throw err;
  }
  return created;
}

/** Remove instances (writing to `remove`); problems are returned, not thrown, so every one is tried. */
export function removeDevices(created: readonly CreatedDevice[]): VfioError[] {
  const problems: VfioError[] = [];
  for (const c of [...created].reverse()) {
    try {
      c.parent.remove(c.instance.uuid);
    } catch (err) {
      problems.push(
        pluginFault(err, `removing ${c.label} from parent ${c.parent.name} failed`, c.plugin.specifier),
      );
    }
  }
  return problems;
}
