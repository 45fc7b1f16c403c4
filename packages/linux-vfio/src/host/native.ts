/**
 * The backend's native addon (native/linux_vfio.c): ioctl with a struct or an integer argument,
 * the address of an ArrayBuffer, and device mappings that end when told. Eventfds and closing
 * descriptors come from @vfiokit/vfio-user's addon, the one home of those.
 */
import { createRequire } from 'node:module';
import { VfioError } from '@vfiokit/core';

export interface LinuxVfioAddon {
  /** ioctl(fd, request, bytes): the return value, or -errno. `bytes` is copied in and back. */
  ioctl(fd: number, request: number, bytes: Uint8Array): number;
  /** ioctl(fd, request, value) with an integer argument: the return value, or -errno. */
  ioctlValue(fd: number, request: number, value: number): number;
  /** The user virtual address of the memory behind an ArrayBuffer or a typed array. */
  address(buffer: ArrayBuffer | ArrayBufferView): bigint;
  /** mmap(MAP_SHARED) of a device fd: the ArrayBuffer, or -errno. */
  mapRegion(fd: number, size: number, offset: number, writable: boolean): ArrayBuffer | number;
  /** munmap now and detach the buffer (0); idempotent. */
  unmapRegion(buffer: ArrayBuffer): number;
}

/** Where the build puts the addon, relative to this file (src/host or dist/host). */
const ADDON_PATH = '../../build/Release/linux_vfio.node';

let cached: LinuxVfioAddon | undefined;

export function addon(): LinuxVfioAddon {
  if (cached) return cached;
  try {
    cached = createRequire(import.meta.url)(ADDON_PATH) as LinuxVfioAddon;
  } catch (err) {
    throw new VfioError(
      'ENOSYS',
      `the native addon of @vfiokit/linux-vfio could not be loaded from ${ADDON_PATH}.`,
      {
        hint: 'Run `pnpm install` at the repository root (it builds the addon with node-gyp), or `npx node-gyp rebuild --nodedir=/usr` in packages/linux-vfio.',
        cause: err,
      },
    );
  }
  return cached;
}
