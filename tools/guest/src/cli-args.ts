/** The guest suite's command line: parsed without a stack trace for a mistake. */
import { parseArgs } from 'node:util';

export const USAGE = `Usage: pnpm run test:guest [-- [--suite <name>]... [--boot <name>]... [--jobs <n>] [--list]]

Boot each guest suite's Debian guest in QEMU (VFIOKIT_QEMU) with its devices served by
vfiokit serve, run the guest's checks and write reports/guest/junit.xml.

Options:
  --suite <name>  run only this suite (repeatable)
  --boot <name>   run only the boots of this name (repeatable)
  --jobs <n>      boots at a time (default: VFIOKIT_GUEST_JOBS, or one per core)
  --list          print the selected boots and their checks, boot nothing
  -h, --help      show this help
`;

export interface GuestCliOptions {
  readonly suites: readonly string[];
  readonly boots: readonly string[];
  readonly jobs?: number;
  readonly list: boolean;
  readonly help: boolean;
}

export type GuestCliParse =
  | { readonly ok: true; readonly options: GuestCliOptions }
  | { readonly ok: false; readonly error: string };

export function parseGuestCli(argv: readonly string[]): GuestCliParse {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (err) {
    // parseArgs' own words name the option ("Unknown option '--force'"); the hint is ours.
    return { ok: false, error: `${(err as Error).message.replace(/\. To specify.*$/s, '')}. See --help.` };
  }
  let jobs: number | undefined;
  if (values.jobs !== undefined) {
    jobs = Number(values.jobs);
    if (!Number.isInteger(jobs) || jobs < 1)
      return {
        ok: false,
        error: `--jobs takes a whole number of boots at a time, 1 or more (got "${values.jobs}").`,
      };
  }
  return {
    ok: true,
    options: {
      suites: values.suite ?? [],
      boots: values.boot ?? [],
      jobs,
      list: values.list ?? false,
      help: values.help ?? false,
    },
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: argv[0] === '--' ? argv.slice(1) : [...argv],
    options: {
      suite: { type: 'string', multiple: true },
      boot: { type: 'string', multiple: true },
      jobs: { type: 'string' },
      list: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
    strict: true,
  });
}
