import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { MigState } from '@vfiokit/core';
import { afterEach, describe, expect, it } from 'vitest';
import type { Booted } from '../src/cli/boot.js';
import { bufferIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { migrationProgressBar } from '../src/cli/migrate.js';
import { bootForMigration } from '../src/cli/migrate-machine.js';
import { type ConfigInput, draftFromObject, finishConfig } from '../src/config/index.js';
import {
  Channel,
  MIGRATE_DEFAULT_CONFIG,
  type MigratingMachine,
  type MigrationProgress,
  MSG_ERROR,
  migrateIn,
  migrateOut,
} from '../src/migrate/index.js';
import { tempDir } from './temp-dirs.js';

const booted: Booted[] = [];
afterEach(() => {
  for (const b of booted.splice(0)) b.shutdown();
});

/** A connected pair of channels over a UNIX socket in a temp directory. */
async function socketPair(): Promise<[Channel, Channel]> {
  const path = join(tempDir('vfiokit-mig-'), 'm.sock');
  const server = createServer({ allowHalfOpen: true });
  await new Promise<void>((ok) => server.listen(path, ok));
  const accepted = new Promise<Socket>((ok) => server.once('connection', ok));
  const client = await new Promise<Socket>((ok) => {
    const s = connect({ path, allowHalfOpen: true }, () => ok(s));
  });
  const peer = await accepted;
  server.close();
  return [new Channel(client), new Channel(peer)];
}

async function bootMachine(
  input: ConfigInput = MIGRATE_DEFAULT_CONFIG,
): Promise<{ b: Booted; target: MigratingMachine }> {
  const config = finishConfig(draftFromObject(input, 'a test configuration'));
  const { booted: b, target } = await bootForMigration(config, bufferIo());
  booted.push(b);
  return { b, target };
}

async function migrateInProcess(corruptAt?: number, destination: ConfigInput = MIGRATE_DEFAULT_CONFIG) {
  const [out, inc] = await socketPair();
  const src = await bootMachine();
  const devices = src.target.devices;
  const states = [await devices[0].driver.migration.start(src.b.machine.guest, devices[0].probed)];
  const dest = await bootMachine(destination);
  const incoming = migrateIn(inc, dest.target);
  const progress: MigrationProgress[] = [];
  const outcome = await migrateOut({
    ch: out,
    machine: src.b.machine,
    devices,
    states,
    tuning: { roundBytes: 512 * 1024, ...(corruptAt !== undefined ? { corruptAt } : {}) },
    onProgress: (p) => progress.push(p),
  });
  const received = await incoming;
  out.close();
  return { outcome, received, progress, src: { b: src.b, devices }, states, dest: dest.b };
}

describe('live migration between two machines', () => {
  it('moves a running vGPU with pre-copy rounds and the guest verifies every byte and the in-flight work on the destination', async () => {
    const { outcome, received, progress, src, dest } = await migrateInProcess();
    expect(outcome.error).toBeUndefined();
    expect(outcome.ok).toBe(true);
    expect(outcome.preCopy).toBe(true);
    expect(outcome.rounds).toBeGreaterThan(1);
    expect(outcome.downtimeMs).toBeLessThan(outcome.totalMs);
    // Most of the 16 MiB framebuffer moved while the guest ran; stop-copy carried what changed since.
    expect(outcome.bytes.device).toBeGreaterThan(16 << 20);
    expect(outcome.bytes.stopCopy).toBeLessThan(1 << 20);
    expect(outcome.bytes.ram).toBeGreaterThanOrEqual(32 << 20);
    expect(received.ok).toBe(true);
    const r = outcome.results[0].result;
    expect(r.ok, r.summary).toBe(true);
    expect(r.facts).toMatchObject({ inFlightAtStop: true, semaphoreInterrupt: true });
    expect(r.facts?.bytesVerified).toBeGreaterThan(4 << 20);
    expect(src.devices[0].file.migrationState).toBe(MigState.STOP);
    expect(dest.machine.devices()[0].file.migrationState).toBe(MigState.RUNNING);
    // Guest RAM arrived byte for byte.
    expect(Buffer.compare(src.b.machine.ram.bytes, dest.machine.ram.bytes)).toBe(0);
    expect(progress.some((p) => p.phase === 'pre-copy' && p.rounds > 1)).toBe(true);
    expect(progress.at(-1)?.phase).toBe('resuming');
  });

  it('refuses a corrupted stream: the destination device goes to ERROR and the source runs on with nothing lost', async () => {
    const { outcome, received, src, states, dest } = await migrateInProcess(100_000);
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/destination refused the migration \(its devices are in ERROR\)/);
    expect(outcome.error).toMatch(/bad payload checksum/);
    expect(received.ok).toBe(false);
    expect(dest.machine.devices()[0].file.migrationState).toBe(MigState.ERROR);
    const file = src.devices[0].file;
    expect(file.migrationState).toBe(MigState.RUNNING);
    // The guest continues on the source: the in-flight work completes and every byte is there.
    const r = await src.devices[0].driver.migration.verify(
      src.b.machine.guest,
      src.devices[0].probed,
      states[0],
    );
    expect(r.ok, r.summary).toBe(true);
  });

  it('refuses a stream cut in the stop-copy phase in the same way', async () => {
    const { outcome, src } = await migrateInProcess(16 << 20);
    expect(outcome.ok).toBe(false);
    expect(outcome.error).toMatch(/ERROR/);
    expect(src.devices[0].file.migrationState).toBe(MigState.RUNNING);
  });

  it('draws a progress bar on a terminal only', () => {
    const p: MigrationProgress = {
      sent: 1 << 20,
      pending: 1 << 20,
      rounds: 3,
      dirtyRate: 2 << 20,
      phase: 'pre-copy',
    };
    const piped = bufferIo();
    migrationProgressBar(piped.stderr).update(p);
    expect(piped.err()).toBe('');
    const tty = bufferIo({ tty: true });
    migrationProgressBar(tty.stderr).update(p);
    expect(tty.err()).toContain(
      'migrating [########........] 1.0/2.0 MiB, round 3, dirty 2.0 MiB/s, pre-copy',
    );
  });
});

