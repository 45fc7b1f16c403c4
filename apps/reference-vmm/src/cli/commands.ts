/** The commands: run, types, lspci, mdev. Each returns its exit code. */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type GuestDriver, VfioError } from '@vfiokit/core';
import { formatMdevctlList, type MdevStart, parseMdevctlDevice } from '../config/index.js';
import { saveFrames } from '../display/save-frames.js';
import { createLogger, probePlugins, systemClock } from '../loader/index.js';
import { count, parseCommand, strings, UsageError } from './args.js';
import { boot, bootSteps } from './boot.js';
import { USAGE } from './help.js';
import type { CliIo } from './io.js';
import {
  lspciJson,
  PCI_IDS_PATHS,
  type PciIds,
  readPciIds,
  renderLspci,
  systemPciIds,
} from './lspci/index.js';
import { defaultStateDir, MdevStore } from './mdev-state.js';
import { createProgress } from './progress.js';
import { outcome, renderRunReport, runJson } from './report.js';
import { buildConfig, CONFIG_OPTIONS, configArgs } from './setup.js';

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

function json(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function logger(io: CliIo) {
  return createLogger((line) => io.stderr.write(`${line}\n`), 'warn');
}

export async function runCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(
    'run',
    argv,
    { ...HELP, ...CONFIG_OPTIONS, json: { type: 'boolean' }, 'save-frames': { type: 'string' } },
    1,
  );
  if (values.help) {
    io.stdout.write(USAGE.run);
    return 0;
  }
  const config = await buildConfig(configArgs(values, positionals), io, 'run');
  const progress = createProgress(io.stderr, bootSteps(config) + 2, 'booting');
  const booted = await boot(config, { cwd: io.cwd, log: logger(io), progress });
  try {
    progress.step('probing the PCI bus');
    await booted.machine.probe();
    const drivers: GuestDriver[] = booted.plugins.flatMap((p) => [...(p.plugin.guestDrivers ?? [])]);
    progress.step('running guest drivers');
    const runs = await booted.machine.runDrivers(drivers);
    progress.done();
    const report = booted.machine.report();
    const frameDir = strings(values['save-frames'])[0];
    const frames =
      frameDir === undefined ? undefined : await saveFrames(booted.machine, resolve(io.cwd, frameDir));
    for (const p of frames?.problems ?? [])
      io.stderr.write(`vfiokit run: warning: ${p.slot}: no frame saved: ${p.problem}\n`);
    if (values.json)
      json(io, { ...runJson(config, booted.devices, report, runs), ...(frames ? { frames } : {}) });
    else {
      io.stdout.write(renderRunReport(config, booted.devices, report, runs));
      if (frames) io.stdout.write(renderFrames(frames.saved));
    }
    return outcome(report, runs).ok ? 0 : 1;
  } finally {
    progress.done();
    for (const p of booted.shutdown()) io.stderr.write(`vfiokit run: warning: ${p.problem}\n`);
  }
}

/** The report's last section under --save-frames: one line per saved frame. */
function renderFrames(
  saved: readonly { slot: string; path: string; width: number; height: number }[],
): string {
  const lines = saved.map((f) => `  ${f.slot} ${f.width}x${f.height} primary plane -> ${f.path}`);
  return `\nFrames\n${lines.length ? lines.join('\n') : '  no device offers a display plane'}\n`;
}

export async function lspciCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(
    'lspci',
    argv,
    {
      ...HELP,
      ...CONFIG_OPTIONS,
      v: { type: 'boolean', short: 'v', multiple: true },
      n: { type: 'boolean', short: 'n', multiple: true },
      x: { type: 'boolean', short: 'x', multiple: true },
      k: { type: 'boolean', short: 'k' },
      i: { type: 'string', short: 'i' },
      json: { type: 'boolean' },
    },
    1,
  );
  if (values.help) {
    io.stdout.write(USAGE.lspci);
    return 0;
  }
  const ids = loadIds(strings(values.i)[0], io);
  const config = await buildConfig(configArgs(values, positionals), io, 'lspci');
  const progress = createProgress(io.stderr, bootSteps(config) + 1, 'booting');
  const booted = await boot(config, { cwd: io.cwd, log: logger(io), progress });
  try {
    progress.step('probing the PCI bus');
    const probed = await booted.machine.probe();
    progress.done();
    const drivers: GuestDriver[] = booted.plugins.flatMap((p) => [...(p.plugin.guestDrivers ?? [])]);
    if (values.json) json(io, lspciJson(booted.machine.guest, probed, ids, drivers));
    else {
      io.stdout.write(
        renderLspci(
          booted.machine.guest,
          probed,
          {
            verbose: Math.min(3, count(values.v)),
            numeric: Math.min(2, count(values.n)),
            hex: count(values.x),
            kernel: values.k === true,
            ids,
          },
          drivers,
        ),
      );
    }
    return 0;
  } finally {
    progress.done();
    for (const p of booted.shutdown()) io.stderr.write(`vfiokit lspci: warning: ${p.problem}\n`);
  }
}

/** The PCI ID database: the file -i names (an error when it cannot be read), else the system's (a note when there is none). */
function loadIds(path: string | undefined, io: CliIo): PciIds | null {
  if (path !== undefined) {
    const full = resolve(io.cwd, path);
    try {
      return readPciIds(full);
    } catch (err) {
      throw new VfioError(
        'ENOENT',
        `the PCI ID database ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`,
        { hint: 'Give -i a pci.ids file (plain or .gz), or leave -i out to use the system one.' },
      );
    }
  }
  const found = systemPciIds();
  if (!found.ids)
    io.stderr.write(
      `vfiokit lspci: no PCI ID database in ${PCI_IDS_PATHS.join(', ')}; names show as numbers. Install pci.ids (Debian: apt-get install pci.ids) or pass -i <file>.\n`,
    );
  return found.ids;
}

