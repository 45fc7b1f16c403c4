/** lspci for a probed bus: the text (lspci.c show_device), or the same facts as JSON. */
import type { GuestDriver, GuestView, PciAddress, ProbedDevice } from '@vfiokit/core';
import { walkExtendedCapabilities } from '@vfiokit/core';
import {
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
} from '@vfiokit/core/abi';
import { formatSlot } from '../../config/index.js';
import { showCaps } from './caps.js';
import {
  BytesConfig,
  type ConfigReader,
  type FunctionInfo,
  GuestConfig,
  hex,
  type LspciOptions,
  Printer,
} from './context.js';
import { hexDump, showHeader, terse } from './header.js';
import type { PciIds } from './ids.js';
import { className } from './names.js';

/** show_device: the terse or verbose block, the drivers, the hex dump, and a blank line under -v or -x. */
export function renderFunction(cfg: ConfigReader, info: FunctionInfo, opts: LspciOptions): string[] {
  const p = new Printer(cfg, info, opts);
  if (opts.verbose) {
    const pointer = showHeader(p);
    if (pointer >= 0) showCaps(p, pointer);
  } else terse(p);
  if ((opts.kernel || opts.verbose) && info.drivers?.length) {
    // ls-kernel.c show_kernel: "Kernel modules:" then " name" and ", name"
    p.out(`\tKernel modules: ${info.drivers.join(', ')}`);
  }
  if (opts.hex) hexDump(p);
  if (opts.verbose || opts.hex) p.out('');
  return p.finish();
}

const byAddress = (a: PciAddress, b: PciAddress) =>
  a.bus - b.bus || a.device - b.device || a.function - b.function;

function hasExpress(d: ProbedDevice): boolean {
  return d.capabilities.some((c) => c.id === PCI_CAP_ID_EXP || c.id === PCI_CAP_ID_PCIX);
}

/** The guest drivers whose id tables match the function; one that throws is left out. */
export function matchingDrivers(drivers: readonly GuestDriver[], d: ProbedDevice): string[] {
  return drivers
    .filter((driver) => {
      try {
        return driver.matches(d);
      } catch {
        return false;
      }
    })
    .map((driver) => driver.name);
}

/** The lspci text for the probed functions, in bus/device/function order. */
export function renderLspci(
  guest: Pick<GuestView, 'configRead'>,
  devices: readonly ProbedDevice[],
  opts: LspciOptions,
  drivers: readonly GuestDriver[] = [],
): string {
  const out: string[] = [];
  for (const d of [...devices].sort((a, b) => byAddress(a.address, b.address))) {
    const info: FunctionInfo = {
      address: d.address,
      bars: d.bars,
      drivers: matchingDrivers(drivers, d),
    };
    out.push(...renderFunction(new GuestConfig(guest, d.address, hasExpress(d)), info, opts));
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** lspci over configuration bytes (a dump, a test), each function with what else is known of it. */
export function renderConfigs(
  functions: readonly (Omit<FunctionInfo, 'address'> & { address: PciAddress; config: Uint8Array })[],
  opts: LspciOptions,
): string {
  const out: string[] = [];
  for (const f of [...functions].sort((a, b) => byAddress(a.address, b.address)))
    out.push(...renderFunction(new BytesConfig(f.config), f, opts));
  return out.length ? `${out.join('\n')}\n` : '';
}

export interface LspciJsonDevice {
  slot: string;
  classCode: string;
  className: string;
  vendorId: string;
  deviceId: string;
  /** Vendor and device as pci.ids names them (absent without a database entry). */
  vendorName?: string;
  deviceName?: string;
  subsystemVendorId: string;
  subsystemId: string;
  subsystemName?: string;
  revision: number;
  bars: readonly { index: number; kind: string; prefetchable: boolean; address: string; size: number }[];
  capabilities: readonly { offset: string; id: string }[];
  extendedCapabilities: readonly { offset: string; id: string; version: number }[];
  /** The guest drivers whose id tables match (lspci -k's "Kernel modules"). */
  drivers: readonly string[];
  /** The first 256 configuration bytes as hex, as `lspci -xxx` dumps them. */
  config: string;
}

/** The same facts as data, for --json. */
export function lspciJson(
  guest: Pick<GuestView, 'configRead'>,
  devices: readonly ProbedDevice[],
  ids: PciIds | null = null,
  drivers: readonly GuestDriver[] = [],
): LspciJsonDevice[] {
  return devices.map((d) => {
    const cfg = new GuestConfig(guest, d.address, hasExpress(d));
    const ext = hasExpress(d)
      ? walkExtendedCapabilities((off) => cfg.u32(off), PCI_CFG_SPACE_EXP_SIZE).capabilities
      : [];
    const cls = cfg.u16(PCI_CLASS_DEVICE);
    const v = cfg.u16(PCI_VENDOR_ID);
    const dv = cfg.u16(PCI_DEVICE_ID);
    const sv = cfg.u16(PCI_SUBSYSTEM_VENDOR_ID);
    const sd = cfg.u16(PCI_SUBSYSTEM_ID);
    const vendorName = ids?.vendor(v);
    const devName = ids?.device(v, dv);
    const sub = sv && sv !== 0xffff ? ids?.subsystem(v, dv, sv, sd) : undefined;
    return {
      slot: formatSlot(d.address),
      classCode: hex((cls << 8) | cfg.u8(PCI_CLASS_PROG), 6),
      className: className(ids, 0, cls),
      vendorId: hex(v, 4),
      deviceId: hex(dv, 4),
      ...(vendorName !== undefined ? { vendorName } : {}),
      ...(devName !== undefined ? { deviceName: devName } : {}),
      subsystemVendorId: hex(sv, 4),
      subsystemId: hex(sd, 4),
      ...(sub !== undefined ? { subsystemName: sub } : {}),
      revision: cfg.u8(PCI_REVISION_ID),
      bars: d.bars.map((b) => ({
        index: b.index,
        kind: b.kind,
        prefetchable: b.prefetchable,
        address: `0x${BigInt(b.address).toString(16)}`,
        size: b.size,
      })),
      capabilities: d.capabilities.map((c) => ({ offset: `0x${hex(c.offset, 2)}`, id: `0x${hex(c.id, 2)}` })),
      extendedCapabilities: ext.map((c) => ({
        offset: `0x${hex(c.offset, 3)}`,
        id: `0x${hex(c.id, 4)}`,
        version: c.version,
      })),
      drivers: matchingDrivers(drivers, d),
      config: Buffer.from(cfg.bytes(256)).toString('hex'),
    };
  });
}
