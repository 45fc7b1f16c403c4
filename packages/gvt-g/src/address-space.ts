/**
 * A GPU address space as the command streamer and the audit see it: the vGPU's part of the
 * global GTT (GmAccess) or one of its per-process GTTs (Ppgtt). Every access is bounded: an
 * address the space does not map answers false, never another vGPU's or the host's memory.
 */
import { TWO_32 } from '@vfiokit/core';

/**
 * The 48-bit GPU address a command's address dwords name: the low dword with its low
 * `alignMask` bits cleared, bits 47:32 from the high dword. Unsigned: JavaScript's `&` alone
 * makes every address from 2 GiB up negative (a second vGPU's hidden GM lies there).
 */
export function gpuAddress(lo: number, hi: number, alignMask: number): number {
  return ((lo & ~alignMask) >>> 0) + (hi & 0xffff) * TWO_32;
}

export interface GpuAddressSpace {
  /** Whether [addr, addr + length) is addressable by this vGPU in this space. */
  inside(addr: number, length: number): boolean;
  /** The 32-bit words of the page holding `addr` and the index of the page's first word, or undefined. */
  pageWords(addr: number): { words: Uint32Array; base: number } | undefined;
  read(addr: number, dst: Uint8Array): boolean;
  write(addr: number, src: Uint8Array): boolean;
  fill(addr: number, length: number, pattern: Uint8Array): boolean;
}
