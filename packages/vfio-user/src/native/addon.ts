/**
 * The native addon (native/: its module table in vfiokit_native.c, its parts beside it), loaded
 * once. Node has no API for memfd, mmap, eventfd or SCM_RIGHTS; this is the only place that
 * touches the addon directly.
 */
import { createRequire } from 'node:module';
import { type ErrnoName, VfioError } from '@vfiokit/core';
import { ERRNO } from '@vfiokit/core/abi';

/** The C functions, as they are exported. Descriptors are plain numbers. */
export interface NativeAddon {
  memfdCreate(name: string, size: number): number;
  mmap(fd: number, size: number, offset?: number): ArrayBuffer;
  close(fd: number): void;
  dup(fd: number): number;
  setNonBlocking(fd: number): void;
  fstatSize(fd: number): number;
  punchHole(fd: number, offset: number, length: number): void;
  openFdCount(): number;
  eventfdCreate(initval: number, semaphore?: boolean): number;
  eventfdWrite(fd: number, value: number): boolean;
  eventfdRead(fd: number): number | null;
  unixListen(path: string, backlog?: number): number;
  unixConnect(path: string): number;
  unixAccept(fd: number): number;
  socketPair(): [number, number];
  sendMsg(fd: number, bytes: Uint8Array, fds?: readonly number[]): number;
  /**
   * One recvmsg into `buffer`; fdsOut gets [count, flags (RECV_FDS_TRUNCATED, RECV_POLLED),
   * ...fds]. -1 when it would block, or with `wait` (a socket made blocking by
   * setReceiveTimeout) when its timeout ended or a signal came; 0 when the peer closed. With
   * `wait` and a `waiter`, it polls first for as long as the waiter's adaptive window says.
   */
  recvMsg(fd: number, buffer: Uint8Array, fdsOut: Int32Array, wait?: boolean, waiter?: Waiter): number;
  /** The adaptive polling state of one caller's waits for replies (recvMsg's `waiter`). */
  waiterCreate(): Waiter;
  /** How long the waiter's next wait polls before it blocks, in ns. */
  waiterWindow(waiter: Waiter): number;
  /** Clear O_NONBLOCK and set SO_RCVTIMEO to `ms` (> 0): how long recvMsg's `wait` waits. */
  setReceiveTimeout(fd: number, ms: number): void;
  /**
   * Watch fd with uv_poll. When `hold` > 0 and the callback returns true, the callback waits in
   * place for fd to be readable again and is called again, at most `hold` times per readiness
   * event, as long as the loop would wait anyway (its timers, immediates and other handles end
   * the wait).
   */
  pollStart(
    fd: number,
    events: number,
    callback: (status: number, events: number) => unknown,
    hold?: number,
  ): PollHandle;
  pollUpdate(handle: PollHandle, events: number): void;
  pollStop(handle: PollHandle): void;
  /** Whether the handle keeps the event loop alive (uv_ref / uv_unref). */
  pollRef(handle: PollHandle, ref: boolean): void;
  /** How long the handle's next wait in place polls before it blocks, in ns (0: it blocks at once). */
  pollWindow(handle: PollHandle): number;
  /** Block in poll(2) for POLL_READABLE / POLL_WRITABLE; the ready ones, 0 on timeout or EINTR. */
  waitFd(fd: number, events: number, timeoutMs: number): number;
  /** CLOCK_MONOTONIC in ns into out[0], without allocating (Date.now() makes a heap number). */
  clockNs(out: Float64Array): void;
}

/**
 * Every function the TypeScript side calls. An addon built from older sources (a checkout that
 * pulled new C code but did not rebuild) lacks some; that is refused at load with the rebuild
 * command, rather than a TypeError at the first call.
 */
