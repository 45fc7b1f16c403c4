/** The commands: run and lspci (mdev and types are in mdev.ts and types.ts). Each returns its exit code. */
import { resolve } from 'node:path';
import { type GuestDriver, VfioError } from '@vfiokit/core';
import { saveFrames } from '../display/save-frames.js';
import { createLogger } from '../loader/index.js';
import { count, parseCommand, strings } from './args.js';
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
      vfio: { type: 'string', multiple: true },
    },
    1,
  );
  if (values.help) {
    io.stdout.write(USAGE.lspci);
    return 0;
  }
  const ids = loadIds(strings(values.i)[0], io);
  // --vfio <device>: a device of the host kernel, as the guest would see it (vfio:<device>).
  const args = configArgs(values, positionals);
  const config = await buildConfig({ ...args, vfio: strings(values.vfio) }, io, 'lspci');
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
