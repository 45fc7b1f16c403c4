/**
 * What the parts of a session (dma.ts, regions.ts, irqs.ts, features.ts) share: the device file
 * of the session, the limits both sides announced, and the one way a command becomes an ioctl.
 */
import type { Logger } from '@vfiokit/core';
import { PAGE_SIZE, VfioError } from '@vfiokit/core';
import type { DeviceFile } from '@vfiokit/core/host';
import type { Limits } from '../protocol/header.js';

/** A reply and the fds it carries. */
export interface Reply {
  readonly bytes: Uint8Array;
  readonly fds?: readonly number[];
}

export interface SessionContext {
  readonly name: string;
  readonly log: Logger;
  /** What this server announced and enforces. */
  readonly limits: Limits;
  /** What the client announced in VERSION (its defaults before). */
  clientLimits(): Limits;
  /** The session's device file; EBADF before VERSION opened it. */
  device(): DeviceFile;
}

/** The page size, under the name this module's users know (PAGE_SIZE in @vfiokit/core). */
export const PAGE = PAGE_SIZE;
export const NO_FDS: readonly number[] = Object.freeze([]);

/** An ioctl on the device file, its error thrown, its output returned. */
export function ioctl(file: DeviceFile, request: number, arg: Uint8Array): Uint8Array {
  const r = file.ioctl(request, arg);
  if (r.ret < 0) throw r.error ?? new VfioError('EIO', `ioctl 0x${request.toString(16)} failed.`);
  return r.out;
}
