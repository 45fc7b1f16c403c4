import { describe, expect, it } from 'vitest';
import { VfioError } from '../errors.js';
import { allocateSharedMemory, wrapMemory } from './shared-memory.js';

describe('allocateSharedMemory', () => {
  it('rounds up to whole pages, zeroes the memory and backs it with a SharedArrayBuffer', () => {
    const m = allocateSharedMemory(5000);
    expect(m.size).toBe(8192);
    expect(m.bytes.length).toBe(8192);
    expect(m.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(m.bytes.every((b) => b === 0)).toBe(true);
    expect(m.fd).toBeUndefined();
    expect(allocateSharedMemory(4096).size).toBe(4096);
  });

  it('refuses sizes that are not positive whole numbers with EINVAL', () => {
    for (const size of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => allocateSharedMemory(size)).toThrow(VfioError);
      try {
        allocateSharedMemory(size);
      } catch (err) {
        expect((err as VfioError).code).toBe('EINVAL');
      }
    }
  });

  it('answers ENOMEM when the memory cannot be had', () => {
    expect(() => allocateSharedMemory(2 ** 52)).toThrow(/ENOMEM/);
  });
});

describe('wrapMemory', () => {
  it('wraps bytes without copying and keeps the fd', () => {
    const bytes = new Uint8Array(100);
    const m = wrapMemory(bytes, 7);
    expect(m.bytes).toBe(bytes);
    expect(m.size).toBe(100);
    expect(m.fd).toBe(7);
    expect('fd' in wrapMemory(bytes)).toBe(false);
  });

  it('refuses a bad fd with EBADF and non-bytes with EINVAL', () => {
    expect(() => wrapMemory(new Uint8Array(1), -1)).toThrow(/EBADF/);
    expect(() => wrapMemory(new Uint8Array(1), 1.5)).toThrow(/EBADF/);
    expect(() => wrapMemory([1, 2] as unknown as Uint8Array)).toThrow(/EINVAL/);
  });
});
