/**
 * The plugin loader: a plugin is a package whose default export is a VfioPlugin made with
 * definePlugin. The VMM loads plugins only by name, through here, so a third-party plugin is
 * loaded exactly like an in-tree one. A package is looked for from the working directory's
 * package.json first (a user's project), then from vfiokit's own location (the workspace or
 * wherever vfiokit is installed). A specifier that is a path (`./my-plugin.js`) is a local module.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CONTRACT_VERSION, VfioError, type VfioPlugin } from '@vfiokit/core';

export interface LoadedPlugin {
  /** What the configuration named: a package name or a path. */
  readonly specifier: string;
  readonly plugin: VfioPlugin;
  /** Where the module was found: a file path, or `vfiokit` for one resolved beside vfiokit itself. */
  readonly from: string;
}

export interface LoadPluginOptions {
  /** The directory whose package.json is the first place to look. Default: process.cwd(). */
  readonly cwd?: string;
  /** Where a module path (`./my-plugin.js`) starts: the configuration file's folder. Default: `cwd`. */
  readonly baseDir?: string;
}

function isPathSpecifier(s: string): boolean {
  return s.startsWith('.') || s.startsWith('/') || s.startsWith('file:') || isAbsolute(s);
}

function notFound(specifier: string, cwd: string): VfioError {
  return new VfioError(
    'ENOENT',
    `plugin package "${specifier}" is not installed where ${cwd} or vfiokit can find it.`,
    {
      hint: `Install it in your project (pnpm add ${specifier}) or check the name.`,
    },
  );
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** True when the error says `specifier` itself is missing (not one of its imports). */
function isMissing(err: unknown, specifier: string): boolean {
  const c = code(err);
  if (
    c !== 'MODULE_NOT_FOUND' &&
    c !== 'ERR_MODULE_NOT_FOUND' &&
    !/Cannot find (package|module)/.test(String(err))
  )
    return false;
  const msg = err instanceof Error ? err.message : String(err);
  return msg.includes(`'${specifier}'`) || msg.includes(`"${specifier}"`);
}

function loadFailed(specifier: string, err: unknown): VfioError {
  const msg = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  return new VfioError(
    'EIO',
    `plugin package "${specifier}" was found but failed to load: ${msg.replace(/\.$/, '')}.`,
    {
      hint: 'Build the package (its dist/ may be missing) or fix the error above.',
      cause: err,
    },
  );
}

async function importModule(
  specifier: string,
  cwd: string,
  baseDir = cwd,
): Promise<{ mod: unknown; from: string }> {
  if (isPathSpecifier(specifier)) {
    const path = specifier.startsWith('file:') ? new URL(specifier).pathname : resolve(baseDir, specifier);
    if (!existsSync(path)) {
      throw new VfioError('ENOENT', `plugin module ${specifier} does not exist (looked at ${path}).`, {
        hint:
          baseDir === cwd
            ? 'Give the path of the plugin module relative to the working directory, or its package name.'
            : "Give the path of the plugin module relative to the configuration file's folder, or its package name.",
      });
    }
    try {
      return { mod: await import(pathToFileURL(path).href), from: path };
    } catch (err) {
      throw loadFailed(specifier, err);
    }
  }
  let entry: string | undefined;
  try {
    entry = createRequire(join(cwd, 'package.json')).resolve(specifier);
  } catch (err) {
    if (!isMissing(err, specifier) && code(err) !== 'ERR_PACKAGE_PATH_NOT_EXPORTED')
      throw loadFailed(specifier, err);
  }
  if (entry !== undefined) {
    try {
      return { mod: await import(pathToFileURL(entry).href), from: entry };
    } catch (err) {
      throw loadFailed(specifier, err);
    }
  }
  try {
    return { mod: await import(specifier), from: 'vfiokit' };
  } catch (err) {
    if (isMissing(err, specifier)) throw notFound(specifier, cwd);
    throw loadFailed(specifier, err);
  }
}

const FIELDS: readonly (readonly [keyof VfioPlugin, string, string])[] = [
  ['name', 'string', 'name'],
  ['contractVersion', 'number', 'contractVersion'],
  ['deviceApi', 'string', 'deviceApi'],
  ['description', 'string', 'description'],
  ['probe', 'function', 'probe function'],
];

/** Check that a module's default export is a plugin this VMM can use; say in one sentence what is wrong. */
export function checkPlugin(mod: unknown, specifier: string): VfioPlugin {
  const hint = 'Export the plugin as `export default definePlugin({ ... })` from @vfiokit/core.';
  const value = (mod as { default?: unknown } | null)?.default;
  if (value === undefined) {
    throw new VfioError('EINVAL', `plugin package "${specifier}" has no default export.`, { hint });
  }
  if (typeof value !== 'object' || value === null) {
    throw new VfioError(
      'EINVAL',
      `the default export of "${specifier}" is ${value === null ? 'null' : `a ${typeof value}`}, not a plugin.`,
      { hint },
    );
  }
  const p = value as Record<string, unknown>;
  for (const [key, type, what] of FIELDS) {
    if (typeof p[key] !== type) {
      throw new VfioError(
        'EINVAL',
        `the default export of "${specifier}" is not a plugin: it has no ${what}.`,
        { hint },
      );
    }
  }
  if (p.contractVersion !== CONTRACT_VERSION) {
    throw new VfioError(
      'EPROTO',
      `plugin "${specifier}" was written for plugin contract version ${String(p.contractVersion)}, but this vfiokit needs version ${CONTRACT_VERSION}.`,
      {
        hint: `Install a release of the plugin built against @vfiokit/core with CONTRACT_VERSION ${CONTRACT_VERSION}.`,
      },
    );
  }
  if (p.deviceApi !== 'vfio-pci') {
    throw new VfioError(
      'EINVAL',
      `plugin "${specifier}" serves device API "${String(p.deviceApi)}", but the reference VMM drives only vfio-pci devices.`,
    );
  }
  if (p.guestDrivers !== undefined && !Array.isArray(p.guestDrivers)) {
    throw new VfioError(
      'EINVAL',
      `the guestDrivers of plugin "${specifier}" is not a list of guest drivers.`,
      { hint },
    );
  }
  return value as VfioPlugin;
}

/** Import a plugin by package name (or path) and check it. */
export async function loadPlugin(specifier: string, opts: LoadPluginOptions = {}): Promise<LoadedPlugin> {
  const cwd = opts.cwd ?? process.cwd();
  const { mod, from } = await importModule(specifier, cwd, opts.baseDir ?? cwd);
  return { specifier, plugin: checkPlugin(mod, specifier), from };
}

/**
 * Import a package by name (or path), found as plugins are, and return its named export `name`
 * (for CLI commands that use a vendor package's helper, such as an OpRegion formatter). EINVAL
 * when the package has no such export.
 */
export async function loadPackageExport(
  specifier: string,
  name: string,
  opts: LoadPluginOptions = {},
): Promise<unknown> {
  const cwd = opts.cwd ?? process.cwd();
  const { mod } = await importModule(specifier, cwd);
  const value = (mod as Record<string, unknown> | null)?.[name];
  if (value === undefined) {
    throw new VfioError('EINVAL', `package "${specifier}" has no export named ${name}.`, {
      hint: `Install a release of ${specifier} that exports ${name}.`,
    });
  }
  return value;
}
