/**
 * The guest kernel: Debian's own, unmodified (`linux-image-<release>-unsigned`: 8250_pci built
 * in; i915, nouveau and vfio as modules). The package ships no modules.dep (Debian's postinst
 * runs depmod), so busybox's depmod makes one when the package is first extracted. Modules go
 * into the guest uncompressed: TCG is slow at xz, the host is not.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { debianPackage } from './debian.js';
import type { Userland } from './userland.js';

const run = promisify(execFile);

/** The kernel every guest boots (Debian 12's 6.12 from bookworm-security). */
export const GUEST_KERNEL_RELEASE = '6.12.118+deb12-amd64';

export interface GuestModule {
  /** modules.dep's path of it, with `.ko` for `.ko.xz`: `kernel/drivers/vfio/vfio.ko`. */
  readonly path: string;
  /** The uncompressed module on the host. */
  readonly file: string;
}

export interface GuestKernel {
  readonly release: string;
  readonly packageVersion: string;
  readonly vmlinuz: string;
  /**
   * `names` and every module they depend on, the modules.dep lines for exactly those, and the
   * names to modprobe (those not built into the kernel).
   */
  modules(names: readonly string[]): Promise<{
    readonly files: GuestModule[];
    readonly modulesDep: string;
    readonly load: string[];
  }>;
}

/** modules.dep: `kernel/a.ko.xz: kernel/b.ko.xz kernel/c.ko.xz` (dependencies listed in full). */
export function parseModulesDep(text: string): Map<string, { path: string; deps: string[] }> {
  const byName = new Map<string, { path: string; deps: string[] }>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const path = line.slice(0, colon).trim();
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter((d) => d !== '');
    byName.set(moduleName(path), { path, deps });
  }
  return byName;
}

/** `kernel/drivers/vfio/pci/vfio-pci.ko.xz` → `vfio_pci` (modprobe treats - and _ alike). */
export function moduleName(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return base.replace(/\.ko(\.xz|\.zst|\.gz)?$/, '').replace(/-/g, '_');
}

const uncompressed = (p: string) => p.replace(/\.ko\.xz$/, '.ko');

export async function guestKernel(opts: {
  readonly cacheDir: string;
  readonly userland: Userland;
  readonly log: (line: string) => void;
}): Promise<GuestKernel> {
  const release = GUEST_KERNEL_RELEASE;
  const busybox = opts.userland.busybox;
  const pkg = await debianPackage(`linux-image-${release}-unsigned`, {
    cacheDir: opts.cacheDir,
    log: opts.log,
    prepare: async (root) => {
      opts.log(`depmod for ${release}`);
      await run(busybox, ['depmod', '-b', root, release], { maxBuffer: 64 << 20 });
    },
  });
  const modRoot = join(pkg.root, 'lib', 'modules', release);
  const vmlinuz = join(pkg.root, 'boot', `vmlinuz-${release}`);
  if (!existsSync(vmlinuz)) throw new Error(`${pkg.name} ${pkg.version} has no boot/vmlinuz-${release}.`);
  let dep: Map<string, { path: string; deps: string[] }> | undefined;
  const rawDir = join(pkg.root, '..', 'uncompressed');

  /** The module at modules.dep path `path`, uncompressed once into the cache. */
  const raw = async (path: string): Promise<string> => {
    const out = join(rawDir, uncompressed(path));
    if (existsSync(out)) return out;
    mkdirSync(dirname(out), { recursive: true });
    const src = join(modRoot, path);
    if (path.endsWith('.ko.xz')) {
      const tmp = `${out}.${process.pid}.tmp`;
      await run('sh', ['-c', '"$0" xz -dc "$1" > "$2"', busybox, src, tmp]);
      renameSync(tmp, out);
      return out;
    }
    return src;
  };

  return {
    release,
    packageVersion: pkg.version,
    vmlinuz,
    async modules(names) {
      if (names.length === 0) return { files: [], modulesDep: '', load: [] };
      dep ??= parseModulesDep(readFileSync(join(modRoot, 'modules.dep'), 'utf8'));
      const builtin = new Set(
        readFileSync(join(modRoot, 'modules.builtin'), 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map(moduleName),
      );
      const wanted = new Set<string>();
      const load: string[] = [];
      for (const n of names) {
        const name = n.replace(/-/g, '_');
        if (builtin.has(name)) continue;
        load.push(name);
        const entry = dep.get(name);
        if (!entry)
          throw new Error(
            `${pkg.name} ${pkg.version} has no module "${n}" (not in modules.dep or modules.builtin).`,
          );
        wanted.add(entry.path);
        for (const d of entry.deps) wanted.add(d);
      }
      const files: GuestModule[] = [];
      const lines: string[] = [];
      for (const path of wanted) {
        files.push({ path: uncompressed(path), file: await raw(path) });
        const entry = dep.get(moduleName(path));
        lines.push(`${uncompressed(path)}:${(entry?.deps ?? []).map((d) => ` ${uncompressed(d)}`).join('')}`);
      }
      return { files, modulesDep: `${lines.join('\n')}\n`, load };
    },
  };
}
