/**
 * HostSystem: every system call and sysfs access the backend makes, behind one interface, so
 * that the whole backend runs unchanged against the real kernel (linuxSystem) or against a
 * simulated one in tests. Paths are the host's absolute paths (/sys/..., /dev/vfio/...).
 */
import {
  constants,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  realpathSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { type ErrnoName, VfioError } from '@vfiokit/core';
import { ERRNO, errnoName } from '@vfiokit/core/abi';
import { closeFd, Eventfd } from '@vfiokit/vfio-user/native';
import { addon } from './native.js';

/** An eventfd the host made: the kernel signals it, the backend reads it. */
export interface HostEventfd {
  readonly fd: number;
  /** Read and clear the counter; undefined when it is zero. */
  read(): number | undefined;
  /** Call `fn(count)` whenever it is signalled (the counter is cleared). */
  onSignal(fn: (count: number) => void): void;
  stopPolling(): void;
  close(): void;
}

export interface HostSystem {
  /** open(path, O_RDWR) (libuv adds O_CLOEXEC); throws a VfioError carrying the errno (ENOENT, EACCES, EBUSY...). */
  open(path: string): number;
  close(fd: number): void;
  /** An ioctl with a struct argument: the return value, or -errno. `bytes` holds the struct in and out. */
  ioctl(fd: number, request: number, bytes: Uint8Array): number;
  /** An ioctl with an integer argument: the return value, or -errno. */
  ioctlValue(fd: number, request: number, value: number): number;
  /** pread(2) into `dst`: bytes read; throws a VfioError carrying the errno. */
  pread(fd: number, dst: Uint8Array, position: number): number;
  /** pwrite(2) from `src`: bytes written; throws a VfioError carrying the errno. */
  pwrite(fd: number, src: Uint8Array, position: number): number;
  /** read(2) at the file's position (a migration data stream): bytes read, 0 at the end; throws a VfioError carrying the errno. */
  read(fd: number, dst: Uint8Array): number;
  /** write(2) at the file's position: bytes written; throws a VfioError carrying the errno. */
  write(fd: number, src: Uint8Array): number;
  /**
   * mmap(MAP_SHARED) of a device fd, read-only unless `writable`; the mapping lasts until
   * munmap (the ArrayBuffer is then detached) or until the ArrayBuffer is collected.
   */
  mmap(fd: number, size: number, offset: number, writable?: boolean): ArrayBuffer;
  munmap(buffer: ArrayBuffer): void;
  /** The user virtual address of a buffer's memory (for DMA mapping). */
  address(buffer: ArrayBuffer | ArrayBufferView): bigint;
  createEventfd(): HostEventfd;
  /** A sysfs attribute's text, or undefined when it does not exist. */
  readText(path: string): string | undefined;
  /** A symlink's target as written, or undefined when `path` is not a symlink. */
  readLink(path: string): string | undefined;
  /** The canonical path (symlinks resolved), or undefined when it does not exist. */
  realPath(path: string): string | undefined;
  /** Directory entries, or undefined when `path` is not a directory. */
  list(path: string): string[] | undefined;
  exists(path: string): boolean;
  /** Write a sysfs attribute (mdev create/remove, driver binding); throws a VfioError carrying the errno. */
  writeText(path: string, text: string): void;
}

interface SystemError extends Error {
  code?: string;
  errno?: number;
}

/** A Node system error as a VfioError with the same errno (EIO for an errno core does not name, keeping its name). */
export function errnoError(err: unknown, what: string, hint?: string): VfioError {
  if (err instanceof VfioError) return err;
  const e = err as SystemError;
  const name = typeof e?.code === 'string' && e.code in ERRNO ? (e.code as ErrnoName) : 'EIO';
  const detail = typeof e?.code === 'string' ? e.code : e instanceof Error ? e.message : String(err);
  return new VfioError(name, `${what} failed (${detail}).`, hint ? { hint } : {});
}

/** -errno from an ioctl as a VfioError. */
export function ioctlError(ret: number, what: string, hint?: string): VfioError {
  const name = errnoName(-ret);
  return new VfioError(name ?? 'EIO', `${what} failed (${name ?? `errno ${-ret}`}).`, hint ? { hint } : {});
}

function maybe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** The real kernel: node:fs for files and sysfs, the addons for ioctl, mmap and eventfds. */
export function linuxSystem(): HostSystem {
  return {
    open(path) {
      try {
        return openSync(path, constants.O_RDWR);
      } catch (err) {
        throw errnoError(err, `opening ${path}`);
      }
    },
    close(fd) {
      closeFd(fd);
    },
    ioctl: (fd, request, bytes) => addon().ioctl(fd, request, bytes),
    ioctlValue: (fd, request, value) => addon().ioctlValue(fd, request, value),
    pread(fd, dst, position) {
      try {
        return readSync(fd, dst, 0, dst.length, position);
      } catch (err) {
        throw errnoError(err, `pread of ${dst.length} bytes at 0x${position.toString(16)}`);
      }
    },
    pwrite(fd, src, position) {
      try {
        return writeSync(fd, src, 0, src.length, position);
      } catch (err) {
        throw errnoError(err, `pwrite of ${src.length} bytes at 0x${position.toString(16)}`);
      }
    },
    read(fd, dst) {
      try {
        return readSync(fd, dst, 0, dst.length, null);
      } catch (err) {
        throw errnoError(err, `read of ${dst.length} bytes from fd ${fd}`);
      }
    },
    write(fd, src) {
      try {
        return writeSync(fd, src, 0, src.length, null);
      } catch (err) {
        throw errnoError(err, `write of ${src.length} bytes to fd ${fd}`);
      }
    },
    mmap(fd, size, offset, writable = true) {
      const r = addon().mapRegion(fd, size, offset, writable);
      if (typeof r === 'number')
        throw ioctlError(r, `mmap of 0x${size.toString(16)} bytes at 0x${offset.toString(16)} of fd ${fd}`);
      return r;
    },
    munmap(buffer) {
      addon().unmapRegion(buffer);
    },
    address: (buffer) => addon().address(buffer),
    createEventfd: () => new Eventfd(),
    readText: (path) => maybe(() => readFileSync(path, 'utf8')),
    readLink: (path) => maybe(() => readlinkSync(path)),
    realPath: (path) => maybe(() => realpathSync(path)),
    list: (path) => maybe(() => readdirSync(path)),
    exists: (path) => existsSync(path),
    writeText(path, text) {
      try {
        writeFileSync(path, text);
      } catch (err) {
        throw errnoError(err, `writing "${text.trim()}" to ${path}`);
      }
    },
  };
}
