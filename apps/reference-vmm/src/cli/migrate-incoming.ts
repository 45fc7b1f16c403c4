/**
 * `vfiokit migrate --incoming SOCKET [config]`: the destination. As QEMU's `-incoming`, it boots
 * its own configuration first (the same arguments the source was given; none: the default
 * migration configuration), then listens on an owner-only UNIX socket and takes one migration.
 * The stream carries device and RAM state and a description of the source's machine, which is
 * compared with this one: nothing in it is loaded or run. On SIGINT or SIGTERM it stops, removes
 * the socket and the devices, as `vfiokit serve` does.
 */
import { createServer, type Socket } from 'node:net';
import type { VmmConfig } from '../config/index.js';
import { Channel, type IncomingOutcome, migrateIn } from '../migrate/index.js';
import type { CliIo } from './io.js';
import { bootForMigration } from './migrate-machine.js';
import { listenOwnerOnly } from './socket-path.js';

/** Resolves with the signal's name when SIGINT or SIGTERM arrives; `off()` stops listening. */
function stopSignal(): { stopped: Promise<string>; readonly name: string | undefined; off(): void } {
  let off = () => {};
  let name: string | undefined;
  const stopped = new Promise<string>((resolve) => {
    const on = (signal: string) => () => {
      name = signal;
      resolve(signal);
    };
    const onInt = on('SIGINT');
    const onTerm = on('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    off = () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    };
  });
  return {
    stopped,
    get name() {
      return name;
    },
    off: () => off(),
  };
}

function render(r: IncomingOutcome, io: CliIo, json: boolean): void {
  if (json) {
    io.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  if (r.error) io.stdout.write(`incoming migration refused: ${r.error}\n`);
  for (const x of r.results)
    io.stdout.write(`  ${x.result.ok ? 'ok  ' : 'FAIL'} ${x.slot} ${x.driver}: ${x.result.summary}\n`);
}

export async function incomingCommand(
  socketPath: string,
  config: VmmConfig,
  io: CliIo,
  json: boolean,
): Promise<number> {
  const { booted, target } = await bootForMigration(config, io);
  // Half-open, so a source that stops sending can still be told why.
  const server = createServer({ allowHalfOpen: true });
  const signal = stopSignal();
  let socket: Socket | undefined;
  try {
    await listenOwnerOnly(server, socketPath);
    if (!json)
      io.stdout.write(`vfiokit migrate: ${config.source} booted; waiting for the source on ${socketPath}\n`);
    const first = await Promise.race([
      new Promise<Socket>((ok) => server.once('connection', ok)),
      signal.stopped,
    ]);
    if (typeof first === 'string') {
      server.close();
      io.stdout.write(
        `vfiokit migrate: stopped by ${first} before a source connected; ${socketPath} is removed.\n`,
      );
      return 0;
    }
    socket = first;
    // One migration per destination: nobody else connects from here on.
    server.close();
    const ch = new Channel(socket);
    // A signal during the migration cuts the connection: the destination refuses, the source runs on.
    void signal.stopped.then(() => socket?.destroy());
    const r = await migrateIn(ch, target);
    ch.close();
    const name = signal.name;
    render(name ? { ...r, error: `stopped by ${name}: ${r.error ?? 'the migration was cut'}` } : r, io, json);
    return r.ok ? 0 : 1;
  } finally {
    signal.off();
    socket?.destroy();
    server.close();
    for (const p of booted.shutdown()) io.stderr.write(`vfiokit migrate: warning: ${p.problem}\n`);
  }
}
