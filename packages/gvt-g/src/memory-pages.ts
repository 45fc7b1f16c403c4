/**
 * Which pages of a piece of device memory may hold data, so that clearing it (a vGPU reset, a
 * slice handed to the next vGPU) costs what was used, not what exists. Reading an untouched page
 * of a memfd allocates it (shmem has no shared zero page), so a walk that compares a 512 MiB
 * aperture slice with zero allocates 512 MiB and outlasts QEMU's DEVICE_RESET wait.
 *
 * A page is marked when this process writes it (a trapped access, the GPU, the display) and a
 * whole range when a user maps it (its writes there are not seen). `clear` discards the range
 * when the memory can (a memfd punches a hole: nothing read, nothing allocated); otherwise it
 * zeroes the marked pages that are not zero already.
 */
import { Buffer } from 'node:buffer';
import type { SharedMemory } from '@vfiokit/core';
import { GTT_PAGE_SIZE } from './constants.js';

const WRITTEN = 1;
const MAPPED = 2;
const ZERO_PAGE = Buffer.alloc(GTT_PAGE_SIZE);

export class MemoryPages {
  /** Per page: WRITTEN and/or MAPPED. */
  private readonly marks: Uint8Array;

  constructor(readonly memory: SharedMemory) {
    this.marks = new Uint8Array(Math.ceil(memory.size / GTT_PAGE_SIZE));
  }

  /** This process wrote `length` bytes at `offset`. */
  written(offset: number, length: number): void {
    if (length <= 0) return;
    const end = Math.min(this.marks.length, Math.ceil((offset + length) / GTT_PAGE_SIZE));
    for (let p = Math.floor(offset / GTT_PAGE_SIZE); p < end; p++) this.marks[p] |= WRITTEN;
  }

  /** A user mapped `length` bytes at `offset`: from now on any of them may hold data. */
  mapped(offset: number, length: number): void {
    if (length <= 0) return;
    const end = Math.min(this.marks.length, Math.ceil((offset + length) / GTT_PAGE_SIZE));
    for (let p = Math.floor(offset / GTT_PAGE_SIZE); p < end; p++) this.marks[p] |= MAPPED;
  }

  /** Pages of [start, end) that may hold data (for tests and statistics). */
  markedPages(start: number, end: number): number {
    let n = 0;
    for (let p = Math.floor(start / GTT_PAGE_SIZE); p < Math.ceil(end / GTT_PAGE_SIZE); p++)
      if (this.marks[p] !== 0) n++;
    return n;
  }

  /**
   * Zero [start, end). Pages mapped by a user stay marked (the mapping lives on) unless
   * `unmapped` says the user is gone (the vGPU was removed).
   */
  clear(start: number, end: number, unmapped = false): void {
    if (end <= start) return;
    const first = Math.floor(start / GTT_PAGE_SIZE);
    const last = Math.ceil(end / GTT_PAGE_SIZE);
    const { memory } = this;
    if (memory.discard) memory.discard(start, end - start);
    else {
      const { bytes } = memory;
      for (let p = first; p < last; p++) {
        if (this.marks[p] === 0) continue;
        const at = Math.max(start, p * GTT_PAGE_SIZE);
        const n = Math.min(end, (p + 1) * GTT_PAGE_SIZE) - at;
        const page = Buffer.from(bytes.buffer, bytes.byteOffset + at, n);
        if (n !== GTT_PAGE_SIZE ? page.some((b) => b !== 0) : !page.equals(ZERO_PAGE)) page.fill(0);
      }
    }
    // Only pages wholly inside the range are clean now.
    const keep = unmapped ? 0 : MAPPED;
    const whole = Math.floor(end / GTT_PAGE_SIZE);
    for (let p = Math.ceil(start / GTT_PAGE_SIZE); p < whole; p++) this.marks[p] &= keep;
  }
}
