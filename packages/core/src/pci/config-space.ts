/**
 * A PCI type-0 configuration space as a table of bytes with two parallel per-byte masks: the
 * bits a guest write may change, and the bits a guest clears by writing 1 (RW1C). Every other
 * bit is read-only. There is no switch on offsets: BAR sizing, the COMMAND and STATUS rules and
 * every capability's register semantics are only mask bytes.
 *
 * Life cycle: the constructor and the setup calls (defineBar, defineRom, defineField,
 * addCapability, addExtendedCapability) shape the power-on state, which is recorded as they
 * go. Everything else (guest writes, setRaw, setInterruptStatus, setMsiPending, restore)
 * changes only the live bytes, and reset() returns the live bytes to the power-on state. So
 * there is no seal step: finish setup before the guest sees the device, and reset() is always
 * "as built".
 *
 * Why one file past 600 lines: the byte table and its masks are the one private state that
 * setup, guest access, decode, MSI/MSI-X state and reset all read and write, and every guest
 * config access runs through write()/read() here; splitting the class would expose the masks
 * across modules. The capability builders (capabilities.ts) and the walk (walk.ts) are apart.
 */

import { hex, TWO_32 } from '../bytes.js';
import { VfioError } from '../errors.js';
import { type CapabilityBody, EXTENDED_CAPABILITY_HEADER_SIZE, msiLayout } from './capabilities.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_LIST_NEXT,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_CLASS_REVISION,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_PARITY,
  PCI_COMMAND_SERR,
  PCI_DEVICE_ID,
  PCI_EXT_CAP_NEXT_SHIFT,
  PCI_EXT_CAP_START,
  PCI_EXT_CAP_VER_SHIFT,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_MASK,
  PCI_HEADER_TYPE_NORMAL,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_PBA_BIR,
  PCI_MSIX_PBA_OFFSET,
  PCI_MSIX_TABLE,
  PCI_MSIX_TABLE_BIR,
  PCI_MSIX_TABLE_OFFSET,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS_MASK,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_DETECTED_PARITY,
  PCI_STATUS_INTERRUPT,
  PCI_STATUS_PARITY,
  PCI_STATUS_REC_MASTER_ABORT,
  PCI_STATUS_REC_TARGET_ABORT,
  PCI_STATUS_SIG_SYSTEM_ERROR,
  PCI_STATUS_SIG_TARGET_ABORT,
  PCI_STD_HEADER_SIZEOF,
  PCI_STD_NUM_BARS,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from './constants.js';
import { type ConfigReader, findCapability } from './walk.js';

export interface PciIdentity {
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number;
  subsystemId: number;
  /** 24 bits: base class << 16 | subclass << 8 | programming interface. */
  classCode: number;
  revision: number;
  /** Type 0 only; bit 7 (multi-function) may be set. Default 0. */
  headerType?: number;
  /** 0 for none, 1..4 for INTA#..INTD#. Default 0. */
  interruptPin?: 0 | 1 | 2 | 3 | 4;
}

export interface ConfigSpaceOptions {
  identity: PciIdentity;
  /** 256 for conventional PCI, 4096 for PCI Express (extended capabilities). Default 256. */
  size?: 256 | 4096;
  /** The device's name, for error messages. */
  name?: string;
}

export type BarKind = 'mem32' | 'mem64' | 'io';

export interface BarDefinition {
  /** 0..5; a 64-bit BAR also takes index + 1. */
  index: number;
  kind: BarKind;
  /** Bytes, a power of two: io 4..256, mem32 16..2^31, mem64 16..2^63. */
  size: number;
  prefetchable?: boolean;
}

export interface BarSpec {
  index: number;
  kind: BarKind;
  size: number;
  prefetchable: boolean;
}

export interface RomState {
  size: number;
  enabled: boolean;
  /** The programmed base (bits 31..11). */
  address: number;
}

export interface MsiState {
  offset: number;
  enabled: boolean;
  /**
   * Vectors granted by Multiple Message Enable. A guest may write a value above Multiple
   * Message Capable (the spec leaves that undefined); it is clamped to the capable count here.
   */
  vectorsEnabled: number;
  /** Vectors the capability offers (Multiple Message Capable). */
  vectorsCapable: number;
  addr64: boolean;
  /** The message address; exact up to 2^53. */
  address: number;
  data: number;
  perVectorMask: boolean;
  /** 0 without per-vector masking. */
  maskBits: number;
  /** 0 without per-vector masking. */
  pendingBits: number;
}

