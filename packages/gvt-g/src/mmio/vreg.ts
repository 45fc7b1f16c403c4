/**
 * One vGPU's register file (gvt's vgpu->mmio.vreg): 2 MiB of dwords, seeded from the host's
 * MMIO snapshot at creation and at every device-model reset, served to the guest through the
 * tracking table's masks and handlers (handlers.c intel_vgpu_mmio_reg_rw).
 *
 * Access widths: 1, 2, 4 or 8 bytes anywhere; a narrow access reads or merges its bytes of the
 * dword (little-endian) and runs the dword's handlers; an 8-byte access is two dword accesses,
 * low first. An access to an untracked offset is served from the vreg like GVT's default_rw
 * and recorded in `unknown` (with a read and write count), and logged once per offset.
 */
import type { Logger } from '@vfiokit/core';
import { GVT_MMIO_SIZE } from '../constants.js';
import { F_MODE_MASK, type MmioContext, type MmioTable, maskedWrite } from './table.js';

export interface UnknownAccess {
  reads: number;
  writes: number;
  /** The last value written, or read back. */
  last: number;
}

/** What the register handlers may ask of the vGPU that owns the vreg. */
export interface VregHooks {
  /** PVINFO g2v_notify was written. */
  g2vNotify(value: number): void;
  /** RING_TAIL of the render ring was written while the ring runs in ring-buffer mode. */
  ringTailWritten(): void;
  /** The guest wrote its fence register `index`. */
  fenceWritten(index: number, value: number): void;
  /** An interrupt register changed: re-evaluate what is pending. */
  interruptsChanged(): void;
  /** GDRST asked for a reset of these engines (a mask of engine ids), already acknowledged. */
  resetEngines(mask: number): void;
  /** A dword was written to the execlist submit port of `engine`. */
  elspWritten(engine: number, value: number): void;
  /** RING_MODE of `engine` turned execlists on or off. */
  execlistsEnabled(engine: number, on: boolean): void;
  /** The hardware status page address of `engine` was written. */
  hwsWritten(engine: number, gm: number): void;
  /** DP_AUX_CH_CTL of channel `ch` (A = 0) was written with `value`. */
  auxWritten(ch: number, value: number): void;
  /** TRANSCONF of `pipe` turned the pipe on or off. */
  pipeEnabled(pipe: number, on: boolean): void;
  /** The scanline `pipe` is on now (PIPEDSL). */
  scanline(pipe: number): number;
}

const NO_HOOKS: VregHooks = {
  g2vNotify() {},
  ringTailWritten() {},
  fenceWritten() {},
  interruptsChanged() {},
  resetEngines() {},
  elspWritten() {},
  execlistsEnabled() {},
  hwsWritten() {},
  auxWritten() {},
  pipeEnabled() {},
  scanline: () => 0,
};

export class Vreg implements MmioContext {
  hooks: VregHooks = NO_HOOKS;
  readonly words: Uint32Array;
  /** Untracked offsets the guest touched, by dword offset. */
  readonly unknown = new Map<number, UnknownAccess>();
  /** Trapped accesses served (reads + writes), for the bench and statistics. */
  accesses = 0;
  private log: Logger | undefined;

  constructor(
    private readonly name: string,
    private readonly table: MmioTable<Vreg>,
    private readonly snapshot: Uint32Array,
    /** Fence registers this vGPU owns. */
    readonly fenceCount: number,
  ) {
    this.words = new Uint32Array(GVT_MMIO_SIZE / 4);
    this.words.set(snapshot);
  }

  setLogger(log: Logger | undefined): void {
    this.log = log;
  }

  get(offset: number): number {
    return this.words[offset >>> 2];
  }

  set(offset: number, value: number): void {
    this.words[offset >>> 2] = value >>> 0;
  }

  /** Every register back to the host snapshot (the caller applies the vGPU's own values). */
  reset(): void {
    this.words.set(this.snapshot);
  }

  /** A guest read of one dword. */
  readDword(offset: number): number {
    this.accesses++;
    const info = this.table.find(offset);
    if (info === undefined) {
      this.noteUnknown(offset, false, this.words[offset >>> 2]);
      return this.words[offset >>> 2];
    }
    return info.read === undefined ? this.words[offset >>> 2] : info.read(this, offset) >>> 0;
  }

  /** A guest write of one dword. */
  writeDword(offset: number, value: number): void {
    this.accesses++;
    const info = this.table.find(offset);
    const old = this.words[offset >>> 2];
    if (info === undefined) {
      this.noteUnknown(offset, true, value >>> 0);
      this.words[offset >>> 2] = value >>> 0;
      return;
    }
    let v = ((old & info.roMask) | (value & ~info.roMask)) >>> 0;
    if (info.write !== undefined) {
      info.write(this, offset, (info.flags & F_MODE_MASK) !== 0 ? value >>> 0 : v, old);
      return;
    }
    if (info.flags & F_MODE_MASK) v = maskedWrite(old, v);
    this.words[offset >>> 2] = v;
  }

  /** A guest read of 1, 2, 4 or 8 bytes at `offset` inside the register file. */
  read(offset: number, dst: Uint8Array): void {
    if (dst.length === 4 && (offset & 3) === 0) {
      const v = this.readDword(offset);
      dst[0] = v & 0xff;
      dst[1] = (v >>> 8) & 0xff;
      dst[2] = (v >>> 16) & 0xff;
      dst[3] = v >>> 24;
      return;
    }
    for (let i = 0; i < dst.length; ) {
      const at = offset + i;
      const dword = at & ~3;
      const v = this.readDword(dword);
      for (let b = at & 3; b < 4 && i < dst.length; b++, i++) dst[i] = (v >>> (8 * b)) & 0xff;
    }
  }

  /** A guest write of 1, 2, 4 or 8 bytes. A narrow write merges into the stored dword. */
  write(offset: number, src: Uint8Array): void {
    if (src.length === 4 && (offset & 3) === 0) {
      this.writeDword(offset, (src[0] | (src[1] << 8) | (src[2] << 16) | (src[3] << 24)) >>> 0);
      return;
    }
    for (let i = 0; i < src.length; ) {
      const at = offset + i;
      const dword = at & ~3;
      let v = this.words[dword >>> 2];
      for (let b = at & 3; b < 4 && i < src.length; b++, i++) {
        v = (v & ~(0xff << (8 * b))) | (src[i] << (8 * b));
      }
      this.writeDword(dword, v >>> 0);
    }
  }

  private noteUnknown(offset: number, write: boolean, value: number): void {
    let u = this.unknown.get(offset);
    if (u === undefined) {
      u = { reads: 0, writes: 0, last: value };
      this.unknown.set(offset, u);
      this.log?.warn(
        `${this.name} BAR0 MMIO: untracked register 0x${offset.toString(16).padStart(5, '0')} ${write ? `written 0x${value.toString(16)}` : `read (0x${value.toString(16)})`}; served from the vreg (logged once per offset).`,
      );
    }
    if (write) u.writes++;
    else u.reads++;
    u.last = value;
  }

  /** The unknown offsets, sorted, as "0x0a188 r3 w0" lines (the guest suite's report). */
  unknownReport(): string[] {
    return [...this.unknown.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(
        ([o, u]) =>
          `0x${o.toString(16).padStart(5, '0')} r${u.reads} w${u.writes} last=0x${u.last.toString(16)}`,
      );
  }
}
