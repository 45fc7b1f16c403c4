/**
 * Where the guest suite runs: the repository, the QEMU to use, the cache outside the
 * repository, the report folder. QEMU comes from VFIOKIT_QEMU (a path, relative paths from the
 * repository root); without it a user's machine skips the suite, while CI (VFIOKIT_QEMU set,
 * or CI=true) must run it.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** tools/guest (this file is in src/ or dist/). */
export const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export function repoRoot(from = PACKAGE_DIR): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    if (dirname(dir) === dir)
      throw new Error(`no pnpm-workspace.yaml above ${from}: not inside the vfiokit repository.`);
  }
}

export type QemuChoice =
  | { readonly kind: 'run'; readonly qemu: string }
  /** Not configured on a user's machine: skip, saying so. */
  | { readonly kind: 'skip'; readonly why: string }
  /** CI without a usable QEMU: a failure. */
  | { readonly kind: 'error'; readonly why: string };

/** The CI path of the shared QEMU build, relative to the repository root. */
export const CI_QEMU = '../shared/qemu/qemu-system-x86_64';

export function chooseQemu(env: NodeJS.ProcessEnv, root: string): QemuChoice {
  const ci = env.CI === 'true' || env.CI === '1';
  const given = env.VFIOKIT_QEMU;
  if (given === undefined || given === '') {
    if (!ci)
      return {
        kind: 'skip',
        why: 'skipped: no QEMU configured (set VFIOKIT_QEMU to a qemu-system-x86_64 with vfio-user-pci, such as ../shared/qemu/qemu-system-x86_64)',
      };
    const fallback = resolve(root, CI_QEMU);
    if (!existsSync(fallback))
      return { kind: 'error', why: `CI=true but VFIOKIT_QEMU is not set and ${fallback} does not exist.` };
    return { kind: 'run', qemu: fallback };
  }
  const qemu = resolve(root, given);
  try {
    accessSync(qemu, constants.X_OK);
  } catch {
    return { kind: 'error', why: `VFIOKIT_QEMU=${given} is not an executable file (${qemu}).` };
  }
  return { kind: 'run', qemu };
}

/** Downloads and builds that outlive a run: VFIOKIT_GUEST_CACHE or ~/.cache/vfiokit-guest. */
export function cacheDir(env: NodeJS.ProcessEnv): string {
  if (env.VFIOKIT_GUEST_CACHE) return resolve(env.VFIOKIT_GUEST_CACHE);
  const base = env.XDG_CACHE_HOME ? resolve(env.XDG_CACHE_HOME) : join(homedir(), '.cache');
  return join(base, 'vfiokit-guest');
}

/** Boots at once: one per core (a TCG guest keeps one busy), or VFIOKIT_GUEST_JOBS. */
export function jobs(env: NodeJS.ProcessEnv): number {
  const n = Number(env.VFIOKIT_GUEST_JOBS);
  return Number.isInteger(n) && n > 0 ? n : Math.max(1, availableParallelism());
}
