/**
 * `vfiokit opregion dump <file> [--json]`: print an IGD OpRegion (or a bare VBT) readably.
 * `vfiokit opregion decode <file> [...]`: print its VBT as igt-gpu-tools' intel_vbt_decode does,
 * character for character, with the same options. The formatters are the vendor package's
 * (@vfiokit/gvt-d's `opregionDump` and `intelVbtDecode`), loaded by name through the plugin
 * loader as any plugin is, so the VMM does not depend on it at build time.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { VfioError } from '@vfiokit/core';
import { toVfioError } from '@vfiokit/core/host';
import { loadPackageExport } from '../loader/index.js';
import { parseCommand, UsageError } from './args.js';
import type { CliIo } from './io.js';

/** The package whose `opregionDump` formats OpRegions. */
export const OPREGION_PACKAGE = '@vfiokit/gvt-d';

export const OPREGION_USAGE = `Usage: vfiokit opregion dump <file> [--json]
       vfiokit opregion decode <file> [--devid <hex>] [--panel-type <n>] [--all-panels]
                               [--hexdump] [--block <n>] [--header] [--describe]

Print an Intel IGD OpRegion (as read from /sys/kernel/debug/dri/0/i915_opregion, or the
OpRegion region of an assigned IGD) or a bare VBT (i915_vbt, data.vbt): the header, the
mailboxes and the VBT with its header, BDB header, block list and decoded blocks. The kind is
told by the signature ("IntelGraphicsMem" or "$VBT"). The formatter comes from the
${OPREGION_PACKAGE} package, loaded by name as plugins are.

decode prints the VBT (the first "$VBT" in the file: a VBT, an OpRegion or a VBIOS image) as
igt-gpu-tools 1.27.1's intel_vbt_decode --file=<file> does, every block it decodes included:
the child devices, LFP options, data pointers and panel data (each panel's DTD, PP_ON/PP_OFF
power sequencing, PnP id and name), backlight, power conservation, eDP, PSR, MIPI configuration
and sequences, DSC parameters.

Options:
  --json                 dump: print the parse as JSON instead of text
  --devid <hex>          decode: the PCI device id (picks the SSC frequencies of Gen2-4)
  --panel-type <n>       decode: show this panel type (default: block 40's, else 0)
  --all-panels           decode: show all 16 panel types
  --hexdump              decode: hex-dump each block too
  --block <n>            decode: only block n
  --header               decode: only the headers and the block list
  --describe             decode: only "<BDB version>-<signature>"
  -h, --help             show this help

Example:
  vfiokit opregion dump opregion.bin
  vfiokit opregion dump data.vbt --json
  vfiokit opregion decode /sys/kernel/debug/dri/0/i915_vbt --all-panels
`;

type IntelVbtDecode = (
  bytes: Uint8Array,
  options?: {
    devid?: number;
    panelType?: number;
    allPanels?: boolean;
    hexdump?: boolean;
    block?: number;
    header?: boolean;
    describe?: boolean;
  },
) => { stdout: string; stderr: string; exitCode: number };

/** strtoul(s, &end, base) with nothing left over, as intel_vbt_decode parses its numbers. */
function cNumber(s: string, base: 0 | 16): number | undefined {
  const t = s.trim();
  let m: RegExpExecArray | null;
  if (base === 16) m = /^(?:0x)?([0-9a-f]+)$/i.exec(t);
  else m = /^0x([0-9a-f]+)$/i.exec(t) ?? /^(0[0-7]*)$/.exec(t) ?? /^([1-9][0-9]*)$/.exec(t);
  if (!m) return undefined;
  const radix = base === 16 || /^0x/i.test(t) ? 16 : t.startsWith('0') ? 8 : 10;
  const v = Number.parseInt(m[1], radix);
  return Number.isSafeInteger(v) ? v : undefined;
}

type OpRegionDump = (bytes: Uint8Array, options?: { json?: boolean }) => string;