export interface MsixState {
  offset: number;
  enabled: boolean;
  functionMask: boolean;
  tableSize: number;
  tableBar: number;
  tableOffset: number;
  pbaBar: number;
  pbaOffset: number;
}

export interface PlacedCapability {
  id: number;
  offset: number;
  length: number;
}

export interface PlacedExtendedCapability extends PlacedCapability {
  version: number;
}

export interface FieldMasks {
  writeMask?: Uint8Array;
  rw1cMask?: Uint8Array;
}

/**
 * Called after every guest write with the range written. It must finish before it returns: one
 * that returns a Promise (an async listener) has the guest's access refused (see write()).
 */
export type ConfigWriteListener = (offset: number, length: number) => void;

// PCI Local Bus Specification 3.0 §6.2.5.1: I/O BARs decode at most 256 bytes, memory BARs at least 16
const BAR_LIMITS = {
  io: { min: 4, max: 256 },
  mem32: { min: 16, max: 2 ** 31 },
  mem64: { min: 16, max: 2 ** 63 },
} as const;
// PCI Local Bus Specification 3.0 §6.2.5.2: bits 10..1 of the ROM BAR are reserved, so at least 2 KiB
const ROM_MIN_SIZE = 0x800;
const ROM_MAX_SIZE = 2 ** 31;

// The COMMAND bits every function implements; IO and MEMORY become writable with a BAR of their kind.
const COMMAND_BASE_WRITABLE =
  PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE;
const STATUS_RW1C =
  PCI_STATUS_PARITY |
  PCI_STATUS_SIG_TARGET_ABORT |
  PCI_STATUS_REC_TARGET_ABORT |
  PCI_STATUS_REC_MASTER_ABORT |
  PCI_STATUS_SIG_SYSTEM_ERROR |
  PCI_STATUS_DETECTED_PARITY;

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

export class ConfigSpace implements ConfigReader {
  readonly size: number;
  readonly identity: Readonly<PciIdentity>;
  private readonly name: string | undefined;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly wmask: Uint8Array;
  private readonly w1cmask: Uint8Array;
  private readonly powerOn: Uint8Array;
  /** 1 where a capability or a device-defined field sits, so placements never overlap. */
  private readonly used: Uint8Array;
  private readonly barTable: (BarSpec | undefined)[] = new Array(PCI_STD_NUM_BARS).fill(undefined);
  /** True for the upper half of a 64-bit BAR. */
  private readonly barUpper: boolean[] = new Array(PCI_STD_NUM_BARS).fill(false);
  private romSize = 0;
  private readonly caps: PlacedCapability[] = [];
  private readonly extCaps: PlacedExtendedCapability[] = [];
  private listeners: ConfigWriteListener[] = [];

  constructor(opts: ConfigSpaceOptions) {
    const size = opts.size ?? PCI_CFG_SPACE_SIZE;
    this.name = opts.name;
    if (size !== PCI_CFG_SPACE_SIZE && size !== PCI_CFG_SPACE_EXP_SIZE) {
      throw this.invalid(`a configuration space cannot be ${String(size)} bytes.`, 'Use 256 or 4096.');
    }
    const id = opts.identity;
    this.checkField('vendorId', id.vendorId, 0xffff);
    this.checkField('deviceId', id.deviceId, 0xffff);
    this.checkField('subsystemVendorId', id.subsystemVendorId, 0xffff);
    this.checkField('subsystemId', id.subsystemId, 0xffff);
    this.checkField('classCode', id.classCode, 0xffffff);
    this.checkField('revision', id.revision, 0xff);
    const headerType = id.headerType ?? PCI_HEADER_TYPE_NORMAL;
    this.checkField('headerType', headerType, 0xff);
    if ((headerType & PCI_HEADER_TYPE_MASK) !== PCI_HEADER_TYPE_NORMAL) {
      throw this.invalid(
        `header type ${hex(headerType)} is not a type-0 (normal device) header.`,
        'ConfigSpace models type-0 headers only; set headerType to 0, or 0x80 for a multi-function device.',
      );
    }
    const pin = id.interruptPin ?? 0;
    this.checkField('interruptPin', pin, 4);

    this.size = size;
    this.identity = Object.freeze({ ...id });
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
    this.wmask = new Uint8Array(size);
    this.w1cmask = new Uint8Array(size);
    this.powerOn = new Uint8Array(size);
    this.used = new Uint8Array(size);

    this.init16(PCI_VENDOR_ID, id.vendorId);
    this.init16(PCI_DEVICE_ID, id.deviceId);
    this.init16(PCI_COMMAND, 0, COMMAND_BASE_WRITABLE);
    this.init16(PCI_STATUS, 0, 0, STATUS_RW1C);
    this.init32(PCI_CLASS_REVISION, ((id.classCode << 8) | id.revision) >>> 0);
    // Cache Line Size is read-write on every function (PCI Express Base 3.0 §7.5.1.3), with no effect
    this.init8(PCI_CACHE_LINE_SIZE, 0, 0xff);
    this.init8(PCI_HEADER_TYPE, headerType);
    this.init16(PCI_SUBSYSTEM_VENDOR_ID, id.subsystemVendorId);
    this.init16(PCI_SUBSYSTEM_ID, id.subsystemId);
    this.init8(PCI_INTERRUPT_LINE, 0, 0xff);
    this.init8(PCI_INTERRUPT_PIN, pin);
  }

