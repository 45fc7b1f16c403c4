/**
 * A guest's per-process GTT (gvt/gtt.c's PPGTT shadow): the 4-level table whose root (PML4) a
 * logical ring context names in its PDP0 registers, walked through the vGPU's DMA mappings —
 * the same mappings that bound every DMA the vGPU makes, so a guest can only ever point its
 * PPGTT at its own memory. GVT write-protects the guest's table pages and keeps shadow tables;
 * here the guest's pages cannot be write-protected, so the shadow is what the command streamer
 * does itself: the walk is cached for the life of one workload and taken again for the next.
 *
 * Entry format (gen8, intel_gtt.h): bit 0 present, bits 45:12 the next level's (or the page's)
 * address; PS (bit 7) in a PDPE maps 1 GiB, in a PDE 2 MiB; IPS (bit 11) in a PDE makes its page
 * table one of 64 KiB pages, every 16th entry used (gen9).
 */

import type { DirtyLog, DmaSpace } from '@vfiokit/core';
import { TWO_32 } from '@vfiokit/core';
import type { GpuAddressSpace } from './address-space.js';
import { GTT_PAGE_SIZE } from './constants.js';

const PRESENT = 1;
const PS = 1 << 7;
const IPS = 1 << 11;
/** The 48-bit address space of a 4-level PPGTT. */
export const PPGTT_SIZE = 2 ** 48;
const ADDR_MASK_HI = 0x3fff; // bits 45:32

export class Ppgtt implements GpuAddressSpace {
  /** Translations found during this workload: GPU page → guest-physical page (or -1). */
  private readonly pages = new Map<number, number>();
  private readonly words = new Map<number, Uint32Array>();
  private readonly entry = new Uint8Array(8);
  private readonly entryView = new DataView(this.entry.buffer);
  /** Walk faults seen (a non-present entry or a table outside the DMA mappings). */
  faults = 0;

  constructor(
    readonly root: number,
    private readonly dma: DmaSpace,
    private readonly dirty?: DirtyLog,
  ) {}

  /** The guest-physical address of GPU address `va`, or -1 when it is not mapped. */
  translate(va: number): number {
    if (!Number.isSafeInteger(va) || va < 0 || va >= PPGTT_SIZE) return -1;
    const page = Math.floor(va / GTT_PAGE_SIZE);
    let pa = this.pages.get(page);
    if (pa === undefined) {
      pa = this.walk(va);
      this.pages.set(page, pa);
    }
    return pa < 0 ? -1 : pa + (va % GTT_PAGE_SIZE);
  }

  private readEntry(table: number, index: number): number {
    try {
      this.dma.read(table + 8 * index, this.entry);
    } catch {
      return 0;
    }
    const lo = this.entryView.getUint32(0, true);
    const hi = this.entryView.getUint32(4, true);
    return (lo >>> 0) + (hi & ADDR_MASK_HI) * TWO_32; // the flags stay in the low 12 bits
  }

  private flags(): number {
    return this.entryView.getUint32(0, true) & 0xfff;
  }

  /** The page-aligned guest-physical address of the 4 KiB page holding `va`, or -1. */
  private walk(va: number): number {
    const idx = (shift: number) => Math.floor(va / 2 ** shift) % 512;
    let table = this.root - (this.root % GTT_PAGE_SIZE);
    for (const shift of [39, 30, 21]) {
      const e = this.readEntry(table, idx(shift));
      const f = this.flags();
      if ((f & PRESENT) === 0) return this.fault();
      const next = e - (e % GTT_PAGE_SIZE);
      if (f & PS && shift === 30) return next - (next % 2 ** 30) + (va % 2 ** 30) - (va % GTT_PAGE_SIZE);
      if (f & PS && shift === 21) return next - (next % 2 ** 21) + (va % 2 ** 21) - (va % GTT_PAGE_SIZE);
      if (shift === 21 && f & IPS) {
        // 64 KiB pages: the entry of the 64 KiB block, its page inside it by address.
        const e64 = this.readEntry(next, idx(12) & ~0xf);
        if ((this.flags() & PRESENT) === 0) return this.fault();
        const base = e64 - (e64 % 2 ** 16);
        return base + (va % 2 ** 16) - (va % GTT_PAGE_SIZE);
      }
      table = next;
    }
    const pte = this.readEntry(table, idx(12));
    if ((this.flags() & PRESENT) === 0) return this.fault();
    return pte - (pte % GTT_PAGE_SIZE);
  }

  private fault(): number {
    this.faults++;
    return -1;
  }

  inside(addr: number, length: number): boolean {
    if (length <= 0) return this.translate(addr) >= 0;
    for (let at = addr - (addr % GTT_PAGE_SIZE); at < addr + length; at += GTT_PAGE_SIZE) {
      if (this.translate(at) < 0) return false;
    }
    return true;
  }

  pageWords(addr: number): { words: Uint32Array; base: number } | undefined {
    const pa = this.translate(addr);
    if (pa < 0) return undefined;
    const page = pa - (pa % GTT_PAGE_SIZE);
    let w = this.words.get(page);
    if (w === undefined) {
      // The command streamer's fetch is a copy: what was read is what runs.
      w = new Uint32Array(GTT_PAGE_SIZE / 4);
      try {
        this.dma.read(page, new Uint8Array(w.buffer));
      } catch {
        return undefined;
      }
      this.words.set(page, w);
    }
    return { words: w, base: 0 };
  }

  private each(addr: number, length: number, fn: (pa: number, done: number, n: number) => void): boolean {
    if (!this.inside(addr, length)) return false;
    let done = 0;
    while (done < length) {
      const at = addr + done;
      const n = Math.min(length - done, GTT_PAGE_SIZE - (at % GTT_PAGE_SIZE));
      fn(this.translate(at), done, n);
      done += n;
    }
    return true;
  }

  read(addr: number, dst: Uint8Array): boolean {
    try {
      return this.each(addr, dst.length, (pa, done, n) => this.dma.read(pa, dst.subarray(done, done + n)));
    } catch {
      return false;
    }
  }

  write(addr: number, src: Uint8Array): boolean {
    try {
      return this.each(addr, src.length, (pa, done, n) => {
        this.dma.write(pa, src.subarray(done, done + n));
        this.dirty?.markDirty(pa, n);
        this.words.delete(pa - (pa % GTT_PAGE_SIZE));
      });
    } catch {
      return false;
    }
  }

  fill(addr: number, length: number, pattern: Uint8Array): boolean {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = pattern[i % pattern.length];
    return this.write(addr, bytes);
  }
}
