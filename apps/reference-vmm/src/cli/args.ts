/** Argument parsing on node:util parseArgs, with usage errors as one sentence. */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { VfioError } from '@vfiokit/core';

/** A command line that cannot be understood: the CLI prints the sentence and the usage, and exits 2. */
export class UsageError extends VfioError {
  constructor(
    sentence: string,
    readonly command: string,
  ) {
    super('EINVAL', sentence);
  }
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

export function parseCommand(
  command: string,
  argv: readonly string[],
  options: OptionSpec,
  maxPositionals: number,
): Parsed {
  let parsed: Parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true }) as Parsed;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // parseArgs names an option as declared ("'-t, --type <value>'"): say it as it was typed
    const declared = [...(/'([^']*)'/.exec(msg)?.[1] ?? '').matchAll(/--?[^\s,<]+/g)].map((m) => m[0]);
    const name =
      declared.find((n) => argv.some((a) => a === n || a.startsWith(`${n}=`))) ?? declared.at(-1) ?? '';
    const c = (err as { code?: string }).code;
    if (c === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      throw new UsageError(`vfiokit ${command} has no option ${name}.`, command);
    }
    if (c === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      // The value that follows starts with a dash: parseArgs will not guess whether it is one.
      if (/argument is ambiguous/.test(msg)) {
        const at = argv.indexOf(name);
        const next = at >= 0 ? argv[at + 1] : undefined;
        throw new UsageError(
          `vfiokit ${command}: option ${name} needs a value, and "${next ?? ''}" after it starts with a dash; write ${name}=${next ?? '<value>'} if that is the value.`,
          command,
        );
      }
      throw new UsageError(
        `vfiokit ${command}: option ${name} ${/argument missing/.test(msg) ? 'needs a value' : 'takes no value'}.`,
        command,
      );
    }
    throw new UsageError(`vfiokit ${command} cannot read its arguments: ${msg.split('\n')[0]}`, command);
  }
  if (parsed.positionals.length > maxPositionals) {
    const extra = parsed.positionals[maxPositionals];
    throw new UsageError(`vfiokit ${command} does not take the argument "${extra}".`, command);
  }
  return parsed;
}

export function strings(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}

export function count(v: unknown): number {
  if (v === undefined || v === false) return 0;
  return Array.isArray(v) ? v.length : 1;
}
