/**
 * IGD OpRegion parser and validator: the header, the mailbox fields the reference documents, and
 * the VBT, found in mailbox 4 or out of line through RVDA/RVDS.
 *
 * VBT discovery (vfio_pci_igd.c, i915 intel_opregion.c; reference §4.1, §4.2):
 * - version >= 2.0 with RVDA and RVDS both non-zero: the VBT lives outside the 8 KiB;
 *   - 2.0: RVDA is a host physical address. It cannot be followed inside a copy, so it is reported
 *     (vbtLocation.kind 'physical') and vbt is null;
 *   - 2.1+: RVDA is an offset from the OpRegion start, at least 8 KiB (i915), and
 *     [RVDA, RVDA + RVDS) must lie inside the bytes given.
 * - otherwise the VBT is in mailbox 4 (0x400): 6 KiB when mailbox 5 is present, else 7 KiB.
 */
import { ByteReader } from '../bytes.js';
import { parseVbt, type Vbt } from '../vbt/parse.js';
import {
  ACPI_DISPLAY_LIST_LENGTH,
  ACPI_OFF_ASLP,
  ACPI_OFF_CADL,
  ACPI_OFF_CDCK,
  ACPI_OFF_CEVT,
  ACPI_OFF_CHPD,
  ACPI_OFF_CLID,
  ACPI_OFF_CPDL,
  ACPI_OFF_CSTS,
  ACPI_OFF_DIDL,
  ACPI_OFF_DRDY,
  ACPI_OFF_NADL,
  ACPI_OFF_TIDX,
  ASLE_BCLM_LENGTH,
  ASLE_EXT_OFF_PHED,
  ASLE_OFF_ALSI,
  ASLE_OFF_ARDY,
  ASLE_OFF_ASLC,
  ASLE_OFF_BCLM,
  ASLE_OFF_BCLP,
  ASLE_OFF_CBLV,
  ASLE_OFF_CDDV,
  ASLE_OFF_CPFM,
  ASLE_OFF_EPFM,
  ASLE_OFF_FDSP,
  ASLE_OFF_FDSS,
  ASLE_OFF_IUER,
  ASLE_OFF_PCFT,
  ASLE_OFF_PFIT,
  ASLE_OFF_PFMB,
  ASLE_OFF_PLUT,
  ASLE_OFF_RVDA,
  ASLE_OFF_RVDS,
  ASLE_OFF_SROT,
  ASLE_OFF_STAT,
  ASLE_OFF_TCHE,
  ASLE_PLUT_SIZE,
  MBOX_ACPI,
  MBOX_ASLE,
  MBOX_ASLE_EXT,
  MBOX_BACKLIGHT,
  MBOX_SWSCI,
  MBOX_VBT,
  MBOX4_SIZE_WITH_MBOX5,
  MBOX4_SIZE_WITHOUT_MBOX5,
  OPR_BIOS_VER_SIZE,
  OPR_DRIVER_VER_SIZE,
  OPR_DVER_SIZE,
  OPR_MBOX4,
  OPR_OFF_BIOS_VER,
  OPR_OFF_DRIVER_MODEL,
  OPR_OFF_DRIVER_VER,
  OPR_OFF_DVER,
  OPR_OFF_MBOXES,
  OPR_OFF_OVER,
  OPR_OFF_OVER_MAJOR,
  OPR_OFF_OVER_MINOR,
  OPR_OFF_OVER_REVISION,
  OPR_OFF_PCON,
  OPR_OFF_SIGNATURE,
  OPR_OFF_SIZE,
  OPR_OFF_VBIOS_VER,
  OPR_VBIOS_VER_SIZE,
  OPREGION_REGION,
  OPREGION_SIGNATURE,
  OPREGION_SIZE,
  OPREGION_SIZE_UNIT,
  OPREGION_VERSION_RVDA,
  OPREGION_VERSION_RVDA_RELATIVE,
  SWSCI_OFF_DSLP,
  SWSCI_OFF_PARM,
  SWSCI_OFF_SCIC,
} from './layout.js';

export interface OpRegionVersion {
  major: number;
  minor: number;
  revision: number;
  /** The raw u32 "over" field at 0x14. */
  raw: number;
  /** "major.minor.revision", e.g. "2.0.0". */
  text: string;
}

