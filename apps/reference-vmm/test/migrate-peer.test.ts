/**
 * The migration destination against a hostile peer: a test client that speaks the wire format
 * and sends what a real source never would. The destination boots its own configuration; the
 * stream can describe a machine, never name code.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MigState } from '@vfiokit/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { Booted } from '../src/cli/boot.js';
import { bufferIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { bootForMigration } from '../src/cli/migrate-machine.js';
import { type ConfigInput, draftFromObject, finishConfig } from '../src/config/index.js';
import {
  Channel,
  describeMachine,
  MIGRATE_DEFAULT_CONFIG,
  MIGRATION_PROTOCOL_VERSION,
  MSG_ERROR,
  MSG_HELLO,
  migrateIn,
  migrateOut,
  readPeerError,
} from '../src/migrate/index.js';
import { tempDir } from './temp-dirs.js';

const booted: Booted[] = [];
afterEach(() => {
  for (const b of booted.splice(0)) b.shutdown();
});

async function connectWhenListening(path: string): Promise<Socket> {
  for (let i = 0; ; i++) {
    try {
      return await new Promise<Socket>((ok, fail) => {
        const s = connect({ path, allowHalfOpen: true }, () => ok(s));
        s.once('error', fail);
      });
    } catch (err) {
      if (i > 600) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

async function socketAppears(path: string): Promise<void> {
  for (let i = 0; !existsSync(path); i++) {
    if (i > 600) throw new Error(`${path} never appeared`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** `vfiokit migrate --incoming` in this process, and a client connected to it. */
async function destination(args: readonly string[] = []) {
  const dir = tempDir('vfiokit-peer-');
  const sock = join(dir, 'in.sock');
  const io = bufferIo({ cwd: dir });
  const exit = main(['migrate', '--incoming', sock, ...args], io);
  await socketAppears(sock);
  const mode = statSync(sock).mode & 0o777;
  const peer = new Channel(await connectWhenListening(sock));
  return { dir, sock, io, exit, peer, mode };
}

async function bootMachine(input: ConfigInput) {
  const { booted: b, target } = await bootForMigration(
    finishConfig(draftFromObject(input, 'a test configuration')),
    bufferIo(),
  );
  booted.push(b);
  return { b, target };
}

describe('the migration destination boots its own configuration', () => {
  it('never imports a plugin module a peer names in its first message', async () => {
    const { dir, io, exit, peer } = await destination();
    const marker = join(dir, 'evil-ran');
    const evil = join(dir, 'evil.mjs');
    writeFileSync(
      evil,
      `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'x');\nexport default {};\n`,
    );
    // What protocol 1 carried: a whole configuration, plugin module paths included.
    await peer.sendJson(MSG_HELLO, {
      version: 1,
      config: {
        plugins: [{ package: evil }],
        machine: { ramSize: '32M' },
        devices: [{ plugin: evil, type: 'x', slot: '00:05.0' }],
      },
      devices: [],
    });
    const reply = await peer.next();
    expect(reply.type).toBe(MSG_ERROR);
    expect(readPeerError(reply).message).toMatch(/the source speaks migration protocol 1; this VMM speaks 2/);
    expect(await exit).toBe(1);
    expect(existsSync(marker)).toBe(false);
    expect(io.out()).toMatch(/incoming migration refused: .*protocol 1/);
    peer.close();
  });

  it('refuses a current HELLO that carries a configuration, naming the field', async () => {
    const { dir, exit, peer } = await destination();
    const { target } = await bootMachine(MIGRATE_DEFAULT_CONFIG);
    const evil = join(dir, 'evil.mjs');
    await peer.sendJson(MSG_HELLO, {
      version: MIGRATION_PROTOCOL_VERSION,
      machine: describeMachine(target.machine.ram.size, target.devices),
      config: { plugins: [{ package: evil }] },
    });
    const reply = await peer.next();
    expect(readPeerError(reply).message).toMatch(
      /HELLO message that has a field config that a HELLO message does not have/,
    );
    expect(await exit).toBe(1);
    peer.close();
  });

  it('listens on a socket only its owner can use, and says where', async () => {
    const { sock, io, exit, peer, mode } = await destination();
    expect(mode).toBe(0o600);
    expect(io.out()).toMatch(/booted; waiting for the source on .*in\.sock/);
    peer.close();
    expect(await exit).toBe(1);
    // One migration per destination: the socket is gone once a source connected.
    expect(existsSync(sock)).toBe(false);
  });

  it.each([
    [
      'another RAM size',
      { ...MIGRATE_DEFAULT_CONFIG, machine: { ramSize: '64M' } },
      /machine\.ramSize 32M; this destination has 64M/,
    ],
    [
      'another vGPU type',
      {
        ...MIGRATE_DEFAULT_CONFIG,
        devices: [{ ...(MIGRATE_DEFAULT_CONFIG.devices?.[0] as object), type: 'nvidia-320' }],
      } as ConfigInput,
      /the device at 00:05\.0 is nvidia-319 of @vfiokit\/nvidia-vgpu on the source but nvidia-320 of @vfiokit\/nvidia-vgpu here/,
    ],
    [
      'the device at another slot',
      {
        ...MIGRATE_DEFAULT_CONFIG,
        devices: [{ ...(MIGRATE_DEFAULT_CONFIG.devices?.[0] as object), slot: '00:06.0' }],
      } as ConfigInput,
      /the source migrates nvidia-319 of @vfiokit\/nvidia-vgpu at 00:05\.0, and this destination has no migrating device there/,
    ],
  ])(
    'refuses a source whose machine differs (%s) before any state moves; the source runs on',
    async (_, destConfig, why) => {
      const { dir, sock, exit } = await (async () => {
        const d = tempDir('vfiokit-peer-');
        const s = join(d, 'in.sock');
        const file = join(d, 'dest.json');
        writeFileSync(file, JSON.stringify(destConfig));
        return { dir: d, sock: s, exit: main(['migrate', '--incoming', s, file], bufferIo({ cwd: d })) };
      })();
      expect(dir).toBeTruthy();
      const src = await bootMachine(MIGRATE_DEFAULT_CONFIG);
      const d = src.target.devices[0];
      const states = [await d.driver.migration.start(src.b.machine.guest, d.probed)];
      const ch = new Channel(await connectWhenListening(sock));
      const outcome = await migrateOut({ ch, machine: src.b.machine, devices: src.target.devices, states });
      ch.close();
      expect(outcome.ok).toBe(false);
      expect(outcome.error).toMatch(/the destination refused the migration/);
      expect(outcome.error).toMatch(why);
      expect(outcome.error).toMatch(/Start the destination with the configuration the source runs/);
      expect(outcome.bytes.device + outcome.bytes.ram).toBe(0);
      expect(d.file.migrationState).toBe(MigState.RUNNING);
      // The guest runs on at the source: its last act and its check work there.
      await d.driver.migration.leaveInFlight(src.b.machine.guest, d.probed, states[0]);
      const r = await d.driver.migration.verify(src.b.machine.guest, d.probed, states[0]);
      expect(r.ok, r.summary).toBe(true);
      expect(await exit).toBe(1);
    },
  );
});

