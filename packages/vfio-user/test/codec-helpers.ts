/**
 * What the codec tests (codec-*.test.ts) share: fast-check arbitraries for the header's msg id and
 * the u32 and u64 fields, and a round trip through a whole message that checks its header.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { split } from './helpers.js';

export const msgId = fc.integer({ min: 0, max: 0xffff });
export const u32 = fc.integer({ min: 0, max: 0xffffffff });
export const u64 = fc.maxSafeNat();
export const bytes = (max: number) => fc.uint8Array({ maxLength: max });

export function roundTrip<T>(encoded: Uint8Array, command: number, decode: (payload: Uint8Array) => T): T {
  const { header, payload } = split(encoded);
  expect(header.command).toBe(command);
  expect(header.size).toBe(encoded.length);
  return decode(payload);
}
