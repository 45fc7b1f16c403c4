/**
 * Guest PCI slots as people write them: `bus:device.function` in hex, the form lspci prints
 * (`00:03.0`), optionally with the `0000:` domain in front as sysfs names it.
 */
import type { PciAddress } from '@vfiokit/core';

// PCI Local Bus Specification 3.0 §3.2.2.3.1: 256 buses, 32 devices per bus, 8 functions per device
const PCI_MAX_BUS = 0xff;
const PCI_MAX_DEVICE = 0x1f;
const PCI_MAX_FUNCTION = 7;

const SLOT_RE = /^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/;

/** The address a slot string names, or undefined when it is not `bb:dd.f` (device ≤ 1f, function ≤ 7, domain 0000). */
export function parsePciAddress(text: string): PciAddress | undefined {
  const m = SLOT_RE.exec(text);
  if (!m) return undefined;
  if (m[1] !== undefined && Number.parseInt(m[1], 16) !== 0) return undefined;
  const bus = Number.parseInt(m[2], 16);
  const device = Number.parseInt(m[3], 16);
  const fn = Number.parseInt(m[4], 10);
  if (bus > PCI_MAX_BUS || device > PCI_MAX_DEVICE || fn > PCI_MAX_FUNCTION) return undefined;
  return { bus, device, function: fn };
}

/** `00:03.0`: the short form lspci prints. */
export function formatSlot(a: PciAddress): string {
  return `${a.bus.toString(16).padStart(2, '0')}:${a.device.toString(16).padStart(2, '0')}.${a.function}`;
}

export function sameAddress(a: PciAddress, b: PciAddress): boolean {
  return a.bus === b.bus && a.device === b.device && a.function === b.function;
}

/** The host bridge the reference VMM places at 00:00.0, as QEMU's q35 does. */
export const HOST_BRIDGE_SLOT: PciAddress = Object.freeze({ bus: 0, device: 0, function: 0 });

/** The first slot handed to a device without one (00:01.0 and 00:02.0 stay free for display devices, as on q35). */
export const FIRST_AUTO_DEVICE = 3;
export { PCI_MAX_DEVICE };
