/** Loading a plugin package by name, as the VMM's loader does, and saying plainly what is wrong with it. */
import { pathToFileURL } from 'node:url';
import { CONTRACT_VERSION, VfioError, type VfioPlugin } from '@vfiokit/core';
import { resolvePlugin } from './resolve.js';

/** `value` as a VfioPlugin, or a VfioError EINVAL whose message says in one sentence what is wrong. */
export function validatePlugin(value: unknown, from: string): VfioPlugin {
  const bad = (problem: string, hint: string) => new VfioError('EINVAL', `${from} ${problem}.`, { hint });
  const hint = 'Export the plugin made with definePlugin() from @vfiokit/core as the default export.';
  if (typeof value !== 'object' || value === null)
    throw bad(
      `does not export a plugin object (its default export is ${value === null ? 'null' : typeof value})`,
      hint,
    );
  const p = value as Partial<VfioPlugin>;
  if (typeof p.name !== 'string' || p.name === '') throw bad('exports a plugin without a name', hint);
  if (typeof p.probe !== 'function') throw bad(`exports plugin "${p.name}" without a probe() function`, hint);
  if (p.contractVersion !== CONTRACT_VERSION) {
    throw bad(
      `exports plugin "${p.name}" written for contract version ${String(p.contractVersion)}, but this suite checks version ${CONTRACT_VERSION}`,
      'Rebuild the plugin against the @vfiokit/core this suite uses.',
    );
  }
  if (p.deviceApi !== 'vfio-pci')
    throw bad(`exports plugin "${p.name}" for device API ${String(p.deviceApi)}, not vfio-pci`, hint);
  return p as VfioPlugin;
}

/**
 * Import a plugin by package name (or path), found from `cwd` as resolvePlugin() says: a path, a
 * package in node_modules at or above `cwd`, a package of the workspace `cwd` is in, or a package
 * installed beside this suite.
 */
export async function loadPlugin(name: string, cwd: string = process.cwd()): Promise<VfioPlugin> {
  const found = resolvePlugin(name, cwd);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(found.file).href)) as Record<string, unknown>;
  } catch (cause) {
    throw new VfioError(
      'ENOENT',
      `cannot load plugin package "${name}" from ${found.file}: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        hint: 'Install the package (and build it) where you run the suite, or pass a path to its entry file.',
        cause,
      },
    );
  }
  return validatePlugin(mod.default ?? mod.plugin, `package "${name}"`);
}
