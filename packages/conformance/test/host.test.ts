import { VfioError } from '@vfiokit/core';
import { describe, expect, it } from 'vitest';
import { createFakeClock, createRecordingLogger, createTestHost } from '../src/index.js';

describe('createTestHost', () => {
  it('maps guest memory at IOVA 0 for device DMA', () => {
    const host = createTestHost({ memorySize: 8192 });
    host.dma.write(100, new Uint8Array([1, 2, 3]));
    expect([...host.memory.bytes.subarray(100, 103)]).toEqual([1, 2, 3]);
    const dst = new Uint8Array(3);
    host.dma.read(100, dst);
    expect([...dst]).toEqual([1, 2, 3]);
  });

  it('refuses DMA outside guest memory with EFAULT', () => {
    const host = createTestHost({ memorySize: 4096 });
    expect(() => host.dma.read(4090, new Uint8Array(8))).toThrow(VfioError);
    expect(() => host.dma.write(4096, new Uint8Array(1))).toThrow(/^EFAULT/);
  });

  it('hands out counting eventfds and resolves only its own', () => {
    const host = createTestHost();
    const fd = host.createEventfd();
    const t = host.resolveEventfd(fd);
    t.signal();
    t.signal();
    expect(host.eventfd(fd)?.count).toBe(2);
    t.release?.();
    expect(host.eventfd(fd)?.released).toBe(true);
    expect(() => host.resolveEventfd(3)).toThrow(/EBADF/);
    expect(host.createEventfd()).not.toBe(fd);
  });

  it('wires DMA logging to its dirty tracker', () => {
    const host = createTestHost({ memorySize: 16384 });
    host.dmaLogging?.start(4096, [{ iova: 0, length: 16384 }]);
    host.dma.write(5000, new Uint8Array([9]));
    const bitmap = host.dmaLogging?.report(0, 16384, 4096);
    expect(bitmap?.[0]).toBe(0b10);
  });
});

describe('createFakeClock', () => {
  it('runs scheduled callbacks in time order only when advanced', () => {
    const clock = createFakeClock(1000);
    const seen: string[] = [];
    clock.schedule(50, () => seen.push('b'));
    clock.schedule(10, () => seen.push('a'));
    const cancel = clock.schedule(20, () => seen.push('cancelled'));
    cancel();
    expect(seen).toEqual([]);
    clock.advance(30);
    expect(seen).toEqual(['a']);
    expect(clock.now()).toBe(1030);
    clock.advance(100);
    expect(seen).toEqual(['a', 'b']);
    expect(clock.pending).toBe(0);
  });

  it('runs a callback scheduled by a callback when it falls inside the advance', () => {
    const clock = createFakeClock();
    const seen: number[] = [];
    clock.schedule(10, () => {
      seen.push(clock.now());
      clock.schedule(10, () => seen.push(clock.now()));
    });
    clock.advance(25);
    expect(seen).toEqual([10, 20]);
    expect(clock.now()).toBe(25);
  });
});

describe('createRecordingLogger', () => {
  it('keeps every message with its level', () => {
    const log = createRecordingLogger();
    log.warn('w');
    log.error('e');
    expect(log.entries).toEqual([
      { level: 'warn', message: 'w' },
      { level: 'error', message: 'e' },
    ]);
    log.clear();
    expect(log.entries).toEqual([]);
  });
});
