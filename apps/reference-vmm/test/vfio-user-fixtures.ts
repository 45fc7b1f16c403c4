/**
 * `vfiokit serve` in a child process: the built CLI when dist/ has the serve command, else the
 * source through tsx. Each server gets its own temporary directory for its socket.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const APP_DIR = fileURLToPath(new URL('..', import.meta.url));
/** The workspace's packages folder: the in-tree plugins that are not dependencies of the VMM live here. */
export const PACKAGES_DIR = join(APP_DIR, '..', '..', 'packages');
export const MTTY = '@vfiokit/sample-mtty';

function tsxLoader(): string {
  const pkgPath = createRequire(import.meta.url).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { exports: { '.': string } };
  return pathToFileURL(join(dirname(pkgPath), pkg.exports['.'])).href;
}

/** node arguments that start the `vfiokit` CLI; `source` forces the TypeScript sources (plugins without a dist/). */
export function cliArgs(opts: { source?: boolean } = {}): string[] {
  const dist = join(APP_DIR, 'dist', 'cli', 'serve.js');
  let built = false;
  try {
    readFileSync(dist);
    built = true;
  } catch {
    built = false;
  }
  if (built && !opts.source) return [join(APP_DIR, 'dist', 'cli.js')];
  return ['--conditions=@vfiokit/source', '--import', tsxLoader(), join(APP_DIR, 'src', 'cli.ts')];
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export class ServeProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;

  private constructor(
    readonly child: ChildProcess,
    readonly dir: string,
    readonly socketPath: string,
  ) {
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Start `vfiokit serve --device <device>` and wait until it listens. */
  static async start(
    device: string,
    opts: { cwd?: string; source?: boolean; extra?: readonly string[] } = {},
  ): Promise<ServeProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'vfiokit-serve-'));
    const socketPath = join(dir, 'dev.sock');
    const child = spawn(
      process.execPath,
      [...cliArgs(opts), 'serve', '--socket', socketPath, '--device', device, ...(opts.extra ?? [])],
      { cwd: opts.cwd ?? dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const p = new ServeProcess(child, dir, socketPath);
    const started = Date.now();
    while (!p.stdout.includes('serving ')) {
      const state = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r(undefined), 50))]);
      if (state !== undefined) {
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`vfiokit serve exited before serving: ${JSON.stringify(state)}\n${p.stderr}`);
      }
      if (Date.now() - started > 30_000) {
        child.kill('SIGKILL');
        throw new Error(`vfiokit serve did not start within 30 s\n${p.stderr}`);
      }
    }
    return p;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Send `signal` and wait for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const exit = await this.exited;
    rmSync(this.dir, { recursive: true, force: true });
    return exit;
  }

  /** For afterAll: kill whatever is left. */
  async kill(): Promise<void> {
    await this.stop('SIGKILL');
  }

  /** Lines of /proc/<pid>/maps, to see which files the server has mapped. */
  maps(): string {
    return readFileSync(`/proc/${this.pid}/maps`, 'utf8');
  }

  /** How many eventfds the server holds (SET_IRQS hands it the client's). */
  eventfds(): number {
    return countEventfds(`/proc/${this.pid}/fd`);
  }
}

export function countEventfds(fdDir: string): number {
  let n = 0;
  for (const fd of readdirSync(fdDir)) {
    try {
      if (readlinkSync(join(fdDir, fd)) === 'anon_inode:[eventfd]') n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}