export async function typesCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(
    'types',
    argv,
    { ...HELP, plugin: CONFIG_OPTIONS.plugin, json: { type: 'boolean' } },
    1,
  );
  if (values.help) {
    io.stdout.write(USAGE.types);
    return 0;
  }
  const config = await buildConfig(
    { ...configArgs(values, positionals), devices: [], defined: false },
    io,
    'types',
  );
  const plugins = await probePlugins(
    config.plugins,
    { clock: systemClock, log: logger(io) },
    { cwd: io.cwd },
  );
  const parents = plugins.flatMap((p) => p.parents.map((parent) => ({ plugin: p.specifier, parent })));
  if (values.json) {
    // mdevctl types --dumpjson: [ { "<parent>": [ { "<type>": { available_instances, device_api, name, description? } } ] } ]
    const byParent: Record<string, Record<string, Record<string, unknown>>[]> = {};
    for (const { parent } of parents) {
      byParent[parent.name] = parent.types().map((t) => ({
        [t.id]: {
          available_instances: t.availableInstances,
          device_api: t.deviceApi,
          name: t.name,
          ...(t.description !== undefined ? { description: t.description } : {}),
          ...(t.attributes ? { attributes: t.attributes } : {}),
        },
      }));
    }
    json(io, parents.length ? [byParent] : []);
    return 0;
  }
  const out: string[] = [];
  for (const { plugin, parent } of parents) {
    out.push(`/sys/class/mdev_bus/${parent.name}/   (plugin ${plugin})`);
    for (const t of parent.types()) {
      out.push(`  mdev_supported_types/${t.id}/`);
      const rows: [string, string][] = [
        ['name', t.name],
        ...(t.description !== undefined ? ([['description', t.description]] as [string, string][]) : []),
        ['device_api', t.deviceApi],
        ['available_instances', String(t.availableInstances)],
        ...Object.entries(t.attributes ?? {}),
      ];
      for (const [k, v] of rows) out.push(`    ${k.padEnd(20)} ${v.replace(/\n/g, ' ').trim()}`);
    }
  }
  if (parents.length === 0) out.push('no parent devices: the plugins probed none.');
  io.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

export async function mdevCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const action = argv[0];
  if (action === undefined || action === '--help' || action === '-h' || action === 'help') {
    io.stdout.write(USAGE.mdev);
    return action === undefined ? 2 : 0;
  }
  if (!['list', 'define', 'start', 'stop'].includes(action)) {
    throw new UsageError(`"${action}" is not an mdev action; use list, define, start or stop.`, 'mdev');
  }
  const { values } = parseCommand(
    `mdev ${action}`,
    argv.slice(1),
    {
      ...HELP,
      'state-dir': { type: 'string' },
      parent: { type: 'string', short: 'p' },
      type: { type: 'string', short: 't' },
      uuid: { type: 'string', short: 'u' },
      auto: { type: 'boolean', short: 'a' },
      jsonfile: { type: 'string' },
      defined: { type: 'boolean', short: 'd' },
      dumpjson: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    0,
  );
  if (values.help) {
    io.stdout.write(USAGE.mdev);
    return 0;
  }
  const store = new MdevStore(
    typeof values['state-dir'] === 'string' ? resolve(io.cwd, values['state-dir']) : defaultStateDir(io.env),
  );
  const one = (name: string) => strings(values[name])[0];
  const need = (name: string) => {
    const v = one(name);
    if (v === undefined) throw new UsageError(`vfiokit mdev ${action} needs --${name}.`, 'mdev');
    return v;
  };
  switch (action) {
    case 'define': {
      const parent = need('parent');
      const uuid = one('uuid');
      const jsonfile = one('jsonfile');
      let def: { type: string; start: MdevStart; attrs: readonly (readonly [string, string])[] };
      if (jsonfile !== undefined) {
        if (one('type') !== undefined || values.auto) {
          throw new UsageError(
            '--jsonfile already holds the type and start mode; leave out --type and --auto.',
            'mdev',
          );
        }
        const path = resolve(io.cwd, jsonfile);
        let value: unknown;
        try {
          value = JSON.parse(await readFile(path, 'utf8'));
        } catch (err) {
          throw new VfioError('EINVAL', `${jsonfile} cannot be read as JSON (${(err as Error).message}).`);
        }
        // The UUID is checked by the store; a placeholder keeps the parser's UUID check out of the way.
        def = parseMdevctlDevice(value, parent, '00000000-0000-0000-0000-000000000000', jsonfile);
      } else {
        def = { type: need('type'), start: values.auto ? 'auto' : 'manual', attrs: [] };
      }
      const saved = store.define({
        parent,
        type: def.type,
        start: def.start,
        attrs: def.attrs,
        ...(uuid ? { uuid } : {}),
      });
      io.stdout.write(`${saved.uuid}\n`);
      return 0;
    }
    case 'start':
      store.start(need('uuid'));
      return 0;
    case 'stop':
      store.stop(need('uuid'));
      return 0;
    default: {
      const all = store.list();
      const shown = values.defined ? all : all.filter((d) => d.active);
      if (values.dumpjson || values.json) {
        io.stdout.write(`${formatMdevctlList(shown)}\n`);
        return 0;
      }
      for (const d of shown) {
        io.stdout.write(
          `${d.uuid} ${d.parent} ${d.type}${values.defined ? ` ${d.start}${d.active ? ' (active)' : ''}` : ''}\n`,
        );
      }
      return 0;
    }
  }
}
