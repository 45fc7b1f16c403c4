/**
 * The guest's user space: busybox (busybox-static: sh, stty, dd, od, devmem, modprobe...),
 * lspci and setpci from pciutils with the libraries they load and the pci.ids names, and the
 * small static helper `vfk` (guest/vfk.c: mmap of sysfs BAR files, page frames of DMA
 * buffers, i915 execbuf), compiled here with `gcc -static` and cached by the hash of its source.
 * The DRM uapi headers come from Debian's libdrm-dev (/usr/include/libdrm: the kernel's
 * include/uapi/drm as libdrm ships it; Debian's linux-libc-dev leaves drm/ out).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type LibraryFile, libraryClosure, libraryDirs } from '../initramfs/elf.js';
import { type DebianPackage, debianPackage } from './debian.js';

const run = promisify(execFile);

export interface Userland {
  readonly busybox: string;
  readonly lspci: string;
  readonly setpci: string;
  readonly pciIds: string | undefined;
  /** Libraries lspci and setpci load, as guest path and host file. */
  readonly libraries: readonly LibraryFile[];
  /** The static helper. */
  readonly helper: string;
  /** name → version of every Debian package used. */
  readonly versions: Readonly<Record<string, string>>;
}

/** pciutils and the libraries of its closure a minimal Debian may lack; the rest come from the host. */
const PCIUTILS_PACKAGES = ['pciutils', 'libpci3', 'libkmod2', 'libudev1', 'pci.ids'];

export async function guestUserland(opts: {
  readonly cacheDir: string;
  /** guest/helper: the helper's C sources. */
  readonly helperDir: string;
  readonly log: (line: string) => void;
}): Promise<Userland> {
  const fetch = (name: string) => debianPackage(name, { cacheDir: opts.cacheDir, log: opts.log });
  const [busyboxPkg, drmHeaders, ...pci] = await Promise.all([
    fetch('busybox-static'),
    fetch('libdrm-dev'),
    ...PCIUTILS_PACKAGES.map(fetch),
  ]);
  const pkgs: DebianPackage[] = [busyboxPkg, ...pci];
  const busybox = join(busyboxPkg.root, 'bin', 'busybox');
  const pciutils = pci[0];
  const lspci = join(pciutils.root, 'usr', 'bin', 'lspci');
  const setpci = join(pciutils.root, 'usr', 'bin', 'setpci');
  for (const f of [busybox, lspci, setpci])
    if (!existsSync(f)) throw new Error(`${f} is missing from its Debian package.`);
  // The fetched packages first, then the host's own libraries, each standing for the same guest directory.
  const search = [...pkgs.flatMap((p) => libraryDirs(p.root)), ...libraryDirs('/')];
  const libraries = new Map<string, LibraryFile>();
  for (const exe of [lspci, setpci])
    for (const l of libraryClosure(exe, search)) libraries.set(l.guestPath, l);
  const ids = pkgs.map((p) => join(p.root, 'usr', 'share', 'misc', 'pci.ids')).find((f) => existsSync(f));
  const drmInclude = join(drmHeaders.root, 'usr', 'include', 'libdrm');
  if (!existsSync(join(drmInclude, 'i915_drm.h')))
    throw new Error(`${drmInclude}/i915_drm.h is missing from libdrm-dev ${drmHeaders.version}.`);
  const helper = await compileHelper(opts.helperDir, drmInclude, drmHeaders.version, opts.cacheDir, opts.log);
  return {
    busybox,
    lspci,
    setpci,
    pciIds: ids,
    libraries: [...libraries.values()],
    helper,
    versions: Object.fromEntries([...pkgs, drmHeaders].map((p) => [p.name, p.version])),
  };
}

/** `gcc -static -O2` of the helper, once per source and headers version. */
async function compileHelper(
  sourceDir: string,
  includeDir: string,
  headersVersion: string,
  cacheDir: string,
  log: (line: string) => void,
): Promise<string> {
  const names = readdirSync(sourceDir)
    .filter((f) => f.endsWith('.c') || f.endsWith('.h'))
    .sort();
  const digest = createHash('sha256').update(`libdrm-dev ${headersVersion}\0`);
  for (const n of names) digest.update(`${n}\0`).update(readFileSync(join(sourceDir, n)));
  const hash = digest.digest('hex').slice(0, 16);
  const dir = join(cacheDir, 'helper');
  const out = join(dir, `vfk-${hash}`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  log('compiling the guest helper (gcc -static)');
  try {
    const sources = names.filter((n) => n.endsWith('.c')).map((n) => join(sourceDir, n));
    await run('gcc', ['-static', '-O2', '-Wall', '-Werror', '-I', includeDir, '-o', tmp, ...sources]);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(
      `gcc -static could not build the guest helper in ${sourceDir}: ${(e.stderr ?? e.message).trim()}\n` +
        'It needs gcc and the static C library (Debian: gcc, libc6-dev).',
      { cause: err },
    );
  }
  renameSync(tmp, out);
  return out;
}
