/**
 * Guest RAM: shared memory from guest-physical address 0 up to its size, with a simple
 * allocator for driver buffers (firmware and kernel keep the first MiB).
 */
import { allocateSharedMemory, type GuestRam, PAGE_SIZE, type SharedMemory, VfioError } from '@vfiokit/core';
import { hexOf } from './address-map.js';
import { MAX_RAM_SIZE } from './layout.js';

/** Allocations start above the first MiB (real mode memory, BIOS areas), as on a PC. */
const FIRST_ALLOCATION = 0x10_0000;
/** The smallest guest RAM: room for the first allocation and as much again. */
export const MIN_RAM_SIZE = 2 * FIRST_ALLOCATION;

export class GuestMemory implements GuestRam {
  readonly memory: SharedMemory;
  readonly size: number;
  readonly bytes: Uint8Array;
  #next = FIRST_ALLOCATION;

  /**
   * `allocate` chooses the backing: shared memory by default, a memfd when a vfio-user server
   * must map guest RAM (its fd travels with DMA_MAP). It must return exactly `size` bytes.
   */
  constructor(size: number, allocate: (size: number) => SharedMemory = allocateSharedMemory) {
    if (!Number.isSafeInteger(size) || size < MIN_RAM_SIZE || size > MAX_RAM_SIZE || size % PAGE_SIZE !== 0) {
      throw new VfioError(
        'EINVAL',
        `guest RAM of ${String(size)} bytes is not a whole number of pages from 2 MiB to ${MAX_RAM_SIZE / 2 ** 20} MiB.`,
        {
          hint: `RAM ends below the ECAM window at ${hexOf(MAX_RAM_SIZE)}; pick a page-multiple size below it.`,
        },
      );
    }
    this.memory = allocate(size);
    if (this.memory.size !== size || this.memory.bytes.length !== size) {
      throw new VfioError(
        'EINVAL',
        `the guest RAM allocator returned ${this.memory.bytes.length} bytes where ${size} were asked.`,
        { hint: 'Return memory of exactly the requested size from the RAM allocator.' },
      );
    }
    this.size = size;
    this.bytes = this.memory.bytes;
  }

  read(gpa: number, dst: Uint8Array): void {
    this.#check(gpa, dst.length, 'read');
    dst.set(this.bytes.subarray(gpa, gpa + dst.length));
  }

  write(gpa: number, src: Uint8Array): void {
    this.#check(gpa, src.length, 'write');
    this.bytes.set(src, gpa);
  }

  alloc(size: number, align = PAGE_SIZE): number {
    if (
      !Number.isSafeInteger(size) ||
      size <= 0 ||
      !Number.isSafeInteger(align) ||
      align <= 0 ||
      (align & (align - 1)) !== 0
    ) {
      throw new VfioError(
        'EINVAL',
        `cannot allocate ${String(size)} bytes of guest RAM aligned to ${String(align)}.`,
        {
          hint: 'Ask for a positive size and a power-of-two alignment.',
        },
      );
    }
    const at = Math.ceil(this.#next / align) * align;
    if (at + size > this.size) {
      throw new VfioError(
        'ENOMEM',
        `guest RAM has no ${size} free bytes left (${this.size - this.#next} remain).`,
        {
          hint: 'Give the machine more RAM (ramSize) or allocate less.',
        },
      );
    }
    this.#next = at + size;
    return at;
  }

  /** Forget every allocation (the guest rebooted). */
  resetAllocator(): void {
    this.#next = FIRST_ALLOCATION;
  }

  #check(gpa: number, length: number, what: string): void {
    if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa + length > this.size) {
      throw new VfioError(
        'EFAULT',
        `guest RAM ${what} of ${length} bytes at ${hexOf(gpa)} is outside the ${this.size}-byte RAM.`,
        {
          hint: 'Keep RAM accesses between 0 and ram.size.',
        },
      );
    }
  }
}
