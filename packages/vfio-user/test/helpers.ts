import { VfioError } from '@vfiokit/core';
import { decodeHeader, type MessageHeader } from '../src/protocol/header.js';

/** `bytes` as a view in the middle of a larger buffer filled with poison on both sides. */
export function embed(bytes: Uint8Array, poison = 0xa5): Uint8Array {
  const buf = new Uint8Array(bytes.length + 64).fill(poison);
  buf.set(bytes, 32);
  return buf.subarray(32, 32 + bytes.length);
}

/** Split a whole message into its header and an embedded payload. */
export function split(message: Uint8Array): { header: MessageHeader; payload: Uint8Array } {
  return { header: decodeHeader(message), payload: embed(message.subarray(16)) };
}

/** Run `fn`; it may return or throw a VfioError, nothing else. */
export function onlyVfioError(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof VfioError))
      throw new Error(`threw ${String(err)} instead of a VfioError`, { cause: err });
    if (!/^E[A-Z0-9]+$/.test(err.code) || err.problem.length < 10)
      throw new Error(`a VfioError without a usable sentence: ${err.message}`);
  }
}

export function expectVfioError(fn: () => unknown, code: string, pattern?: RegExp): VfioError {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof VfioError)) throw new Error(`threw ${String(err)} instead of a VfioError`);
    if (err.code !== code) throw new Error(`expected ${code}, got ${err.code}: ${err.message}`);
    if (pattern && !pattern.test(err.message))
      throw new Error(`message ${JSON.stringify(err.message)} does not match ${pattern}`);
    return err;
  }
  throw new Error(`expected a VfioError ${code}, but nothing was thrown`);
}

/** Wait until `cond()` holds, polling the event loop, at most `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
