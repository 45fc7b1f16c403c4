/**
 * What both ends of `vfiokit migrate` boot: the configuration the command line gives (or the
 * default migration configuration), and the attached devices that migrate with their guest
 * programs. The destination boots it from its own command line, as QEMU's `-incoming` does.
 */
import { resolve } from 'node:path';
import { type GuestDriver, type GuestMigrationProgram, VfioError } from '@vfiokit/core';
import { draftFromObject, finishConfig, formatSlot, type VmmConfig } from '../config/index.js';
import { createLogger } from '../loader/index.js';
import { MIGRATE_CONFIG_SOURCE, MIGRATE_DEFAULT_CONFIG, type MigratingMachine } from '../migrate/index.js';
import { type Booted, boot } from './boot.js';
import type { CliIo } from './io.js';
import { buildConfig, type ConfigArgs } from './setup.js';

export function migrateLogger(io: CliIo) {
  return createLogger((line) => io.stderr.write(`${line}\n`), 'warn');
}

function usesDefault(args: ConfigArgs): boolean {
  return args.file === undefined && args.devices.length === 0 && !args.defined;
}

/** The configuration of one end: the arguments', or the default migration configuration without any. */
export async function migrationConfig(args: ConfigArgs, io: CliIo): Promise<VmmConfig> {
  return usesDefault(args)
    ? finishConfig(draftFromObject(MIGRATE_DEFAULT_CONFIG, MIGRATE_CONFIG_SOURCE))
    : buildConfig(args, io, 'migrate');
}

/** The same configuration arguments for a child started in another directory: paths made absolute. */
export function configArgv(args: ConfigArgs, cwd: string): string[] {
  const out: string[] = [];
  if (args.file !== undefined) out.push(resolve(cwd, args.file));
  for (const p of args.plugins) out.push('--plugin', p);
  for (const d of args.devices) out.push('--device', d);
  if (args.defined) out.push('--defined');
  if (args.stateDir !== undefined) out.push('--state-dir', resolve(cwd, args.stateDir));
  return out;
}

type WithProgram = GuestDriver & { readonly migration: GuestMigrationProgram };

function drivers(booted: Booted): GuestDriver[] {
  return booted.plugins.flatMap((p) => [...(p.plugin.guestDrivers ?? [])]);
}

/** The attached devices that migrate, each with its plugin, type and the guest program of the driver that binds to it. */
function migratingDevices(booted: Booted): MigratingMachine['devices'] {
  const all = drivers(booted);
  const out: MigratingMachine['devices'][number][] = [];
  for (const a of booted.machine.devices()) {
    const slot = formatSlot(a.slot);
    if (a.file.migrationCaps() === 0) {
      throw new VfioError('EOPNOTSUPP', `the device ${a.label} at ${slot} does not support migration.`, {
        hint: 'Migrate a configuration whose devices all offer VFIO_DEVICE_FEATURE_MIGRATION.',
      });
    }
    const probed = booted.machine.guest.devices().find((p) => formatSlot(p.address) === slot);
    const driver = probed && all.find((d) => d.migration !== undefined && d.matches(probed));
    if (!probed || !driver) {
      throw new VfioError('EOPNOTSUPP', `no guest driver of ${a.label} at ${slot} has a migration program.`, {
        hint: 'The plugin must give its guest driver a `migration` program (start, keepRunning, leaveInFlight, verify).',
      });
    }
    const created = booted.devices.find((d) => formatSlot(d.config.slot) === slot);
    out.push({
      slot,
      plugin: created ? created.plugin.plugin.name : 'vfio-user',
      type: created ? created.config.type : a.label,
      file: a.file,
      probed,
      driver: driver as WithProgram,
    });
  }
  if (out.length === 0) throw new VfioError('EINVAL', 'the configuration has no device to migrate.');
  return out;
}

/** Boot and probe one end's machine; `shutdown()` of the result undoes it. */
export async function bootForMigration(
  config: VmmConfig,
  io: CliIo,
): Promise<{ booted: Booted; target: MigratingMachine }> {
  const booted = await boot(config, { cwd: io.cwd, log: migrateLogger(io) });
  try {
    await booted.machine.probe();
    return { booted, target: { machine: booted.machine, devices: migratingDevices(booted) } };
  } catch (err) {
    for (const p of booted.shutdown()) io.stderr.write(`vfiokit migrate: warning: ${p.problem}\n`);
    throw err;
  }
}
