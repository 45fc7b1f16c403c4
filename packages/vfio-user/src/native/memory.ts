/** File descriptors as values: memfds, mappings, duplicates, and the process's open-fd count. */
import { type SharedMemory, VfioError } from '@vfiokit/core';
import { native, systemError } from './addon.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function checkSize(what: string, size: number, min: number): void {
  if (!Number.isInteger(size) || size < min || size > MAX_SAFE)
    throw new VfioError('EINVAL', `${what}: size ${size} is not an integer of at least ${min}.`);
}

/** memfd_create(name, MFD_CLOEXEC) sized to `size` bytes; the caller closes the descriptor. */
export function createMemfd(name: string, size: number): number {
  checkSize(`createMemfd(${JSON.stringify(name)})`, size, 0);
  try {
    return native().memfdCreate(name, size);
  } catch (err) {
    throw systemError(err, `creating memfd ${JSON.stringify(name)} of ${size} bytes failed`);
  }
}

/**
 * mmap(fd, size, offset) shared and read/write, as an ArrayBuffer; it is unmapped when the
 * ArrayBuffer is collected. The descriptor may be closed right after: the mapping keeps the memory.
 */
export function mapFd(fd: number, size: number, offset = 0): ArrayBuffer {
  checkSize(`mapFd(fd ${fd})`, size, 1);
  try {
    return native().mmap(fd, size, offset);
  } catch (err) {
    throw systemError(
      err,
      `mapping ${size} bytes at offset ${offset} of fd ${fd} failed`,
      'The offset must be page-aligned and the file large enough.',
    );
  }
}

export function closeFd(fd: number): void {
  try {
    native().close(fd);
  } catch (err) {
    throw systemError(err, `closing fd ${fd} failed`);
  }
}

/** Close every descriptor, ignoring failures (cleanup paths). */
export function closeFds(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      native().close(fd);
    } catch {
      // already closed: nothing left to release
    }
  }
}

/** A close-on-exec duplicate of `fd`. */
export function dupFd(fd: number): number {
  try {
    return native().dup(fd);
  } catch (err) {
    throw systemError(err, `duplicating fd ${fd} failed`);
  }
}

/** The size of the file behind `fd` (fstat st_size): how much of a received memfd may be mapped. */
export function fdSize(fd: number): number {
  try {
    return native().fstatSize(fd);
  } catch (err) {
    throw systemError(err, `fstat of fd ${fd} failed`);
  }
}

/**
 * Give `length` bytes at `offset` of the file behind `fd` back (fallocate PUNCH_HOLE): they read
 * as zero through every mapping, and whole pages among them hold no memory any more.
 */
export function punchHole(fd: number, offset: number, length: number): void {
  try {
    native().punchHole(fd, offset, length);
  } catch (err) {
    throw systemError(err, `discarding ${length} bytes at offset ${offset} of fd ${fd} failed`);
  }
}

/** How many descriptors this process has open (entries of /proc/self/fd): for leak tests. */
export function openFdCount(): number {
  return native().openFdCount();
}

/** SharedMemory backed by a memfd: `fd` travels in vfio-user replies; `close()` releases it. */
export interface MemfdMemory extends SharedMemory {
  readonly fd: number;
  /** fallocate(PUNCH_HOLE) over the range: zero through every mapping, its pages freed. */
  discard(offset: number, length: number): void;
  /** Close the descriptor. The mapping stays valid until `bytes` is collected. Idempotent. */
  close(): void;
}

export function allocateMemfdMemory(name: string, size: number): MemfdMemory {
  checkSize(`allocateMemfdMemory(${JSON.stringify(name)})`, size, 1);
  const fd = createMemfd(name, size);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(mapFd(fd, size));
  } catch (err) {
    closeFds([fd]);
    throw err;
  }
  let open = true;
  return {
    size,
    bytes,
    fd,
    discard(offset: number, length: number) {
      if (
        !Number.isSafeInteger(offset) ||
        !Number.isSafeInteger(length) ||
        offset < 0 ||
        length < 0 ||
        offset + length > size
      )
        throw new VfioError(
          'EINVAL',
          `cannot discard ${length} bytes at ${offset} of a memfd of ${size} bytes.`,
          {
            hint: 'Discard a range inside the memory.',
          },
        );
      punchHole(fd, offset, length);
    },
    close() {
      if (!open) return;
      open = false;
      closeFd(fd);
    },
  };
}
