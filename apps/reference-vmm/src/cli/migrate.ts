/**
 * `vfiokit migrate`: boot a configuration, start each migrating device's guest program, and move
 * the running guest to a second VMM process over a UNIX socket (a child started here with the
 * same configuration, or one waiting with `vfiokit migrate --incoming SOCKET <its configuration>`),
 * with a progress bar on a terminal and a final line with total time and downtime.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { VfioError } from '@vfiokit/core';
import { formatSize } from '../config/index.js';
import { unexpectedFault } from '../loader/index.js';
import {
  Channel,
  type MigrationOutcome,
  type MigrationProgress,
  migrateOut,
  PAGE,
} from '../migrate/index.js';
import { parseCommand, strings, UsageError } from './args.js';
import { USAGE_MIGRATE } from './help-migrate.js';
import type { CliIo, OutStream } from './io.js';
import { incomingCommand } from './migrate-incoming.js';
import { bootForMigration, configArgv, migrationConfig } from './migrate-machine.js';
import { CONFIG_OPTIONS, configArgs } from './setup.js';

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

/** The progress bar: bytes sent of the estimate, rounds and dirty rate; drawn on a terminal only. */
export function migrationProgressBar(stream: OutStream): {
  update(p: MigrationProgress): void;
  done(): void;
} {
  if (!stream.isTTY) return { update() {}, done() {} };
  const width = 16;
  const columns = stream.columns ?? 80;
  return {
    update(p) {
      const total = p.sent + p.pending;
      const filled = Math.round((total > 0 ? p.sent / total : 1) * width);
      const line = `migrating [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(p.sent / 1048576).toFixed(1)}/${mib(total)}, round ${p.rounds}, dirty ${mib(p.dirtyRate)}/s, ${p.phase}`;
      stream.write(`\r\x1b[K${line.slice(0, Math.max(10, columns - 1))}`);
    },
    done() {
      stream.write('\r\x1b[K');
    },
  };
}

/** How to start this same vfiokit as a child: from dist with node, from the sources through tsx. */
function selfCommand(): string[] {
  const built = fileURLToPath(new URL('../cli.js', import.meta.url));
  if (existsSync(built)) return [process.execPath, built];
  const source = fileURLToPath(new URL('../cli.ts', import.meta.url));
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return [process.execPath, '--import', tsx, '--conditions=@vfiokit/source', source];
}

