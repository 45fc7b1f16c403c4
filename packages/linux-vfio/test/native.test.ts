import { closeSync, openSync, readSync } from 'node:fs';
import { ERRNO, VFIO_DEVICE_GET_INFO, VFIO_GET_API_VERSION } from '@vfiokit/core/abi';
import { closeFd, createMemfd, Eventfd } from '@vfiokit/vfio-user/native';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addon } from '../src/host/native.js';

describe('the native addon', () => {
  it('answers an ioctl the fd does not know with -ENOTTY, never an exception', () => {
    const e = new Eventfd();
    try {
      expect(addon().ioctl(e.fd, VFIO_DEVICE_GET_INFO, new Uint8Array(20))).toBe(-ERRNO.ENOTTY);
      expect(addon().ioctlValue(e.fd, VFIO_GET_API_VERSION, 0)).toBe(-ERRNO.ENOTTY);
    } finally {
      e.close();
    }
    expect(addon().ioctl(1 << 30, VFIO_DEVICE_GET_INFO, new Uint8Array(20))).toBe(-ERRNO.EBADF);
  });

  it("survives any request number and argument bytes, and leaves the caller's buffer its length", () => {
    const fd = openSync('/dev/null', 'r+');
    try {
      fc.assert(
        fc.property(fc.nat({ max: 0xffffffff }), fc.uint8Array({ maxLength: 256 }), (request, bytes) => {
          // FIONBIO and FIOASYNC would change the descriptor; everything else /dev/null refuses or ignores.
          fc.pre(request !== 0x5421 && request !== 0x5452);
          const before = bytes.length;
          const ret = addon().ioctl(fd, request, bytes);
          return Number.isInteger(ret) && bytes.length === before;
        }),
        { numRuns: 300 },
      );
    } finally {
      closeSync(fd);
    }
  });

  it('throws a TypeError for arguments that are not a descriptor, a u32 and a Uint8Array', () => {
    expect(() => addon().ioctl(-1, 0, new Uint8Array(0))).toThrow(TypeError);
    expect(() => addon().ioctl(0, 2 ** 32, new Uint8Array(0))).toThrow(TypeError);
    expect(() => addon().ioctl(0, 0, [] as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => addon().ioctlValue(0, 0, -1)).toThrow(TypeError);
    expect(() => addon().address(42 as unknown as ArrayBuffer)).toThrow(TypeError);
  });

  it('gives the address of a buffer, offset for a view', () => {
    const buf = new ArrayBuffer(64);
    const base = addon().address(buf);
    expect(base).toBeGreaterThan(0n);
    expect(addon().address(new Uint8Array(buf, 16))).toBe(base + 16n);
  });

  it('maps a file shared, and unmapRegion ends the mapping at once and only once', () => {
    const fd = createMemfd('linux-vfio-test', 8192);
    try {
      const ab = addon().mapRegion(fd, 8192, 4096, true);
      if (typeof ab === 'number') throw new Error(`mapRegion answered ${ab}`);
      new Uint8Array(ab).set([1, 2, 3]);
      const back = new Uint8Array(3);
      readSync(fd, back, 0, 3, 4096);
      expect([...back]).toEqual([1, 2, 3]);
      expect(addon().unmapRegion(ab)).toBe(0);
      expect(ab.byteLength).toBe(0);
      expect(addon().unmapRegion(ab)).toBe(0);
      expect(addon().mapRegion(fd, 4096, 1, true)).toBe(-ERRNO.EINVAL);
    } finally {
      closeFd(fd);
    }
    expect(addon().mapRegion(1 << 30, 4096, 0, false)).toBe(-ERRNO.EBADF);
  });
});