  /** The live bytes. The device may read them freely; writes here bypass every mask. */
  get raw(): Uint8Array {
    return this.bytes;
  }

  /** Set live bytes with no mask applied (the device changing read-only state). Not recorded for reset. */
  setRaw(offset: number, bytes: Uint8Array): void {
    this.checkRange(offset, bytes.length);
    this.bytes.set(bytes, offset);
  }

  // ---- setup -------------------------------------------------------------------------------

  /** Implement BAR `index`. Writing all ones then reading answers the size mask with the type bits. */
  defineBar(spec: BarDefinition): void {
    const { index, kind, size } = spec;
    const prefetchable = spec.prefetchable ?? false;
    if (!Number.isInteger(index) || index < 0 || index >= PCI_STD_NUM_BARS) {
      throw this.invalid(`BAR index ${String(index)} does not exist.`, 'Use a BAR index from 0 to 5.');
    }
    const limits = BAR_LIMITS[kind];
    if (limits === undefined) {
      throw this.invalid(`BAR ${index} has unknown kind '${String(kind)}'.`, "Use 'mem32', 'mem64' or 'io'.");
    }
    if (kind === 'mem64' && index === PCI_STD_NUM_BARS - 1) {
      throw this.invalid('a 64-bit BAR cannot start at BAR 5.', 'It takes two BAR slots; start it at 0..4.');
    }
    if (!isPowerOfTwo(size) || size < limits.min || size > limits.max) {
      throw this.invalid(
        `BAR ${index} size ${String(size)} is not a power of two from ${limits.min} to ${limits.max} for a ${kind} BAR.`,
        'Round the size up to a power of two within the limits of the BAR kind.',
      );
    }
    if (kind === 'io' && prefetchable) {
      throw this.invalid(`BAR ${index} is an I/O BAR and cannot be prefetchable.`, 'Drop prefetchable.');
    }
    const slots = kind === 'mem64' ? [index, index + 1] : [index];
    for (const slot of slots) {
      if (this.barTable[slot] !== undefined || this.barUpper[slot]) {
        throw new VfioError('EEXIST', `BAR ${slot} is already defined.`, {
          ...this.place(PCI_BASE_ADDRESS_0 + 4 * slot),
          hint: 'Define each BAR once; a 64-bit BAR also takes the next index.',
        });
      }
    }
    const off = PCI_BASE_ADDRESS_0 + 4 * index;
    if (kind === 'io') {
      this.init32(off, PCI_BASE_ADDRESS_SPACE_IO, (~(size - 1) & PCI_BASE_ADDRESS_IO_MASK) >>> 0);
      this.enableCommandBits(PCI_COMMAND_IO);
    } else {
      let type = prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0;
      if (kind === 'mem64') type |= PCI_BASE_ADDRESS_MEM_TYPE_64;
      if (size <= 2 ** 31) {
        this.init32(off, type, (~(size - 1) & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
        if (kind === 'mem64') this.init32(off + 4, 0, 0xffffffff);
      } else {
        this.init32(off, type, 0);
        this.init32(off + 4, 0, ~(size / TWO_32 - 1) >>> 0);
      }
      this.enableCommandBits(PCI_COMMAND_MEMORY);
    }
    this.barTable[index] = { index, kind, size, prefetchable };
    if (kind === 'mem64') this.barUpper[index + 1] = true;
  }

  /** Implement the expansion ROM BAR at 0x30: bit 0 enables decoding, bits 31..11 take the base. */
  defineRom(size: number): void {
    if (this.romSize !== 0) {
      throw new VfioError('EEXIST', 'the expansion ROM is already defined.', {
        ...this.place(PCI_ROM_ADDRESS),
        hint: 'Define it once.',
      });
    }
    if (!isPowerOfTwo(size) || size < ROM_MIN_SIZE || size > ROM_MAX_SIZE) {
      throw this.invalid(
        `expansion ROM size ${String(size)} is not a power of two from 2048 to 2^31.`,
        'Round the ROM size up to a power of two of at least 2 KiB.',
      );
    }
    this.init32(PCI_ROM_ADDRESS, 0, ((~(size - 1) & PCI_ROM_ADDRESS_MASK) | PCI_ROM_ADDRESS_ENABLE) >>> 0);
    this.romSize = size;
    this.enableCommandBits(PCI_COMMAND_MEMORY);
  }

  /**
   * Let the guest set COMMAND bits no BAR implies: a VGA controller decodes the legacy I/O
   * ports (0x3b0-0x3df) and the memory window at 0xa0000 with no BAR for either, so it takes
   * COMMAND.IO and COMMAND.MEMORY like a device with I/O and memory BARs.
   */
  decodeWithoutBar(bits: number): void {
    if ((bits & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY)) !== 0) {
      throw this.invalid(
        `COMMAND bits ${hex(bits)} are not decode enables.`,
        'Pass PCI_COMMAND_IO and/or PCI_COMMAND_MEMORY.',
      );
    }
    this.enableCommandBits(bits);
  }

  /**
   * A device-specific field outside the header and the capabilities (an IGD's ASLS at 0xfc, say):
   * power-on bytes and masks per byte. The bytes are reserved so no capability is placed there.
   */
  defineField(offset: number, bytes: Uint8Array, masks: FieldMasks = {}): void {
    this.checkMasks('field', bytes.length, masks);
    if (!Number.isInteger(offset) || offset < PCI_STD_HEADER_SIZEOF || offset + bytes.length > this.size) {
      throw this.invalid(
        `a ${bytes.length}-byte field at ${hex(offset)} is outside the device-specific area 0x40..${hex(this.size)}.`,
        'The header (0x00..0x3f) is built by ConfigSpace; place fields at 0x40 or above.',
      );
    }
    this.claim(offset, bytes.length, 'field');
    for (let i = 0; i < bytes.length; i++) {
      this.init8(offset + i, bytes[i], masks.writeMask?.[i] ?? 0, masks.rw1cMask?.[i] ?? 0);
    }
  }

  /**
   * Place a standard capability (4-byte aligned, first free room from 0x40, or at `at`) and link
   * it at the end of the list; sets STATUS.CAP_LIST. Returns its offset.
   */
  addCapability(cap: CapabilityBody, at?: number): number {
    if (cap.version !== undefined) {
      throw this.invalid(
        `capability id ${hex(cap.id)} has a version, so it is an extended capability.`,
        'Add it with addExtendedCapability.',
      );
    }
    if (!Number.isInteger(cap.id) || cap.id < 0 || cap.id > 0xff) {
      throw this.invalid(`capability id ${String(cap.id)} is not 8-bit.`, 'Use an id from 0 to 0xff.');
    }
    if (cap.bytes.length < 2) {
      throw this.invalid(
        `capability id ${hex(cap.id)} has ${cap.bytes.length} bytes.`,
        'A capability has at least its id and next bytes.',
      );
    }
    this.checkMasks(`capability ${hex(cap.id)}`, cap.bytes.length, cap);
    const offset = this.allocate(
      cap.bytes.length,
      PCI_STD_HEADER_SIZEOF,
      PCI_CFG_SPACE_SIZE,
      at,
      `capability ${hex(cap.id)}`,
    );
    this.copyCapability(offset, cap, 2);
    this.init8(offset, cap.id);
    this.init8(offset + PCI_CAP_LIST_NEXT, 0);
    const last = this.caps[this.caps.length - 1];
    this.init8(last === undefined ? PCI_CAPABILITY_LIST : last.offset + PCI_CAP_LIST_NEXT, offset);
    this.init16(PCI_STATUS, this.u16(this.powerOn, PCI_STATUS) | PCI_STATUS_CAP_LIST, 0, STATUS_RW1C);
    this.caps.push({ id: cap.id, offset, length: cap.bytes.length });
    return offset;
  }

  /**
   * Place an extended capability (4096-byte space only; the first at 0x100, then 4-byte aligned
   * first free room, or at `at`) and link it at the end of the list. Returns its offset.
   */
  addExtendedCapability(cap: CapabilityBody, at?: number): number {
    const what = `extended capability ${hex(cap.id)}`;
    if (this.size !== PCI_CFG_SPACE_EXP_SIZE) {
      throw this.invalid(
        `${what} needs a 4096-byte configuration space, but this one has 256 bytes.`,
        'Construct the ConfigSpace with size 4096 (PCI Express).',
      );
    }
    const version = cap.version ?? 0;
    if (
      !Number.isInteger(cap.id) ||
      cap.id < 0 ||
      cap.id > 0xffff ||
      !Number.isInteger(version) ||
      version < 0 ||
      version > 0xf
    ) {
      throw this.invalid(
        `${what} version ${String(version)} does not fit the header.`,
        'Use a 16-bit id and a 4-bit version.',
      );
    }
    if (cap.bytes.length < EXTENDED_CAPABILITY_HEADER_SIZE) {
      throw this.invalid(
        `${what} has ${cap.bytes.length} bytes.`,
        'An extended capability has at least its 4-byte header.',
      );
    }
    this.checkMasks(what, cap.bytes.length, cap);
    if (this.extCaps.length === 0 && at !== undefined && at !== PCI_EXT_CAP_START) {
      throw this.invalid(
        `the first extended capability must sit at 0x100, not ${hex(at)}.`,
        'Leave `at` out or use 0x100.',
      );
    }
    const start = PCI_EXT_CAP_START;
    const offset = this.allocate(cap.bytes.length, start, this.size, at, what);
    if (this.extCaps.length === 0 && offset !== PCI_EXT_CAP_START) {
      throw new VfioError('EBUSY', `the first extended capability must sit at 0x100, but a field is there.`, {
        ...this.place(PCI_EXT_CAP_START),
        hint: 'Move the device-specific field away from 0x100.',
      });
    }
    this.copyCapability(offset, cap, EXTENDED_CAPABILITY_HEADER_SIZE);
    this.init32(offset, (cap.id | (version << PCI_EXT_CAP_VER_SHIFT)) >>> 0);
    const last = this.extCaps[this.extCaps.length - 1];
    if (last !== undefined) {
      const header = this.u32(this.powerOn, last.offset);
      this.init32(last.offset, (header | (offset << PCI_EXT_CAP_NEXT_SHIFT)) >>> 0);
    }
    this.extCaps.push({ id: cap.id, version, offset, length: cap.bytes.length });
    return offset;
  }

  // ---- guest access --------------------------------------------------------------------------

  read(offset: number, dst: Uint8Array): void {
    const n = dst.length;
    this.checkRange(offset, n);
    const bytes = this.bytes;
    for (let i = 0; i < n; i++) dst[i] = bytes[offset + i];
  }

  /**
   * Per byte: writable bits take the new value, RW1C bits clear where 1 is written, the rest keep.
   * Returns what a write listener returned when that is a thenable (an async listener), so that
   * the DeviceFile refuses the access as it refuses an async BAR handler; otherwise undefined.
   */
  write(offset: number, src: Uint8Array): unknown {
    const n = src.length;
    this.checkRange(offset, n);
    // writeByte's rule, with the tables in locals: a guest config write runs for every access.
    const bytes = this.bytes;
    const wmask = this.wmask;
    const w1cmask = this.w1cmask;
    for (let i = 0; i < n; i++) {
      const at = offset + i;
      const value = src[i];
      const w = wmask[at];
      bytes[at] = ((bytes[at] & ~w) | (value & w)) & ~(value & w1cmask[at]);
    }
    return this.listeners.length !== 0 ? this.notify(offset, n) : undefined;
  }

  /** `size` bytes at `offset`, little-endian: the ConfigReader a capability walk reads through. */
  configRead(offset: number, size: 1 | 2 | 4): number {
    return size === 1 ? this.readU8(offset) : size === 2 ? this.readU16(offset) : this.readU32(offset);
  }

  readU8(offset: number): number {
    this.checkRange(offset, 1);
    return this.bytes[offset];
  }

  readU16(offset: number): number {
    this.checkRange(offset, 2);
    return this.view.getUint16(offset, true);
  }

  readU32(offset: number): number {
    this.checkRange(offset, 4);
    return this.view.getUint32(offset, true);
  }

  writeU8(offset: number, value: number): unknown {
    this.checkRange(offset, 1);
    this.writeByte(offset, value & 0xff);
    return this.notify(offset, 1);
  }

  writeU16(offset: number, value: number): unknown {
    this.checkRange(offset, 2);
    this.writeByte(offset, value & 0xff);
    this.writeByte(offset + 1, (value >>> 8) & 0xff);
    return this.notify(offset, 2);
  }

  writeU32(offset: number, value: number): unknown {
    this.checkRange(offset, 4);
    for (let i = 0; i < 4; i++) this.writeByte(offset + i, (value >>> (8 * i)) & 0xff);
    return this.notify(offset, 4);
  }

  /** Listen to guest writes (not setRaw, reset or restore). Returns a function that stops listening. */
  onWrite(listener: ConfigWriteListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  // ---- decode state ----------------------------------------------------------------------------

  get command(): number {
    return this.view.getUint16(PCI_COMMAND, true);
  }

  /** On every trapped BAR access: the numbers are written out (an imported constant costs a load and a check there). */
  memoryEnabled(): boolean {
    // PCI_COMMAND at 0x04, PCI_COMMAND_MEMORY = 0x2 (linux/pci_regs.h)
    return (this.view.getUint8(0x04) & 0x2) !== 0;
  }

  ioEnabled(): boolean {
    return (this.command & PCI_COMMAND_IO) !== 0;
  }

  busMasterEnabled(): boolean {
    return (this.command & PCI_COMMAND_MASTER) !== 0;
  }

  intxDisabled(): boolean {
    return (this.command & PCI_COMMAND_INTX_DISABLE) !== 0;
  }

  /** Reflect the device's INTx line in STATUS.INTERRUPT (read-only to the guest). */
  setInterruptStatus(asserted: boolean): void {
    if (asserted) this.bytes[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
    else this.bytes[PCI_STATUS] &= ~PCI_STATUS_INTERRUPT;
  }

  /**
   * The base the guest programmed into BAR `index` (64-bit BARs combined, exact up to 2^53);
   * undefined for an unimplemented BAR or the upper half of a 64-bit one.
   */
  barAddress(index: number): number | undefined {
    const spec = this.barTable[index];
    if (spec === undefined) return undefined;
    const off = PCI_BASE_ADDRESS_0 + 4 * index;
    const low = this.view.getUint32(off, true);
    if (spec.kind === 'io') return (low & PCI_BASE_ADDRESS_IO_MASK) >>> 0;
    const base = (low & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
    if (spec.kind === 'mem32') return base;
    return base + this.view.getUint32(off + 4, true) * TWO_32;
  }

  bars(): readonly BarSpec[] {
    return this.barTable.filter((b): b is BarSpec => b !== undefined).map((b) => ({ ...b }));
  }

  rom(): RomState | undefined {
    if (this.romSize === 0) return undefined;
    const value = this.view.getUint32(PCI_ROM_ADDRESS, true);
    return {
      size: this.romSize,
      enabled: (value & PCI_ROM_ADDRESS_ENABLE) !== 0,
      address: (value & PCI_ROM_ADDRESS_MASK) >>> 0,
    };
  }

  // ---- MSI and MSI-X ------------------------------------------------------------------------

  msi(): MsiState | undefined {
    const offset = this.findCapability(PCI_CAP_ID_MSI);
    if (offset === undefined) return undefined;
    const v = this.view;
    const flags = v.getUint16(offset + PCI_MSI_FLAGS, true);
    const addr64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
    const perVectorMask = (flags & PCI_MSI_FLAGS_MASKBIT) !== 0;
    const layout = msiLayout(flags);
    const vectorsCapable = 1 << ((flags & PCI_MSI_FLAGS_QMASK) >>> 1);
    const vectorsEnabled = Math.min(1 << ((flags & PCI_MSI_FLAGS_QSIZE) >>> 4), vectorsCapable);
    const low = v.getUint32(offset + PCI_MSI_ADDRESS_LO, true);
    const high = addr64 ? v.getUint32(offset + PCI_MSI_ADDRESS_HI, true) : 0;
    return {
      offset,
      enabled: (flags & PCI_MSI_FLAGS_ENABLE) !== 0,
      vectorsEnabled,
      vectorsCapable,
      addr64,
      address: low + high * TWO_32,
      data: v.getUint16(offset + layout.data, true),
      perVectorMask,
      maskBits: perVectorMask ? v.getUint32(offset + layout.mask, true) : 0,
      pendingBits: perVectorMask ? v.getUint32(offset + layout.pending, true) : 0,
    };
  }

  /** Set the MSI Pending Bits (read-only to the guest); bits above the capable vectors are dropped. */
  setMsiPending(bits: number): void {
    const state = this.msi();
    if (state === undefined || !state.perVectorMask) {
      throw new VfioError(
        'EINVAL',
        state === undefined
          ? 'the device has no MSI capability, so it has no MSI pending bits.'
          : 'the MSI capability has no per-vector masking, so it has no pending bits.',
        { ...this.place(state?.offset), hint: 'Build the MSI capability with perVectorMask: true.' },
      );
    }
    const implemented = state.vectorsCapable === 32 ? 0xffffffff : (1 << state.vectorsCapable) - 1;
    const at = state.offset + msiLayout(this.readU16(state.offset + PCI_MSI_FLAGS)).pending;
    this.view.setUint32(at, (bits & implemented) >>> 0, true);
  }

  msix(): MsixState | undefined {
    const offset = this.findCapability(PCI_CAP_ID_MSIX);
    if (offset === undefined) return undefined;
    const flags = this.view.getUint16(offset + PCI_MSIX_FLAGS, true);
    const table = this.view.getUint32(offset + PCI_MSIX_TABLE, true);
    const pba = this.view.getUint32(offset + PCI_MSIX_PBA, true);
    return {
      offset,
      enabled: (flags & PCI_MSIX_FLAGS_ENABLE) !== 0,
      functionMask: (flags & PCI_MSIX_FLAGS_MASKALL) !== 0,
      tableSize: (flags & PCI_MSIX_FLAGS_QSIZE) + 1,
      tableBar: table & PCI_MSIX_TABLE_BIR,
      tableOffset: (table & PCI_MSIX_TABLE_OFFSET) >>> 0,
      pbaBar: pba & PCI_MSIX_PBA_BIR,
      pbaOffset: (pba & PCI_MSIX_PBA_OFFSET) >>> 0,
    };
  }

  capabilities(): PlacedCapability[] {
    return this.caps.map((c) => ({ ...c }));
  }

  extendedCapabilities(): PlacedExtendedCapability[] {
    return this.extCaps.map((c) => ({ ...c }));
  }

  // ---- reset and migration ------------------------------------------------------------------

  /** Return every byte to its power-on state (as constructed and set up). Listeners are not called. */
  reset(): void {
    this.bytes.set(this.powerOn);
  }

  /** A copy of the live bytes. */
  snapshot(): Uint8Array {
    return this.bytes.slice();
  }

  /**
   * Load live bytes saved by snapshot() on a device built the same way. Refuses a snapshot of
   * another size or with other vendor/device ids (a different device). Listeners are not called;
   * read the state back (msi(), barAddress(), command) after restoring.
   */
  restore(bytes: Uint8Array): void {
    if (bytes.length !== this.size) {
      throw this.invalid(
        `a configuration snapshot of ${bytes.length} bytes does not fit a ${this.size}-byte configuration space.`,
        'Restore a snapshot taken from the same device type.',
      );
    }
    for (let i = PCI_VENDOR_ID; i < PCI_COMMAND; i++) {
      if (bytes[i] !== this.powerOn[i]) {
        throw this.invalid(
          'the configuration snapshot carries other vendor/device ids than this device.',
          'Restore a snapshot taken from the same device type.',
        );
      }
    }
    this.bytes.set(bytes);
  }

  // ---- internals ----------------------------------------------------------------------------

  private writeByte(offset: number, value: number): void {
    const w = this.wmask[offset];
    const old = this.bytes[offset];
    this.bytes[offset] = ((old & ~w) | (value & w)) & ~(value & this.w1cmask[offset]);
  }

  /** Every listener hears the write; the first thenable one returned is the answer (write()). */
  private notify(offset: number, length: number): unknown {
    const listeners = this.listeners;
    let pending: unknown;
    for (let i = 0; i < listeners.length; i++) {
      const ret: unknown = listeners[i](offset, length);
      if (
        pending === undefined &&
        ret !== undefined &&
        typeof (ret as { then?: unknown }).then === 'function'
      )
        pending = ret;
    }
    return pending;
  }

  /** The first capability with `id`, found by the one capability walk over these bytes. */
  private findCapability(id: number): number | undefined {
    const offset = findCapability(this, id, this.size);
    return offset < 0 ? undefined : offset;
  }

  private init8(offset: number, value: number, writable = 0, rw1c = 0): void {
    this.bytes[offset] = value;
    this.powerOn[offset] = value;
    this.wmask[offset] = writable & ~rw1c;
    this.w1cmask[offset] = rw1c;
  }

  private init16(offset: number, value: number, writable = 0, rw1c = 0): void {
    for (let i = 0; i < 2; i++)
      this.init8(
        offset + i,
        (value >>> (8 * i)) & 0xff,
        (writable >>> (8 * i)) & 0xff,
        (rw1c >>> (8 * i)) & 0xff,
      );
  }

  private init32(offset: number, value: number, writable = 0, rw1c = 0): void {
    for (let i = 0; i < 4; i++)
      this.init8(
        offset + i,
        (value >>> (8 * i)) & 0xff,
        (writable >>> (8 * i)) & 0xff,
        (rw1c >>> (8 * i)) & 0xff,
      );
  }

  private u16(bytes: Uint8Array, offset: number): number {
    return bytes[offset] | (bytes[offset + 1] << 8);
  }

  private u32(bytes: Uint8Array, offset: number): number {
    return (this.u16(bytes, offset) | (this.u16(bytes, offset + 2) << 16)) >>> 0;
  }

  private enableCommandBits(bits: number): void {
    this.wmask[PCI_COMMAND] |= bits;
  }

  /** Copy a capability's bytes and masks, the first `header` bytes read-only. */
  private copyCapability(offset: number, cap: CapabilityBody, header: number): void {
    for (let i = 0; i < cap.bytes.length; i++) {
      const ro = i < header;
      this.init8(
        offset + i,
        cap.bytes[i],
        ro ? 0 : (cap.writeMask?.[i] ?? 0),
        ro ? 0 : (cap.rw1cMask?.[i] ?? 0),
      );
    }
  }

  private allocate(length: number, start: number, end: number, at: number | undefined, what: string): number {
    if (at !== undefined) {
      if (!Number.isInteger(at) || (at & 3) !== 0 || at < start || at + length > end) {
        throw this.invalid(
          `${what} (${length} bytes) cannot sit at ${hex(at)}.`,
          `Use a 4-byte aligned offset with the whole capability inside ${hex(start)}..${hex(end)}.`,
        );
      }
      this.claim(at, length, what);
      return at;
    }
    for (let pos = start; pos + length <= end; pos += 4) {
      let free = true;
      for (let i = 0; i < length && free; i++) free = this.used[pos + i] === 0;
      if (free) {
        this.claim(pos, length, what);
        return pos;
      }
    }
    throw new VfioError('ENOSPC', `${what} (${length} bytes) does not fit in ${hex(start)}..${hex(end)}.`, {
      ...this.place(start),
      hint: 'Drop a capability or make one smaller.',
    });
  }

  private claim(offset: number, length: number, what: string): void {
    for (let i = 0; i < length; i++) {
      if (this.used[offset + i] !== 0) {
        throw new VfioError(
          'EBUSY',
          `${what} at ${hex(offset)} overlaps a capability or field at ${hex(offset + i)}.`,
          {
            ...this.place(offset),
            hint: 'Choose a free offset or let ConfigSpace place it.',
          },
        );
      }
    }
    this.used.fill(1, offset, offset + length);
  }

  private checkMasks(what: string, length: number, masks: FieldMasks): void {
    for (const [name, mask] of [
      ['writeMask', masks.writeMask],
      ['rw1cMask', masks.rw1cMask],
    ] as const) {
      if (mask !== undefined && mask.length !== length) {
        throw this.invalid(
          `the ${name} of ${what} has ${mask.length} bytes for ${length} bytes.`,
          'Give one mask byte per byte.',
        );
      }
    }
  }

  private checkField(name: string, value: number, max: number): void {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      throw this.invalid(
        `identity.${name} ${String(value)} is out of range.`,
        `Use an integer from 0 to ${hex(max)}.`,
      );
    }
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + length > this.bytes.length) {
      throw new VfioError(
        'EINVAL',
        `a ${length}-byte access at ${String(offset)} is outside the ${this.bytes.length}-byte configuration space.`,
        {
          ...this.place(Number.isInteger(offset) && offset >= 0 ? offset : undefined),
          hint: 'Check the access against the config region size before calling.',
        },
      );
    }
  }

  private place(offset?: number): { device?: string; region: string; offset?: number } {
    const p: { device?: string; region: string; offset?: number } = { region: 'config' };
    if (this.name !== undefined) p.device = this.name;
    if (offset !== undefined) p.offset = offset;
    return p;
  }

  private invalid(problem: string, hint: string, offset?: number): VfioError {
    return new VfioError('EINVAL', problem, { ...this.place(offset), hint });
  }
}
