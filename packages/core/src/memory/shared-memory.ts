/**
 * Memory that a device and its user both see: the backing of mmappable regions and of guest RAM
 * in the reference VMM. In process it is a SharedArrayBuffer, so worker threads can map it too;
 * a memfd-backed kind (with an fd that travels over vfio-user) implements the same interface.
 */
import type { SharedMemory } from '../contract/device.js';
import { VfioError } from '../errors.js';
import { IOMMU_PAGE_SIZE } from './page.js';

/**
 * Allocate `size` bytes of zeroed shared memory, rounded up to whole 4 KiB pages (mmap hands out
 * whole pages; a region's mmap areas are page-granular). `size` reports the rounded length, which
 * is always `bytes.length`.
 */
export function allocateSharedMemory(size: number): SharedMemory {
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new VfioError('EINVAL', `cannot allocate shared memory of ${String(size)} bytes.`, {
      hint: 'Pass a positive whole number of bytes.',
    });
  }
  const rounded = Math.ceil(size / IOMMU_PAGE_SIZE) * IOMMU_PAGE_SIZE;
  let buffer: SharedArrayBuffer;
  try {
    buffer = new SharedArrayBuffer(rounded);
  } catch (cause) {
    throw new VfioError('ENOMEM', `cannot allocate ${rounded} bytes of shared memory.`, {
      hint: 'Ask for less memory or raise the process memory limit.',
      cause,
    });
  }
  return Object.freeze({ size: rounded, bytes: new Uint8Array(buffer) });
}

/**
 * View existing bytes as SharedMemory (guest RAM the host already owns, a memfd mapping made by a
 * native addon). `fd`, when given, is the file descriptor of the same memory.
 */
export function wrapMemory(bytes: Uint8Array, fd?: number): SharedMemory {
  if (!(bytes instanceof Uint8Array)) {
    throw new VfioError('EINVAL', 'shared memory must be a Uint8Array.', {
      hint: 'Wrap the ArrayBuffer or SharedArrayBuffer in a Uint8Array first.',
    });
  }
  if (fd === undefined) return Object.freeze({ size: bytes.length, bytes });
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw new VfioError('EBADF', `${String(fd)} is not a file descriptor.`, {
      hint: 'Pass the non-negative fd of the memfd behind these bytes, or no fd at all.',
    });
  }
  return Object.freeze({ size: bytes.length, bytes, fd });
}

/**
 * Memory for a device's mmappable region: the host's allocator when it has one (a memfd under
 * the vfio-user server), shared memory otherwise.
 */
export function allocateDeviceMemory(
  host: { readonly allocateMemory?: (size: number, name: string) => SharedMemory },
  size: number,
  name: string,
): SharedMemory {
  return host.allocateMemory ? host.allocateMemory(size, name) : allocateSharedMemory(size);
}
