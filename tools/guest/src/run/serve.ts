/**
 * One `vfiokit serve` process: the project's own CLI (apps/reference-vmm/dist/cli.js), started
 * in the repository root so plugins resolve from the workspace, with its output kept for the
 * boot's report. It serves one device, or several (`ServedDevice.server`: one `--socket
 * --device` pair each, so they share the plugin's parent). Ready when it printed "serving" for
 * every device; stopped with SIGTERM (SIGKILL after 10 s).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { ServedDevice } from '../suite.js';
import { adopt } from './children.js';

export interface ServerProcess {
  /** The first device it serves (the only one, unless the boot groups devices in one server). */
  readonly device: ServedDevice;
  readonly socket: string;
  /** Every device it serves, with its socket. */
  readonly devices: readonly { readonly device: ServedDevice; readonly socket: string }[];
  /** Everything it printed so far, stdout and stderr interleaved as they came. */
  log(): string;
  /** Its exit, once it ended: code or signal. */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Resolves when the log holds a line matching `re`; false after `ms`. */
  waitForLog(re: RegExp, ms: number): Promise<boolean>;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startServer(opts: {
  readonly root: string;
  /** The devices and their sockets; plugin options and serve arguments are the first's. */
  readonly devices: readonly { readonly device: ServedDevice; readonly socket: string }[];
  readonly logFile: string;
  /** The boot's artifact directory, for `{artifacts}` in serveArgs. */
  readonly artifacts?: string;
}): Promise<ServerProcess> {
  const [first] = opts.devices;
  const args = [
    join(opts.root, 'apps', 'reference-vmm', 'dist', 'cli.js'),
    'serve',
    ...opts.devices.flatMap((d) => ['--socket', d.socket, '--device', d.device.device]),
    ...(first.device.pluginOptions ?? []).flatMap((o) => ['--plugin-option', o]),
    ...(first.device.serveArgs ?? []).map((a) => a.replaceAll('{artifacts}', opts.artifacts ?? '.')),
  ];
  const child: ChildProcess = adopt(
    spawn(process.execPath, args, {
      cwd: opts.root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    }),
    'SIGTERM',
  );
  const file: WriteStream = createWriteStream(opts.logFile);
  file.write(`$ vfiokit ${args.slice(1).join(' ')}\n`);
  let text = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    const s = chunk.toString('utf8');
    text += s;
    file.write(s);
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      exit = { code, signal };
      for (const w of waiters) w();
      resolve(exit);
    });
    child.on('error', (err) => {
      text += `(could not start: ${err.message})\n`;
      exit = { code: -1, signal: null };
      for (const w of waiters) w();
      resolve(exit);
    });
  });
  const closed = ended.then(
    (e) =>
      new Promise<typeof e>((resolve) => {
        file.end(`(exit: ${e.signal ?? e.code})\n`, () => resolve(e));
      }),
  );

  const waitForLog = (re: RegExp, ms: number) =>
    new Promise<boolean>((resolve) => {
      const check = () => {
        if (re.test(text)) done(true);
        else if (exit) done(false);
      };
      const timer = setTimeout(() => done(false), ms);
      const done = (v: boolean) => {
        clearTimeout(timer);
        waiters.delete(check);
        resolve(v);
      };
      waiters.add(check);
      check();
    });

  const server: ServerProcess = {
    device: first.device,
    socket: first.socket,
    devices: opts.devices,
    log: () => text,
    exited: () => exit,
    waitForLog,
    async stop() {
      if (!exit) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await ended;
        clearTimeout(killer);
      }
      return closed;
    },
  };
  // A cold Node start on a loaded machine takes seconds: allow it a minute.
  // One "serving" line per device, with other lines between them.
  const serving = new RegExp(
    `(?:[\\s\\S]*?^vfiokit serve: (?:[0-9a-f-]{36}: )?serving ){${opts.devices.length}}`,
    'm',
  );
  if (!(await waitForLog(serving, 60_000))) {
    await server.stop();
    throw new Error(
      `vfiokit serve ${opts.devices.map((d) => `--device ${d.device.device}`).join(' ')} did not start serving:\n${text.trim()}`,
    );
  }
  return server;
}
