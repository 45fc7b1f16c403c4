/**
 * The `vfiokit` command line: `main(argv, io)` runs one command and returns its exit code, so
 * tests call it in process with captured output. Exit codes: 0 ok, 1 the command failed (a
 * driver failed, a device errored, a configuration or plugin problem), 2 a usage error.
 */
import { readFileSync } from 'node:fs';
import type { VfioError } from '@vfiokit/core';
import { unexpectedFault } from '../loader/index.js';
import { UsageError } from './args.js';
import { lspciCommand, runCommand } from './commands.js';
import { MAIN_USAGE, USAGE } from './help.js';
import { type CliIo, processIo } from './io.js';
import { mdevCommand } from './mdev.js';
import { migrateCommand } from './migrate.js';
import { opregionCommand } from './opregion.js';
import { serveCommand } from './serve.js';
import { typesCommand } from './types.js';

const COMMANDS: Readonly<Record<string, (argv: readonly string[], io: CliIo) => Promise<number>>> = {
  run: runCommand,
  types: typesCommand,
  lspci: lspciCommand,
  mdev: mdevCommand,
  serve: serveCommand,
  opregion: opregionCommand,
  migrate: migrateCommand,
};

/** `run, types, lspci, mdev and serve`: every registered command, in order. */
function commandList(): string {
  const names = Object.keys(COMMANDS);
  return names.length < 2
    ? names.join('')
    : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** The error as a person reads it: the problem (with its place), then what to do on the next line. */
export function describeError(err: VfioError): string {
  const hasPlace = Object.values(err.place).some((v) => v !== undefined);
  let text = err.problem;
  if (hasPlace)
    text = err.hint ? err.message.slice(0, err.message.length - err.hint.length - 1) : err.message;
  return err.hint ? `${text}\n  ${err.hint}` : text;
}

export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  // `pnpm run vfiokit -- --help` hands the `--` on: before a command it means nothing.
  const [command, ...rest] = argv[0] === '--' ? argv.slice(1) : argv;
  if (command === undefined) {
    io.stderr.write(MAIN_USAGE);
    return 2;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    const topic = rest[0];
    io.stdout.write(topic !== undefined && USAGE[topic] ? USAGE[topic] : MAIN_USAGE);
    return 0;
  }
  if (command === '--version' || command === '-V') {
    io.stdout.write(`vfiokit ${version()}\n`);
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    io.stderr.write(
      `vfiokit: ${command.startsWith('-') ? `there is no option ${command} before a command` : `"${command}" is not a command`}; the commands are ${commandList()}.\n\n${MAIN_USAGE}`,
    );
    return 2;
  }
  try {
    return await run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      // Each line names the command once: its own sentence ("vfiokit serve needs --socket…") or
      // the command before the problem ("vfiokit serve: --device … is not …").
      const line = err.problem.startsWith('vfiokit ')
        ? err.problem
        : `vfiokit ${err.command}: ${err.problem}`;
      io.stderr.write(`${line}\n\n${USAGE[err.command.split(' ')[0]] ?? MAIN_USAGE}`);
      return 2;
    }
    io.stderr.write(`vfiokit ${command}: ${describeError(unexpectedFault(err))}\n`);
    return 1;
  }
}