describe('vfiokit migrate (two processes)', () => {
  it('migrates to a child VMM over a UNIX socket and prints total time and downtime', async () => {
    const io = bufferIo();
    const code = await main(['migrate'], io);
    expect(io.err()).toBe('');
    expect(io.out()).toMatch(
      /ok {3}00:05\.0 nvidia-vgpu-guest: \d+ running bursts, in-flight copy and semaphore completed/,
    );
    expect(io.out()).toMatch(/migrated 1 device\(s\) in [\d.]+ ms, downtime [\d.]+ ms \(\d+ pre-copy rounds/);
    expect(code).toBe(0);
  }, 60_000);

  it('exits 1 and keeps the guest on the source when the stream is corrupted in transit', async () => {
    const io = bufferIo();
    const code = await main(['migrate', '--corrupt-at', '5000'], io);
    expect(code).toBe(1);
    expect(io.out()).toMatch(/migration failed: .*ERROR.*bad payload checksum/);
    expect(io.out()).toMatch(/ok {3}00:05\.0 nvidia-vgpu-guest \(still on the source\)/);
  }, 60_000);

  it('refuses a configuration with a device that does not migrate', async () => {
    const io = bufferIo();
    const code = await main(['migrate', '--device', '@vfiokit/gvt-g:i915-GVTg_V5_8@00:04.0'], io);
    expect(code).toBe(1);
    expect(io.err()).toMatch(/does not support migration/);
  });
});

describe('the migration destination', () => {
  it('the destination answers a peer that does not start with HELLO with ERROR', async () => {
    const [a, b] = await socketPair();
    const { target } = await bootMachine();
    const r = migrateIn(b, target);
    await a.sendJson(MSG_ERROR, {});
    const reply = await a.next();
    expect(reply.type).toBe(MSG_ERROR);
    expect((await r).error).toMatch(/where HELLO was due/);
    a.close();
  });
});
