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
 * The two sides live apart: the setup (placement, linking, the mask bytes each definition
 * records) is ConfigLayout (config-layout.ts); this class is the live side a guest and a device
 * see — access through the masks, write listeners, decode state, MSI/MSI-X state, reset and
 * restore — and reads the layout's tables directly. The public shapes are in config-types.ts,
 * the capability builders in capabilities.ts and the walk in walk.ts.
 */

import { copyBytes, TWO_32 } from '../bytes.js';
import { VfioError } from '../errors.js';
import { type CapabilityBody, msiLayout } from './capabilities.js';
import { type ConfigPlace, configInvalid, configPlace } from './config-errors.js';
import { ConfigLayout } from './config-layout.js';
import type {
  BarDefinition,
  BarSpec,
  ConfigSpaceOptions,
  ConfigWriteListener,
  FieldMasks,
  MsiState,
  MsixState,
  PciIdentity,
  PlacedCapability,
  PlacedExtendedCapability,
  RomState,
} from './config-types.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
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
  PCI_STATUS_INTERRUPT,
  PCI_VENDOR_ID,
} from './constants.js';
import { type ConfigReader, findCapability } from './walk.js';

export type {
  BarDefinition,
  BarKind,
  BarSpec,
  ConfigSpaceOptions,
  ConfigWriteListener,
  FieldMasks,
  MsiState,
  MsixState,
  PciIdentity,
  PlacedCapability,
  PlacedExtendedCapability,
  RomState,
} from './config-types.js';

export class ConfigSpace implements ConfigReader {
  readonly size: number;
  readonly identity: Readonly<PciIdentity>;
  private readonly name: string | undefined;
  private readonly layout: ConfigLayout;
  // The layout's tables, held here too: every guest config access reads them.
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly wmask: Uint8Array;
  private readonly w1cmask: Uint8Array;
  private listeners: ConfigWriteListener[] = [];

  constructor(opts: ConfigSpaceOptions) {
    const size = opts.size ?? PCI_CFG_SPACE_SIZE;
    this.name = opts.name;
    if (size !== PCI_CFG_SPACE_SIZE && size !== PCI_CFG_SPACE_EXP_SIZE) {
      throw this.invalid(`a configuration space cannot be ${String(size)} bytes.`, 'Use 256 or 4096.');
    }
    const layout = new ConfigLayout(size, opts.identity, opts.name);
    this.size = size;
    this.identity = Object.freeze({ ...opts.identity });
    this.layout = layout;
    this.bytes = layout.bytes;
    this.view = new DataView(layout.bytes.buffer);
    this.wmask = layout.wmask;
    this.w1cmask = layout.w1cmask;
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

  // ---- setup (ConfigLayout) ---------------------------------------------------------------------

  /** Implement BAR `index`. Writing all ones then reading answers the size mask with the type bits. */
  defineBar(spec: BarDefinition): void {
    this.layout.defineBar(spec);
  }

  /** Implement the expansion ROM BAR at 0x30: bit 0 enables decoding, bits 31..11 take the base. */
  defineRom(size: number): void {
    this.layout.defineRom(size);
  }

  /**
   * Let the guest set COMMAND bits no BAR implies: a VGA controller decodes the legacy I/O
   * ports (0x3b0-0x3df) and the memory window at 0xa0000 with no BAR for either, so it takes
   * COMMAND.IO and COMMAND.MEMORY like a device with I/O and memory BARs.
   */
  decodeWithoutBar(bits: number): void {
    this.layout.decodeWithoutBar(bits);
  }

  /**
   * A device-specific field outside the header and the capabilities (an IGD's ASLS at 0xfc, say):
   * power-on bytes and masks per byte. The bytes are reserved so no capability is placed there.
   */
  defineField(offset: number, bytes: Uint8Array, masks: FieldMasks = {}): void {
    this.layout.defineField(offset, bytes, masks);
  }

  /**
   * Place a standard capability (4-byte aligned, first free room from 0x40, or at `at`) and link
   * it at the end of the list; sets STATUS.CAP_LIST. Returns its offset.
   */
  addCapability(cap: CapabilityBody, at?: number): number {
    return this.layout.addCapability(cap, at);
  }

  /**
   * Place an extended capability (4096-byte space only; the first at 0x100, then 4-byte aligned
   * first free room, or at `at`) and link it at the end of the list. Returns its offset.
   */
  addExtendedCapability(cap: CapabilityBody, at?: number): number {
    return this.layout.addExtendedCapability(cap, at);
  }

  // ---- guest access --------------------------------------------------------------------------

  read(offset: number, dst: Uint8Array): void {
    const n = dst.length;
    this.checkRange(offset, n);
    copyBytes(dst, 0, this.bytes, offset, n);
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
    const spec = this.layout.barTable[index];
    if (spec === undefined) return undefined;
    const off = PCI_BASE_ADDRESS_0 + 4 * index;
    const low = this.view.getUint32(off, true);
    if (spec.kind === 'io') return (low & PCI_BASE_ADDRESS_IO_MASK) >>> 0;
    const base = (low & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
    if (spec.kind === 'mem32') return base;
    return base + this.view.getUint32(off + 4, true) * TWO_32;
  }

  bars(): readonly BarSpec[] {
    return this.layout.barTable.filter((b): b is BarSpec => b !== undefined).map((b) => ({ ...b }));
  }

  rom(): RomState | undefined {
    if (this.layout.romSize === 0) return undefined;
    const value = this.view.getUint32(PCI_ROM_ADDRESS, true);
    return {
      size: this.layout.romSize,
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
    return this.layout.caps.map((c) => ({ ...c }));
  }

  extendedCapabilities(): PlacedExtendedCapability[] {
    return this.layout.extCaps.map((c) => ({ ...c }));
  }

  // ---- reset and migration ------------------------------------------------------------------

  /** Return every byte to its power-on state (as constructed and set up). Listeners are not called. */
  reset(): void {
    this.bytes.set(this.layout.powerOn);
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
      if (bytes[i] !== this.layout.powerOn[i]) {
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

  private place(offset?: number): ConfigPlace {
    return configPlace(this.name, offset);
  }

  private invalid(problem: string, hint: string, offset?: number): VfioError {
    return configInvalid(this.name, problem, hint, offset);
  }
}
