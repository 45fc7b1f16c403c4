import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTRACT_VERSION, VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import {
  activeConditions,
  globMatch,
  loadPlugin,
  packageEntries,
  packageEntry,
  parsePnpmWorkspace,
  resolvePlugin,
  workspaceDirs,
} from '../src/index.js';

const CONDITIONS = ['import', 'node', 'default'];
const here = path.dirname(fileURLToPath(import.meta.url));
/** A folder that has no node_modules above it and is in no workspace. */
const NOWHERE = path.join(tmpdir(), 'vfiokit-nowhere');

/** A plugin as plain JavaScript (no import of @vfiokit/core, so it loads from any folder). */
function pluginSource(name: string): string {
  return `export default { name: ${JSON.stringify(name)}, contractVersion: ${CONTRACT_VERSION}, deviceApi: 'vfio-pci', probe() { return []; } };\n`;
}

function write(file: string, text: string) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}

function pkgJson(name: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    name,
    type: 'module',
    exports: {
      '.': { '@vfiokit/source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' },
    },
    ...extra,
  });
}

/**
 * A pnpm-style workspace: packages/built (dist present), packages/unbuilt (no dist), apps/app
 * (its own node_modules has a dependency), tools/deep/x excluded by a negation.
 */
function makeWorkspace(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'vfiokit-ws-'));
  write(path.join(root, 'package.json'), JSON.stringify({ name: 'root', private: true }));
  write(
    path.join(root, 'pnpm-workspace.yaml'),
    "# a comment\npackages:\n  - packages/*   # every package\n  - 'apps/*'\n  - \"tools/**\"\n  - '!tools/deep/excluded'\nallowBuilds:\n  esbuild: true\n",
  );
  write(path.join(root, 'packages/built/package.json'), pkgJson('@t/built'));
  write(path.join(root, 'packages/built/dist/index.js'), pluginSource('built'));
  write(path.join(root, 'packages/unbuilt/package.json'), pkgJson('@t/unbuilt'));
  write(path.join(root, 'packages/unbuilt/src/other.ts'), '');
  write(path.join(root, 'packages/srconly/package.json'), pkgJson('@t/srconly'));
  write(path.join(root, 'packages/srconly/src/index.ts'), '');
  write(path.join(root, 'apps/app/package.json'), pkgJson('@t/app'));
  write(
    path.join(root, 'apps/app/node_modules/@t/dep/package.json'),
    JSON.stringify({ name: '@t/dep', main: 'main.js' }),
  );
  write(path.join(root, 'apps/app/node_modules/@t/dep/main.js'), pluginSource('dep'));
  write(path.join(root, 'tools/deep/excluded/package.json'), pkgJson('@t/excluded'));
  write(path.join(root, 'tools/deep/excluded/dist/index.js'), pluginSource('excluded'));
  write(path.join(root, 'tools/deep/kept/package.json'), pkgJson('@t/kept'));
  write(path.join(root, 'tools/deep/kept/dist/index.js'), pluginSource('kept'));
  return root;
}