export interface Mailboxes {
  raw: number;
  acpi: boolean;
  swsci: boolean;
  asle: boolean;
  vbt: boolean;
  asleExt: boolean;
  backlight: boolean;
}

export interface AcpiMailbox {
  drdy: number;
  csts: number;
  cevt: number;
  didl: number[];
  cpdl: number[];
  cadl: number[];
  nadl: number[];
  aslp: number;
  tidx: number;
  chpd: number;
  clid: number;
  cdck: number;
}

export interface SwsciMailbox {
  scic: number;
  parm: number;
  dslp: number;
}

/** Mailbox 3 (ASLE) fields with the offsets of reference §4.2. */
export interface Asle {
  ardy: number;
  aslc: number;
  tche: number;
  alsi: number;
  bclp: number;
  pfit: number;
  cblv: number;
  /** u16[20] brightness levels. */
  bclm: number[];
  cpfm: number;
  epfm: number;
  /** The 74 panel LUT bytes, as stored. */
  plut: number[];
  pfmb: number;
  cddv: number;
  pcft: number;
  srot: number;
  iuer: number;
  /** u64, exact. */
  fdss: bigint;
  fdsp: number;
  stat: number;
  /** u64, exact: from OpRegion 2.1 an offset from the OpRegion's start, in 2.0 a host physical address. */
  rvda: bigint;
  rvds: number;
}

export type VbtLocation =
  | { kind: 'mailbox4'; offset: number; capacity: number; size: number }
  | { kind: 'extended'; offset: number; size: number }
  | { kind: 'physical'; address: bigint; size: number }
  | { kind: 'none' };

export interface OpRegion {
  signature: string;
  /** The size field (KiB). */
  sizeKiB: number;
  version: OpRegionVersion;
  biosVersion: string;
  vbiosVersion: string;
  driverVersion: string;
  mailboxes: Mailboxes;
  driverModel: number;
  /** pcon: platform configuration (bit 13 headless, OpRegion 2.3+). */
  platformConfig: number;
  gopVersion: string;
  acpi: AcpiMailbox;
  swsci: SwsciMailbox;
  asle: Asle;
  /** Mailbox 5 PHED (u32 at 0x1C00). */
  phed: number;
  vbtLocation: VbtLocation;
  /** The VBT bytes (exactly vbt_size of them, a copy), or null when there is none to read. */
  vbtBytes: Uint8Array | null;
  vbt: Vbt | null;
  warnings: string[];
}

