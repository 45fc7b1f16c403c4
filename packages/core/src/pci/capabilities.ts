/**
 * Capability builders: each returns the bytes of one capability as it sits in configuration
 * space, with per-byte write and RW1C masks. ConfigSpace.addCapability places it, fills the
 * next pointer and links it; the builders never know where they land.
 */

import { VfioError } from '../errors.js';
import {
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_CAP_ID_VNDR,
  PCI_CAP_MSIX_SIZEOF,
  PCI_CAP_VNDR_LEN,
  PCI_EXP_DEVCAP,
  PCI_EXP_DEVCAP_RBER,
  PCI_EXP_DEVCTL,
  PCI_EXP_DEVCTL_CERE,
  PCI_EXP_DEVCTL_FERE,
  PCI_EXP_DEVCTL_NFERE,
  PCI_EXP_DEVCTL_NOSNOOP_EN,
  PCI_EXP_DEVCTL_PAYLOAD,
  PCI_EXP_DEVCTL_READRQ,
  PCI_EXP_DEVCTL_READRQ_512B,
  PCI_EXP_DEVCTL_RELAX_EN,
  PCI_EXP_DEVCTL_URRE,
  PCI_EXP_DEVSTA,
  PCI_EXP_DEVSTA_CED,
  PCI_EXP_DEVSTA_FED,
  PCI_EXP_DEVSTA_NFED,
  PCI_EXP_DEVSTA_URD,
  PCI_EXP_FLAGS,
  PCI_EXP_LNKCAP,
  PCI_EXP_LNKCAP_SLS_2_5GB,
  PCI_EXP_LNKCAP2,
  PCI_EXP_LNKCAP2_SLS_2_5GB,
  PCI_EXP_LNKCTL,
  PCI_EXP_LNKCTL_ASPMC,
  PCI_EXP_LNKCTL_CCC,
  PCI_EXP_LNKCTL_ES,
  PCI_EXP_LNKCTL2,
  PCI_EXP_LNKCTL2_TLS_2_5GT,
  PCI_EXP_LNKSTA,
  PCI_EXP_LNKSTA_CLS_2_5GB,
  PCI_EXP_LNKSTA_NLW_X1,
  PCI_EXP_TYPE_ENDPOINT,
  PCI_EXP_TYPE_RC_END,
  PCI_EXP_VER2_SIZEOF,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_DATA_32,
  PCI_MSI_DATA_64,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSI_MASK_32,
  PCI_MSI_MASK_64,
  PCI_MSI_PENDING_32,
  PCI_MSI_PENDING_64,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_PM_CTRL,
  PCI_PM_CTRL_NO_SOFT_RESET,
  PCI_PM_CTRL_STATE_MASK,
  PCI_PM_PMC,
  PCI_PM_SIZEOF,
  PCI_STD_NUM_BARS,
} from './constants.js';

/**
 * One capability, bytes from its id byte on. For a standard capability byte 1 is the next
 * pointer; for an extended one (version set) bytes 0..3 are the header. ConfigSpace writes the
 * id and the link itself and keeps those header bytes read-only whatever the masks say.
 */
export interface CapabilityBody {
  id: number;
  /** Set for an extended capability (PCIe, 0..15); absent for a standard one. */
  version?: number;
  bytes: Uint8Array;
  /** Bits the guest may write, per byte of `bytes`. Absent: all read-only. */
  writeMask?: Uint8Array;
  /** Bits the guest clears by writing 1, per byte of `bytes`. */
  rw1cMask?: Uint8Array;
}

export interface CapabilityMasks {
  writeMask?: Uint8Array;
  rw1cMask?: Uint8Array;
}

/** Standard capabilities start with the id and next bytes; extended ones with a 4-byte header. */
const STD_HEADER = 2;
const EXT_HEADER = 4;

class CapabilityImage {
  readonly bytes: Uint8Array;
  readonly writeMask: Uint8Array;
  readonly rw1cMask: Uint8Array;
  private readonly views: readonly [DataView, DataView, DataView];

  constructor(length: number) {
    this.bytes = new Uint8Array(length);
    this.writeMask = new Uint8Array(length);
    this.rw1cMask = new Uint8Array(length);
    this.views = [
      new DataView(this.bytes.buffer),
      new DataView(this.writeMask.buffer),
      new DataView(this.rw1cMask.buffer),
    ];
  }

  u16(offset: number, value: number, writable = 0, rw1c = 0): void {
    this.views[0].setUint16(offset, value, true);
    this.views[1].setUint16(offset, writable, true);
    this.views[2].setUint16(offset, rw1c, true);
  }

