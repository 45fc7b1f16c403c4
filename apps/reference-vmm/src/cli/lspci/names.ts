/**
 * Names as pciutils' pci_lookup_name formats them (lib/names.c format_name, format_name_pair):
 * names from pci.ids, numbers under -n, both under -nn, and the "Device 1234" / "Class 0c03"
 * forms for IDs the database does not know.
 */
import type { PciIds } from './ids.js';

/** 0: names; 1: numbers (-n); 2: both (-nn). */
export type NameMode = number;

const hex4 = (n: number) => n.toString(16).padStart(4, '0');

/**
 * pciutils writes names into a fixed buffer and, when one does not fit, ends it with "..."
 * (names.c format_name): `size` is that buffer's size in bytes, terminator included.
 */
function fit(s: string, size: number): string {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length < size) return s;
  return `${bytes.subarray(0, size - 4).toString('utf8')}...`;
}

function formatName(
  mode: NameMode,
  name: string | undefined,
  num: string,
  unknown: string,
  size: number,
): string {
  if (mode === 1) return fit(num, size);
  if (name === undefined) return fit(mode === 2 ? `${unknown} [${num}]` : `${unknown} ${num}`, size);
  return fit(mode === 2 ? `${name} [${num}]` : name, size);
}

function formatPair(
  mode: NameMode,
  v: string | undefined,
  d: string | undefined,
  num: string,
  size: number,
): string {
  if (mode === 1) return fit(num, size);
  if (mode === 2) {
    if (v !== undefined && d !== undefined) return fit(`${v} ${d} [${num}]`, size);
    return fit(v === undefined ? `Device [${num}]` : `${v} Device [${num}]`, size);
  }
  if (v !== undefined && d !== undefined) return fit(`${v} ${d}`, size);
  return fit(v === undefined ? `Device ${num}` : `${v} Device ${num.slice(5)}`, size);
}

/** A vendor and device: `Intel Corporation 82G33/G31/P35/P31 Express DRAM Controller`, `Device 1af4:1041`. */
export function deviceName(
  ids: PciIds | null,
  mode: NameMode,
  vendor: number,
  device: number,
  size = 256,
): string {
  return formatPair(
    mode,
    mode === 1 ? undefined : ids?.vendor(vendor),
    mode === 1 ? undefined : ids?.device(vendor, device),
    `${hex4(vendor)}:${hex4(device)}`,
    size,
  );
}

/** A subsystem: the subsystem vendor's name and the subsystem's name under the device. */
export function subsystemName(
  ids: PciIds | null,
  mode: NameMode,
  vendor: number,
  device: number,
  subVendor: number,
  subDevice: number,
  size = 256,
): string {
  return formatPair(
    mode,
    mode === 1 ? undefined : ids?.vendor(subVendor),
    mode === 1 ? undefined : ids?.subsystem(vendor, device, subVendor, subDevice),
    `${hex4(subVendor)}:${hex4(subDevice)}`,
    size,
  );
}

/** A class (base << 8 | subclass): the subclass name, else the base class name with the number. */
export function className(ids: PciIds | null, mode: NameMode, cls: number, size = 256): string {
  const num = hex4(cls);
  if (mode === 1) return formatName(mode, undefined, num, 'Class', size);
  const sub = ids?.subclass(cls >> 8, cls & 0xff);
  if (sub !== undefined) return formatName(mode, sub, num, 'Class', size);
  const base = ids?.baseClass(cls >> 8);
  // names.c: a class known only by its base class always shows its full number
  return formatName(base === undefined ? mode : 2, base, num, 'Class', size);
}

/** A programming interface's name, or undefined (lspci asks with PCI_LOOKUP_NO_NUMBERS, whatever -n says). */
export function progIfName(ids: PciIds | null, cls: number, progIf: number): string | undefined {
  const name = ids?.progIf(cls >> 8, cls & 0xff, progIf);
  if (name !== undefined) return name;
  if (cls === 0x0101 && !(progIf & 0x70)) {
    // names.c: IDE controllers have complex prog-if semantics
    const s = `${progIf & 0x80 ? ' Master' : ''}${progIf & 0x08 ? ' SecP' : ''}${progIf & 0x04 ? ' SecO' : ''}${progIf & 0x02 ? ' PriP' : ''}${progIf & 0x01 ? ' PriO' : ''}`;
    return s.slice(1);
  }
  return undefined;
}
