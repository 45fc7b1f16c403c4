/**
 * The built project inside a guest, for suites whose guest runs vfiokit itself (the kernel
 * backend's suites): a node_modules tree holding each workspace package's package.json, dist
 * and native addons, and the third-party packages they need at run time, copied from where
 * the workspace resolves them. Node itself goes in as a file with its libraries.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import type { GuestFile } from '../suite.js';

/** Where the project goes in the guest; run `node` from here and packages resolve by name. */
export const GUEST_PROJECT = '/vfk/project';

/**
 * QEMU options for a boot whose guest runs Node: a CPU with RDRAND, which the kernel trusts to
 * seed its random pool at boot (random.trust_cpu). Without it Node's first getrandom() waits
 * for the kernel's jitter entropy, which takes about 15 s under TCG.
 */
export const NODE_GUEST_QEMU_ARGS: readonly string[] = ['-cpu', 'qemu64,+rdrand'];

interface PackageJson {
  name: string;
  dependencies?: Record<string, string>;
}

function readJson(file: string): PackageJson {
  return JSON.parse(readFileSync(file, 'utf8')) as PackageJson;
}

/** The workspace packages by name (packages/*, apps/*). */
function workspace(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const group of ['packages', 'apps', 'tools']) {
    const dir = join(root, group);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const pj = join(dir, name, 'package.json');
      if (existsSync(pj)) out.set(readJson(pj).name, join(dir, name));
    }
  }
  return out;
}

/**
 * The folder of third-party package `name` as Node finds it from `from`: the first
 * node_modules/<name> on the way up (following pnpm's links), whatever its exports allow.
 */
function packageDir(name: string, from: string): string {
  for (let d = realpathSync(from); ; d = dirname(d)) {
    const candidate = join(d, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (d === dirname(d)) break;
  }
  throw new Error(`cannot find the package ${name} from ${from}.`);
}

/**
 * Stage `names` (workspace packages) and everything they need at run time into `dir`; the guest
 * files that put it at GUEST_PROJECT, with Node.
 */
export function projectFiles(root: string, dir: string, names: readonly string[]): GuestFile[] {
  const ws = workspace(root);
  const modules = join(dir, 'node_modules');
  const done = new Set<string>();
  const stage = (name: string, from: string) => {
    if (done.has(name)) return;
    done.add(name);
    const local = ws.get(name);
    const to = join(modules, name);
    mkdirSync(to, { recursive: true });
    let deps: Record<string, string> = {};
    if (local) {
      if (!existsSync(join(local, 'dist')))
        throw new Error(`${name} is not built (no ${join(local, 'dist')}): run the build first.`);
      cpSync(join(local, 'package.json'), join(to, 'package.json'));
      cpSync(join(local, 'dist'), join(to, 'dist'), {
        recursive: true,
        filter: (src) => !src.endsWith('.map') && !src.endsWith('.d.ts'),
      });
      const addons = join(local, 'build', 'Release');
      if (existsSync(addons))
        for (const f of readdirSync(addons).filter((f) => f.endsWith('.node')))
          cpSync(join(addons, f), join(to, 'build', 'Release', f));
      deps = readJson(join(local, 'package.json')).dependencies ?? {};
      for (const d of Object.keys(deps)) stage(d, local);
    } else {
      const src = packageDir(name, from);
      cpSync(src, to, { recursive: true, dereference: true });
      deps = readJson(join(src, 'package.json')).dependencies ?? {};
      for (const d of Object.keys(deps)) stage(d, src);
    }
  };
  for (const n of names) stage(n, root);
  writeFileSync(
    join(dir, 'package.json'),
    '{ "name": "vfiokit-guest-project", "private": true, "type": "module" }\n',
  );
  return [
    { path: '/usr/bin/node', from: process.execPath, withLibraries: true },
    { path: GUEST_PROJECT, tree: dir },
  ];
}
