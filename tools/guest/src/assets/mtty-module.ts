/**
 * The kernel's own mtty sample as a module for the guest kernel: samples/vfio-mdev/mtty.c out
 * of Debian's linux-source tarball (only that file is extracted), built with kbuild against
 * Debian's headers for the guest's release. Debian ships the headers as three packages whose
 * Makefile names /usr/src by absolute path, so they are joined under one private root first.
 * The module is cached per headers version; a later run reuses it.
 */
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { debianPackage } from './debian.js';

const run = promisify(execFile);

export interface MttyModule {
  /** The built mtty.ko. */
  readonly file: string;
  /** The linux-source version it was built from. */
  readonly sourceVersion: string;
}

/** `6.12.118+deb12-amd64` → `6.12.118+deb12` (the common headers' and kbuild's name). */
function common(release: string): string {
  return release.replace(/-amd64$/, '');
}

/** mtty.ko for `release`, built once per headers version into `<cache>/mtty/<version>/mtty.ko`. */
export async function buildMttyModule(opts: {
  readonly cacheDir: string;
  readonly release: string;
  readonly log: (line: string) => void;
}): Promise<MttyModule> {
  const { cacheDir, release, log } = opts;
  const base = common(release);
  const series = base.split('.').slice(0, 2).join('.');
  const [headers, commonHeaders, kbuild, source] = await Promise.all([
    debianPackage(`linux-headers-${release}`, { cacheDir, log }),
    debianPackage(`linux-headers-${base}-common`, { cacheDir, log }),
    debianPackage(`linux-kbuild-${base}`, { cacheDir, log }),
    debianPackage(`linux-source-${series}`, { cacheDir, log }),
  ]);
  const out = join(
    cacheDir,
    'mtty',
    `${headers.version}-${source.version}`.replace(/[^A-Za-z0-9.+_-]/g, '_'),
  );
  const ko = join(out, 'mtty.ko');
  if (existsSync(ko)) return { file: ko, sourceVersion: source.version };

  mkdirSync(join(cacheDir, 'mtty'), { recursive: true });
  const work = mkdtempSync(join(cacheDir, 'mtty', '.build-'));
  try {
    // One root holding the three header packages as dpkg would install them (hard links, so no
    // copy of the 90 MB): their relative symlinks (scripts -> ../../lib/linux-kbuild-...) meet,
    // and the amd64 Makefile's absolute /usr/src include is pointed into it.
    const root = join(work, 'root');
    mkdirSync(root);
    for (const pkg of [headers, commonHeaders, kbuild])
      await run('cp', ['-al', `${pkg.root}/.`, root], { maxBuffer: 16 << 20 });
    const src = join(root, 'usr', 'src');
    const arch = join(src, `linux-headers-${release}`);
    const makefile = join(arch, 'Makefile');
    const text = readFileSync(makefile, 'utf8').replaceAll('/usr/src/', `${src}/`);
    rmSync(makefile);
    writeFileSync(makefile, text);
    // Only samples/vfio-mdev/mtty.c out of the 150 MB tarball.
    const tarball = readdirSync(join(source.root, 'usr', 'src')).find((f) =>
      /^linux-source-.*\.tar\.xz$/.test(f),
    );
    if (!tarball) throw new Error(`linux-source-${series} ${source.version} has no tarball in /usr/src.`);
    const dir = tarball.replace(/\.tar\.xz$/, '');
    log(`extracting samples/vfio-mdev/mtty.c from ${tarball}`);
    await run(
      'tar',
      ['-xJf', join(source.root, 'usr', 'src', tarball), '-C', work, `${dir}/samples/vfio-mdev/mtty.c`],
      {
        maxBuffer: 16 << 20,
      },
    );
    const mod = join(work, 'mod');
    mkdirSync(mod);
    cpSync(join(work, dir, 'samples', 'vfio-mdev', 'mtty.c'), join(mod, 'mtty.c'));
    writeFileSync(join(mod, 'Kbuild'), 'obj-m := mtty.o\n');
    log(`building mtty.ko against linux-headers-${release} ${headers.version}`);
    // No BTF for an out-of-tree test module: it would need pahole, which the machine may lack.
    await run('make', ['-C', arch, `M=${mod}`, 'CONFIG_DEBUG_INFO_BTF_MODULES=', 'modules'], {
      maxBuffer: 64 << 20,
    }).catch((err: Error & { stderr?: string }) => {
      throw new Error(
        `building mtty.ko failed (it needs make and gcc-12): ${(err.stderr ?? err.message).trim().split('\n').slice(-5).join(' / ')}`,
        { cause: err },
      );
    });
    mkdirSync(join(work, 'out'));
    cpSync(join(mod, 'mtty.ko'), join(work, 'out', 'mtty.ko'));
    try {
      renameSync(join(work, 'out'), out);
    } catch (err) {
      if (!existsSync(ko)) throw err;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return { file: ko, sourceVersion: source.version };
}
