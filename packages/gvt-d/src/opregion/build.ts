/**
 * OpRegion builder: wraps a VBT in a valid IGD OpRegion, the way coreboot's
 * src/drivers/intel/gma/opregion.c and the kernel's contiguous vfio view do (reference §4.1, §4.2):
 * - a VBT of up to 6 KiB goes in-line in mailbox 4, OpRegion version 2.0, RVDA = RVDS = 0;
 * - a larger one follows the 8 KiB OpRegion (0x2000 is already 512-byte aligned), with version 2.1
 *   so that RVDA is relative: RVDA = 0x2000, RVDS = vbt_size.
 */
import { VfioError } from '@vfiokit/core';
import { writeAscii, writeU16, writeU32 } from '../vbt/build.js';
import { parseVbt } from '../vbt/parse.js';
import {
  ASLE_BCLM_LENGTH,
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
  MBOX_SWSCI,
  MBOX_VBT,
  MBOX4_SIZE_WITH_MBOX5,
  OPR_MBOX4,
  OPR_OFF_MBOXES,
  OPR_OFF_OVER_MAJOR,
  OPR_OFF_OVER_MINOR,
  OPR_OFF_OVER_REVISION,
  OPR_OFF_SIZE,
  OPR_OFF_VBIOS_VER,
  OPR_VBIOS_VER_SIZE,
  OPREGION_REGION,
  OPREGION_SIGNATURE,
  OPREGION_SIZE,
  OPREGION_SIZE_UNIT,
} from './layout.js';

/** The 32-bit ASLE fields a builder may set (RVDA/RVDS belong to the builder). */
export interface AsleInput {
  ardy: number;
  aslc: number;
  tche: number;
  alsi: number;
  bclp: number;
  pfit: number;
  cblv: number;
  bclm: readonly number[];
  cpfm: number;
  epfm: number;
  plut: readonly number[];
  pfmb: number;
  cddv: number;
  pcft: number;
  srot: number;
  iuer: number;
  fdsp: number;
  stat: number;
}

export interface OpRegionVersionInput {
  major: number;
  minor: number;
  revision?: number;
}

export interface BuildOpRegionOptions {
  /** A VBT; bytes after its vbt_size (padding) are not copied. */
  vbt: Uint8Array;
  /** Default 2.0 for an in-line VBT, 2.1 for an extended one. */
  version?: OpRegionVersionInput;
  /** 'auto' (default): mailbox 4 when the VBT fits in 6 KiB, else after the OpRegion. */
  placement?: 'auto' | 'mailbox4' | 'extended';
  asle?: Partial<AsleInput>;
  vbiosVersion?: string;
  /** mboxes bitmask; default ACPI | SWSCI | ASLE | VBT | ASLE_EXT (0x1f, as a real Skylake dump). */
  mailboxes?: number;
}

const DEFAULT_MAILBOXES = MBOX_ACPI | MBOX_SWSCI | MBOX_ASLE | MBOX_VBT | MBOX_ASLE_EXT;
const EXTENDED_VBT_OFFSET = OPREGION_SIZE; // right after the 8 KiB (coreboot opregion.c)

const ASLE_U32_FIELDS: ReadonlyArray<[keyof AsleInput, number]> = [
  ['ardy', ASLE_OFF_ARDY],
  ['aslc', ASLE_OFF_ASLC],
  ['tche', ASLE_OFF_TCHE],
  ['alsi', ASLE_OFF_ALSI],
  ['bclp', ASLE_OFF_BCLP],
  ['pfit', ASLE_OFF_PFIT],
  ['cblv', ASLE_OFF_CBLV],
  ['cpfm', ASLE_OFF_CPFM],
  ['epfm', ASLE_OFF_EPFM],
  ['pfmb', ASLE_OFF_PFMB],
  ['cddv', ASLE_OFF_CDDV],
  ['pcft', ASLE_OFF_PCFT],
  ['srot', ASLE_OFF_SROT],
  ['iuer', ASLE_OFF_IUER],
  ['fdsp', ASLE_OFF_FDSP],
  ['stat', ASLE_OFF_STAT],
];

