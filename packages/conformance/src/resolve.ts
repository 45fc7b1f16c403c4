/**
 * Finding a plugin package's entry file the way its user means it, in this order:
 *
 * 1. a path (`./x.js`, `/abs/x.js`), taken relative to the working directory;
 * 2. a package installed in a `node_modules` folder at or above the working directory (what `node`
 *    itself would find there);
 * 3. a package of the workspace the working directory is in (pnpm-workspace.yaml `packages:`, or
 *    package.json `workspaces`), so `--plugin @vfiokit/sample-mtty` works from the repository root
 *    and from any folder of the workspace, where pnpm links only a package's declared dependencies;
 * 4. a package installed beside this suite (a global install of both).
 *
 * The entry is chosen by the package's `exports` (conditions `import`, `node`, `default`, plus any
 * `--conditions` this process runs with), else `main`, else `index.js`. A workspace package whose
 * entry does not exist yet is reported as not built, with the command that builds it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VfioError } from '@vfiokit/core';

export type PluginSource = 'path' | 'node_modules' | 'workspace' | 'beside-suite';

export interface ResolvedPlugin {
  /** Absolute path of the entry file to import. */
  file: string;
  /** Which step of the search found it. */
  via: PluginSource;
  /** The package folder (for a path: the file's folder). */
  packageDir: string;
}

interface PackageJson {
  name?: unknown;
  main?: unknown;
  exports?: unknown;
  workspaces?: unknown;
}

/** The export conditions used to pick an entry: the defaults plus `--conditions` of this process. */
export function activeConditions(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions = process.env.NODE_OPTIONS ?? '',
): string[] {
  const extra: string[] = [];
  const args = [...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const m = /^(?:--conditions|-C)(?:=(.*))?$/.exec(a);
    if (!m) continue;
    const v = m[1] ?? args[++i];
    if (v) extra.push(v);
  }
  return [...extra, 'import', 'node', 'default'];
}

/**
 * The `packages:` globs of a pnpm-workspace.yaml (only that key is read; quotes are removed,
 * comments and blank lines skipped). Never throws: text that is not a workspace file gives [].
 */
export function parsePnpmWorkspace(text: string): string[] {
  const out: string[] = [];
  let inPackages = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = stripComment(raw);
    if (line.trim() === '') continue;
    if (!/^\s/.test(line)) {
      // A top-level key: `packages:` opens the list (an inline `[a, b]` flow list is read at once).
      const m = /^packages\s*:\s*(.*)$/.exec(line.trimEnd());
      inPackages = m !== null;
      if (m?.[1].startsWith('[')) {
        inPackages = false;
        const body = m[1].replace(/^\[/, '').replace(/\]\s*$/, '');
        for (const item of body.split(',')) {
          const v = unquote(item.trim());
          if (v !== '') out.push(v);
        }
      }
      continue;
    }
    if (!inPackages) continue;
    const item = /^\s*-\s*(.*)$/.exec(line);
    if (!item) continue;
    const v = unquote(item[1].trim());
    if (v !== '') out.push(v);
  }
  return out;
}

function stripComment(line: string): string {
  // A # starts a comment outside quotes (YAML needs a space or line start before it).
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

function unquote(v: string): string {
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v[v.length - 1] === v[0]) return v.slice(1, -1);
  return v;
}

