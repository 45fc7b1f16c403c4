/**
 * Names for PCI class codes and programming interfaces, as the PCI ID database (pci.ids,
 * "C" lines) spells them: only the classes in-tree devices and the VMM's bridges use, plus their
 * neighbours. There is no vendor or device name database here, so lspci output shows numbers
 * for those (`Device 4348:3253`), as lspci does without pci.ids.
 */

// pci.ids: C 00..0c, subclass names
const SUBCLASS_NAMES: Readonly<Record<number, string>> = {
  0: 'Non-VGA unclassified device',
  1: 'VGA compatible unclassified device',
  256: 'SCSI storage controller',
  257: 'IDE interface',
  262: 'SATA controller',
  264: 'Non-Volatile memory controller',
  512: 'Ethernet controller',
  640: 'Network controller',
  768: 'VGA compatible controller',
  769: 'XGA compatible controller',
  770: '3D controller',
  896: 'Display controller',
  1025: 'Multimedia audio controller',
  1027: 'Audio device',
  1280: 'RAM memory',
  1536: 'Host bridge',
  1537: 'ISA bridge',
  1540: 'PCI bridge',
  1664: 'Bridge',
  1792: 'Serial controller',
  1793: 'Parallel controller',
  1794: 'Multiport serial controller',
  1795: 'Modem',
  1920: 'Communication controller',
  2176: 'System peripheral',
  3075: 'USB controller',
  3077: 'SMBus',
  65280: 'Unassigned class',
};

// pci.ids: C base-class names, for a subclass the table lacks
const CLASS_NAMES: Readonly<Record<number, string>> = {
  0: 'Unclassified device',
  1: 'Mass storage controller',
  2: 'Network controller',
  3: 'Display controller',
  4: 'Multimedia controller',
  5: 'Memory controller',
  6: 'Bridge',
  7: 'Communication controller',
  8: 'Generic system peripheral',
  12: 'Serial bus controller',
  18: 'Processing accelerators',
};

// pci.ids: programming interfaces under C 03 00, 06 04, 07 00
const PROG_IF_NAMES: Readonly<Record<number, Readonly<Record<number, string>>>> = {
  768: { 0: 'VGA controller', 1: '8514 controller' },
  1540: { 0: 'Normal decode', 1: 'Subtractive decode' },
  1792: {
    0: '8250',
    1: '16450',
    2: '16550',
    3: '16650',
    4: '16750',
    5: '16850',
    6: '16950',
  },
};

/** The class name lspci prints for a 16-bit class (base << 8 | subclass). */
export function className(cls: number): string {
  return SUBCLASS_NAMES[cls] ?? CLASS_NAMES[cls >> 8] ?? `Class ${cls.toString(16).padStart(4, '0')}`;
}

/** True when the class has a name (so -nn shows `name [code]` rather than `Class code`). */
export function hasClassName(cls: number): boolean {
  return SUBCLASS_NAMES[cls] !== undefined || CLASS_NAMES[cls >> 8] !== undefined;
}

export function progIfName(cls: number, progIf: number): string | undefined {
  return PROG_IF_NAMES[cls]?.[progIf];
}

const hex4 = (n: number) => n.toString(16).padStart(4, '0');

/** A vendor and device as lspci names them without pci.ids: `Device 8086:29c0`, `-n`, `-nn`. */
export function deviceName(vendor: number, device: number, numeric: number): string {
  if (numeric === 1) return `${hex4(vendor)}:${hex4(device)}`;
  if (numeric === 2) return `Device [${hex4(vendor)}:${hex4(device)}]`;
  return `Device ${hex4(vendor)}:${hex4(device)}`;
}

/** The class as lspci prints it under -n (code), -nn (name and code) or neither (name). */
export function classLabel(cls: number, numeric: number): string {
  if (numeric === 1) return hex4(cls);
  if (numeric === 2) return hasClassName(cls) ? `${className(cls)} [${hex4(cls)}]` : `Class [${hex4(cls)}]`;
  return className(cls);
}