export function buildOpRegion(options: BuildOpRegionOptions): Uint8Array {
  const parsed = parseVbt(options.vbt);
  const vbtSize = parsed.header.vbtSize;
  const placement = options.placement ?? 'auto';
  const extended = placement === 'extended' || (placement === 'auto' && vbtSize > MBOX4_SIZE_WITH_MBOX5);
  if (!extended && vbtSize > MBOX4_SIZE_WITH_MBOX5) {
    throw new VfioError(
      'EINVAL',
      `the VBT is ${vbtSize} bytes; mailbox 4 holds at most ${MBOX4_SIZE_WITH_MBOX5}.`,
      { region: OPREGION_REGION, offset: OPR_MBOX4, hint: "Use placement 'extended' (RVDA/RVDS) or 'auto'." },
    );
  }
  const version = options.version ?? (extended ? { major: 2, minor: 1 } : { major: 2, minor: 0 });
  for (const [name, v] of [
    ['major', version.major],
    ['minor', version.minor],
    ['revision', version.revision ?? 0],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) {
      throw new VfioError('EINVAL', `OpRegion version ${name} ${v} does not fit its byte.`, {
        region: OPREGION_REGION,
        offset: OPR_OFF_OVER_MAJOR,
        hint: 'Use integers 0..255.',
      });
    }
  }
  if (extended && ((version.major << 8) | version.minor) < 0x0201) {
    throw new VfioError(
      'EINVAL',
      `an extended VBT needs OpRegion 2.1 or later (asked for ${version.major}.${version.minor}): in 2.0 RVDA is a host physical address.`,
      { region: OPREGION_REGION, offset: ASLE_OFF_RVDA, hint: 'Leave version unset or ask for 2.1+.' },
    );
  }

  const out = new Uint8Array(extended ? EXTENDED_VBT_OFFSET + vbtSize : OPREGION_SIZE);
  writeAscii(out, 0, OPREGION_SIGNATURE);
  writeU32(out, OPR_OFF_SIZE, OPREGION_SIZE / OPREGION_SIZE_UNIT);
  out[OPR_OFF_OVER_REVISION] = version.revision ?? 0;
  out[OPR_OFF_OVER_MINOR] = version.minor;
  out[OPR_OFF_OVER_MAJOR] = version.major;
  if (options.vbiosVersion !== undefined) {
    writeAscii(out, OPR_OFF_VBIOS_VER, options.vbiosVersion.slice(0, OPR_VBIOS_VER_SIZE));
  }
  const mailboxes = options.mailboxes ?? DEFAULT_MAILBOXES;
  checkU32('mboxes', mailboxes, OPR_OFF_MBOXES);
  writeU32(out, OPR_OFF_MBOXES, mailboxes);

  const asle = options.asle ?? {};
  for (const [name, off] of ASLE_U32_FIELDS) {
    const v = asle[name];
    if (v === undefined) continue;
    checkU32(name, v as number, off);
    writeU32(out, off, v as number);
  }
  if (asle.bclm !== undefined) {
    if (asle.bclm.length > ASLE_BCLM_LENGTH) {
      throw new VfioError('EINVAL', `bclm has ${asle.bclm.length} entries; the field holds 20.`, {
        region: OPREGION_REGION,
        offset: ASLE_OFF_BCLM,
      });
    }
    asle.bclm.forEach((v, i) => {
      if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
        throw new VfioError('EINVAL', `bclm[${i}] = ${v} does not fit a u16.`, {
          region: OPREGION_REGION,
          offset: ASLE_OFF_BCLM + 2 * i,
        });
      }
      writeU16(out, ASLE_OFF_BCLM + 2 * i, v);
    });
  }
  if (asle.plut !== undefined) {
    if (
      asle.plut.length > ASLE_PLUT_SIZE ||
      asle.plut.some((v) => !Number.isInteger(v) || v < 0 || v > 0xff)
    ) {
      throw new VfioError('EINVAL', 'plut must be at most 74 bytes (integers 0..255).', {
        region: OPREGION_REGION,
        offset: ASLE_OFF_PLUT,
      });
    }
    out.set(asle.plut, ASLE_OFF_PLUT);
  }

  const vbtBytes = options.vbt.subarray(0, vbtSize);
  if (extended) {
    out.set(vbtBytes, EXTENDED_VBT_OFFSET);
    writeU32(out, ASLE_OFF_RVDA, EXTENDED_VBT_OFFSET); // u64: the high half stays 0
    writeU32(out, ASLE_OFF_RVDS, vbtSize);
  } else {
    out.set(vbtBytes, OPR_MBOX4);
  }
  return out;
}

function checkU32(name: string, v: number, offset: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
    throw new VfioError('EINVAL', `${name} = ${v} does not fit its u32 field.`, {
      region: OPREGION_REGION,
      offset,
      hint: 'Use an integer 0..0xffffffff.',
    });
  }
}
