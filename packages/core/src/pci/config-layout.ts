/**
 * The power-on shape of a configuration space: the type-0 header, the BARs, the expansion ROM,
 * device-specific fields and the two capability lists, each placed, linked and recorded byte by
 * byte as its power-on value and two masks: the bits a guest write may change, and the bits a
 * guest clears by writing 1 (RW1C). Every register rule of the space is one of these mask bytes.
 *
 * ConfigSpace (config-space.ts) owns one layout and reads its tables directly; this side only
 * shapes them (setup), the ConfigSpace side is everything live: guest access, write listeners,
 * decode state, MSI/MSI-X state, reset and restore. Setup writes the live bytes too, so the
 * live bytes equal the power-on bytes until the guest touches them.
 */

import { hex, TWO_32 } from '../bytes.js';
import { VfioError } from '../errors.js';
import { type CapabilityBody, EXTENDED_CAPABILITY_HEADER_SIZE } from './capabilities.js';
import { type ConfigPlace, configInvalid, configPlace } from './config-errors.js';
import type {
  BarDefinition,
  BarSpec,
  FieldMasks,
  PciIdentity,
  PlacedCapability,
  PlacedExtendedCapability,
} from './config-types.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE,
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
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS_MASK,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_DETECTED_PARITY,
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

export class ConfigLayout {
  readonly size: number;
  /** The live bytes; setup writes them as it writes the power-on bytes. */
  readonly bytes: Uint8Array;
  /** Per byte: the bits a guest write may change (RW1C bits excluded). */
  readonly wmask: Uint8Array;
  /** Per byte: the bits a guest clears by writing 1. */
  readonly w1cmask: Uint8Array;
  /** The bytes as built: what reset() returns the live bytes to. */
  readonly powerOn: Uint8Array;
  /** BAR specs by index; undefined for an unimplemented BAR and the upper half of a 64-bit one. */
  readonly barTable: (BarSpec | undefined)[] = new Array(PCI_STD_NUM_BARS).fill(undefined);
  /** In the order they were added (and linked). */
  readonly caps: PlacedCapability[] = [];
  readonly extCaps: PlacedExtendedCapability[] = [];
  private readonly name: string | undefined;
  /** 1 where a capability or a device-defined field sits, so placements never overlap. */
  private readonly used: Uint8Array;
  /** True for the upper half of a 64-bit BAR. */
  private readonly barUpper: boolean[] = new Array(PCI_STD_NUM_BARS).fill(false);
  private romBytes = 0;

  /** `size` is 256 or 4096 (ConfigSpace checks it); the identity is checked here and laid into the header. */
  constructor(size: number, id: PciIdentity, name: string | undefined) {
    this.name = name;
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
    this.bytes = new Uint8Array(size);
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

  /** The expansion ROM's size; 0 without one. */
  get romSize(): number {
    return this.romBytes;
  }

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
    if (this.romBytes !== 0) {
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
    this.romBytes = size;
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

  private place(offset?: number): ConfigPlace {
    return configPlace(this.name, offset);
  }

  private invalid(problem: string, hint: string, offset?: number): VfioError {
    return configInvalid(this.name, problem, hint, offset);
  }
}
