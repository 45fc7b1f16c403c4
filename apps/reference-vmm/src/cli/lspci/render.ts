/** lspci for a probed bus: the text, or the same facts as JSON. */
import {
  type GuestView,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_PCIX,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CLASS_DEVICE,
  PCI_CLASS_PROG,
  PCI_DEVICE_ID,
  PCI_REVISION_ID,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
  type ProbedDevice,
  walkExtendedCapabilities,
} from '@vfiokit/core';
import { formatSlot } from '../../config/index.js';
import { showCaps } from './caps.js';
import { GuestConfig, hex, type LspciOptions, Printer } from './context.js';
import { showHeader, terse } from './header.js';
import { className } from './names.js';

/** The lspci text for the probed functions, in bus/device/function order. */
export function renderLspci(
  guest: Pick<GuestView, 'configRead'>,
  devices: readonly ProbedDevice[],
  opts: LspciOptions,
): string {
  const sorted = [...devices].sort(
    (a, b) =>
      a.address.bus - b.address.bus ||
      a.address.device - b.address.device ||
      a.address.function - b.address.function,
  );
  const out: string[] = [];
  for (const d of sorted) {
    const p = new Printer(new GuestConfig(guest, d.address), d, opts);
    if (opts.verbose) {
      if (showHeader(p)) showCaps(p);
      p.lines.push('');
    } else terse(p);
    out.push(...p.lines);
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

export interface LspciJsonDevice {
  slot: string;
  classCode: string;
  className: string;
  vendorId: string;
  deviceId: string;
  subsystemVendorId: string;
  subsystemId: string;
  revision: number;
  bars: readonly { index: number; kind: string; prefetchable: boolean; address: string; size: number }[];
  capabilities: readonly { offset: string; id: string }[];
  extendedCapabilities: readonly { offset: string; id: string; version: number }[];
  /** The first 256 configuration bytes as hex, as `lspci -xxx` dumps them. */
  config: string;
}

/** The same facts as data, for --json. */
export function lspciJson(
  guest: Pick<GuestView, 'configRead'>,
  devices: readonly ProbedDevice[],
): LspciJsonDevice[] {
  return devices.map((d) => {
    const cfg = new GuestConfig(guest, d.address);
    const hasExp = d.capabilities.some((c) => c.id === PCI_CAP_ID_EXP || c.id === PCI_CAP_ID_PCIX);
    const ext = hasExp
      ? walkExtendedCapabilities((off) => cfg.u32(off), PCI_CFG_SPACE_EXP_SIZE).capabilities
      : [];
    const cls = cfg.u16(PCI_CLASS_DEVICE);
    return {
      slot: formatSlot(d.address),
      classCode: hex((cls << 8) | cfg.u8(PCI_CLASS_PROG), 6),
      className: className(cls),
      vendorId: hex(cfg.u16(PCI_VENDOR_ID), 4),
      deviceId: hex(cfg.u16(PCI_DEVICE_ID), 4),
      subsystemVendorId: hex(cfg.u16(PCI_SUBSYSTEM_VENDOR_ID), 4),
      subsystemId: hex(cfg.u16(PCI_SUBSYSTEM_ID), 4),
      revision: cfg.u8(PCI_REVISION_ID),
      bars: d.bars.map((b) => ({
        index: b.index,
        kind: b.kind,
        prefetchable: b.prefetchable,
        address: `0x${b.address.toString(16)}`,
        size: b.size,
      })),
      capabilities: d.capabilities.map((c) => ({ offset: `0x${hex(c.offset, 2)}`, id: `0x${hex(c.id, 2)}` })),
      extendedCapabilities: ext.map((c) => ({
        offset: `0x${hex(c.offset, 3)}`,
        id: `0x${hex(c.id, 4)}`,
        version: c.version,
      })),
      config: Buffer.from(cfg.standard()).toString('hex'),
    };
  });
}