async function connectWithRetry(
  path: string,
  child: ChildProcess | undefined,
  timeoutMs: number,
): Promise<Socket> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<Socket>((ok, fail) => {
        const s = connect({ path, allowHalfOpen: true });
        s.once('connect', () => ok(s));
        s.once('error', fail);
      });
    } catch (err) {
      if (child && child.exitCode !== null)
        throw new VfioError(
          'ECONNREFUSED',
          `the destination VMM exited (code ${child.exitCode}) before it listened.`,
        );
      if (Date.now() > until)
        throw new VfioError('ETIMEDOUT', `nothing listens on ${path}: ${(err as Error).message}.`, {
          hint: 'Start the destination first with `vfiokit migrate --incoming <socket>`.',
        });
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

function count(v: unknown, name: string, min: number): number | undefined {
  const s = strings(v)[0];
  if (s === undefined) return undefined;
  const n = /^\d+$/.test(s) ? Number(s) : Number.NaN;
  if (!Number.isSafeInteger(n))
    throw new UsageError(`--${name} "${s}" is not a whole number of bytes.`, 'migrate');
  if (n < min) throw new UsageError(`--${name} ${n} is below ${min} bytes.`, 'migrate');
  return n;
}

export function renderMigration(o: MigrationOutcome, devices: number): string {
  const lines: string[] = [];
  for (const r of o.results)
    lines.push(`  ${r.result.ok ? 'ok  ' : 'FAIL'} ${r.slot} ${r.driver}: ${r.result.summary}`);
  if (o.ok) {
    lines.push(
      `migrated ${devices} device(s) in ${o.totalMs.toFixed(1)} ms, downtime ${o.downtimeMs.toFixed(1)} ms (${o.preCopy ? `${o.rounds} pre-copy rounds` : 'stop-copy only'}, ${mib(o.bytes.device)} device data, ${mib(o.bytes.ram)} RAM, ${mib(o.bytes.stopCopy)} while stopped)`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function migrateCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(
    'migrate',
    argv,
    {
      help: { type: 'boolean', short: 'h' },
      ...CONFIG_OPTIONS,
      json: { type: 'boolean' },
      incoming: { type: 'string' },
      to: { type: 'string' },
      'round-bytes': { type: 'string' },
      // For tests, so not in the help: flip the byte at this offset of the first device's stream.
      'corrupt-at': { type: 'string' },
    },
    1,
  );
  if (values.help) {
    io.stdout.write(USAGE_MIGRATE);
    return 0;
  }
  const json = values.json === true;
  const args = configArgs(values, positionals);
  const config = await migrationConfig(args, io);
  const inc = strings(values.incoming)[0];
  if (inc !== undefined) return incomingCommand(resolve(io.cwd, inc), config, io, json);
  // A pre-copy round sends at least a page of RAM, or the guest never stops dirtying faster than it goes.
  const roundBytes = count(values['round-bytes'], 'round-bytes', PAGE);
  const corruptAt = count(values['corrupt-at'], 'corrupt-at', 0);
  const { booted, target } = await bootForMigration(config, io);
  const devices = target.devices;
  let dir: string | undefined;
  let child: ChildProcess | undefined;
  let childErr = '';
  try {
    const states = [];
    for (const d of devices) states.push(await d.driver.migration.start(booted.machine.guest, d.probed));
    let path = strings(values.to)[0];
    if (path === undefined) {
      dir = await mkdtemp(join(tmpdir(), 'vfiokit-migrate-'));
      path = join(dir, 'incoming.sock');
      const [cmd, ...rest] = selfCommand();
      // The destination boots the same configuration from the same arguments, as QEMU's -incoming is started.
      child = spawn(cmd, [...rest, 'migrate', '--incoming', path, '--json', ...configArgv(args, io.cwd)], {
        cwd: io.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stderr?.on('data', (d: Buffer) => {
        childErr = (childErr + d.toString()).slice(-4000);
      });
      child.stdout?.resume();
    } else path = resolve(io.cwd, path);
    const socket = await connectWithRetry(path, child, 15_000);
    const ch = new Channel(socket);
    const bar = migrationProgressBar(io.stderr);
    const outcome = await migrateOut({
      ch,
      machine: booted.machine,
      devices,
      states,
      tuning: {
        ...(roundBytes !== undefined ? { roundBytes } : {}),
        ...(corruptAt !== undefined ? { corruptAt } : {}),
      },
      onProgress: (p) => bar.update(p),
    });
    bar.done();
    ch.close();
    const sourceResults: { slot: string; driver: string; result: { ok: boolean; summary: string } }[] = [];
    if (!outcome.ok && !outcome.resumed) {
      // The guest continues on the source: its program checks that nothing was lost (after its
      // last act, when the migration stopped before the vCPUs did).
      for (let i = 0; i < devices.length; i++) {
        const d = devices[i];
        if (!outcome.stopped)
          await d.driver.migration.leaveInFlight(booted.machine.guest, d.probed, states[i]);
        sourceResults.push({
          slot: d.slot,
          driver: d.driver.name,
          result: await d.driver.migration.verify(booted.machine.guest, d.probed, states[i]),
        });
      }
    }
    if (child && child.exitCode === null) await new Promise((r) => child?.once('exit', r));
    if (json) {
      io.stdout.write(`${JSON.stringify({ source: config.source, ...outcome, sourceResults }, null, 2)}\n`);
    } else {
      io.stdout.write(`vfiokit migrate: ${config.source}, RAM ${formatSize(config.machine.ramSize)}\n`);
      io.stdout.write(renderMigration(outcome, devices.length));
      if (!outcome.ok) {
        io.stdout.write(
          `migration failed: ${outcome.error ?? 'a guest program failed on the destination'}\n`,
        );
        for (const r of sourceResults)
          io.stdout.write(
            `  ${r.result.ok ? 'ok  ' : 'FAIL'} ${r.slot} ${r.driver} (still on the source): ${r.result.summary}\n`,
          );
      }
    }
    if (outcome.corrupted === false) {
      // The knob is for tests: one that did nothing must not let a test pass.
      io.stderr.write(
        `vfiokit migrate: --corrupt-at ${corruptAt} lies past the end of the first device's stream, so nothing was flipped.\n`,
      );
      return 1;
    }
    return outcome.ok ? 0 : 1;
  } catch (err) {
    const e = unexpectedFault(err);
    if (childErr)
      throw new VfioError(
        e.code,
        `${e.problem} The destination said: ${childErr.trim().split('\n').slice(-3).join(' ')}`,
      );
    throw e;
  } finally {
    if (child && child.exitCode === null) child.kill();
    if (dir) await rm(dir, { recursive: true, force: true });
    for (const p of booted.shutdown()) io.stderr.write(`vfiokit migrate: warning: ${p.problem}\n`);
  }
}
