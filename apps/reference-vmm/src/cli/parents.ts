/**
 * The parent devices the loaded plugins offer, grouped by name as /sys/class/mdev_bus groups
 * them: what `vfiokit types`, `vfiokit mdev types` and `vfiokit mdev start` read.
 *
 * Two plugins may name the same parent. On a real host that cannot happen: the kernel binds one
 * driver to a device, so 0000:00:02.0 is either i915 with GVT-g (an mdev parent) or vfio-pci
 * (GVT-d, the IGD passed through whole), never both at once. vfiokit's simulated host can load
 * both plugins — the default configuration does, to show each — and both then model the same
 * IGD. The name is what users pass to `--parent` and what mdevctl and sysfs address, so the
 * types of both are listed under the one name, each with the plugin that offers it; a type is
 * then found by (parent, type). Two plugins offering the same type ID under one name would make
 * that lookup ambiguous, and are refused.
 */
import { type MdevTypeInfo, type ParentDevice, VfioError } from '@vfiokit/core';
import { createLogger, type ProbedPlugin, probePlugins, systemClock } from '../loader/index.js';
import type { CliIo } from './io.js';
import { buildConfig, configArgs } from './setup.js';

export interface CatalogueType {
  readonly plugin: string;
  readonly parent: ParentDevice;
  readonly type: MdevTypeInfo;
}

export interface CatalogueParent {
  readonly name: string;
  /** The plugins that offer types under this name, in load order. */
  readonly plugins: readonly string[];
  /** Sorted by type ID, as mdevctl sorts them. */
  readonly types: readonly CatalogueType[];
}

/** The parents by name, sorted by name (mdevctl's BTreeMap order); EEXIST when a type ID repeats under one name. */
export function parentCatalogue(probed: readonly ProbedPlugin[]): CatalogueParent[] {
  const byName = new Map<string, { plugins: string[]; types: CatalogueType[] }>();
  for (const p of probed) {
    for (const parent of p.parents) {
      let entry = byName.get(parent.name);
      if (!entry) {
        entry = { plugins: [], types: [] };
        byName.set(parent.name, entry);
      }
      if (!entry.plugins.includes(p.specifier)) entry.plugins.push(p.specifier);
      for (const type of parent.types()) {
        const clash = entry.types.find((t) => t.type.id === type.id);
        if (clash) {
          throw new VfioError(
            'EEXIST',
            `plugins "${clash.plugin}" and "${p.specifier}" both offer mdev type ${type.id} on parent ${parent.name}.`,
            { hint: 'A type must name one thing on a parent; load only one of the two plugins.' },
          );
        }
        entry.types.push({ plugin: p.specifier, parent, type });
      }
    }
  }
  return [...byName.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, e]) => ({
      name,
      plugins: e.plugins,
      types: [...e.types].sort((a, b) => (a.type.id < b.type.id ? -1 : a.type.id > b.type.id ? 1 : 0)),
    }));
}

/** Probe the plugins of a command's configuration (the default one without a file) and catalogue their parents. */
export async function loadCatalogue(
  values: Record<string, unknown>,
  positionals: readonly string[],
  io: CliIo,
  command: string,
): Promise<CatalogueParent[]> {
  const config = await buildConfig(
    { ...configArgs(values, positionals), devices: [], defined: false },
    io,
    command,
  );
  const log = createLogger((line) => io.stderr.write(`${line}\n`), 'warn');
  return parentCatalogue(await probePlugins(config.plugins, { clock: systemClock, log }, { cwd: io.cwd }));
}
