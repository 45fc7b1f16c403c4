import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTRACT_VERSION, VfioError } from '@vfiokit/core';
import { describe, expect, it } from 'vitest';
import { checkPlugin, createLogger, loadPlugin, probePlugins, systemClock } from '../src/loader/index.js';
import { tempDir } from './temp-dirs.js';

const fixtures = fileURLToPath(new URL('./fixtures/plugins/', import.meta.url));
/** A directory with no package.json or node_modules above it, so lookups fall back to vfiokit's own location. */
const bare = tempDir('vfiokit-loader-');

async function loadError(specifier: string, cwd = fixtures): Promise<VfioError> {
  const err = await loadPlugin(specifier, { cwd }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VfioError);
  return err as VfioError;
}

describe('loadPlugin', () => {
  it('loads the in-tree sample plugin by package name from vfiokit’s own location', async () => {
    const loaded = await loadPlugin('@vfiokit/sample-mtty', { cwd: bare });
    expect(loaded.plugin.contractVersion).toBe(CONTRACT_VERSION);
    expect(loaded.plugin.deviceApi).toBe('vfio-pci');
    expect(loaded.plugin.name).toBe('@vfiokit/sample-mtty');
  });

  it('says a package that is installed nowhere is not installed, and how to install it', async () => {
    const err = await loadError('@nobody/no-such-plugin', bare);
    expect(err.code).toBe('ENOENT');
    expect(err.problem).toBe(
      `plugin package "@nobody/no-such-plugin" is not installed where ${bare} or vfiokit can find it.`,
    );
    expect(err.hint).toContain('pnpm add @nobody/no-such-plugin');
  });

  it('finds a third-party package from the working directory’s node_modules first', async () => {
    const project = tempDir('vfiokit-project-');
    writeFileSync(join(project, 'package.json'), '{"name":"project","private":true}');
    const pkg = join(project, 'node_modules', 'third-party-plugin');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(
      join(pkg, 'package.json'),
      '{"name":"third-party-plugin","type":"module","main":"index.js"}',
    );
    writeFileSync(
      join(pkg, 'index.js'),
      "export default { name: 'third-party-plugin', contractVersion: 1, deviceApi: 'vfio-pci', description: 'x', probe: () => [] };\n",
    );
    const loaded = await loadPlugin('third-party-plugin', { cwd: project });
    expect(loaded.plugin.name).toBe('third-party-plugin');
    expect(loaded.from).toBe(join(pkg, 'index.js'));
  });

  it('loads a local plugin module given by path', async () => {
    const loaded = await loadPlugin('./empty-plugin.mjs', { cwd: fixtures });
    expect(loaded.plugin.name).toBe('empty-plugin');
  });

  it('says a local module path that does not exist does not exist', async () => {
    const err = await loadError('./missing-plugin.mjs');
    expect(err.code).toBe('ENOENT');
    expect(err.problem).toMatch(
      /^plugin module \.\/missing-plugin\.mjs does not exist \(looked at .*missing-plugin\.mjs\)\.$/,
    );
  });

  it('says a module without a default export has no default export', async () => {
    const err = await loadError('./no-default.mjs');
    expect(err.code).toBe('EINVAL');
    expect(err.problem).toBe('plugin package "./no-default.mjs" has no default export.');
    expect(err.hint).toContain('definePlugin');
  });

  it('says a default export that is not an object is not a plugin', async () => {
    const err = await loadError('./not-object.mjs');
    expect(err.problem).toBe('the default export of "./not-object.mjs" is a string, not a plugin.');
  });

  it('names the missing field of something that is not a plugin', async () => {
    const err = await loadError('./no-probe.mjs');
    expect(err.problem).toBe(
      'the default export of "./no-probe.mjs" is not a plugin: it has no probe function.',
    );
  });

  it('says which contract version a plugin has and which one is needed', async () => {
    const err = await loadError('./wrong-version.mjs');
    expect(err.code).toBe('EPROTO');
    expect(err.problem).toBe(
      `plugin "./wrong-version.mjs" was written for plugin contract version 99, but this vfiokit needs version ${CONTRACT_VERSION}.`,
    );
  });

  it('says a module that fails to evaluate was found but failed to load', async () => {
    const err = await loadError('./throws-on-import.mjs');
    expect(err.code).toBe('EIO');
    expect(err.problem).toBe(
      'plugin package "./throws-on-import.mjs" was found but failed to load: the module exploded at import.',
    );
  });
});

describe('checkPlugin', () => {
  const base = {
    name: 'p',
    contractVersion: CONTRACT_VERSION,
    deviceApi: 'vfio-pci',
    description: 'd',
    probe: () => [],
  };

  it('accepts a plugin object with every field', () => {
    expect(checkPlugin({ default: base }, 'p')).toBe(base);
  });

  it('refuses a device API other than vfio-pci', () => {
    expect(() => checkPlugin({ default: { ...base, deviceApi: 'vfio-ccw' } }, 'p')).toThrow(
      /serves device API "vfio-ccw", but the reference VMM drives only vfio-pci devices/,
    );
  });

  it('refuses guestDrivers that is not a list', () => {
    expect(() => checkPlugin({ default: { ...base, guestDrivers: {} } }, 'p')).toThrow(
      /guestDrivers of plugin "p" is not a list/,
    );
  });

  it('names each missing field in turn', () => {
    for (const [field, words] of [
      ['name', 'name'],
      ['contractVersion', 'contractVersion'],
      ['description', 'description'],
    ] as const) {
      const { [field]: _, ...rest } = base;
      expect(() => checkPlugin({ default: rest }, 'p')).toThrow(`it has no ${words}.`);
    }
  });

  it('says null is not a plugin', () => {
    expect(() => checkPlugin({ default: null }, 'p')).toThrow(
      'the default export of "p" is null, not a plugin.',
    );
  });
});

describe('probePlugins', () => {
  it('wraps a probe that throws into one sentence naming the plugin', async () => {
    const log = createLogger(() => {});
    const err = await probePlugins(
      [{ package: './probe-throws.mjs', options: {} }],
      { clock: systemClock, log },
      { cwd: fixtures },
    ).then(
      () => undefined,
      (e: unknown) => e as VfioError,
    );
    expect(err).toBeInstanceOf(VfioError);
    expect(err?.problem).toMatch(
      /^plugin "\.\/probe-throws\.mjs" failed to probe its parent devices: the plugin's code threw an Error: no hardware here\.$/,
    );
    // A probe is not a device access: nothing was refused, no device state is in question.
    expect(err?.hint).toBe(
      'This is a bug in plugin "./probe-throws.mjs": it should throw a VfioError that says what is wrong.',
    );
    expect(err?.message).not.toMatch(/device handler|access was refused/);
  });

  it('hands each plugin its options and returns its parents', async () => {
    const log = createLogger(() => {});
    const probed = await probePlugins(
      [{ package: '@vfiokit/sample-mtty', options: {} }],
      { clock: systemClock, log },
      { cwd: bare },
    );
    expect(probed[0].parents.map((p) => p.name)).toEqual(['mtty']);
    expect(probed[0].parents[0].types().map((t) => t.id)).toEqual(['mtty-1', 'mtty-2']);
  });
});
