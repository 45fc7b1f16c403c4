/**
 * A guest driver program doing what i915's OpRegion code does at probe (linux
 * drivers/gpu/drm/i915/display/intel_opregion.c intel_opregion_setup, intel_bios.c): bind to the
 * Intel display function at 00:02.0, read ASLS from config, map the OpRegion from guest RAM at
 * that address (the VMM copied it there), validate it, find the VBT (mailbox 4, or RVDA/RVDS
 * relative to ASLS from OpRegion 2.1), parse it, and report the panel and child devices.
 */
import type { GuestDriver, GuestDriverResult, GuestView, ProbedDevice } from '@vfiokit/core';
import { VfioError } from '@vfiokit/core';
import { IGD_ASLS } from '@vfiokit/hw';
import { IGD_DEVFN, PCI_BASE_CLASS_DISPLAY, PCI_VENDOR_ID_INTEL } from '../igd/constants.js';
import { ASLE_OFF_RVDA, ASLE_OFF_RVDS, OPR_OFF_OVER_MINOR, OPREGION_SIZE } from '../opregion/layout.js';
import { type OpRegion, parseOpRegion } from '../opregion/parse.js';

/** The facts the driver reports; opRegionReport gives the same for a host-side parse. */
export interface OpRegionReport {
  version: string;
  sizeKiB: number;
  mailboxes: number;
  vbtLocation: string;
  vbtSignature: string | null;
  bdbVersion: number | null;
  blocks: number[];
  panelType: number | null;
  childDevices: {
    index: number;
    handle: number;
    deviceType: number;
    dvoPort: number;
    ddcPin: number;
    auxChannel: number;
  }[];
}

export function opRegionReport(op: OpRegion): OpRegionReport {
  const vbt = op.vbt;
  return {
    version: op.version.text,
    sizeKiB: op.sizeKiB,
    mailboxes: op.mailboxes.raw,
    vbtLocation: op.vbtLocation.kind,
    vbtSignature: vbt ? vbt.header.signature.trimEnd() : null,
    bdbVersion: vbt ? vbt.bdb.version : null,
    blocks: vbt ? vbt.blocks.map((b) => b.id) : [],
    panelType: vbt?.lfpOptions?.panelType ?? null,
    childDevices: (vbt?.generalDefinitions?.childDevices ?? [])
      .filter((c) => c.deviceType !== 0)
      .map((c) => ({
        index: c.index,
        handle: c.handle,
        deviceType: c.deviceType,
        dvoPort: c.dvoPort,
        ddcPin: c.ddcPin,
        auxChannel: c.auxChannel,
      })),
  };
}

function fail(summary: string, facts?: Record<string, unknown>): GuestDriverResult {
  return { ok: false, summary, ...(facts ? { facts } : {}) };
}

/** Read the OpRegion the way i915 maps it: 8 KiB at ASLS, plus RVDA + RVDS for a 2.1+ extended VBT. */
export function readGuestOpRegion(guest: GuestView, asls: number): Uint8Array {
  const header = new Uint8Array(OPREGION_SIZE);
  guest.ram.read(asls, header);
  const dv = new DataView(header.buffer);
  const version = dv.getUint16(OPR_OFF_OVER_MINOR, true);
  const rvda = dv.getBigUint64(ASLE_OFF_RVDA, true);
  const rvds = dv.getUint32(ASLE_OFF_RVDS, true);
  // i915 intel_opregion_setup: from 2.1 an extended VBT lives at ASLS + RVDA (RVDA >= 8 KiB)
  if (
    version >= 0x0201 &&
    rvda >= BigInt(OPREGION_SIZE) &&
    rvds !== 0 &&
    rvda + BigInt(rvds) <= BigInt(guest.ram.size)
  ) {
    const whole = new Uint8Array(Number(rvda) + rvds);
    whole.set(header);
    const vbt = new Uint8Array(rvds);
    guest.ram.read(asls + Number(rvda), vbt);
    whole.set(vbt, Number(rvda));
    return whole;
  }
  return header;
}

export const opRegionDriver: GuestDriver = {
  name: 'gvt-d-opregion',
  matches(device: ProbedDevice): boolean {
    return (
      device.vendorId === PCI_VENDOR_ID_INTEL &&
      device.classCode >>> 16 === PCI_BASE_CLASS_DISPLAY &&
      device.address.bus === 0 &&
      device.address.device === IGD_DEVFN.device &&
      device.address.function === IGD_DEVFN.function
    );
  },
  async run(guest: GuestView, device: ProbedDevice): Promise<GuestDriverResult> {
    const asls = guest.configRead(device.address, IGD_ASLS, 4) >>> 0;
    if (asls === 0 || asls === 0xffffffff) {
      return fail(
        `ASLS (config 0xfc) is 0x${asls.toString(16)}: no OpRegion was placed in guest memory, so the driver has no VBT.`,
        { asls },
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = readGuestOpRegion(guest, asls);
    } catch (err) {
      return fail(
        `ASLS 0x${asls.toString(16)} does not point at 8 KiB of guest RAM: ${String((err as Error).message)}`,
        { asls },
      );
    }
    let op: OpRegion;
    try {
      op = parseOpRegion(bytes);
    } catch (err) {
      if (!(err instanceof VfioError)) throw err;
      return fail(`the OpRegion at guest 0x${asls.toString(16)} is invalid: ${err.message}`, { asls });
    }
    const report = opRegionReport(op);
    if (!op.vbt) {
      return fail(
        `the OpRegion at guest 0x${asls.toString(16)} (version ${report.version}) carries no VBT readable from the guest.`,
        {
          asls,
          ...report,
        },
      );
    }
    guest.log(
      `gvt-d: OpRegion ${report.version} at 0x${asls.toString(16)}, VBT "${report.vbtSignature}" BDB ${report.bdbVersion}`,
    );
    return {
      ok: true,
      summary: `OpRegion ${report.version} at guest 0x${asls.toString(16)}: VBT ${report.vbtSignature} (BDB ${report.bdbVersion}, ${report.vbtLocation}), panel type ${report.panelType ?? 'none'}, ${report.childDevices.length} child device(s).`,
      facts: { asls, ...report },
    };
  },
};