export function parseOpRegion(bytes: Uint8Array): OpRegion {
  const r = new ByteReader(bytes, OPREGION_REGION);
  const warnings: string[] = [];

  if (!r.startsWith(OPR_OFF_SIGNATURE, OPREGION_SIGNATURE)) {
    const found = r.length >= 16 ? `"${latin1(bytes.subarray(0, 16))}"` : `${r.length} byte(s)`;
    throw r.invalid(
      OPR_OFF_SIGNATURE,
      `OpRegion signature is ${found}, not "${OPREGION_SIGNATURE}".`,
      'This is not an IGD OpRegion (ASLS may point elsewhere, or the dump is truncated).',
    );
  }
  r.need(0, OPREGION_SIZE, 'OpRegion header and mailboxes (8 KiB)');

  const sizeKiB = r.u32(OPR_OFF_SIZE, 'OpRegion size');
  const sizeBytes = sizeKiB * OPREGION_SIZE_UNIT;
  if (sizeKiB === 0 || sizeBytes < OPREGION_SIZE) {
    throw r.invalid(
      OPR_OFF_SIZE,
      `OpRegion size field (u32 KiB at 0x10) is ${sizeKiB} KiB; the header and five mailboxes need 8 KiB.`,
      'The size field is corrupt.',
    );
  }
  if (sizeBytes > bytes.length) {
    throw r.invalid(
      OPR_OFF_SIZE,
      `OpRegion size field (u32 KiB at 0x10) says ${sizeKiB} KiB but only ${bytes.length} byte(s) were given.`,
      'Supply the whole OpRegion or fix the size field.',
    );
  }

  const major = r.u8(OPR_OFF_OVER_MAJOR, 'version major');
  const minor = r.u8(OPR_OFF_OVER_MINOR, 'version minor');
  const revision = r.u8(OPR_OFF_OVER_REVISION, 'version revision');
  const version: OpRegionVersion = {
    major,
    minor,
    revision,
    raw: r.u32(OPR_OFF_OVER, 'version'),
    text: `${major}.${minor}.${revision}`,
  };
  const mbox = r.u32(OPR_OFF_MBOXES, 'mboxes');
  const mailboxes: Mailboxes = {
    raw: mbox,
    acpi: (mbox & MBOX_ACPI) !== 0,
    swsci: (mbox & MBOX_SWSCI) !== 0,
    asle: (mbox & MBOX_ASLE) !== 0,
    vbt: (mbox & MBOX_VBT) !== 0,
    asleExt: (mbox & MBOX_ASLE_EXT) !== 0,
    backlight: (mbox & MBOX_BACKLIGHT) !== 0,
  };

  const list = (off: number, name: string) => {
    const out: number[] = [];
    for (let i = 0; i < ACPI_DISPLAY_LIST_LENGTH; i++) out.push(r.u32(off + 4 * i, `${name}[${i}]`));
    return out;
  };
  const acpi: AcpiMailbox = {
    drdy: r.u32(ACPI_OFF_DRDY, 'drdy'),
    csts: r.u32(ACPI_OFF_CSTS, 'csts'),
    cevt: r.u32(ACPI_OFF_CEVT, 'cevt'),
    didl: list(ACPI_OFF_DIDL, 'didl'),
    cpdl: list(ACPI_OFF_CPDL, 'cpdl'),
    cadl: list(ACPI_OFF_CADL, 'cadl'),
    nadl: list(ACPI_OFF_NADL, 'nadl'),
    aslp: r.u32(ACPI_OFF_ASLP, 'aslp'),
    tidx: r.u32(ACPI_OFF_TIDX, 'tidx'),
    chpd: r.u32(ACPI_OFF_CHPD, 'chpd'),
    clid: r.u32(ACPI_OFF_CLID, 'clid'),
    cdck: r.u32(ACPI_OFF_CDCK, 'cdck'),
  };
  const swsci: SwsciMailbox = {
    scic: r.u32(SWSCI_OFF_SCIC, 'scic'),
    parm: r.u32(SWSCI_OFF_PARM, 'parm'),
    dslp: r.u32(SWSCI_OFF_DSLP, 'dslp'),
  };
  const bclm: number[] = [];
  for (let i = 0; i < ASLE_BCLM_LENGTH; i++) bclm.push(r.u16(ASLE_OFF_BCLM + 2 * i, `bclm[${i}]`));
  const plut = Array.from(r.view(ASLE_OFF_PLUT, ASLE_PLUT_SIZE, 'plut'));
  const asle: Asle = {
    ardy: r.u32(ASLE_OFF_ARDY, 'ardy'),
    aslc: r.u32(ASLE_OFF_ASLC, 'aslc'),
    tche: r.u32(ASLE_OFF_TCHE, 'tche'),
    alsi: r.u32(ASLE_OFF_ALSI, 'alsi'),
    bclp: r.u32(ASLE_OFF_BCLP, 'bclp'),
    pfit: r.u32(ASLE_OFF_PFIT, 'pfit'),
    cblv: r.u32(ASLE_OFF_CBLV, 'cblv'),
    bclm,
    cpfm: r.u32(ASLE_OFF_CPFM, 'cpfm'),
    epfm: r.u32(ASLE_OFF_EPFM, 'epfm'),
    plut,
    pfmb: r.u32(ASLE_OFF_PFMB, 'pfmb'),
    cddv: r.u32(ASLE_OFF_CDDV, 'cddv'),
    pcft: r.u32(ASLE_OFF_PCFT, 'pcft'),
    srot: r.u32(ASLE_OFF_SROT, 'srot'),
    iuer: r.u32(ASLE_OFF_IUER, 'iuer'),
    fdss: r.u64Big(ASLE_OFF_FDSS, 'fdss'),
    fdsp: r.u32(ASLE_OFF_FDSP, 'fdsp'),
    stat: r.u32(ASLE_OFF_STAT, 'stat'),
    rvda: r.u64Big(ASLE_OFF_RVDA, 'rvda'),
    rvds: r.u32(ASLE_OFF_RVDS, 'rvds'),
  };

  const versionCode = (major << 8) | minor;
  let vbtLocation: VbtLocation;
  let vbtBytes: Uint8Array | null = null;
  let vbt: Vbt | null = null;

  if (versionCode >= OPREGION_VERSION_RVDA && asle.rvda !== 0n && asle.rvds !== 0) {
    const rvdaBig = asle.rvda;
    const rvds = asle.rvds;
    if (versionCode < OPREGION_VERSION_RVDA_RELATIVE) {
      vbtLocation = { kind: 'physical', address: rvdaBig, size: rvds };
      warnings.push(
        `OpRegion 2.0 places the VBT at host physical address 0x${rvdaBig.toString(16)} (${rvds} bytes); a copy cannot reach it, so no VBT was read.`,
      );
    } else {
      if (rvdaBig < BigInt(OPREGION_SIZE)) {
        throw r.invalid(
          ASLE_OFF_RVDA,
          `RVDA is 0x${rvdaBig.toString(16)}, inside the 8 KiB OpRegion; from OpRegion 2.1 it must be an offset of at least 0x2000.`,
          'RVDA is corrupt; the extended VBT must follow the header and mailboxes.',
        );
      }
      if (rvdaBig + BigInt(rvds) > BigInt(bytes.length)) {
        throw r.invalid(
          ASLE_OFF_RVDA,
          `RVDA 0x${rvdaBig.toString(16)} + RVDS ${rvds} (u32 at 0x3c2) ends at 0x${(rvdaBig + BigInt(rvds)).toString(16)}, outside the ${bytes.length}-byte region.`,
          'The extended VBT is missing from this copy, or RVDA/RVDS are corrupt.',
        );
      }
      const rvda = Number(rvdaBig); // inside the region, so exact
      vbtLocation = { kind: 'extended', offset: rvda, size: rvds };
      vbt = parseVbt(bytes.subarray(rvda, rvda + rvds), { base: rvda, region: OPREGION_REGION });
      vbtBytes = bytes.slice(rvda, rvda + vbt.header.vbtSize);
      if (vbt.trailingBytes > 0) {
        warnings.push(`RVDS is ${rvds} but vbt_size is ${vbt.header.vbtSize}; the rest is padding.`);
      }
    }
  } else {
    const capacity = mailboxes.asleExt ? MBOX4_SIZE_WITH_MBOX5 : MBOX4_SIZE_WITHOUT_MBOX5;
    if (r.startsWith(OPR_MBOX4, '$VBT')) {
      vbt = parseVbt(bytes.subarray(OPR_MBOX4, OPR_MBOX4 + capacity), {
        base: OPR_MBOX4,
        region: OPREGION_REGION,
      });
      vbtBytes = bytes.slice(OPR_MBOX4, OPR_MBOX4 + vbt.header.vbtSize);
      vbtLocation = { kind: 'mailbox4', offset: OPR_MBOX4, capacity, size: vbt.header.vbtSize };
      if (!mailboxes.vbt) warnings.push('mailbox 4 holds a VBT but the mboxes VBT bit (3) is clear.');
    } else {
      vbtLocation = { kind: 'none' };
      warnings.push('no VBT: RVDA/RVDS are not in use and mailbox 4 does not start with "$VBT".');
    }
  }

  return {
    signature: OPREGION_SIGNATURE,
    sizeKiB,
    version,
    biosVersion: r.text(OPR_OFF_BIOS_VER, OPR_BIOS_VER_SIZE, 'bios_ver'),
    vbiosVersion: r.text(OPR_OFF_VBIOS_VER, OPR_VBIOS_VER_SIZE, 'vbios_ver'),
    driverVersion: r.text(OPR_OFF_DRIVER_VER, OPR_DRIVER_VER_SIZE, 'driver_ver'),
    mailboxes,
    driverModel: r.u32(OPR_OFF_DRIVER_MODEL, 'driver_model'),
    platformConfig: r.u32(OPR_OFF_PCON, 'pcon'),
    gopVersion: r.text(OPR_OFF_DVER, OPR_DVER_SIZE, 'dver'),
    acpi,
    swsci,
    asle,
    phed: r.u32(ASLE_EXT_OFF_PHED, 'phed'),
    vbtLocation,
    vbtBytes,
    vbt,
    warnings,
  };
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return s;
}
