/**
 * intelVbtDecode: the text igt-gpu-tools 1.27.1's `intel_vbt_decode --file=<file>` prints for a
 * VBT, a VBIOS image or an OpRegion dump (the first "$VBT" in the bytes is used), on stdout and
 * stderr, character for character: the VBT and BDB headers, "BDB blocks present", then every block
 * by id, decoded where the tool decodes it (blocks 1, 2, 9, 11, 12, 22, 23, 27, 40, 41, 42, 43,
 * 44, 52, 53, 56) and "Unknown, no decoding available" otherwise. Options follow the tool's:
 * --devid, --panel-type, --all-panels, --hexdump, --block, --header, --describe.
 *
 * Differences, all on input the tool would crash on or read outside its buffer for: a child
 * device size of 0 (the tool divides by zero) gives no child devices here; bytes past the end of
 * the file read as 0. The DEVICE environment variable the tool also reads is not consulted.
 */
import {
  BDB_CHILD_DEVICE_TABLE,
  BDB_COMPRESSION_PARAMETERS,
  BDB_DRIVER_FEATURES,
  BDB_EDP,
  BDB_GENERAL_DEFINITIONS,
  BDB_GENERAL_FEATURES,
  BDB_LFP_POWER,
  BDB_LVDS_BACKLIGHT,
  BDB_LVDS_LFP_DATA,
  BDB_LVDS_LFP_DATA_PTRS,
  BDB_LVDS_OPTIONS,
  BDB_MIPI_CONFIG,
  BDB_MIPI_SEQUENCE,
  BDB_PSR,
  BDB_SDVO_LVDS_OPTIONS,
  BDB_SDVO_PANEL_DTDS,
  type DecodedBlock,
  type DecodeOptions,
  SIZEOF,
  VbtContext,
} from './context.js';
import { dumpDriverFeature, dumpEdp, dumpPsr, dumpSdvoLvdsOptions, dumpSdvoPanelDtds } from './edp.js';
import { dumpGeneralDefinitions, dumpGeneralFeatures, dumpLegacyChildDevices } from './general.js';
import { hex, Mem, Out } from './mem.js';
import { dumpCompressionParameters, dumpMipiConfig, dumpMipiSequence } from './mipi.js';
import { dumpBacklightInfo, dumpLfpPower, dumpLvdsData, dumpLvdsOptions, dumpLvdsPtrData } from './panel.js';

export type { DecodeOptions } from './context.js';

type Dump = (ctx: VbtContext, block: DecodedBlock, out: Out) => void;

/** The tool's dumpers[] table: id, name, decoder. */
export const VBT_DECODERS: ReadonlyArray<{ id: number; name: string; dump: Dump }> = [
  { id: BDB_GENERAL_FEATURES, name: 'General features block', dump: dumpGeneralFeatures },
  { id: BDB_GENERAL_DEFINITIONS, name: 'General definitions block', dump: dumpGeneralDefinitions },
  { id: BDB_CHILD_DEVICE_TABLE, name: 'Legacy child devices block', dump: dumpLegacyChildDevices },
  { id: BDB_LVDS_OPTIONS, name: 'LVDS options block', dump: dumpLvdsOptions },
  { id: BDB_LVDS_LFP_DATA_PTRS, name: 'LVDS timing pointer data', dump: dumpLvdsPtrData },
  { id: BDB_LVDS_LFP_DATA, name: 'LVDS panel data block', dump: dumpLvdsData },
  { id: BDB_LVDS_BACKLIGHT, name: 'Backlight info block', dump: dumpBacklightInfo },
  { id: BDB_LFP_POWER, name: 'LFP power conservation features block', dump: dumpLfpPower },
  { id: BDB_SDVO_LVDS_OPTIONS, name: 'SDVO LVDS options block', dump: dumpSdvoLvdsOptions },
  { id: BDB_SDVO_PANEL_DTDS, name: 'SDVO panel dtds', dump: dumpSdvoPanelDtds },
  { id: BDB_DRIVER_FEATURES, name: 'Driver feature data block', dump: dumpDriverFeature },
  { id: BDB_EDP, name: 'eDP block', dump: dumpEdp },
  { id: BDB_PSR, name: 'PSR block', dump: dumpPsr },
  { id: BDB_MIPI_CONFIG, name: 'MIPI configuration block', dump: dumpMipiConfig },
  { id: BDB_MIPI_SEQUENCE, name: 'MIPI sequence block', dump: dumpMipiSequence },
  { id: BDB_COMPRESSION_PARAMETERS, name: 'Compression parameters block', dump: dumpCompressionParameters },
];

