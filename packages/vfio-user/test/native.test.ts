import { fstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missingFunctions } from '../src/native/addon.js';
import {
  allocateMemfdMemory,
  closeFd,
  closeFds,
  createMemfd,
  dupFd,
  Eventfd,
  fdSize,
  mapFd,
  native,
  openFdCount,
  UnixConnection,
  UnixListener,
} from '../src/native/index.js';
import { expectVfioError, waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'vfiokit-native-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('memfd and mmap', () => {
  it('maps one memfd twice and sees a write through one mapping in the other', () => {
    const before = openFdCount();
    const fd = createMemfd('shared', 8192);
    expect(fdSize(fd)).toBe(8192);
    const a = new Uint8Array(mapFd(fd, 8192));
    const b = new Uint8Array(mapFd(fd, 4096, 4096));
    a[4096 + 7] = 0x5a;
    expect(b[7]).toBe(0x5a);
    closeFd(fd);
    expect(a[4096 + 7]).toBe(0x5a); // the mapping outlives the descriptor
    expect(openFdCount()).toBe(before);
  });

  it('gives SharedMemory with an fd that another mapping shares, and closes once', () => {
    const mem = allocateMemfdMemory('bar0', 4096);
    expect(mem.size).toBe(4096);
    const other = new Uint8Array(mapFd(mem.fd, 4096));
    mem.bytes.set([1, 2, 3], 100);
    expect(Array.from(other.subarray(100, 103))).toEqual([1, 2, 3]);
    mem.close();
    mem.close();
  });

  it('discards a range: zero through every mapping, its pages freed, a partial page zeroed', () => {
    const mem = allocateMemfdMemory('discard', 4 * 4096);
    const other = new Uint8Array(mapFd(mem.fd, 4 * 4096));
    mem.bytes.fill(7);
    expect(fstatSync(mem.fd).blocks * 512).toBe(4 * 4096);
    mem.discard(4096, 2 * 4096 + 10);
    expect(fstatSync(mem.fd).blocks * 512).toBe(2 * 4096);
    expect(other[4095]).toBe(7);
    expect(other.subarray(4096, 3 * 4096 + 10).every((b) => b === 0)).toBe(true);
    expect(other[3 * 4096 + 10]).toBe(7);
    mem.discard(0, 0);
    expectVfioError(() => mem.discard(3 * 4096, 2 * 4096), 'EINVAL', /discard/);
    expectVfioError(() => mem.discard(-1, 1), 'EINVAL', /discard/);
    mem.close();
    expectVfioError(() => mem.discard(0, 4096), 'EBADF', /fallocate/);
  });

  it('reports bad descriptors, sizes and offsets as VfioErrors naming the syscall', () => {
    expectVfioError(() => mapFd(123456, 4096), 'EBADF', /mmap/);
    const fd = createMemfd('x', 4096);
    expectVfioError(() => mapFd(fd, 4096, 100), 'EINVAL', /page-aligned/);
    expectVfioError(() => mapFd(fd, 0), 'EINVAL', /size 0/);
    expectVfioError(() => createMemfd('x', -1), 'EINVAL');
    expectVfioError(() => allocateMemfdMemory('x', 1.5), 'EINVAL');
    closeFd(fd);
    expectVfioError(() => closeFd(fd), 'EBADF', /close/);
    expect(() => native().mmap('x' as unknown as number, 1)).toThrow(/fd must be a descriptor/);
  });

  it('duplicates a descriptor onto the same file', () => {
    const fd = createMemfd('dup', 4096);
    const d = dupFd(fd);
    expect(d).not.toBe(fd);
    new Uint8Array(mapFd(fd, 4096))[0] = 9;
    expect(new Uint8Array(mapFd(d, 4096))[0]).toBe(9);
    closeFds([fd, d]);
  });
});