export async function opregionCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const action = argv[0];
  if (action === undefined || action === '--help' || action === '-h' || action === 'help') {
    io.stdout.write(OPREGION_USAGE);
    return action === undefined ? 2 : 0;
  }
  if (action === 'decode') return decodeCommand(argv.slice(1), io);
  if (action !== 'dump') {
    throw new UsageError(
      `"${action}" is not an opregion action; the actions are dump and decode.`,
      'opregion',
    );
  }
  const { values, positionals } = parseCommand(
    'opregion dump',
    argv.slice(1),
    { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean' } },
    1,
  );
  if (values.help) {
    io.stdout.write(OPREGION_USAGE);
    return 0;
  }
  const file = positionals[0];
  if (file === undefined) throw new UsageError('vfiokit opregion dump needs the file to dump.', 'opregion');
  const dump = (await loadFormatter(io.cwd, 'opregionDump')) as OpRegionDump;
  const bytes = await readInput(io, file);
  io.stdout.write(dump(bytes, { json: values.json === true }));
  return 0;
}

async function readInput(io: CliIo, file: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(resolve(io.cwd, file)));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new VfioError(
      code === 'EACCES' ? 'EACCES' : code === 'EISDIR' ? 'EINVAL' : 'ENOENT',
      `cannot read ${file}: ${code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : 'no such file'}.`,
      { hint: 'Give the path of an OpRegion dump or a VBT file.', cause: err },
    );
  }
}

async function decodeCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(
    'opregion decode',
    argv,
    {
      help: { type: 'boolean', short: 'h' },
      devid: { type: 'string' },
      'panel-type': { type: 'string' },
      'all-panels': { type: 'boolean' },
      hexdump: { type: 'boolean' },
      block: { type: 'string' },
      header: { type: 'boolean' },
      describe: { type: 'boolean' },
    },
    1,
  );
  if (values.help) {
    io.stdout.write(OPREGION_USAGE);
    return 0;
  }
  const file = positionals[0];
  if (file === undefined)
    throw new UsageError('vfiokit opregion decode needs the file to decode.', 'opregion');
  const str = (k: string) => values[k] as string | undefined;
  let devid: number | undefined;
  if (str('devid') !== undefined) {
    devid = cNumber(str('devid') as string, 16);
    if (!devid)
      throw new UsageError(
        `invalid devid '${str('devid')}' (a PCI device id in hex, e.g. 2772).`,
        'opregion',
      );
  }
  let panelType: number | undefined;
  if (str('panel-type') !== undefined) {
    panelType = cNumber(str('panel-type') as string, 0);
    if (panelType === undefined || panelType > 15) {
      throw new UsageError(`invalid panel type '${str('panel-type')}' (0 to 15).`, 'opregion');
    }
  }
  let block: number | undefined;
  if (str('block') !== undefined) {
    block = cNumber(str('block') as string, 0);
    if (block === undefined) throw new UsageError(`invalid block number '${str('block')}'.`, 'opregion');
  }
  const decode = (await loadFormatter(io.cwd, 'intelVbtDecode')) as IntelVbtDecode;
  const bytes = await readInput(io, file);
  const r = decode(bytes, {
    devid,
    panelType,
    allPanels: values['all-panels'] === true,
    hexdump: values.hexdump === true,
    block,
    header: values.header === true,
    describe: values.describe === true,
  });
  io.stdout.write(r.stdout);
  if (r.stderr) io.stderr.write(r.stderr);
  // The tool's own line first (scripts compare it), then what to do about it.
  if (r.exitCode !== 0 && r.stdout === '' && /^(VBT signature missing|Invalid VBT found)/.test(r.stderr)) {
    io.stderr.write(
      `  ${file} holds no usable VBT: give a VBT (data.vbt, /sys/kernel/debug/dri/0/i915_vbt), an OpRegion dump (i915_opregion) or a video BIOS image.\n`,
    );
  }
  return r.exitCode;
}

async function loadFormatter(cwd: string, name: 'opregionDump' | 'intelVbtDecode'): Promise<unknown> {
  try {
    return await loadPackageExport(OPREGION_PACKAGE, name, { cwd });
  } catch (err) {
    const e = toVfioError(err);
    throw new VfioError(
      e.code,
      `vfiokit opregion needs ${OPREGION_PACKAGE} for its ${name === 'opregionDump' ? 'OpRegion formatter' : 'VBT decoder'}, and it could not be loaded: ${e.problem}`,
      { hint: `Install ${OPREGION_PACKAGE} beside vfiokit (pnpm add ${OPREGION_PACKAGE}).`, cause: err },
    );
  }
}