  u32(offset: number, value: number, writable = 0, rw1c = 0): void {
    this.views[0].setUint32(offset, value >>> 0, true);
    this.views[1].setUint32(offset, writable >>> 0, true);
    this.views[2].setUint32(offset, rw1c >>> 0, true);
  }

  /** A standard capability: the id in byte 0. */
  body(id: number): CapabilityBody {
    this.bytes[0] = id;
    return { id, bytes: this.bytes, writeMask: this.writeMask, rw1cMask: this.rw1cMask };
  }

  /** An extended capability: the header stays zero until ConfigSpace links it. */
  extendedBody(id: number, version: number): CapabilityBody {
    return { id, version, bytes: this.bytes, writeMask: this.writeMask, rw1cMask: this.rw1cMask };
  }
}

function invalid(problem: string, hint: string): VfioError {
  return new VfioError('EINVAL', problem, { region: 'config', hint });
}

/**
 * PCI Power Management capability, version 3 (PCI PM 1.2): D0 and D3hot only, no PME.
 * PowerState is writable; No_Soft_Reset is set because the model keeps its state across
 * D3hot→D0 (the device resets only through VFIO_DEVICE_RESET).
 */
export function powerManagementCapability(): CapabilityBody {
  const cap = new CapabilityImage(PCI_PM_SIZEOF);
  // PCI Bus Power Management Interface Specification 1.2: version field 011b
  cap.u16(PCI_PM_PMC, 0x0003);
  cap.u16(PCI_PM_CTRL, PCI_PM_CTRL_NO_SOFT_RESET, PCI_PM_CTRL_STATE_MASK);
  return cap.body(PCI_CAP_ID_PM);
}

export interface MsiOptions {
  vectors: 1 | 2 | 4 | 8 | 16 | 32;
  addr64: boolean;
  perVectorMask: boolean;
}

/** Where the fields of an MSI capability sit, relative to its start; mask and pending are -1 without per-vector masking. */
export interface MsiLayout {
  readonly addr64: boolean;
  readonly perVectorMask: boolean;
  readonly data: number;
  readonly mask: number;
  readonly pending: number;
  /** The capability's size (QEMU msi_cap_sizeof: 0x0a, 0x0e, 0x14, 0x18). */
  readonly size: number;
}

const MSI_LAYOUTS: readonly MsiLayout[] = [false, true].flatMap((perVectorMask) =>
  [false, true].map((addr64) => {
    const data = addr64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32;
    const mask = perVectorMask ? (addr64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32) : -1;
    const pending = perVectorMask ? (addr64 ? PCI_MSI_PENDING_64 : PCI_MSI_PENDING_32) : -1;
    return Object.freeze({
      addr64,
      perVectorMask,
      data,
      mask,
      pending,
      size: perVectorMask ? pending + 4 : data + 2,
    });
  }),
);

/** The layout an MSI capability's Message Control word (PCI_MSI_FLAGS) implies (linux/pci_regs.h). */
export function msiLayout(flags: number): MsiLayout {
  return MSI_LAYOUTS[
    ((flags & PCI_MSI_FLAGS_MASKBIT) !== 0 ? 2 : 0) + ((flags & PCI_MSI_FLAGS_64BIT) !== 0 ? 1 : 0)
  ];
}

/** The size of an MSI capability with these options. */
export function msiCapabilitySize(addr64: boolean, perVectorMask: boolean): number {
  return msiLayout((addr64 ? PCI_MSI_FLAGS_64BIT : 0) | (perVectorMask ? PCI_MSI_FLAGS_MASKBIT : 0)).size;
}

/**
 * MSI capability. Multiple Message Capable encodes `vectors`; MSI Enable and Multiple Message
 * Enable are writable; the address (dword aligned), data and the mask bits of the implemented
 * vectors are writable; the pending bits are the device's (ConfigSpace.setMsiPending).
 */
