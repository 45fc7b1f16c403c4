/**
 * The guest firmware's IGD step, what SeaBIOS (src/fw/pciinit.c intel_igd_setup) and OVMF's
 * IgdAssignmentDxe do once the PCI bus is set up, acting only through the GuestView: for the
 * Intel display function at 00:02.0, read fw_cfg etc/igd-opregion, copy it into reserved guest
 * RAM below 4 GiB (4 KiB aligned) and write that address into ASLS (config 0xfc); read
 * etc/igd-bdsm-size (u64 LE), reserve that much RAM below 4 GiB (1 MiB aligned) and write its
 * base into BDSM (0x5c before gen 11, the qword at 0xc0 from gen 11).
 */
import type { GuestView, ProbedDevice } from '@vfiokit/core';
import { toVfioError } from '@vfiokit/core/host';
import { IGD_ASLS, igdBdsmRegister, igdGeneration } from '@vfiokit/hw';
import {
  FW_CFG_IGD_BDSM_SIZE,
  FW_CFG_IGD_OPREGION,
  IGD_SLOT,
  type IgdFirmwareReport,
  PCI_BASE_CLASS_DISPLAY,
  PCI_VENDOR_ID_INTEL,
} from '../machine/igd/assignment.js';
import { fwCfgFiles, fwCfgReadFile } from './fw-cfg.js';

// OVMF IgdAssignmentDxe / SeaBIOS: the OpRegion copy is 4 KiB aligned, stolen memory 1 MiB aligned
export const OPREGION_ALIGNMENT = 0x1000;
export const BDSM_ALIGNMENT = 0x10_0000;
/** Both reservations must lie below 4 GiB (ASLS is 32 bits; firmware keeps BDSM there too). */
const FOUR_GIB = 2 ** 32;

/** @deprecated The same as `IgdFirmwareReport`, the machine's record of this step: use that. */
export type IgdFirmwareResult = IgdFirmwareReport;

/** The function the firmware step serves: Intel, display class, at 00:02.0 (IgdAssignmentDxe's match). */
export function isAssignedIgd(d: ProbedDevice): boolean {
  return (
    d.vendorId === PCI_VENDOR_ID_INTEL &&
    d.classCode >>> 16 === PCI_BASE_CLASS_DISPLAY &&
    d.address.bus === 0 &&
    d.address.device === IGD_SLOT.device &&
    d.address.function === IGD_SLOT.function
  );
}

/** Run the firmware step; undefined when the probe found no IGD at 00:02.0. */
export function igdFirmware(guest: GuestView): IgdFirmwareReport | undefined {
  const igd = guest.devices().find(isAssignedIgd);
  if (igd === undefined) return undefined;
  const done: { opRegionAddress?: number; opRegionSize?: number; stolenBase?: number; stolenSize?: number } =
    {};
  try {
    const files = fwCfgFiles(guest);
    const opRegion = fwCfgReadFile(guest, FW_CFG_IGD_OPREGION, files);
    if (opRegion !== undefined && opRegion.length > 0) {
      const at = reserveBelow4G(guest, opRegion.length, OPREGION_ALIGNMENT, 'the OpRegion copy');
      guest.ram.write(at, opRegion);
      guest.configWrite(igd.address, IGD_ASLS, 4, at);
      done.opRegionAddress = at;
      done.opRegionSize = opRegion.length;
      guest.log(
        `firmware: IGD OpRegion (${opRegion.length} bytes) copied to 0x${at.toString(16)}, ASLS written`,
      );
    }
    const sizeFile = fwCfgReadFile(guest, FW_CFG_IGD_BDSM_SIZE, files);
    if (sizeFile !== undefined && sizeFile.length >= 8) {
      const size = new DataView(sizeFile.buffer, sizeFile.byteOffset, 8).getBigUint64(0, true);
      if (size >= BigInt(FOUR_GIB))
        throw new RangeError(`etc/igd-bdsm-size asks for ${size} bytes, 4 GiB or more`);
      const bytes = Number(size);
      if (bytes > 0) {
        const base = reserveBelow4G(guest, bytes, BDSM_ALIGNMENT, 'stolen memory');
        const reg = igdBdsmRegister(igdGeneration(igd.deviceId));
        guest.configWrite(igd.address, reg.offset, 4, base);
        if (reg.size === 8) guest.configWrite(igd.address, reg.offset + 4, 4, 0);
        done.stolenBase = base;
        done.stolenSize = bytes;
        guest.log(
          `firmware: ${bytes / BDSM_ALIGNMENT} MiB of IGD stolen memory reserved at 0x${base.toString(16)}, BDSM written`,
        );
      }
    }
  } catch (err) {
    const e = err instanceof RangeError ? err : toVfioError(err);
    return {
      ok: false,
      summary: `the IGD firmware step stopped: ${e.message}`,
      error: e.message,
      ...done,
    };
  }
  const parts = [
    done.opRegionAddress !== undefined
      ? `OpRegion at 0x${done.opRegionAddress.toString(16)} (ASLS)`
      : 'no etc/igd-opregion file, ASLS left 0',
    done.stolenBase !== undefined
      ? `${(done.stolenSize ?? 0) / BDSM_ALIGNMENT} MiB stolen memory at 0x${done.stolenBase.toString(16)} (BDSM)`
      : 'no stolen memory asked for, BDSM left 0',
  ];
  return { ok: true, summary: parts.join(', '), ...done };
}

function reserveBelow4G(guest: GuestView, size: number, align: number, what: string): number {
  const at = guest.ram.alloc(size, align);
  if (at + size > FOUR_GIB) throw new RangeError(`${what} landed at 0x${at.toString(16)}, not below 4 GiB`);
  return at;
}
