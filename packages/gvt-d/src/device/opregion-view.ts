/**
 * The OpRegion as vfio-pci presents it (linux drivers/vfio/pci/vfio_pci_igd.c,
 * vfio_pci_igd_opregion_init and vfio_pci_igd_rw): one contiguous read-only view of
 * size_KiB x 1024 (+ RVDS when an extended VBT is in use), in which
 * - the first 8 KiB are the host OpRegion, except
 * - the version (u16 at 0x16) reads 2.1 when the host OpRegion is 2.0 with an extended VBT, and
 * - RVDA (u64 at 0x3ba) reads 0x2000 when there is an extended VBT and 0 otherwise;
 * - the extended VBT (RVDS bytes) follows at 0x2000, wherever RVDA put it on the host.
 * A size field other than 8 KiB is refused: the kernel maps only 8 KiB and would fault reading
 * the rest (and its u32 size arithmetic wraps for huge values).
 */
import { VfioError } from '@vfiokit/core';
import {
  ASLE_OFF_RVDA,
  ASLE_OFF_RVDS,
  OPR_OFF_OVER_MINOR,
  OPR_OFF_SIZE,
  OPREGION_REGION,
  OPREGION_SIGNATURE,
  OPREGION_SIZE,
  OPREGION_SIZE_UNIT,
  OPREGION_VERSION_RVDA,
  OPREGION_VERSION_RVDA_RELATIVE,
} from '../opregion/layout.js';
import { writeU32 } from '../vbt/build.js';

export interface OpRegionView {
  /** The region's bytes, exactly as a read of the whole region returns them. */
  readonly bytes: Uint8Array;
  /** The host OpRegion's version (major << 8 | minor). */
  readonly hostVersion: number;
  /** RVDS, when an extended VBT is presented at 0x2000. */
  readonly extendedVbtSize: number;
  /** True when a 2.0 OpRegion was re-presented as 2.1. */
  readonly versionPatched: boolean;
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) =>
  (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

function invalid(problem: string, offset: number, hint: string): VfioError {
  return new VfioError('EINVAL', problem, { region: OPREGION_REGION, offset, hint });
}

/**
 * Build the vfio-pci view of a host OpRegion. `extendedVbt` supplies the RVDS bytes at RVDA when
 * they are not inside `hostOpRegion` (OpRegion 2.0, where RVDA is a host physical address).
 */
export function presentOpRegion(hostOpRegion: Uint8Array, extendedVbt?: Uint8Array): OpRegionView {
  const op = hostOpRegion;
  let sig = op.length >= OPREGION_SIGNATURE.length;
  for (let i = 0; sig && i < OPREGION_SIGNATURE.length; i++) sig = op[i] === OPREGION_SIGNATURE.charCodeAt(i);
  if (!sig) {
    throw invalid(
      `the host OpRegion does not start with "${OPREGION_SIGNATURE}".`,
      0,
      'ASLS points at something else or the dump is not an OpRegion; vfio-pci refuses it the same way.',
    );
  }
  if (op.length < OPREGION_SIZE) {
    throw invalid(
      `the host OpRegion is ${op.length} bytes; vfio-pci maps 8 KiB (header and five mailboxes).`,
      op.length,
      'Supply the whole 8 KiB OpRegion.',
    );
  }
  const sizeKiB = u32(op, OPR_OFF_SIZE);
  if (sizeKiB === 0) {
    throw invalid(
      'the OpRegion size field (u32 KiB at 0x10) is 0.',
      OPR_OFF_SIZE,
      'The OpRegion is corrupt.',
    );
  }
  if (sizeKiB * OPREGION_SIZE_UNIT !== OPREGION_SIZE) {
    throw invalid(
      `the OpRegion size field (u32 KiB at 0x10) is ${sizeKiB} KiB; vfio-pci maps exactly 8 KiB, so any other size gives a region it cannot read.`,
      OPR_OFF_SIZE,
      'Every IGD OpRegion is 8 KiB; the size field is corrupt.',
    );
  }
  const version = u16(op, OPR_OFF_OVER_MINOR);
  const rvdaLo = u32(op, ASLE_OFF_RVDA);
  const rvdaHi = u32(op, ASLE_OFF_RVDA + 4);
  const rvds = u32(op, ASLE_OFF_RVDS);
  let vbt: Uint8Array | undefined;
  if (version >= OPREGION_VERSION_RVDA && (rvdaLo !== 0 || rvdaHi !== 0) && rvds !== 0) {
    if (extendedVbt !== undefined) {
      if (extendedVbt.length < rvds) {
        throw invalid(
          `RVDS (u32 at 0x3c2) is ${rvds} bytes but only ${extendedVbt.length} bytes of extended VBT were given.`,
          ASLE_OFF_RVDS,
          'Supply the whole extended VBT (RVDS bytes at RVDA).',
        );
      }
      vbt = extendedVbt.subarray(0, rvds);
    } else if (version < OPREGION_VERSION_RVDA_RELATIVE) {
      throw invalid(
        `the OpRegion is 2.0 with an extended VBT at host physical address 0x${((BigInt(rvdaHi) << 32n) | BigInt(rvdaLo)).toString(16)}; its bytes are not in this copy.`,
        ASLE_OFF_RVDA,
        'Give the extended VBT separately (extendedVbt), as the kernel maps it from RVDA.',
      );
    } else {
      const rvda = rvdaLo; // used only when rvdaHi is 0
      if (rvdaHi !== 0 || rvda + rvds > op.length) {
        throw invalid(
          `RVDA 0x${((BigInt(rvdaHi) << 32n) | BigInt(rvdaLo)).toString(16)} + RVDS ${rvds} ends past the ${op.length} bytes of the host OpRegion.`,
          ASLE_OFF_RVDA,
          'Supply the OpRegion through its extended VBT, or give the extended VBT separately.',
        );
      }
      vbt = op.subarray(rvda, rvda + rvds);
    }
  }
  const size = OPREGION_SIZE + (vbt ? rvds : 0);
  const bytes = new Uint8Array(size);
  bytes.set(op.subarray(0, OPREGION_SIZE));
  let versionPatched = false;
  if (vbt) {
    bytes.set(vbt, OPREGION_SIZE);
    if (version === OPREGION_VERSION_RVDA) {
      bytes[OPR_OFF_OVER_MINOR] = 0x01; // 2.0 -> 2.1 (vfio_pci_igd_rw)
      versionPatched = true;
    }
  }
  writeU32(bytes, ASLE_OFF_RVDA, vbt ? OPREGION_SIZE : 0);
  writeU32(bytes, ASLE_OFF_RVDA + 4, 0);
  return { bytes, hostVersion: version, extendedVbtSize: vbt ? rvds : 0, versionPatched };
}
