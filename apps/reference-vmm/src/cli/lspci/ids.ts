/**
 * The PCI ID database (pci.ids) as pciutils reads it (lib/names-parse.c): vendors with their
 * devices and subsystems, classes with their subclasses and programming interfaces. The parser
 * is lenient where pciutils stops at the first parse error: a malformed line is skipped, so a
 * damaged file still names what it can, and no input makes it throw.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/**
 * Where pciutils looks for the database: Debian builds it for /usr/share/misc/pci.ids.gz and
 * falls back to the name without .gz (names-parse.c pci_open); Fedora and Arch use
 * /usr/share/hwdata; a plain install of pciutils uses /usr/share (PCI_IDS_DIR).
 */
export const PCI_IDS_PATHS: readonly string[] = [
  '/usr/share/misc/pci.ids.gz',
  '/usr/share/misc/pci.ids',
  '/usr/share/hwdata/pci.ids.gz',
  '/usr/share/hwdata/pci.ids',
  '/usr/share/pci.ids.gz',
  '/usr/share/pci.ids',
];

interface Device {
  name: string;
  subsystems: Map<number, string>;
}
interface Vendor {
  name: string;
  devices: Map<number, Device>;
}
interface Subclass {
  name: string;
  progIfs: Map<number, string>;
}
interface Class {
  name: string;
  subclasses: Map<number, Subclass>;
}

const HEX = /^[0-9a-fA-F]+$/;
function hexField(s: string, at: number, width: number): number {
  const t = s.slice(at, at + width);
  return t.length === width && HEX.test(t) ? Number.parseInt(t, 16) : -1;
}
/** pciutils' id_white_p: the separator after an ID is a space or a tab. */
const white = (c: string | undefined) => c === ' ' || c === '\t';

/** One parsed database; look names up by ID. */
export class PciIds {
  private readonly vendors = new Map<number, Vendor>();
  private readonly classes = new Map<number, Class>();

  /** Parse the text of a pci.ids file. Malformed and duplicate lines are skipped. */
  static parse(text: string): PciIds {
    const ids = new PciIds();
    let vendor: Vendor | undefined;
    let device: Device | undefined;
    let cls: Class | undefined;
    let subclass: Subclass | undefined;
    // 'vendor' or 'class' while inside such a block, 'none' inside an unknown or broken one
    let block: 'vendor' | 'class' | 'none' = 'none';
    for (const raw of text.split('\n')) {
      // names-parse.c: the line ends at CR or LF, and one trailing blank is dropped
      const cr = raw.indexOf('\r');
      const line = (cr >= 0 ? raw.slice(0, cr) : raw).replace(/[ \t]$/, '');
      if (line === '' || line.startsWith('#')) continue;
      let nest = 0;
      while (line[nest] === '\t') nest++;
      const p = line.slice(nest);
      const name = (at: number) => p.slice(at).replace(/^[ \t]+/, '');
      if (nest === 0) {
        vendor = device = cls = subclass = undefined;
        block = 'none';
        if (p[0] === 'C' && p[1] === ' ') {
          const id = hexField(p, 2, 2);
          if (id < 0 || !white(p[4]) || !name(5)) continue;
          if (!ids.classes.has(id)) ids.classes.set(id, { name: name(5), subclasses: new Map() });
          cls = ids.classes.get(id);
          block = 'class';
        } else if (p[0] >= 'A' && p[0] <= 'Z' && p[1] === ' ') {
          // generic subsystems (S) and blocks reserved for future use: nothing lspci prints
        } else {
          const id = hexField(p, 0, 4);
          if (id < 0 || !white(p[4]) || !name(5)) continue;
          if (!ids.vendors.has(id)) ids.vendors.set(id, { name: name(5), devices: new Map() });
          vendor = ids.vendors.get(id);
          block = 'vendor';
        }
      } else if (nest === 1) {
        device = undefined;
        subclass = undefined;
        if (block === 'vendor' && vendor) {
          const id = hexField(p, 0, 4);
          if (id < 0 || !white(p[4]) || !name(5)) continue;
          if (!vendor.devices.has(id)) vendor.devices.set(id, { name: name(5), subsystems: new Map() });
          device = vendor.devices.get(id);
        } else if (block === 'class' && cls) {
          const id = hexField(p, 0, 2);
          if (id < 0 || !white(p[2]) || !name(3)) continue;
          if (!cls.subclasses.has(id)) cls.subclasses.set(id, { name: name(3), progIfs: new Map() });
          subclass = cls.subclasses.get(id);
        }
      } else if (nest === 2) {
        if (block === 'vendor' && device) {
          const sv = hexField(p, 0, 4);
          const sd = hexField(p, 5, 4);
          if (sv < 0 || sd < 0 || !white(p[4]) || !white(p[9]) || !name(10)) continue;
          const key = sv * 0x10000 + sd;
          if (!device.subsystems.has(key)) device.subsystems.set(key, name(10));
        } else if (block === 'class' && subclass) {
          const id = hexField(p, 0, 2);
          if (id < 0 || !white(p[2]) || !name(3)) continue;
          if (!subclass.progIfs.has(id)) subclass.progIfs.set(id, name(3));
        }
      }
    }
    return ids;
  }

  vendor(v: number): string | undefined {
    return this.vendors.get(v)?.name;
  }
  device(v: number, d: number): string | undefined {
    return this.vendors.get(v)?.devices.get(d)?.name;
  }
  /** A subsystem's name under its device (names.c id_lookup_subsys), or the device's own name when the subsystem IDs repeat the device's. */
  subsystem(v: number, d: number, sv: number, sd: number): string | undefined {
    const own = this.vendors
      .get(v)
      ?.devices.get(d)
      ?.subsystems.get(sv * 0x10000 + sd);
    if (own !== undefined) return own;
    return v === sv && d === sd ? this.device(v, d) : undefined;
  }
  baseClass(c: number): string | undefined {
    return this.classes.get(c)?.name;
  }
  subclass(c: number, s: number): string | undefined {
    return this.classes.get(c)?.subclasses.get(s)?.name;
  }
  progIf(c: number, s: number, p: number): string | undefined {
    return this.classes.get(c)?.subclasses.get(s)?.progIfs.get(p);
  }
}

/** Read one pci.ids file (gzip-compressed when its name ends in .gz). */
export function readPciIds(path: string): PciIds {
  const raw = readFileSync(path);
  const text = path.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
  return PciIds.parse(text);
}

let systemIds: { ids: PciIds | null; path?: string } | undefined;

/** The system's database from the first of PCI_IDS_PATHS that reads, or null when none does (cached). */
export function systemPciIds(): { ids: PciIds | null; path?: string } {
  if (systemIds) return systemIds;
  systemIds = { ids: null };
  for (const path of PCI_IDS_PATHS) {
    try {
      systemIds = { ids: readPciIds(path), path };
      break;
    } catch {
      // not there or unreadable: try the next place, as pciutils does with .gz and without
    }
  }
  return systemIds;
}
