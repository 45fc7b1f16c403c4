/** Start fixtures/serve-test-devices.ts in a child process and talk to it over IPC. */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export interface DeviceStats {
  resets: number;
  opens: number;
  closes: number;
  sessions: number;
  mappings: number;
  active: boolean;
}

export class ServerProcess {
  private nextId = 1;
  private readonly waiting = new Map<number, (v: unknown) => void>();

  private constructor(
    readonly child: ChildProcess,
    readonly dir: string,
    readonly paths: string[],
  ) {
    child.on('message', (m: { id: number; value: unknown }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      w?.(m.value);
    });
  }

  static async start(count: number): Promise<ServerProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-user-srv-'));
    const paths = Array.from({ length: count }, (_, i) => join(dir, `dev${i}.sock`));
    const child = fork(join(here, 'fixtures', 'serve-test-devices.ts'), [JSON.stringify(paths)], {
      execArgv: ['--import', 'tsx', '--conditions=@vfiokit/source'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const p = new ServerProcess(child, dir, paths);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the server process did not start within 20 s')),
        20_000,
      );
      p.waiting.set(0, () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code) => reject(new Error(`the server process exited with ${code}`)));
    });
    return p;
  }

  private ask<T>(type: string): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve as (v: unknown) => void);
      this.child.send({ type, id });
    });
  }

  fds(): Promise<number> {
    return this.ask('fds');
  }

  stats(): Promise<DeviceStats[]> {
    return this.ask('stats');
  }

  idle(): Promise<boolean> {
    return this.ask('idle');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGKILL');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