describe('plugin resolution', () => {
  const root = makeWorkspace();

  it('finds a workspace package from the root and from any folder of the workspace', () => {
    for (const cwd of [
      root,
      path.join(root, 'packages'),
      path.join(root, 'packages/unbuilt/src'),
      path.join(root, 'apps/app'),
    ]) {
      const r = resolvePlugin('@t/built', cwd, CONDITIONS, NOWHERE);
      expect(r.via, cwd).toBe('workspace');
      expect(r.file).toBe(path.join(root, 'packages/built/dist/index.js'));
    }
    expect(resolvePlugin('@t/kept', root, CONDITIONS, NOWHERE).file).toBe(
      path.join(root, 'tools/deep/kept/dist/index.js'),
    );
  });

  it('says a workspace package is not built, and how to build it', () => {
    expect(() => resolvePlugin('@t/unbuilt', root, CONDITIONS, NOWHERE)).toThrow(
      /"@t\/unbuilt": it is the workspace package in packages\/unbuilt, but it is not built \(no \.\/dist\/index\.js\)/,
    );
    expect(() => resolvePlugin('@t/unbuilt', root, ['@vfiokit/source', ...CONDITIONS], NOWHERE)).toThrow(
      /not built \(none of \.\/src\/index\.ts, \.\/dist\/index\.js exists\)/,
    );
    try {
      resolvePlugin('@t/unbuilt', root, CONDITIONS, NOWHERE);
    } catch (e) {
      expect((e as VfioError).hint).toContain('pnpm --filter @t/unbuilt build');
    }
  });

  it('uses the source entry when this process runs with --conditions=@vfiokit/source', () => {
    const conditions = activeConditions(['--conditions=@vfiokit/source'], '');
    expect(conditions[0]).toBe('@vfiokit/source');
    expect(resolvePlugin('@t/srconly', root, conditions, NOWHERE).file).toBe(
      path.join(root, 'packages/srconly/src/index.ts'),
    );
    // A package that lists a source entry it does not ship still loads by its built entry.
    expect(resolvePlugin('@t/built', root, conditions, NOWHERE).file).toBe(
      path.join(root, 'packages/built/dist/index.js'),
    );
    expect(activeConditions([], '--conditions foo -C bar')).toEqual(['foo', 'bar', ...CONDITIONS]);
  });

  it('honours workspace negations', () => {
    expect(() => resolvePlugin('@t/excluded', root, CONDITIONS, NOWHERE)).toThrow(/no package of that name/);
  });

  it('prefers what node_modules at or above the working directory holds', () => {
    const r = resolvePlugin('@t/dep', path.join(root, 'apps/app'), CONDITIONS, NOWHERE);
    expect(r.via).toBe('node_modules');
    expect(r.file).toBe(path.join(root, 'apps/app/node_modules/@t/dep/main.js'));
  });

  it('finds an installed package (a symlinked install too) outside any workspace, and loads it', async () => {
    const proj = mkdtempSync(path.join(tmpdir(), 'vfiokit-proj-'));
    write(path.join(proj, 'package.json'), JSON.stringify({ name: 'proj' }));
    symlinkSync(
      path.join(root, 'packages/built'),
      path.join(mkdirP(path.join(proj, 'node_modules/@t')), 'built'),
    );
    const sub = mkdirP(path.join(proj, 'src/deeper'));
    expect(resolvePlugin('@t/built', sub, CONDITIONS, NOWHERE).via).toBe('node_modules');
    const plugin = await loadPlugin('@t/built', sub);
    expect(plugin.name).toBe('built');
  });

  it('falls back to a package installed beside the suite', () => {
    const beside = mkdtempSync(path.join(tmpdir(), 'vfiokit-beside-'));
    write(path.join(beside, 'node_modules/@t/global/package.json'), JSON.stringify({ name: '@t/global' }));
    write(path.join(beside, 'node_modules/@t/global/index.js'), pluginSource('global'));
    const suiteDir = mkdirP(path.join(beside, 'node_modules/@vfiokit/conformance/dist'));
    const r = resolvePlugin('@t/global', NOWHERE, CONDITIONS, suiteDir);
    expect(r).toMatchObject({
      via: 'beside-suite',
      file: path.join(beside, 'node_modules/@t/global/index.js'),
    });
  });

  it('takes paths from the working directory: a file or a package folder', () => {
    expect(resolvePlugin('./packages/built/dist/index.js', root, CONDITIONS, NOWHERE).via).toBe('path');
    expect(resolvePlugin('./packages/built', root, CONDITIONS, NOWHERE).file).toBe(
      path.join(root, 'packages/built/dist/index.js'),
    );
    expect(() => resolvePlugin('./packages/unbuilt', root, CONDITIONS, NOWHERE)).toThrow(
      /has no entry file \(no \.\/dist\/index\.js\)/,
    );
    expect(() => resolvePlugin('./nope.js', root, CONDITIONS, NOWHERE)).toThrow(/there is no file/);
  });

  it('refuses a name that is neither a package name nor a path', () => {
    expect(() => resolvePlugin('a/../../b', root, CONDITIONS, NOWHERE)).toThrow(
      /neither a package name nor a path/,
    );
  });

  it('from the CLI: --plugin by name works from a folder of the workspace', async () => {
    let out = '';
    let err = '';
    const cwd = process.cwd();
    process.chdir(path.join(root, 'packages/unbuilt'));
    try {
      const code = await main(
        ['--plugin', '@t/unbuilt'],
        { isTTY: false, write: (s: string) => (out += s) },
        { isTTY: false, write: (s: string) => (err += s) },
      );
      expect(code).toBe(2);
      expect(err).toContain('it is the workspace package in packages/unbuilt, but it is not built');
    } finally {
      process.chdir(cwd);
    }
    expect(out).toBe('');
  });
});

