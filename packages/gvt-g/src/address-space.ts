/**
 * A GPU address space as the command streamer and the audit see it: the vGPU's part of the
 * global GTT (GmAccess) or one of its per-process GTTs (Ppgtt). Every access is bounded: an
 * address the space does not map answers false, never another vGPU's or the host's memory.
 */
export interface GpuAddressSpace {
  /** Whether [addr, addr + length) is addressable by this vGPU in this space. */
  inside(addr: number, length: number): boolean;
  /** The 32-bit words of the page holding `addr` and the index of the page's first word, or undefined. */
  pageWords(addr: number): { words: Uint32Array; base: number } | undefined;
  read(addr: number, dst: Uint8Array): boolean;
  write(addr: number, src: Uint8Array): boolean;
  fill(addr: number, length: number, pattern: Uint8Array): boolean;
}
