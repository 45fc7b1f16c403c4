/**
 * Declarative MMIO registers for one BAR: a list of named registers with reset values, masks
 * and optional hooks, served through read/write calls that never throw on a bad guest access.
 *
 * Access rules
 * - An access is served by a register when all its bytes lie inside that register and its width
 *   is allowed. By default a register accepts any 1-, 2-, 4- or 8-byte access inside it (a guest
 *   reads a 64-bit register as two 32-bit halves, or pokes one byte of a control register);
 *   `accessWidths` makes a register strict (e.g. `[4]`).
 * - A partial access reads or writes those bytes of the register, little-endian: a 2-byte read
 *   at register offset + 2 of a 4-byte register returns bits 31..16. `onRead` computes the whole
 *   register and the accessed bytes are taken from its result; `onWrite` gets the whole register
 *   after the written bytes were merged.
 * - Writes, per bit: read-only bits (`readOnlyMask`) keep their value, W1C bits (`w1cMask`) clear
 *   where a 1 is written, every other bit takes the written value. `access: 'ro'` drops every
 *   write (no hook); `access: 'wo'` reads as 0.
 * - An access whose first byte is in no register is unmapped; one that starts in a register but
 *   is of a width it does not allow, or runs past its end, is a bad-width access. Both read as
 *   `unmappedValue & 0xff` in every byte (0 by default; 0xff mimics a floating bus), drop
 *   writes, are counted, and are logged once per offset, for at most 32 offsets per bank.
 *
 * Hot path: values live in one packed byte array; a table with one Int32 per 4-byte slot maps
 * an offset to its register, so readValue (readU32) of a plain register is two array loads, one
 * branch and a DataView read, with no allocation. The specs and options are in register-spec.ts.
 */

import { hex, readLe, TWO_32, writeLe } from '../bytes.js';
import type { Logger } from '../contract/context.js';
import { VfioError } from '../errors.js';
import type { AccessWidth, RegisterBankOptions, RegisterHandle, RegisterSpec } from './register-spec.js';

export type { AccessWidth, RegisterBankOptions, RegisterHandle, RegisterSpec } from './register-spec.js';

const UNMAPPED = -1;
/** Per-register flags. */
const FAST_READ4 = 1;
const FAST_WRITE4 = 2;
const ACCESS_RO = 4;
const ACCESS_WO = 8;
const LOG_LIMIT = 32;

