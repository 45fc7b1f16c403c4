/**
 * `vfiokit opregion dump <file> [--json]`: print an IGD OpRegion (or a bare VBT) readably. The
 * formatter is the vendor package's (@vfiokit/gvt-d's `opregionDump`), loaded by name through
 * the plugin loader as any plugin is, so the VMM does not depend on it at build time.
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

Print an Intel IGD OpRegion (as read from /sys/kernel/debug/dri/0/i915_opregion, or the
OpRegion region of an assigned IGD) or a bare VBT (i915_vbt, data.vbt): the header, the
mailboxes and the VBT with its header, BDB header, block list and decoded blocks. The kind is
told by the signature ("IntelGraphicsMem" or "$VBT"). The formatter comes from the
${OPREGION_PACKAGE} package, loaded by name as plugins are.

Options:
  --json                 print the parse as JSON instead of text
  -h, --help             show this help

Example:
  vfiokit opregion dump opregion.bin
  vfiokit opregion dump data.vbt --json
`;

type OpRegionDump = (bytes: Uint8Array, options?: { json?: boolean }) => string;

export async function opregionCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const action = argv[0];
  if (action === undefined || action === '--help' || action === '-h' || action === 'help') {
    io.stdout.write(OPREGION_USAGE);
    return action === undefined ? 2 : 0;
  }
  if (action !== 'dump') {
    throw new UsageError(`"${action}" is not an opregion action; the action is dump.`, 'opregion');
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
  const dump = await loadOpRegionDump(io.cwd);
  const path = resolve(io.cwd, file);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new VfioError(
      code === 'EACCES' ? 'EACCES' : code === 'EISDIR' ? 'EINVAL' : 'ENOENT',
      `cannot read ${file}: ${code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : 'no such file'}.`,
      { hint: 'Give the path of an OpRegion dump or a VBT file.', cause: err },
    );
  }
  io.stdout.write(dump(bytes, { json: values.json === true }));
  return 0;
}

async function loadOpRegionDump(cwd: string): Promise<OpRegionDump> {
  try {
    return (await loadPackageExport(OPREGION_PACKAGE, 'opregionDump', { cwd })) as OpRegionDump;
  } catch (err) {
    const e = toVfioError(err);
    throw new VfioError(
      e.code,
      `vfiokit opregion needs ${OPREGION_PACKAGE} for its OpRegion formatter, and it could not be loaded: ${e.problem}`,
      { hint: `Install ${OPREGION_PACKAGE} beside vfiokit (pnpm add ${OPREGION_PACKAGE}).`, cause: err },
    );
  }
}