const FUNCTIONS = {
  memfdCreate: true,
  mmap: true,
  close: true,
  dup: true,
  setNonBlocking: true,
  fstatSize: true,
  punchHole: true,
  openFdCount: true,
  eventfdCreate: true,
  eventfdWrite: true,
  eventfdRead: true,
  unixListen: true,
  unixConnect: true,
  unixAccept: true,
  socketPair: true,
  sendMsg: true,
  recvMsg: true,
  waiterCreate: true,
  waiterWindow: true,
  setReceiveTimeout: true,
  pollStart: true,
  pollUpdate: true,
  pollStop: true,
  pollRef: true,
  pollWindow: true,
  waitFd: true,
  clockNs: true,
} satisfies Record<keyof NativeAddon, true>;

const REBUILD_HINT =
  'Run `pnpm install` at the repository root (it builds the addon with node-gyp), or `npx node-gyp rebuild --nodedir=/usr` in packages/vfio-user.';

/** The names of FUNCTIONS the loaded module does not export as functions. */
export function missingFunctions(module: object): string[] {
  return Object.keys(FUNCTIONS).filter(
    (name) => typeof (module as Record<string, unknown>)[name] !== 'function',
  );
}

/** An opaque uv_poll handle. */
export type PollHandle = { readonly __poll: unique symbol };
export type Waiter = { readonly __waiter: unique symbol };

/** recvMsg's flags in fdsOut[1] (native.h). */
export const RECV_FDS_TRUNCATED = 1;
export const RECV_POLLED = 2;

/** pollStart/pollUpdate event bits (the addon maps them to UV_READABLE / UV_WRITABLE). */
export const POLL_READABLE = 1;
export const POLL_WRITABLE = 2;
// uv.h: enum uv_poll_event
export const UV_READABLE = 1;
export const UV_WRITABLE = 2;
export const UV_DISCONNECT = 4;
/** Added to a pollStart callback's events when the call follows a wait in place (native IN_PLACE). */
export const POLL_IN_PLACE = 8;
/** Added besides POLL_IN_PLACE when the wait found the message while it polled (native POLLED). */
export const POLL_POLLED = 16;

/** Where the build puts the addon, relative to this file (src/native or dist/native). */
const ADDON_PATH = '../../build/Release/vfiokit_native.node';

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (cached) return cached;
  let loaded: object;
  try {
    loaded = createRequire(import.meta.url)(ADDON_PATH) as object;
  } catch (err) {
    throw new VfioError(
      'ENOSYS',
      `the native addon of @vfiokit/vfio-user could not be loaded from ${ADDON_PATH}.`,
      { hint: REBUILD_HINT, cause: err },
    );
  }
  const missing = missingFunctions(loaded);
  if (missing.length > 0) {
    throw new VfioError(
      'ENOSYS',
      `the native addon of @vfiokit/vfio-user at ${ADDON_PATH} was built from older sources: it lacks ${missing.join(', ')}.`,
      { hint: REBUILD_HINT },
    );
  }
  cached = loaded as NativeAddon;
  return cached;
}

interface SystemError extends Error {
  errno?: number;
  code?: string;
  syscall?: string;
}

/**
 * A failure of the addon as a VfioError. The errno keeps its name when @vfiokit/core knows it;
 * other errnos (EPIPE, ECONNREFUSED, EADDRINUSE...) become EIO and keep their name in the sentence.
 */
export function systemError(err: unknown, what: string, hint?: string): VfioError {
  if (err instanceof VfioError) return err;
  const e = err as SystemError;
  const code = typeof e?.code === 'string' && e.code in ERRNO ? (e.code as ErrnoName) : 'EIO';
  const detail = e instanceof Error ? e.message : String(err);
  return new VfioError(code, `${what}: ${detail}${code === 'EIO' && e?.code ? ` [${e.code}]` : ''}.`, {
    ...(hint ? { hint } : {}),
    cause: err,
  });
}

/** The errno name of a native failure (`EPIPE`, `EAGAIN`...), or undefined. */
export function systemCode(err: unknown): string | undefined {
  const e = err as SystemError;
  if (err instanceof VfioError) {
    const c = (err.cause as SystemError | undefined)?.code;
    return typeof c === 'string' ? c : err.code;
  }
  return typeof e?.code === 'string' ? e.code : undefined;
}