describe('a peer that goes silent', () => {
  // Nothing else can happen while the peer is silent: the idle timeout is the only way out, so a
  // loaded machine makes these slower, never different.
  async function pair(): Promise<[Socket, Socket]> {
    const dir = tempDir('vfiokit-peer-');
    const path = join(dir, 's.sock');
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((ok) => server.listen(path, ok));
    const accepted = new Promise<Socket>((ok) => server.once('connection', ok));
    const client = await connectWhenListening(path);
    const peer = await accepted;
    server.close();
    return [client, peer];
  }

  it('the destination gives up on a source that connects and sends nothing, and says why', async () => {
    const { target } = await bootMachine(MIGRATE_DEFAULT_CONFIG);
    const [client, server] = await pair();
    const peer = new Channel(client);
    const r = await migrateIn(new Channel(server), target, { idleMs: 300 });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/^ETIMEDOUT: the migration peer sent nothing for 0\.3 s\./);
    expect(readPeerError(await peer.next()).message).toMatch(/sent nothing for 0\.3 s/);
    peer.close();
  });

  it('the source gives up on a destination that never answers HELLO, and runs on', async () => {
    const src = await bootMachine(MIGRATE_DEFAULT_CONFIG);
    const d = src.target.devices[0];
    const states = [await d.driver.migration.start(src.b.machine.guest, d.probed)];
    const [client, server] = await pair();
    const outcome = await migrateOut({
      ch: new Channel(client),
      machine: src.b.machine,
      devices: src.target.devices,
      states,
      tuning: { idleMs: 300 },
    });
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/^ETIMEDOUT: the migration peer sent nothing for 0\.6 s\./);
    expect(outcome.resumed).toBe(false);
    expect(d.file.migrationState).toBe(MigState.RUNNING);
    server.destroy();
  });
});

describe('vfiokit migrate --incoming as a process', () => {
  const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  const start = (sock: string) =>
    spawn(
      process.execPath,
      ['--import', tsx, '--conditions=@vfiokit/source', cli, 'migrate', '--incoming', sock],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  const exited = (child: ChildProcess) =>
    new Promise<{ code: number | null; out: string; err: string }>((ok) => {
      let out = '';
      let err = '';
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      child.once('exit', (code) => ok({ code, out, err }));
    });

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'removes its socket on %s, so the next destination listens on the same path',
    async (signal) => {
      const sock = join(tempDir('vfiokit-peer-'), 'in.sock');
      const first = start(sock);
      const done = exited(first);
      await socketAppears(sock);
      first.kill(signal);
      const r = await done;
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toContain(`stopped by ${signal} before a source connected; ${sock} is removed.`);
      expect(existsSync(sock)).toBe(false);
      const again = start(sock);
      const doneAgain = exited(again);
      await socketAppears(sock);
      again.kill('SIGTERM');
      expect((await doneAgain).code).toBe(0);
    },
    60_000,
  );
});