export function msiCapability(opts: MsiOptions): CapabilityBody {
  const log2 = [1, 2, 4, 8, 16, 32].indexOf(opts.vectors);
  if (log2 < 0) {
    throw invalid(
      `an MSI capability cannot have ${String(opts.vectors)} vectors.`,
      'Use a power of two from 1 to 32.',
    );
  }
  const cap = new CapabilityImage(msiCapabilitySize(opts.addr64, opts.perVectorMask));
  let flags = log2 << 1;
  if (opts.addr64) flags |= PCI_MSI_FLAGS_64BIT;
  if (opts.perVectorMask) flags |= PCI_MSI_FLAGS_MASKBIT;
  cap.u16(PCI_MSI_FLAGS, flags, PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
  // PCI Local Bus Specification 3.0 §6.8.1.4: the message address is dword aligned
  cap.u32(PCI_MSI_ADDRESS_LO, 0, 0xfffffffc);
  if (opts.addr64) cap.u32(PCI_MSI_ADDRESS_HI, 0, 0xffffffff);
  const layout = msiLayout(flags);
  cap.u16(layout.data, 0, 0xffff);
  if (opts.perVectorMask) {
    const implemented = opts.vectors === 32 ? 0xffffffff : (1 << opts.vectors) - 1;
    cap.u32(layout.mask, 0, implemented);
  }
  return cap.body(PCI_CAP_ID_MSI);
}

export interface MsixOptions {
  /** Number of table entries, 1..2048. */
  tableSize: number;
  tableBar: number;
  /** Offset of the table in its BAR, 8-byte aligned. */
  tableOffset: number;
  pbaBar: number;
  /** Offset of the pending bit array in its BAR, 8-byte aligned. */
  pbaOffset: number;
}

function checkBirOffset(what: string, bar: number, offset: number): void {
  if (!Number.isInteger(bar) || bar < 0 || bar >= PCI_STD_NUM_BARS) {
    throw invalid(`the MSI-X ${what} BAR ${String(bar)} is not a BAR index.`, 'Use a BAR index from 0 to 5.');
  }
  if (!Number.isInteger(offset) || offset < 0 || offset > 0xfffffff8 || (offset & 7) !== 0) {
    throw invalid(
      `the MSI-X ${what} offset 0x${offset.toString(16)} is not an 8-byte aligned 32-bit offset.`,
      'The low three bits of the register hold the BAR index, so align the structure to 8 bytes.',
    );
  }
}

/**
 * MSI-X capability: table size as N-1, table and PBA as offset|BIR, all read-only; MSI-X
 * Enable and Function Mask writable.
 */
export function msixCapability(opts: MsixOptions): CapabilityBody {
  // PCI Local Bus Specification 3.0 §6.8.2.3: Table Size is 11 bits, N-1 encoded
  if (!Number.isInteger(opts.tableSize) || opts.tableSize < 1 || opts.tableSize > PCI_MSIX_FLAGS_QSIZE + 1) {
    throw invalid(
      `an MSI-X table cannot have ${String(opts.tableSize)} entries.`,
      'Use a table size from 1 to 2048.',
    );
  }
  checkBirOffset('table', opts.tableBar, opts.tableOffset);
  checkBirOffset('PBA', opts.pbaBar, opts.pbaOffset);
  const cap = new CapabilityImage(PCI_CAP_MSIX_SIZEOF);
  cap.u16(PCI_MSIX_FLAGS, opts.tableSize - 1, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
  cap.u32(PCI_MSIX_TABLE, (opts.tableOffset | opts.tableBar) >>> 0);
  cap.u32(PCI_MSIX_PBA, (opts.pbaOffset | opts.pbaBar) >>> 0);
  return cap.body(PCI_CAP_ID_MSIX);
}

export interface PciExpressOptions {
  type: 'endpoint' | 'rc-integrated';
}

/**
 * PCI Express capability, version 2 (0x3c bytes). Device Capabilities: 128-byte payload,
 * role-based error reporting, no FLR. Device Control: error reporting enables, relaxed ordering,
 * payload, no-snoop and read-request size writable (spec defaults: relaxed ordering and no snoop
 * on, 512-byte read requests). Device Status: the four error-detected bits are RW1C. An endpoint
 * has a x1 2.5 GT/s link with ASPM control, common clock and extended synch writable; a
 * root-complex integrated endpoint has no link, so its link registers are zero.
 */
export function pciExpressCapability(opts: PciExpressOptions): CapabilityBody {
  if (opts.type !== 'endpoint' && opts.type !== 'rc-integrated') {
    throw invalid(
      `a PCI Express capability cannot describe a '${String(opts.type)}' device.`,
      "Use type 'endpoint' or 'rc-integrated'.",
    );
  }
  const cap = new CapabilityImage(PCI_EXP_VER2_SIZEOF);
  const type = opts.type === 'endpoint' ? PCI_EXP_TYPE_ENDPOINT : PCI_EXP_TYPE_RC_END;
  cap.u16(PCI_EXP_FLAGS, 2 | (type << 4));
  cap.u32(PCI_EXP_DEVCAP, PCI_EXP_DEVCAP_RBER);
  cap.u16(
    PCI_EXP_DEVCTL,
    PCI_EXP_DEVCTL_RELAX_EN | PCI_EXP_DEVCTL_NOSNOOP_EN | PCI_EXP_DEVCTL_READRQ_512B,
    PCI_EXP_DEVCTL_CERE |
      PCI_EXP_DEVCTL_NFERE |
      PCI_EXP_DEVCTL_FERE |
      PCI_EXP_DEVCTL_URRE |
      PCI_EXP_DEVCTL_RELAX_EN |
      PCI_EXP_DEVCTL_PAYLOAD |
      PCI_EXP_DEVCTL_NOSNOOP_EN |
      PCI_EXP_DEVCTL_READRQ,
  );
  cap.u16(
    PCI_EXP_DEVSTA,
    0,
    0,
    PCI_EXP_DEVSTA_CED | PCI_EXP_DEVSTA_NFED | PCI_EXP_DEVSTA_FED | PCI_EXP_DEVSTA_URD,
  );
  if (type === PCI_EXP_TYPE_ENDPOINT) {
    // maximum link width x1 sits at bit 4 of LNKCAP (PCI_EXP_LNKCAP_MLW)
    cap.u32(PCI_EXP_LNKCAP, PCI_EXP_LNKCAP_SLS_2_5GB | (1 << 4));
    cap.u16(PCI_EXP_LNKCTL, 0, PCI_EXP_LNKCTL_ASPMC | PCI_EXP_LNKCTL_CCC | PCI_EXP_LNKCTL_ES);
    cap.u16(PCI_EXP_LNKSTA, PCI_EXP_LNKSTA_CLS_2_5GB | PCI_EXP_LNKSTA_NLW_X1);
    cap.u32(PCI_EXP_LNKCAP2, PCI_EXP_LNKCAP2_SLS_2_5GB);
    cap.u16(PCI_EXP_LNKCTL2, PCI_EXP_LNKCTL2_TLS_2_5GT);
  }
  return cap.body(PCI_CAP_ID_EXP);
}

function checkMasks(what: string, length: number, masks: CapabilityMasks | undefined): void {
  for (const [name, mask] of [
    ['writeMask', masks?.writeMask],
    ['rw1cMask', masks?.rw1cMask],
  ] as const) {
    if (mask !== undefined && mask.length !== length) {
      throw invalid(
        `the ${name} of a ${what} has ${mask.length} bytes but its body has ${length}.`,
        'Give one mask byte per body byte.',
      );
    }
  }
}

/**
 * Vendor-specific capability (id 0x09): id, next, length (the whole capability, header
 * included), then `body`. Read-only unless masks (per byte of `body`) say otherwise.
 */
export function vendorCapability(body: Uint8Array, masks?: CapabilityMasks): CapabilityBody {
  const length = body.length + PCI_CAP_VNDR_LEN + 1;
  if (length > 0xff) {
    throw invalid(
      `a vendor-specific capability body of ${body.length} bytes does not fit its 8-bit length.`,
      'Keep the body at 252 bytes or less.',
    );
  }
  checkMasks('vendor-specific capability', body.length, masks);
  const cap = new CapabilityImage(length);
  cap.bytes[PCI_CAP_VNDR_LEN] = length;
  cap.bytes.set(body, PCI_CAP_VNDR_LEN + 1);
  if (masks?.writeMask) cap.writeMask.set(masks.writeMask, PCI_CAP_VNDR_LEN + 1);
  if (masks?.rw1cMask) cap.rw1cMask.set(masks.rw1cMask, PCI_CAP_VNDR_LEN + 1);
  return cap.body(PCI_CAP_ID_VNDR);
}

/**
 * An extended capability: `bytes` (and the masks, per byte of `bytes`) are what follows the
 * 4-byte header; ConfigSpace.addExtendedCapability writes the header with id, version and next.
 */
export function extendedCapability(
  id: number,
  version: number,
  bytes: Uint8Array,
  masks?: CapabilityMasks,
): CapabilityBody {
  if (!Number.isInteger(id) || id < 0 || id > 0xffff) {
    throw invalid(`extended capability id ${String(id)} is not 16-bit.`, 'Use an id from 0 to 0xffff.');
  }
  if (!Number.isInteger(version) || version < 0 || version > 0xf) {
    throw invalid(
      `extended capability version ${String(version)} is not 4-bit.`,
      'Use a version from 0 to 15.',
    );
  }
  checkMasks('extended capability', bytes.length, masks);
  const cap = new CapabilityImage(EXT_HEADER + bytes.length);
  cap.bytes.set(bytes, EXT_HEADER);
  if (masks?.writeMask) cap.writeMask.set(masks.writeMask, EXT_HEADER);
  if (masks?.rw1cMask) cap.rw1cMask.set(masks.rw1cMask, EXT_HEADER);
  return cap.extendedBody(id, version);
}

export const CAPABILITY_HEADER_SIZE = STD_HEADER;
export const EXTENDED_CAPABILITY_HEADER_SIZE = EXT_HEADER;