function isWidth(w: unknown): w is AccessWidth {
  return w === 1 || w === 2 || w === 4 || w === 8;
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function toBigValue(value: number | bigint, name: string): bigint {
  if (typeof value === 'bigint') return value;
  if (!Number.isFinite(value)) {
    throw new VfioError('EINVAL', `register ${name} cannot hold ${String(value)}.`, {
      hint: 'Set a finite integer value.',
    });
  }
  return BigInt(Math.trunc(value));
}

class Handle implements RegisterHandle {
  constructor(
    private readonly bank: RegisterBank,
    private readonly index: number,
    readonly name: string,
    readonly offset: number,
    readonly width: AccessWidth,
  ) {}

  get value(): number {
    return this.bank.storedValue(this.index);
  }

  set value(v: number) {
    this.bank.storeValue(this.index, toBigValue(v, this.name));
  }

  get bigValue(): bigint {
    return this.bank.storedBigValue(this.index);
  }

  set bigValue(v: bigint) {
    this.bank.storeValue(this.index, v);
  }
}

export class RegisterBank {
  readonly name: string;
  readonly size: number;
  private readonly unmappedByte: number;
  private readonly log: Logger | undefined;

  /** One entry per 4-byte slot: a register index, UNMAPPED, or -2 - k for sub-slot table k. */
  private readonly slots: Int32Array;
  /**
   * Per 4-byte slot: where in `store` an aligned 4-byte read of it starts when the slot is one
   * plain register (FAST_READ4: readable, no read hook) covering the whole slot; -1 otherwise.
   * The trapped-MMIO hot path reads it with one lookup.
   */
  private readonly fastRead4: Int32Array;
  /** The destination of the last fast 4-byte read, and a view of it. */
  private lastDst: Uint8Array | undefined;
  private lastDstView: DataView = new DataView(new ArrayBuffer(4));
  /** Four entries per sub-slot table: the register index of each byte, or UNMAPPED. */
  private readonly subSlots: Int32Array;

  private readonly regOffset: Int32Array;
  private readonly regWidth: Uint8Array;
  /** Position of each register's bytes in the packed arrays. */
  private readonly regBase: Int32Array;
  private readonly regFlags: Uint8Array;
  /** Bit w set when a w-byte access is allowed. */
  private readonly regWidths: Uint16Array;
  private readonly readHooks: ((reg: RegisterHandle) => number)[];
  private readonly writeHooks: ((value: number, old: number, reg: RegisterHandle) => void)[];
  private readonly handles: Handle[];
  private readonly byName = new Map<string, number>();

  private readonly store: Uint8Array;
  private readonly storeView: DataView;
  private readonly wmask: Uint8Array;
  private readonly wmaskView: DataView;
  private readonly w1c: Uint8Array;
  private readonly w1cView: DataView;
  private readonly resetImage: Uint8Array;
  private readonly layoutHash: number;

  private readonly readScratch = new Uint8Array(8);
  private readonly writeScratch = new Uint8Array(8);

  private unmappedCount = 0;
  private badWidthCount = 0;
  private readonly loggedOffsets = new Set<number>();
  private logSuppressed = false;

  constructor(opts: RegisterBankOptions) {
    this.name = opts.name;
    if (!Number.isInteger(opts.size) || opts.size <= 0) {
      throw this.invalid(
        `size ${String(opts.size)} is not a positive whole number of bytes.`,
        'Give the BAR size.',
      );
    }
    this.size = opts.size;
    this.unmappedByte = (opts.unmappedValue ?? 0) & 0xff;
    this.log = opts.log;

    const regs = opts.registers;
    const n = regs.length;
    this.regOffset = new Int32Array(n);
    this.regWidth = new Uint8Array(n);
    this.regBase = new Int32Array(n);
    this.regFlags = new Uint8Array(n);
    this.regWidths = new Uint16Array(n);
    this.readHooks = new Array(n);
    this.writeHooks = new Array(n);
    this.handles = new Array(n);

    let packed = 0;
    for (let r = 0; r < n; r++) {
      const spec = regs[r];
      const width = spec.width ?? 4;
      this.checkSpec(spec, width);
      if (this.byName.has(spec.name)) {
        throw this.invalid(`two registers are named '${spec.name}'.`, 'Give every register a unique name.');
      }
      this.byName.set(spec.name, r);
      this.regOffset[r] = spec.offset;
      this.regWidth[r] = width;
      this.regBase[r] = packed;
      packed += width;
    }
    this.checkOverlaps(regs);

    this.store = new Uint8Array(packed);
    this.storeView = new DataView(this.store.buffer);
    this.wmask = new Uint8Array(packed);
    this.wmaskView = new DataView(this.wmask.buffer);
    this.w1c = new Uint8Array(packed);
    this.w1cView = new DataView(this.w1c.buffer);

    const slotCount = Math.ceil(this.size / 4);
    this.slots = new Int32Array(slotCount).fill(UNMAPPED);
    const sub: number[] = [];
    const layout: string[] = [];
    for (let r = 0; r < n; r++) {
      const spec = regs[r];
      const width = this.regWidth[r];
      const access = spec.access ?? 'rw';
      const reset = this.toBig(spec, 'reset', spec.reset ?? 0, width);
      const ro =
        access === 'ro'
          ? (1n << BigInt(8 * width)) - 1n
          : this.toBig(spec, 'readOnlyMask', spec.readOnlyMask ?? 0, width);
      const w1c = this.toBig(spec, 'w1cMask', spec.w1cMask ?? 0, width);
      if (access === 'ro' && w1c !== 0n) {
        throw this.invalid(
          `register ${spec.name} is read-only but has W1C bits.`,
          "Drop w1cMask or make the register 'rw'.",
        );
      }
      const base = this.regBase[r];
      for (let i = 0; i < width; i++) {
        const shift = BigInt(8 * i);
        const w1cByte = Number((w1c >> shift) & 0xffn);
        this.store[base + i] = Number((reset >> shift) & 0xffn);
        this.w1c[base + i] = w1cByte;
        this.wmask[base + i] = ~Number((ro >> shift) & 0xffn) & ~w1cByte & 0xff;
      }

      let widths = 0;
      for (const w of spec.accessWidths ?? ([1, 2, 4, 8] as const)) if (w <= width) widths |= 1 << w;
      this.regWidths[r] = widths;
      let flags = 0;
      if (access === 'ro') flags |= ACCESS_RO;
      if (access === 'wo') flags |= ACCESS_WO;
      if ((widths & (1 << 4)) !== 0 && spec.onRead === undefined && access !== 'wo') flags |= FAST_READ4;
      if ((widths & (1 << 4)) !== 0 && spec.onWrite === undefined && access !== 'ro') flags |= FAST_WRITE4;
      this.regFlags[r] = flags;
      if (spec.onRead) this.readHooks[r] = spec.onRead;
      if (spec.onWrite) this.writeHooks[r] = spec.onWrite;
      this.handles[r] = new Handle(this, r, spec.name, spec.offset, width as AccessWidth);
      layout.push(`${spec.name}@${spec.offset}:${width}`);

      const start = spec.offset;
      const end = start + width;
      for (let s = start >>> 2; s * 4 < end; s++) {
        if (start <= s * 4 && s * 4 + 4 <= end) {
          this.slots[s] = r;
          continue;
        }
        if (this.slots[s] === UNMAPPED) {
          this.slots[s] = -2 - sub.length / 4;
          sub.push(UNMAPPED, UNMAPPED, UNMAPPED, UNMAPPED);
        }
        const k = -2 - this.slots[s];
        for (let b = Math.max(start, s * 4); b < Math.min(end, s * 4 + 4); b++) sub[k * 4 + (b & 3)] = r;
      }
    }
    this.subSlots = Int32Array.from(sub);
    this.fastRead4 = new Int32Array(slotCount).fill(-1);
    for (let slot = 0; slot < slotCount; slot++) {
      const r = this.slots[slot];
      if (r >= 0 && (this.regFlags[r] & FAST_READ4) !== 0)
        this.fastRead4[slot] = this.regBase[r] + slot * 4 - this.regOffset[r];
    }
    this.resetImage = this.store.slice();
    this.layoutHash = fnv1a(layout.join(';'));
  }

  /** Guest accesses at offsets no register covers. */
  get unmappedAccesses(): number {
    return this.unmappedCount;
  }

  /** Guest accesses of a width the register refuses, or that run past its end. */
  get badWidthAccesses(): number {
    return this.badWidthCount;
  }

  // ---- guest access ---------------------------------------------------------------------------

  readU32(offset: number): number {
    return this.readValue(offset, 4);
  }

  writeU32(offset: number, value: number): void {
    this.writeValue(offset, 4, value);
  }

  /**
   * read() of `size` (1, 2 or 4) bytes as their little-endian value (RegionHandler.readValue):
   * an aligned 4-byte read of a plain register is one table load and one 32-bit load.
   */
  readValue(offset: number, size: 1 | 2 | 4): number {
    if (size === 4 && (offset & 3) === 0 && offset < this.size) {
      const p = this.fastRead4[offset >>> 2];
      if (p >= 0) return this.storeView.getUint32(p, true);
    }
    this.readInto(offset, this.readScratch, size);
    return readLe(this.readScratch, 0, size);
  }

  /** write() of the low `size` (1, 2 or 4) bytes of `value` (RegionHandler.writeValue). */
  writeValue(offset: number, size: 1 | 2 | 4, value: number): void {
    const r = this.slots[offset >>> 2];
    if (size === 4 && r >= 0 && (offset & 3) === 0 && (this.regFlags[r] & FAST_WRITE4) !== 0) {
      const p = this.regBase[r] + offset - this.regOffset[r];
      const w = this.wmaskView.getUint32(p, true);
      const c = this.w1cView.getUint32(p, true);
      const old = this.storeView.getUint32(p, true);
      this.storeView.setUint32(p, ((old & ~w) | (value & w)) & ~(value & c), true);
      return;
    }
    writeLe(this.writeScratch, 0, size, value);
    this.writeFrom(offset, this.writeScratch, size);
  }

  /** Read `dst.length` (1, 2, 4 or 8) bytes at `offset`. Never throws for a bad guest access. */
  read(offset: number, dst: Uint8Array): void {
    // The trapped-MMIO hot path, an aligned 4-byte read of a plain register into the buffer of
    // the last such read: one 32-bit load and one 32-bit store (four byte stores would stall the
    // caller's 32-bit read of `dst`: a store cannot forward to a wider load). Kept this small so
    // that it inlines into the dispatcher's path; everything else is readSlow().
    const p =
      dst.length === 4 && (offset & 3) === 0 && offset < this.size ? this.fastRead4[offset >>> 2] : -1;
    if (p >= 0 && dst === this.lastDst)
      this.lastDstView.setUint32(0, this.storeView.getUint32(p, true), true);
    else this.readSlow(offset, dst, p);
  }

  /** read() of anything but a fast 4-byte register into the last buffer (`p`: its fast slot or -1). */
  private readSlow(offset: number, dst: Uint8Array, p: number): void {
    if (p >= 0) {
      // A new buffer: callers reuse theirs, so the view of the last one is kept.
      this.lastDst = dst;
      this.lastDstView = new DataView(dst.buffer, dst.byteOffset, 4);
      this.lastDstView.setUint32(0, this.storeView.getUint32(p, true), true);
      return;
    }
    this.readInto(offset, dst, dst.length);
  }

  /** Write `src.length` (1, 2, 4 or 8) bytes at `offset`. Never throws for a bad guest access. */
  write(offset: number, src: Uint8Array): void {
    this.writeFrom(offset, src, src.length);
  }

  // ---- device side ------------------------------------------------------------------------------

  /** The stored value of a register (exact up to 2^53). */
  get(name: string): number {
    return this.storedValue(this.indexOf(name));
  }

  /** The stored value of a register, exact for every width. */
  getBigInt(name: string): bigint {
    return this.storedBigValue(this.indexOf(name));
  }

  /** Set a register's stored value (modulo 2^(8*width)): no masks, no hooks. */
  set(name: string, value: number | bigint): void {
    const r = this.indexOf(name);
    this.storeValue(r, toBigValue(value, name));
  }

  /** The handle of a register, as its hooks see it. */
  register(name: string): RegisterHandle {
    return this.handles[this.indexOf(name)];
  }

  /** Every register back to its reset value. Counters are kept. */
  reset(): void {
    this.store.set(this.resetImage);
  }

  /** The stored values: a 4-byte layout hash, then every register's bytes in declaration order. */
  snapshot(): Uint8Array {
    const out = new Uint8Array(4 + this.store.length);
    new DataView(out.buffer).setUint32(0, this.layoutHash, true);
    out.set(this.store, 4);
    return out;
  }

  /** Load values saved by snapshot() of a bank with the same registers; refuses any other. */
  restore(bytes: Uint8Array): void {
    const ok =
      bytes.length === 4 + this.store.length &&
      new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true) === this.layoutHash;
    if (!ok) {
      throw this.invalid(
        `the snapshot (${bytes.length} bytes) was not taken from a bank with these registers.`,
        'Restore a snapshot of the same device type and version.',
      );
    }
    this.store.set(bytes.subarray(4));
  }

  // ---- internals (used by Handle) -------------------------------------------------------------

  /** @internal */
  storedValue(r: number): number {
    const p = this.regBase[r];
    switch (this.regWidth[r]) {
      case 1:
        return this.store[p];
      case 2:
        return this.storeView.getUint16(p, true);
      case 4:
        return this.storeView.getUint32(p, true);
      default:
        return this.storeView.getUint32(p, true) + this.storeView.getUint32(p + 4, true) * TWO_32;
    }
  }

  /** @internal */
  storedBigValue(r: number): bigint {
    let v = 0n;
    const p = this.regBase[r];
    for (let i = this.regWidth[r] - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.store[p + i]);
    return v;
  }

  /** @internal */
  storeValue(r: number, value: bigint): void {
    const p = this.regBase[r];
    let v = BigInt.asUintN(8 * this.regWidth[r], value);
    for (let i = 0; i < this.regWidth[r]; i++) {
      this.store[p + i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }

  private registerAt(offset: number): number {
    if (!Number.isInteger(offset) || offset < 0 || offset >= this.size) return UNMAPPED;
    const s = this.slots[offset >>> 2];
    if (s >= UNMAPPED) return s;
    return this.subSlots[(-2 - s) * 4 + (offset & 3)];
  }

  /** The register serving an access, or UNMAPPED after counting and logging the refusal. */
  private serving(offset: number, length: number, isWrite: boolean): number {
    const r = this.registerAt(offset);
    if (r === UNMAPPED) {
      this.unmappedCount++;
      this.note(offset, length, isWrite, 'no register');
      return UNMAPPED;
    }
    const inside = offset + length <= this.regOffset[r] + this.regWidth[r];
    if (!isWidth(length) || (this.regWidths[r] & (1 << length)) === 0 || !inside) {
      this.badWidthCount++;
      this.note(offset, length, isWrite, `register ${this.handles[r].name} refuses that width`);
      return UNMAPPED;
    }
    return r;
  }

  private readInto(offset: number, dst: Uint8Array, length: number): void {
    const r = this.serving(offset, length, false);
    if (r === UNMAPPED) {
      dst.fill(this.unmappedByte, 0, length);
      return;
    }
    const flags = this.regFlags[r];
    if ((flags & ACCESS_WO) !== 0) {
      dst.fill(0, 0, length);
      return;
    }
    const delta = offset - this.regOffset[r];
    const hook = this.readHooks[r];
    if (hook !== undefined) {
      const v = hook(this.handles[r]);
      const low = v >>> 0;
      const high = Math.floor(v / TWO_32) >>> 0;
      for (let i = 0; i < length; i++) {
        const b = delta + i;
        dst[i] = b < 4 ? (low >>> (8 * b)) & 0xff : (high >>> (8 * (b - 4))) & 0xff;
      }
      return;
    }
    const p = this.regBase[r] + delta;
    for (let i = 0; i < length; i++) dst[i] = this.store[p + i];
  }

  private writeFrom(offset: number, src: Uint8Array, length: number): void {
    const r = this.serving(offset, length, true);
    if (r === UNMAPPED || (this.regFlags[r] & ACCESS_RO) !== 0) return;
    const hook = this.writeHooks[r];
    const old = hook === undefined ? 0 : this.storedValue(r);
    const p = this.regBase[r] + offset - this.regOffset[r];
    for (let i = 0; i < length; i++) {
      const w = this.wmask[p + i];
      const v = src[i];
      this.store[p + i] = ((this.store[p + i] & ~w) | (v & w)) & ~(v & this.w1c[p + i]);
    }
    if (hook !== undefined) hook(this.storedValue(r), old, this.handles[r]);
  }

  private note(offset: number, length: number, isWrite: boolean, why: string): void {
    if (this.log === undefined || this.logSuppressed || this.loggedOffsets.has(offset)) return;
    if (this.loggedOffsets.size >= LOG_LIMIT) {
      this.logSuppressed = true;
      this.log.warn(
        `${this.name}: more than ${LOG_LIMIT} offsets had refused accesses; no longer logging them.`,
      );
      return;
    }
    this.loggedOffsets.add(offset);
    const what = isWrite ? 'write dropped' : `read answered 0x${this.unmappedByte.toString(16)} per byte`;
    this.log.warn(
      `${this.name}: ${length}-byte access at ${hex(offset)}: ${why}; ${what} (logged once per offset).`,
    );
  }

  private indexOf(name: string): number {
    const r = this.byName.get(name);
    if (r === undefined) {
      throw new VfioError('ENOENT', `bank ${this.name} has no register named '${name}'.`, {
        hint: 'Use a name from the bank definition.',
      });
    }
    return r;
  }

  private checkSpec(spec: RegisterSpec, width: number): void {
    if (typeof spec.name !== 'string' || spec.name.length === 0) {
      throw this.invalid(`the register at ${String(spec.offset)} has no name.`, 'Name every register.');
    }
    if (!isWidth(width)) {
      throw this.invalid(`register ${spec.name} has width ${String(width)}.`, 'Use width 1, 2, 4 or 8.');
    }
    if (!Number.isInteger(spec.offset) || spec.offset < 0 || spec.offset + width > this.size) {
      throw this.invalid(
        `register ${spec.name} (${width} bytes at ${String(spec.offset)}) lies outside the ${this.size}-byte bank.`,
        'Fix the offset or the bank size.',
      );
    }
    if (spec.access !== undefined && spec.access !== 'rw' && spec.access !== 'ro' && spec.access !== 'wo') {
      throw this.invalid(
        `register ${spec.name} has access '${String(spec.access)}'.`,
        "Use 'rw', 'ro' or 'wo'.",
      );
    }
    if (spec.accessWidths !== undefined) {
      if (spec.accessWidths.length === 0 || spec.accessWidths.some((w) => !isWidth(w) || w > width)) {
        throw this.invalid(
          `register ${spec.name} allows access widths [${spec.accessWidths.join(', ')}], but it is ${width} bytes wide.`,
          'List widths from 1, 2, 4, 8 no larger than the register.',
        );
      }
    }
  }

  private checkOverlaps(regs: readonly RegisterSpec[]): void {
    const order = regs.map((_, i) => i).sort((a, b) => this.regOffset[a] - this.regOffset[b]);
    for (let i = 1; i < order.length; i++) {
      const a = order[i - 1];
      const b = order[i];
      if (this.regOffset[a] + this.regWidth[a] > this.regOffset[b]) {
        throw this.invalid(
          `register ${regs[a].name} (${this.regWidth[a]} bytes at ${hex(this.regOffset[a])}) overlaps register ${regs[b].name} (${this.regWidth[b]} bytes at ${hex(this.regOffset[b])}).`,
          'Give each register its own bytes.',
        );
      }
    }
  }

  private toBig(spec: RegisterSpec, field: string, value: number | bigint, width: number): bigint {
    const ok = typeof value === 'bigint' || Number.isSafeInteger(value);
    const v = ok ? BigInt(value) : -1n;
    if (v < 0n || v >= 1n << BigInt(8 * width)) {
      throw this.invalid(
        `register ${spec.name} ${field} ${String(value)} does not fit its ${width} bytes.`,
        `Use a non-negative integer below 2^${8 * width}.`,
      );
    }
    return v;
  }

  private invalid(problem: string, hint: string): VfioError {
    return new VfioError('EINVAL', `bank ${this.name}: ${problem}`, { hint });
  }
}