describe('Eventfd', () => {
  it('accumulates signals and reads them back as one count, then nothing', () => {
    const e = new Eventfd();
    expect(e.read()).toBeUndefined();
    e.signal();
    e.signal(2);
    expect(e.read()).toBe(3);
    expect(e.read()).toBeUndefined();
    e.close();
    expectVfioError(() => e.signal(), 'EBADF');
  });

  it('wakes a waiter through the event loop when signalled, and times out otherwise', async () => {
    const e = new Eventfd();
    const p = e.wait(2000);
    setTimeout(() => e.signal(5), 5);
    expect(await p).toBe(5);
    await expect(e.wait(20)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    e.close();
  });
});

describe('UNIX sockets', () => {
  it('listens, accepts and passes bytes both ways', async () => {
    const path = join(dir, 'a.sock');
    const listener = UnixListener.listen(path);
    const accepted = listener.accept(2000);
    const client = await UnixConnection.connect(path, { timeoutMs: 2000 });
    const server = await accepted;
    const got: number[] = [];
    server.start({ onData: (c) => got.push(...c) });
    client.start({ onData: () => {} });
    expect(client.send(new Uint8Array([1, 2, 3]))).toBe(true);
    await waitFor(() => got.length === 3);
    expect(got).toEqual([1, 2, 3]);
    client.close();
    server.close();
    listener.close();
  });

  it('replaces a stale socket file but refuses a path where a server listens', async () => {
    const path = join(dir, 'stale.sock');
    const first = UnixListener.listen(path);
    expectVfioError(() => UnixListener.listen(path), 'EADDRINUSE', /a server is listening there/);
    // Close the fd but leave the file, as a crashed server would.
    closeFd(first.fd);
    const second = UnixListener.listen(path);
    second.close();
    writeFileSync(join(dir, 'plain'), 'x');
    expectVfioError(() => UnixListener.listen(join(dir, 'plain')), 'EADDRINUSE', /Address already in use/);
  });

  it('refuses to connect where nobody listens, and times out an accept', async () => {
    await expect(UnixConnection.connect(join(dir, 'nobody.sock'), { timeoutMs: 100 })).rejects.toMatchObject({
      code: 'ENOENT',
    });
    const l = UnixListener.listen(join(dir, 'lonely.sock'));
    await expect(l.accept(20)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    l.close();
  });

  it('carries fds with the bytes they were sent with, as SCM_RIGHTS', async () => {
    const [a, b] = UnixConnection.pair();
    const got: { bytes: number[]; fds: readonly number[] }[] = [];
    b.start({ onData: (c, fds) => got.push({ bytes: Array.from(c), fds }) });
    a.start({ onData: () => {} });
    const mem = allocateMemfdMemory('pass', 4096);
    a.send(new Uint8Array([7]), [mem.fd]);
    await waitFor(() => got.length === 1);
    expect(got[0].fds).toHaveLength(1);
    const view = new Uint8Array(mapFd(got[0].fds[0], 4096));
    mem.bytes[10] = 0x77;
    expect(view[10]).toBe(0x77);
    closeFds(got[0].fds);
    mem.close();
    a.close();
    b.close();
  });

  it('queues what the socket refuses and delivers all of it, in order, once the peer reads', async () => {
    const [a, b] = UnixConnection.pair({ receiveBufferSize: 4096 });
    let drained = 0;
    a.start({ onData: () => {}, onDrain: () => drained++ });
    const big = new Uint8Array(4 * 1024 * 1024).map((_, i) => i & 0xff);
    expect(a.send(big)).toBe(false); // a socketpair buffer is far below 4 MiB
    expect(a.queuedBytes).toBeGreaterThan(0);
    expect(a.send(new Uint8Array([0xee]))).toBe(false); // queued behind, never overtakes
    let received = 0;
    let inOrder = true;
    b.start({
      onData: (c) => {
        for (let i = 0; i < c.length; i++) {
          const want = received + i < big.length ? (received + i) & 0xff : 0xee;
          if (c[i] !== want) inOrder = false;
        }
        received += c.length;
      },
    });
    await waitFor(() => received === big.length + 1, 10000);
    expect(inOrder).toBe(true);
    expect(a.queuedBytes).toBe(0);
    expect(drained).toBe(1);
    a.close();
    b.close();
  });

  it('closes once with ECONNRESET when the peer goes away', async () => {
    const [a, b] = UnixConnection.pair();
    const reasons: unknown[] = [];
    a.start({ onData: () => {}, onClose: (r) => reasons.push(r) });
    b.close();
    await waitFor(() => reasons.length === 1);
    expect(reasons[0]).toMatchObject({ code: 'ECONNRESET' });
    a.close();
    expect(reasons).toHaveLength(1);
    expectVfioError(() => a.send(new Uint8Array(1)), 'ECONNRESET');
  });

  it("waits on its own thread in pump(): delivers what came, stops at the handler's word, times out", () => {
    const [a, b] = UnixConnection.pair({ ref: false });
    const got: number[] = [];
    b.start({ onData: (c) => got.push(...c) === 4 });
    a.start({ onData: () => {} });
    const t0 = performance.now();
    expect(b.pump(30)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    a.send(new Uint8Array([1, 2]));
    expect(b.pump(1000)).toBe(true);
    expect(got).toEqual([1, 2]);
    a.close();
    expect(b.pump(1000)).toBe(true);
    expect(b.open).toBe(false);
    b.close();
  });

  it('waits in one blocking recvmsg bounded by the receive timeout, and every other call stays non-blocking', () => {
    const [a, b] = UnixConnection.pair({ ref: false });
    const got: number[] = [];
    b.start({ onData: (c) => got.push(...c) === 6 });
    a.start({ onData: () => {} });
    b.setReceiveTimeout(40);
    const t0 = performance.now();
    expect(b.receiveWaiting()).toBe(false); // nothing came: the timeout ends the wait
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(35);
    expect(waited).toBeLessThan(2000);
    // The socket is blocking now, yet a plain receive and pump() still return at once: with a
    // 3 s receive timeout, a call that blocked would take 3 s, far past what a loaded machine's
    // scheduling adds to one that does not.
    b.setReceiveTimeout(3000);
    const t1 = performance.now();
    expect(native().recvMsg(b.fd, new Uint8Array(8), new Int32Array(4))).toBe(-1);
    expect(b.pump(0)).toBe(false);
    expect(performance.now() - t1).toBeLessThan(1500);
    a.send(new Uint8Array([1, 2]));
    expect(b.receiveWaiting()).toBe(true);
    expect(got).toEqual([1, 2]);
    // What came behind the first chunk is read on without waiting, up to the handler's word.
    a.send(new Uint8Array([3, 4]));
    a.send(new Uint8Array([5, 6]));
    expect(b.receiveWaiting()).toBe(true);
    expect(got).toEqual([1, 2, 3, 4, 5, 6]);
    a.close();
    expect(b.receiveWaiting()).toBe(true);
    expect(b.open).toBe(false);
    expect(b.receiveWaiting()).toBe(false);
    b.close();
    const [c, d] = native().socketPair();
    for (const bad of [0, -1, 'x', undefined])
      expect(() => native().setReceiveTimeout(c, bad as number)).toThrow(/setReceiveTimeout\(fd, ms\)/);
    expect(() => native().setReceiveTimeout(c, 0x7fffffff)).not.toThrow();
    closeFds([c, d]);
    expect(() => native().setReceiveTimeout(c, 10)).toThrow(/EBADF|bad file/i);
  });

  it('polls one descriptor in waitFd for reading and writing, and refuses bad arguments', () => {
    const [x, y] = native().socketPair();
    try {
      expect(native().waitFd(x, 1, 10)).toBe(0);
      expect(native().waitFd(x, 2, 10)).toBe(2);
      native().sendMsg(y, new Uint8Array([7]));
      expect(native().waitFd(x, 3, 10)).toBe(3);
      expect(() => native().waitFd(x, 1, -1)).toThrow(/timeoutMs/);
    } finally {
      closeFds([x, y]);
    }
    expect(() => native().waitFd(x, 1, 0)).toThrow(/poll failed: Bad file descriptor/);
  });

  it('reads CLOCK_MONOTONIC in ns into a Float64Array, and refuses anything else', () => {
    const out = new Float64Array(2);
    native().clockNs(out);
    const first = out[0];
    const ms = performance.now();
    while (performance.now() - ms < 3) {
      // spin 3 ms
    }
    native().clockNs(out);
    expect(Number.isInteger(first)).toBe(true);
    expect(out[0] - first).toBeGreaterThanOrEqual(3e6);
    expect(out[0] - first).toBeLessThan(60e9);
    expect(out[1]).toBe(0);
    for (const bad of [undefined, 5, new Float32Array(1), new Float64Array(0), new BigInt64Array(1)])
      expect(() => native().clockNs(bad as unknown as Float64Array)).toThrow(/clockNs\(out\)/);
  });

  it('connects synchronously, and refuses a path nobody serves with a VfioError', () => {
    const path = join(dir, 'sync.sock');
    const listener = UnixListener.listen(path);
    const c = UnixConnection.connectSync(path, { timeoutMs: 1000 });
    expect(c.open).toBe(true);
    c.close();
    listener.close();
    expectVfioError(() => UnixConnection.connectSync(join(dir, 'nobody.sock'), { timeoutMs: 100 }), 'ENOENT');
  });
});

describe('the addon against its sources', () => {
  it('exports every function the TypeScript side calls', () => {
    expect(missingFunctions(native())).toEqual([]);
  });

  it('names what an addon built from older sources lacks', () => {
    const { waitFd: _w, pollRef: _p, ...older } = native() as unknown as Record<string, unknown>;
    expect(missingFunctions(older)).toEqual(['pollRef', 'waitFd']);
  });
});