export interface IntelVbtDecodeOptions extends DecodeOptions {
  /** Only this block (--block=N); a missing one is exit 1 with "Block N not found". */
  block?: number;
  /** Only the headers and the block list (--header). */
  header?: boolean;
  /** Only "<bdb version>-<signature>" (--describe). */
  describe?: boolean;
}

export interface IntelVbtDecodeResult {
  stdout: string;
  /** What the tool writes on stderr, one message a line. */
  stderr: string;
  /** The tool's exit status: 0, or 1 (no VBT, a BDB past the end, a missing --block). */
  exitCode: number;
}

/** get_device_id: the device id of a VBIOS image's PCI data structure ("PCIR"), else -1. */
export function vbiosDeviceId(bios: Uint8Array): number {
  const offset = ((bios[0x19] ?? 0) << 8) + (bios[0x18] ?? 0);
  if (offset + 7 >= bios.length) return -1;
  if (String.fromCharCode(...bios.subarray(offset, offset + 4)) !== 'PCIR') return -1;
  return (bios[offset + 7] << 8) + bios[offset + 6];
}

/** The offset of the first "$VBT" (the tool scans `i + 4 < size`), or -1. */
export function findVbtSignature(bytes: Uint8Array): number {
  for (let i = 0; i + 4 < bytes.length; i++) {
    if (bytes[i] === 0x24 && bytes[i + 1] === 0x56 && bytes[i + 2] === 0x42 && bytes[i + 3] === 0x54)
      return i;
  }
  return -1;
}

export function intelVbtDecode(bytes: Uint8Array, options: IntelVbtDecodeOptions = {}): IntelVbtDecodeResult {
  const out = new Out();
  const vbtOff = findVbtSignature(bytes);
  if (vbtOff < 0) return { stdout: '', stderr: 'VBT signature missing\n', exitCode: 1 };
  const bdbOffField = new Mem(bytes).u32(vbtOff + 0x1c);
  // `bdb_off >= size - sizeof(struct bdb_header)`, in the tool's int/size_t arithmetic.
  const bdbOff = (vbtOff + bdbOffField) | 0;
  if (bytes.length < SIZEOF.bdbHeader || bdbOff < 0 || bdbOff >= bytes.length - SIZEOF.bdbHeader) {
    return {
      stdout: '',
      stderr: 'Invalid VBT found, BDB points beyond end of data block\n',
      exitCode: 1,
    };
  }
  let devid = options.devid;
  const early: string[] = [];
  if (!devid) devid = vbiosDeviceId(bytes);
  if (!devid) early.push('Warning: could not find PCI device ID!');
  const ctx = new VbtContext(bytes, vbtOff, { ...options, devid });
  ctx.stderr.push(...early);
  if (options.panelType === undefined) {
    const lvds = ctx.find(BDB_LVDS_OPTIONS);
    if (lvds) ctx.panelType = lvds.data.u8(0);
    else {
      ctx.stderr.push('Warning: panel type not set, using 0');
      ctx.panelType = 0;
    }
  } else ctx.panelType = options.panelType;

  let exitCode = 0;
  if (options.describe) {
    describe(ctx, out);
  } else if (options.header) {
    dumpHeaders(ctx, out);
  } else if (options.block !== undefined) {
    if (!dumpSection(ctx, options.block, out)) {
      ctx.stderr.push(`Block ${options.block} not found`);
      exitCode = 1;
    }
  } else {
    dumpHeaders(ctx, out);
    for (let i = 0; i < 256; i++) dumpSection(ctx, i, out);
  }
  return {
    stdout: out.text(),
    stderr: ctx.stderr.map((l) => `${l}\n`).join(''),
    exitCode,
  };
}

