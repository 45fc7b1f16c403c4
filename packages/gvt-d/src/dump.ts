/**
 * opregionDump: a readable (or JSON) dump of an OpRegion or a bare VBT, chosen by signature:
 * the header, the mailboxes, the VBT header, the BDB header, every block and the decoded blocks.
 * `vfiokit opregion dump <file> [--json]` prints it.
 */
import { VfioError } from '@vfiokit/core';
import { toJsonValue } from './bytes.js';
import { OPREGION_SIGNATURE } from './opregion/layout.js';
import { type OpRegion, parseOpRegion } from './opregion/parse.js';
import { VBT_SIGNATURE_PREFIX } from './vbt/layout.js';
import { parseVbt, type Vbt } from './vbt/parse.js';

export interface OpRegionDumpOptions {
  /** JSON instead of text. */
  json?: boolean;
}

function startsWith(b: Uint8Array, sig: string): boolean {
  if (b.length < sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[i] !== sig.charCodeAt(i)) return false;
  return true;
}

/** Hex of a number or a bigint (the 64-bit fields stay exact: never through a double). */
const hx = (n: number | bigint, w = 0) => `0x${n.toString(16).padStart(w, '0')}`;

export function opregionDump(bytes: Uint8Array, options: OpRegionDumpOptions = {}): string {
  let doc: { kind: 'opregion'; opRegion: OpRegion } | { kind: 'vbt'; vbt: Vbt };
  if (startsWith(bytes, OPREGION_SIGNATURE)) doc = { kind: 'opregion', opRegion: parseOpRegion(bytes) };
  else if (startsWith(bytes, VBT_SIGNATURE_PREFIX)) doc = { kind: 'vbt', vbt: parseVbt(bytes) };
  else {
    throw new VfioError(
      'EINVAL',
      `the input (${bytes.length} bytes) starts with neither "${OPREGION_SIGNATURE}" nor "${VBT_SIGNATURE_PREFIX}".`,
      { offset: 0, hint: 'Give an IGD OpRegion dump or a VBT file.' },
    );
  }
  if (options.json) return `${JSON.stringify(toJsonValue(doc), null, 2)}\n`;
  const out: string[] = [];
  if (doc.kind === 'opregion') dumpOpRegion(doc.opRegion, out);
  const vbt = doc.kind === 'vbt' ? doc.vbt : doc.opRegion.vbt;
  if (vbt) dumpVbt(vbt, out);
  return `${out.join('\n')}\n`;
}

function dumpOpRegion(op: OpRegion, out: string[]): void {
  const m = op.mailboxes;
  const names = [
    m.acpi && 'ACPI',
    m.swsci && 'SWSCI',
    m.asle && 'ASLE',
    m.vbt && 'VBT',
    m.asleExt && 'ASLE_EXT',
    m.backlight && 'BACKLIGHT',
  ].filter(Boolean);
  out.push('IGD OpRegion');
  out.push(`  signature      ${op.signature}`);
  out.push(`  size           ${op.sizeKiB} KiB`);
  out.push(`  version        ${op.version.text} (${hx(op.version.raw, 8)})`);
  out.push(`  bios_ver       "${op.biosVersion}"`);
  out.push(`  vbios_ver      "${op.vbiosVersion}"`);
  out.push(`  driver_ver     "${op.driverVersion}"`);
  out.push(`  mboxes         ${hx(m.raw)} (${names.join(' ') || 'none'})`);
  out.push(`  driver_model   ${hx(op.driverModel)}`);
  out.push(`  pcon           ${hx(op.platformConfig)}`);
  out.push(`  dver           "${op.gopVersion}"`);
  const a = op.acpi;
  out.push('Mailbox 1 (ACPI)');
  out.push(
    `  drdy ${a.drdy}  csts ${a.csts}  cevt ${a.cevt}  aslp ${a.aslp}  tidx ${a.tidx}  chpd ${a.chpd}  clid ${a.clid}  cdck ${a.cdck}`,
  );
  for (const k of ['didl', 'cpdl', 'cadl', 'nadl'] as const)
    out.push(`  ${k} ${a[k].map((v) => hx(v)).join(' ')}`);
  out.push('Mailbox 2 (SWSCI)');
  out.push(`  scic ${hx(op.swsci.scic)}  parm ${hx(op.swsci.parm)}  dslp ${op.swsci.dslp}`);
  const s = op.asle;
  out.push('Mailbox 3 (ASLE)');
  out.push(
    `  ardy ${s.ardy}  aslc ${hx(s.aslc)}  tche ${hx(s.tche)}  alsi ${s.alsi}  bclp ${hx(s.bclp)}  pfit ${hx(s.pfit)}  cblv ${hx(s.cblv)}`,
  );
  out.push(`  bclm ${s.bclm.map((v) => hx(v)).join(' ')}`);
  out.push(
    `  cpfm ${hx(s.cpfm)}  epfm ${hx(s.epfm)}  pfmb ${hx(s.pfmb)}  cddv ${hx(s.cddv)}  pcft ${hx(s.pcft)}  srot ${s.srot}  iuer ${hx(s.iuer)}`,
  );
  out.push(
    `  fdss ${hx(s.fdss, 16)}  fdsp ${hx(s.fdsp)}  stat ${hx(s.stat)}  rvda ${hx(s.rvda)}  rvds ${s.rvds}`,
  );
  out.push('Mailbox 5 (ASLE_EXT)');
  out.push(`  phed ${hx(op.phed)}`);
  const l = op.vbtLocation;
  out.push(
    l.kind === 'mailbox4'
      ? `VBT in mailbox 4 at 0x400: ${l.size} of ${l.capacity} bytes`
      : l.kind === 'extended'
        ? `VBT out of line at offset ${hx(l.offset)} (RVDA): ${l.size} bytes`
        : l.kind === 'physical'
          ? `VBT at host physical address ${hx(l.address)} (OpRegion 2.0 RVDA): ${l.size} bytes, not in this dump`
          : 'no VBT',
  );
  for (const w of op.warnings) out.push(`  warning: ${w}`);
}

