/**
 * Debian packages for the guest, fetched by name with the machine's own apt (`apt-get
 * download`, `dpkg-deb -x`) and kept outside the repository, one extracted tree per package
 * version: `<cache>/debs/<name>_<version>/root`. A cached version is used without asking the
 * network again; a failed download is retried once after `apt-get update` (a stale package
 * list names a version the mirror no longer has). Several runs at once are safe: each builds
 * in a private directory and renames it into place.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface DebianPackage {
  readonly name: string;
  readonly version: string;
  /** The extracted tree (`/` of the package). */
  readonly root: string;
}

export interface DebianOptions {
  readonly cacheDir: string;
  readonly log: (line: string) => void;
  /** Runs once on a freshly extracted tree before it is published (depmod, say). */
  readonly prepare?: (root: string) => Promise<void>;
}

let updated: Promise<void> | undefined;

/** `apt-get update`, at most once per process. */
function aptUpdate(log: (line: string) => void): Promise<void> {
  updated ??= (async () => {
    log('apt-get update (the package list is stale or missing)');
    await run('apt-get', ['update', '-q'], { maxBuffer: 16 << 20 }).catch((err: Error) => {
      throw new Error(`apt-get update failed: ${err.message.trim()}`, { cause: err });
    });
  })();
  return updated;
}

async function candidate(name: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('apt-cache', ['show', '--no-all-versions', name], { maxBuffer: 16 << 20 });
    return /^Version: (\S+)$/m.exec(stdout)?.[1];
  } catch {
    return undefined;
  }
}

/** A version as a directory name: Debian versions hold `:` and `~`. */
function dirName(name: string, version: string): string {
  return `${name}_${version}`.replace(/[^A-Za-z0-9.+_-]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
}

const inFlight = new Map<string, Promise<DebianPackage>>();

/** The package `name` at the version apt offers, extracted and cached. */
export function debianPackage(name: string, opts: DebianOptions): Promise<DebianPackage> {
  const key = `${opts.cacheDir}\0${name}`;
  let p = inFlight.get(key);
  if (p === undefined) {
    p = fetchPackage(name, opts);
    inFlight.set(key, p);
    p.catch(() => inFlight.delete(key));
  }
  return p;
}

async function fetchPackage(name: string, opts: DebianOptions): Promise<DebianPackage> {
  let version = await candidate(name);
  if (version === undefined) {
    await aptUpdate(opts.log);
    version = await candidate(name);
  }
  if (version === undefined)
    throw new Error(
      `apt knows no package ${name}: the guest suite needs Debian's package lists (bookworm with bookworm-security).`,
    );
  const base = join(opts.cacheDir, 'debs');
  const dir = join(base, dirName(name, version));
  const root = join(dir, 'root');
  if (existsSync(join(dir, 'complete'))) return { name, version, root };

  mkdirSync(base, { recursive: true });
  const work = mkdtempSync(join(base, `.${name}-`));
  try {
    opts.log(`fetching ${name} ${version}`);
    const download = () =>
      run('apt-get', ['download', '-q', `${name}=${version}`], { cwd: work, maxBuffer: 16 << 20 });
    try {
      await download();
    } catch {
      await aptUpdate(opts.log);
      await download().catch((err: Error) => {
        throw new Error(`apt-get download ${name}=${version} failed: ${err.message.trim()}`, { cause: err });
      });
    }
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (deb === undefined) throw new Error(`apt-get download ${name}=${version} left no .deb file.`);
    await run('dpkg-deb', ['-x', join(work, deb), join(work, 'root')], { maxBuffer: 16 << 20 });
    rmSync(join(work, deb));
    await opts.prepare?.(join(work, 'root'));
    writeFileSync(join(work, 'complete'), `${name} ${version}\n`);
    try {
      renameSync(work, dir);
    } catch (err) {
      // Another run published the same version first: use theirs.
      if (!existsSync(join(dir, 'complete'))) throw err;
      rmSync(work, { recursive: true, force: true });
    }
  } catch (err) {
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
  return { name, version, root };
}