/** hex_dump: 16 bytes a line, a double space after the 8th, a blank line after. */
function hexDump(m: Mem, size: number, out: Out): void {
  for (let i = 0; i < size; i++) {
    if (i % 16 === 0) out.print(`\t${hex(i, 4)}: `);
    out.print(hex(m.u8(i), 2));
    if (i % 16 === 15) {
      if (i + 1 < size) out.print('\n');
    } else if (i % 8 === 7) out.print('  ');
    else out.print(' ');
  }
  out.print('\n\n');
}

function dumpSection(ctx: VbtContext, id: number, out: Out): boolean {
  const block = ctx.find(id);
  if (!block) return false;
  const dumper = VBT_DECODERS.find((d) => d.id === block.id);
  out.line(
    `BDB block ${block.id} (${block.size} bytes) - ${dumper ? dumper.name : 'Unknown, no decoding available'}:`,
  );
  if (ctx.hexdump) hexDump(block.raw, 3 + block.size, out);
  if (dumper) dumper.dump(ctx, block, out);
  out.print('\n');
  return true;
}

function dumpHeaders(ctx: VbtContext, out: Out): void {
  const f = ctx.file;
  const v = ctx.vbtOffset;
  const b = ctx.bdbOffset;
  out.line('VBT header:');
  if (ctx.hexdump) hexDump(f.slice(v, f.u16(v + 0x16)), f.u16(v + 0x16), out);
  const version = f.u16(v + 0x14);
  out.line(`\tVBT signature:\t\t"${f.cstr(v, 20)}"`);
  out.line(`\tVBT version:\t\t0x${hex(version, 4)} (${Math.floor(version / 100)}.${version % 100})`);
  out.line(`\tVBT header size:\t0x${hex(f.u16(v + 0x16), 4)} (${f.u16(v + 0x16)})`);
  out.line(`\tVBT size:\t\t0x${hex(f.u16(v + 0x18), 4)} (${f.u16(v + 0x18)})`);
  out.line(`\tVBT checksum:\t\t0x${hex(f.u8(v + 0x1a), 2)}`);
  out.line(`\tBDB offset:\t\t0x${hex(f.u32(v + 0x1c), 8)} (${f.u32(v + 0x1c)})`);
  out.line('');
  out.line('BDB header:');
  if (ctx.hexdump) hexDump(f.slice(b, f.u16(b + 0x12)), f.u16(b + 0x12), out);
  out.line(`\tBDB signature:\t\t"${f.cstr(b, 16)}"`);
  out.line(`\tBDB version:\t\t${f.u16(b + 0x10)}`);
  out.line(`\tBDB header size:\t0x${hex(f.u16(b + 0x12), 4)} (${f.u16(b + 0x12)})`);
  out.line(`\tBDB size:\t\t0x${hex(f.u16(b + 0x14), 4)} (${f.u16(b + 0x14)})`);
  out.line('');
  out.print('BDB blocks present:');
  let j = 0;
  for (let i = 0; i < 256; i++) {
    if (!ctx.find(i)) continue;
    out.print(j++ % 16 ? ` ${String(i).padStart(3)}` : `\n\t${String(i).padStart(3)}`);
  }
  out.print('\n\n');
}

/** print_description: "<bdb version>-<signature in lower case, non-alphanumerics as '-'>". */
function describe(ctx: VbtContext, out: Out): void {
  let desc = ctx.file.cstr(ctx.vbtOffset, 20).replace(/[ \t\n\v\f\r]+$/, '');
  desc = desc.replace(/[^A-Za-z0-9]/g, '-').toLowerCase();
  if (desc.startsWith('-vbt-')) desc = desc.slice(5);
  out.line(`${ctx.bdbVersion}-${desc}`);
}

/** The blocks intel_vbt_decode lists as present (sorted by id; 41 when it generates it). */
export function vbtDecoderBlockIds(bytes: Uint8Array, options: DecodeOptions = {}): number[] {
  const vbtOff = findVbtSignature(bytes);
  if (vbtOff < 0) return [];
  const ctx = new VbtContext(bytes, vbtOff, options);
  const ids: number[] = [];
  for (let i = 0; i < 256; i++) if (ctx.find(i)) ids.push(i);
  return ids;
}