function dumpVbt(vbt: Vbt, out: string[]): void {
  const h = vbt.header;
  out.push('VBT header');
  out.push(`  signature      "${h.signature}"`);
  out.push(`  version        ${h.version}`);
  out.push(`  header_size    ${h.headerSize}`);
  out.push(`  vbt_size       ${h.vbtSize}`);
  out.push(
    `  checksum       ${hx(h.checksum, 2)} (${vbt.checksum.ok ? 'ok' : `byte sum ${vbt.checksum.byteSum}, not 0`})`,
  );
  out.push(`  bdb_offset     ${h.bdbOffset}`);
  out.push('BDB header');
  out.push(`  signature      "${vbt.bdb.signature}"`);
  out.push(`  version        ${vbt.bdb.version}`);
  out.push(`  header_size    ${vbt.bdb.headerSize}`);
  out.push(`  bdb_size       ${vbt.bdb.bdbSize}`);
  out.push(`Blocks (${vbt.blocks.length})`);
  for (const b of vbt.blocks) {
    out.push(
      `  ${String(b.id).padStart(3)}  ${b.name.padEnd(34)} offset ${hx(b.offset, 4)}  size ${String(b.size).padStart(5)}${b.pastBdbSize ? '  (past bdb_size)' : ''}`,
    );
  }
  const gf = vbt.generalFeatures;
  if (gf) {
    out.push('General features (block 1)');
    out.push(
      `  panel_fitting ${gf.panelFitting}  enable_ssc ${gf.enableSsc}  ssc_freq ${gf.sscFreq}  int_crt_support ${gf.intCrtSupport}  int_efp_support ${gf.intEfpSupport}`,
    );
  }
  const gd = vbt.generalDefinitions;
  if (gd) {
    out.push(
      `General definitions (block 2): child device size ${gd.childDeviceSize}, ${gd.childDevices.length} slot(s)`,
    );
    for (const c of gd.childDevices) {
      if (c.deviceType === 0) continue;
      out.push(
        `  child ${c.index}: handle ${hx(c.handle, 4)}  device_type ${hx(c.deviceType, 4)}  dvo_port ${c.dvoPort}  ddc_pin ${c.ddcPin}  aux_channel ${hx(c.auxChannel, 2)}`,
      );
    }
  }
  if (vbt.driverFeatures) out.push('Driver features (block 12): decoded (use --json for every field)');
  if (vbt.lfpOptions) {
    out.push(
      `LFP options (block 40): panel_type ${vbt.lfpOptions.panelType}${vbt.lfpOptions.panelType2 !== undefined ? `  panel_type2 ${vbt.lfpOptions.panelType2}` : ''}`,
    );
  }
  for (const w of vbt.warnings) out.push(`  warning: ${w}`);
}