function readJson(file: string): PackageJson | undefined {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as PackageJson) : undefined;
  } catch {
    return undefined;
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The workspace that contains `from`: its root and its package globs. */
export function findWorkspace(from: string): { root: string; patterns: string[] } | undefined {
  let dir = path.resolve(from);
  for (;;) {
    const pnpm = path.join(dir, 'pnpm-workspace.yaml');
    if (isFile(pnpm)) {
      let text = '';
      try {
        text = readFileSync(pnpm, 'utf8');
      } catch {
        // unreadable: treated as empty
      }
      return { root: dir, patterns: parsePnpmWorkspace(text) };
    }
    const pkg = readJson(path.join(dir, 'package.json'));
    const ws = pkg?.workspaces;
    const list = Array.isArray(ws)
      ? ws
      : typeof ws === 'object' && ws !== null && Array.isArray((ws as { packages?: unknown }).packages)
        ? (ws as { packages: unknown[] }).packages
        : undefined;
    if (list) return { root: dir, patterns: list.filter((p): p is string => typeof p === 'string') };
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

const MAX_GLOB_DEPTH = 8;

/** The package folders a workspace's globs name (`dir`, `dir/*`, `dir/**`, `!exclusions`). */
export function workspaceDirs(root: string, patterns: readonly string[]): string[] {
  const include = new Set<string>();
  const exclude: string[] = [];
  for (const raw of patterns) {
    const neg = raw.startsWith('!');
    const pattern = (neg ? raw.slice(1) : raw).replace(/^\.\//, '').replace(/\/+$/, '');
    if (neg) {
      exclude.push(pattern);
      continue;
    }
    for (const dir of expandGlob(root, pattern)) include.add(dir);
  }
  return [...include]
    .filter((dir) => !exclude.some((x) => globMatch(x, path.relative(root, dir).split(path.sep).join('/'))))
    .sort();
}

function expandGlob(root: string, pattern: string): string[] {
  const parts = pattern.split('/').filter((p) => p !== '' && p !== '.');
  const out: string[] = [];
  const walk = (dir: string, i: number, depth: number) => {
    if (depth > MAX_GLOB_DEPTH) return;
    if (i === parts.length) {
      if (isFile(path.join(dir, 'package.json'))) out.push(dir);
      return;
    }
    const part = parts[i];
    if (part === '**') {
      walk(dir, i + 1, depth);
      for (const child of subdirs(dir)) walk(path.join(dir, child), i, depth + 1);
      return;
    }
    if (!/[*?[]/.test(part)) {
      if (part === '..') return; // a workspace package lives under its root
      const next = path.join(dir, part);
      if (isDir(next)) walk(next, i + 1, depth + 1);
      return;
    }
    for (const child of subdirs(dir))
      if (globMatch(part, child)) walk(path.join(dir, child), i + 1, depth + 1);
  };
  walk(root, 0, 0);
  return out;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory() && d.name !== 'node_modules' && !d.name.startsWith('.'))
      .map((d) => d.name);
  } catch {
    return [];
  }
}

/** A small glob match: `*` and `?` within one path part, `**` across parts. */
export function globMatch(pattern: string, subject: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        re += '.*';
        i++;
        if (pattern[i + 1] === '/') i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[\\^$.+()|{}[\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`).test(subject);
}

/**
 * The files a package's `exports["."]` (or `main`) names for these conditions, best first,
 * relative to the package folder; empty when its exports offer nothing for them. Node takes only
 * the first; the search takes the first that exists, since a published package may list a
 * condition's entry (a source entry) without shipping that file.
 */
export function packageEntries(pkg: PackageJson, conditions: readonly string[]): string[] {
  const exp = pkg.exports;
  if (exp !== undefined && exp !== null) {
    let root: unknown = exp;
    if (typeof exp === 'object' && !Array.isArray(exp)) {
      const keys = Object.keys(exp as object);
      if (keys.some((k) => k.startsWith('.'))) root = (exp as Record<string, unknown>)['.'];
    }
    const out: string[] = [];
    collectTargets(root, conditions, 0, out);
    if (out.length > 0 || root !== undefined) return [...new Set(out)];
  }
  if (typeof pkg.main === 'string' && pkg.main !== '') return [pkg.main];
  return ['index.js'];
}

/** The entry Node would pick (the first of packageEntries), if any. */
export function packageEntry(pkg: PackageJson, conditions: readonly string[]): string | undefined {
  return packageEntries(pkg, conditions)[0];
}

function collectTargets(value: unknown, conditions: readonly string[], depth: number, out: string[]): void {
  if (depth > 16) return;
  if (typeof value === 'string') {
    out.push(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectTargets(v, conditions, depth + 1, out);
    return;
  }
  if (typeof value === 'object' && value !== null) {
    // Object key order decides, as in Node: active conditions in the order the package lists them.
    for (const [k, v] of Object.entries(value)) {
      if (k !== 'types' && conditions.includes(k)) collectTargets(v, conditions, depth + 1, out);
    }
  }
}

/** The first of a package's entries that exists, or a sentence saying which ones are missing. */
function existingEntry(dir: string, pkg: PackageJson | undefined, conditions: readonly string[]) {
  const entries = pkg ? packageEntries(pkg, conditions) : ['index.js'];
  const file = entries.find((e) => isFile(path.join(dir, e)));
  if (file !== undefined) return { file: path.join(dir, file) };
  const missing =
    entries.length === 0
      ? 'its exports name no entry for import'
      : entries.length === 1
        ? `no ${entries[0]}`
        : `none of ${entries.join(', ')} exists`;
  return { missing };
}

function splitName(name: string): string[] {
  return name.split('/');
}

/** A valid npm package name (scoped or not), so a name never walks out of node_modules. */
export function isPackageName(name: string): boolean {
  return /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/i.test(name);
}

function fromNodeModules(name: string, start: string, conditions: readonly string[]) {
  let dir = path.resolve(start);
  for (;;) {
    const pkgDir = path.join(dir, 'node_modules', ...splitName(name));
    const pkg = readJson(path.join(pkgDir, 'package.json'));
    if (pkg) return { pkgDir, found: existingEntry(pkgDir, pkg, conditions) };
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

const here = path.dirname(fileURLToPath(import.meta.url));

function notLoadable(name: string, problem: string, hint: string): VfioError {
  return new VfioError('ENOENT', `cannot load plugin package "${name}": ${problem}`, { hint });
}

/** Where the plugin `name` is, searched from `cwd` as the module comment says. */
export function resolvePlugin(
  name: string,
  cwd: string = process.cwd(),
  conditions: readonly string[] = activeConditions(),
  suiteDir: string = here,
): ResolvedPlugin {
  if (name.startsWith('.') || path.isAbsolute(name) || name.startsWith('file:')) {
    const file = name.startsWith('file:') ? fileURLToPath(name) : path.resolve(cwd, name);
    if (!existsSync(file)) {
      throw notLoadable(
        name,
        `there is no file ${file}.`,
        'Check the path (it is taken from the current directory).',
      );
    }
    if (isDir(file)) {
      const found = existingEntry(file, readJson(path.join(file, 'package.json')), conditions);
      if (found.file === undefined) {
        throw notLoadable(
          name,
          `the folder ${file} has no entry file (${found.missing}).`,
          'Build the package, or give the path of its entry file.',
        );
      }
      return { file: found.file, via: 'path', packageDir: file };
    }
    return { file, via: 'path', packageDir: path.dirname(file) };
  }
  if (!isPackageName(name)) {
    throw notLoadable(
      name,
      'that is neither a package name nor a path.',
      'Give a package name such as @vfiokit/sample-mtty, or a path starting with ./ or /.',
    );
  }

  const installed = fromNodeModules(name, cwd, conditions);
  if (installed) return checkEntry(name, installed.pkgDir, installed.found, 'node_modules');

  const ws = findWorkspace(cwd);
  if (ws) {
    for (const dir of workspaceDirs(ws.root, ws.patterns)) {
      const pkg = readJson(path.join(dir, 'package.json'));
      if (pkg?.name !== name) continue;
      const found = existingEntry(dir, pkg, conditions);
      if (found.file === undefined) {
        const rel = path.relative(ws.root, dir) || '.';
        throw notLoadable(
          name,
          `it is the workspace package in ${rel}, but it is not built (${found.missing}).`,
          `Build it first: \`pnpm --filter ${name} build\` (or \`pnpm run build\` at ${ws.root}).`,
        );
      }
      return { file: found.file, via: 'workspace', packageDir: dir };
    }
  }

  const beside = fromNodeModules(name, suiteDir, conditions);
  if (beside) return checkEntry(name, beside.pkgDir, beside.found, 'beside-suite');

  throw notLoadable(
    name,
    `no package of that name is installed in a node_modules folder at or above ${cwd}${
      ws ? `, nor is it a package of the workspace at ${ws.root}` : ''
    }, nor is it installed beside vfiokit-conformance.`,
    'Install the package (and build it) where you run the suite, run the suite inside the workspace that has it, or pass a path to its entry file.',
  );
}

function checkEntry(
  name: string,
  pkgDir: string,
  found: { file?: string; missing?: string },
  via: PluginSource,
): ResolvedPlugin {
  if (found.file === undefined) {
    throw notLoadable(
      name,
      `it is installed at ${pkgDir}, but it has no entry file (${found.missing}).`,
      'Build the package (a workspace link points at its sources), or reinstall it.',
    );
  }
  return { file: found.file, via, packageDir: pkgDir };
}
