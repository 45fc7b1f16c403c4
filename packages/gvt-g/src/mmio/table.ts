/**
 * The MMIO tracking table (gvt/mmio.h, handlers.c setup_mmio_info): one entry per tracked
 * register of the 2 MiB register file, with GVT's per-register flags, a read-only mask and
 * optional read and write handlers. The table is built once per parent device and shared by its
 * vGPUs, as gvt->mmio.mmio_info_table is; a vGPU's values live in its own vreg (vreg.ts).
 *
 * An access to an offset no entry tracks still reads and writes the vreg (GVT's default_rw for
 * untracked MMIO), but it is recorded as unknown, so that a guest touching a register this
 * model does not describe is seen at once.
 */
import { VfioError } from '@vfiokit/core';
import { GVT_MMIO_SIZE } from '../constants.js';

/** gvt/mmio.h flags. */
/** F_RO: every bit read-only (with the ro mask). */
export const F_RO = 1 << 0;
/** F_GMADR: the value is a graphics memory address the guest gives (audited by its handler). */
export const F_GMADR = 1 << 1;
/** F_MODE_MASK: a masked register, bits 31:16 select which of bits 15:0 a write changes. */
export const F_MODE_MASK = 1 << 2;
/** F_CMD_ACCESS: the command audit lets MI_LOAD_REGISTER_IMM / SRM / LRM touch it. */
export const F_CMD_ACCESS = 1 << 3;
/** F_SR_IN_CTX: saved and restored with the logical ring context. */
export const F_SR_IN_CTX = 1 << 6;

/** What a handler works on: the vGPU's register values. */
export interface MmioContext {
  /** The stored value of the dword at `offset`. */
  get(offset: number): number;
  /** Store a dword with no masks and no handlers. */
  set(offset: number, value: number): void;
}

/** A read handler returns the value the guest sees (and may update the vreg on the way). */
export type MmioRead<C extends MmioContext> = (ctx: C, offset: number) => number;
/**
 * A write handler gets the value after masks (ro bits kept, masked-register semantics applied
 * when F_MODE_MASK is set) and the previous value; it stores what the register should hold.
 * Without a handler the value is stored as it is.
 */
export type MmioWrite<C extends MmioContext> = (ctx: C, offset: number, value: number, old: number) => void;

export interface MmioInfo<C extends MmioContext> {
  readonly offset: number;
  /** A name for logs and tests ("RING_MODE_GEN7(RCS)"). */
  readonly name: string;
  readonly flags: number;
  readonly roMask: number;
  readonly read: MmioRead<C> | undefined;
  readonly write: MmioWrite<C> | undefined;
}

export interface MmioEntry<C extends MmioContext> {
  readonly name: string;
  /** Bytes covered, a multiple of 4; default 4. Every dword of a range shares the entry. */
  readonly size?: number;
  readonly flags?: number;
  readonly roMask?: number;
  readonly read?: MmioRead<C>;
  readonly write?: MmioWrite<C>;
}

const NONE = -1;

export class MmioTable<C extends MmioContext> {
  private readonly index = new Int32Array(GVT_MMIO_SIZE / 4).fill(NONE);
  private readonly infos: MmioInfo<C>[] = [];
  /** 1 for each dword whose entry has F_CMD_ACCESS: the command audit asks per register. */
  private readonly cmdAccess = new Uint8Array(GVT_MMIO_SIZE / 4);

  /** Track the register (or range) at `offset`. Defining an offset twice is a table bug. */
  define(offset: number, entry: MmioEntry<C>): void {
    const size = entry.size ?? 4;
    if (offset % 4 !== 0 || size % 4 !== 0 || size <= 0 || offset + size > GVT_MMIO_SIZE) {
      throw new VfioError(
        'EINVAL',
        `MMIO table entry ${entry.name} at 0x${offset.toString(16)} (+${size}) is not a dword range of the 2 MiB register file.`,
        {
          hint: 'Give a 4-byte aligned offset and a size in whole dwords.',
        },
      );
    }
    for (let at = offset; at < offset + size; at += 4) {
      const prior = this.index[at >>> 2];
      if (prior !== NONE) {
        throw new VfioError(
          'EEXIST',
          `MMIO 0x${at.toString(16)} is tracked twice: ${this.infos[prior].name} and ${entry.name}.`,
          {
            hint: 'Give each register one entry in the table.',
          },
        );
      }
      const info: MmioInfo<C> = {
        offset: at,
        name: size === 4 ? entry.name : `${entry.name}+0x${(at - offset).toString(16)}`,
        flags: entry.flags ?? 0,
        roMask: entry.flags !== undefined && entry.flags & F_RO ? 0xffffffff : (entry.roMask ?? 0) >>> 0,
        read: entry.read,
        write: entry.write,
      };
      this.index[at >>> 2] = this.infos.length;
      this.infos.push(info);
      if (info.flags & F_CMD_ACCESS) this.cmdAccess[at >>> 2] = 1;
    }
  }

  /** The entry tracking the dword holding `offset`, or undefined. */
  find(offset: number): MmioInfo<C> | undefined {
    const i = this.index[offset >>> 2];
    return i === NONE || i === undefined ? undefined : this.infos[i];
  }

  tracked(offset: number): boolean {
    return offset >= 0 && offset < GVT_MMIO_SIZE && this.index[offset >>> 2] !== NONE;
  }

  /** Whether MI_LOAD_REGISTER_IMM and friends may reach `offset` (F_CMD_ACCESS). */
  commandAccess(offset: number): boolean {
    return offset >= 0 && this.cmdAccess[offset >>> 2] === 1;
  }

  /** Tracked dwords. */
  get size(): number {
    return this.infos.length;
  }

  entries(): readonly MmioInfo<C>[] {
    return this.infos;
  }
}

/** _MASKED_BIT_ENABLE / DISABLE semantics of a masked register: bits 31:16 select bits 15:0. */
export function maskedWrite(old: number, value: number): number {
  const mask = value >>> 16;
  return ((old & 0xffff & ~mask) | (value & mask & 0xffff)) >>> 0;
}

/** IS_MASKED_BITS_ENABLED: a masked write that sets `bits`. */
export function maskedEnabled(value: number, bits: number): boolean {
  return ((value >>> 16) & bits) === bits && (value & bits) === bits;
}

/** IS_MASKED_BITS_DISABLED: a masked write that clears `bits`. */
export function maskedDisabled(value: number, bits: number): boolean {
  return ((value >>> 16) & bits) === bits && (value & bits) === 0;
}
