/**
 * The handshake between a client device (main thread) and the I/O worker that owns its socket:
 * one Int32Array of control words and one byte buffer, both SharedArrayBuffers. The main thread
 * writes a request and waits on STATE with Atomics.wait; the worker, whose event loop never
 * blocks (it watches STATE with Atomics.waitAsync), sends it, and writes the reply back.
 */

/** Indexes in the control Int32Array. */
export const STATE = 0;
export const LEN = 1;
export const NFDS = 2;
export const ERRNO = 3;
export const NOREPLY = 4;
/** 1 while guest memory is DMA_MAPped: the worker answers the server's DMA_READ/WRITE only then. */
export const MAPPED = 5;
export const FDS_AT = 8;
/** SCM_MAX_FD (include/net/scm.h): the most fds one message carries either way. */
export const MAX_CHANNEL_FDS = 253;
export const CONTROL_WORDS = FDS_AT + MAX_CHANNEL_FDS;

/** STATE values. */
export const CONNECTING = 0;
export const IDLE = 1;
export const REQUEST = 2;
export const REPLY = 3;
export const CLOSED = 4;

/** Guest memory as the worker can reach it: a SharedArrayBuffer, or an fd it maps itself. */
export interface GuestMemoryRef {
  readonly buffer?: SharedArrayBuffer;
  readonly byteOffset?: number;
  readonly fd?: number;
  readonly size: number;
}

export interface OpenChannel {
  readonly type: 'open';
  readonly id: number;
  readonly path: string;
  readonly control: SharedArrayBuffer;
  readonly data: SharedArrayBuffer;
  readonly guest?: GuestMemoryRef;
  readonly dmaLayout: 'spec' | 'qemu';
  readonly maxDataXferSize: number;
  readonly connectTimeoutMs: number;
}

export interface CloseChannel {
  readonly type: 'close';
  readonly id: number;
}

export type ChannelMessage = OpenChannel | CloseChannel;

type WaitAsyncResult =
  | { readonly async: false; readonly value: 'not-equal' | 'timed-out' }
  | { readonly async: true; readonly value: Promise<'ok' | 'timed-out'> };

/** Atomics.waitAsync (ES2024; in Node since 16), typed here because the project's lib is older. */
export function waitAsync(
  array: Int32Array,
  index: number,
  value: number,
  timeoutMs?: number,
): WaitAsyncResult {
  return (
    Atomics as unknown as {
      waitAsync(a: Int32Array, i: number, v: number, t?: number): WaitAsyncResult;
    }
  ).waitAsync(array, index, value, timeoutMs);
}