function mkdirP(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

describe('packageEntry', () => {
  it('follows exports conditions in key order, then main, then index.js', () => {
    expect(packageEntry({ exports: './a.js' }, CONDITIONS)).toBe('./a.js');
    expect(packageEntry({ exports: { import: './m.js', require: './c.cjs' } }, CONDITIONS)).toBe('./m.js');
    expect(packageEntry({ exports: { '.': { require: './c.cjs', default: './d.js' } } }, CONDITIONS)).toBe(
      './d.js',
    );
    expect(packageEntry({ exports: { '.': { require: './c.cjs' } } }, CONDITIONS)).toBeUndefined();
    expect(packageEntry({ exports: { '.': [{ worker: './w.js' }, './f.js'] } }, CONDITIONS)).toBe('./f.js');
    expect(packageEntry({ main: 'lib/x.js' }, CONDITIONS)).toBe('lib/x.js');
    expect(
      packageEntries({ exports: { '.': { '@vfiokit/source': './s.ts', default: './d.js' } } }, [
        '@vfiokit/source',
        ...CONDITIONS,
      ]),
    ).toEqual(['./s.ts', './d.js']);
    expect(packageEntry({}, CONDITIONS)).toBe('index.js');
    expect(
      packageEntry({ exports: { '.': { types: './t.d.ts', node: { import: './n.js' } } } }, CONDITIONS),
    ).toBe('./n.js');
  });
});

describe('pnpm-workspace.yaml parsing (properties)', () => {
  const glob = fc.stringMatching(/^!?[a-z][a-z0-9_-]{0,8}(\/(\*|\*\*|[a-z0-9_-]{1,6}))?$/);

  it('reads back every glob of a generated file, whatever the quoting, comments and other keys', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(glob, fc.constantFrom('', "'", '"'), fc.boolean()), { maxLength: 8 }),
        fc.boolean(),
        (items, otherKeys) => {
          const lines = [otherKeys ? 'onlyBuiltDependencies:\n  - esbuild' : '', 'packages:'];
          for (const [g, q, comment] of items) lines.push(`  - ${q}${g}${q}${comment ? '  # note' : ''}`);
          if (otherKeys) lines.push('catalog:\n  react: ^18');
          expect(parsePnpmWorkspace(lines.join('\n'))).toEqual(items.map(([g]) => g));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads a flow list', () => {
    expect(parsePnpmWorkspace('packages: [\'a/*\', b, "c/**"]\n')).toEqual(['a/*', 'b', 'c/**']);
  });

  it('never throws and returns only non-empty strings, for any text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        const out = parsePnpmWorkspace(text);
        expect(Array.isArray(out)).toBe(true);
        for (const v of out) expect(typeof v === 'string' && v.length > 0).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('globMatch: * stays in one path part, ** crosses parts, literals match only themselves', () => {
    const part = fc.stringMatching(/^[a-z0-9.+()$^-]{1,6}$/);
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 4 }), (parts) => {
        const subject = parts.join('/');
        expect(globMatch(subject, subject)).toBe(true);
        expect(globMatch('**', subject)).toBe(true);
        expect(globMatch('*', subject)).toBe(parts.length === 1);
        expect(globMatch(`${parts[0]}/**`, subject)).toBe(parts.length > 1);
      }),
      { numRuns: 300 },
    );
  });

  it('workspaceDirs never leaves the root', () => {
    const root = makeWorkspace();
    for (const dir of workspaceDirs(root, ['../*', '**', './packages/*', 'packages/../apps/*'])) {
      expect(path.relative(root, dir).startsWith('..')).toBe(false);
    }
  });
});

describe('this repository', () => {
  const repo = path.resolve(here, '../../..');
  it('finds @vfiokit/sample-mtty from the root and from another package, by its source entry under vitest conditions', () => {
    const conditions = ['@vfiokit/source', ...CONDITIONS];
    for (const cwd of [repo, path.join(repo, 'packages/gvt-d'), path.join(repo, 'apps/reference-vmm/src')]) {
      const r = resolvePlugin('@vfiokit/sample-mtty', cwd, conditions, NOWHERE);
      expect(realpathSync(r.file)).toBe(path.join(repo, 'packages/sample-mtty/src/index.ts'));
    }
  });
  it('gives VfioError ENOENT for a package nobody has', () => {
    expect(() => resolvePlugin('@vfiokit/no-such-plugin', repo)).toThrow(VfioError);
  });
});
