import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  CRC32_AHEAD_SLOTS,
  Crc32Ahead,
  copyCrc32,
  crc32,
  crc32Implementation,
  zlibChecksum,
  zlibCopyChecksum,
} from '../src/index.js';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const addonPath = join(packageDir, 'build/Release/vfiokit_crc32.node');
const addon = createRequire(import.meta.url)(addonPath) as {
  crc32(b: Uint8Array, seed: number): number;
  copyCrc32(t: Uint8Array, o: number, b: Uint8Array, seed: number): number;
  accelerated: boolean;
  wide: boolean;
  Ahead: new (
    memory: Uint8Array,
  ) => { submit(offset: number, length: number): void; next(): number; close(): void };
};

/** Random bytes at a random offset of a larger buffer (the kernel must not assume alignment). */
const viewArb = fc
  .tuple(fc.uint8Array({ minLength: 0, maxLength: 5000 }), fc.nat(63), fc.nat(63))
  .map(([bytes, before, after]) => {
    const whole = new Uint8Array(before + bytes.length + after);
    whole.set(bytes, before);
    return whole.subarray(before, before + bytes.length);
  });
const seedArb = fc.nat(0xffffffff);

describe('crc32', () => {
  it('is zlib CRC32: the check value of "123456789" and of nothing', () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    const long = new Uint8Array(1 << 20).map((_, i) => (i * 131) & 0xff);
    expect(crc32(long)).toBe(zlibChecksum(long));
  });

  it('reports the kernel it uses', () => {
    expect(crc32Implementation).toMatch(/^native (AVX-512 VPCLMULQDQ|PCLMULQDQ)$|^node:zlib \(.+\)$/);
    if (addon.accelerated) expect(crc32Implementation).toMatch(/^native/);
  });

  it('native crc32 equals node:zlib for random bytes, lengths, offsets and seeds (property)', () => {
    fc.assert(
      fc.property(viewArb, seedArb, (bytes, seed) => {
        expect(addon.crc32(bytes, seed)).toBe(zlibChecksum(bytes, seed));
        expect(crc32(bytes, seed)).toBe(zlibChecksum(bytes, seed));
      }),
      { numRuns: 500 },
    );
  });

  it('native copyCrc32 copies exactly and equals node:zlib, touching nothing around the target (property)', () => {
    fc.assert(
      fc.property(viewArb, seedArb, fc.nat(100), fc.nat(100), (bytes, seed, at, spare) => {
        const target = new Uint8Array(at + bytes.length + spare).fill(0xa5);
        const want = new Uint8Array(target);
        want.set(bytes, at);
        expect(addon.copyCrc32(target, at, bytes, seed)).toBe(zlibChecksum(bytes, seed));
        expect(Buffer.compare(target, want)).toBe(0);
        const viaApi = new Uint8Array(target.length).fill(0xa5);
        expect(copyCrc32(viaApi, at, bytes, seed)).toBe(zlibChecksum(bytes, seed));
        expect(Buffer.compare(viaApi, want)).toBe(0);
        const viaZlib = new Uint8Array(target.length).fill(0xa5);
        expect(zlibCopyChecksum(viaZlib, at, bytes, seed)).toBe(zlibChecksum(bytes, seed));
        expect(Buffer.compare(viaZlib, want)).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('continues across pieces: crc32(b, crc32(a)) === crc32(a + b) (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 20000 }),
        fc.array(fc.nat(20000), { maxLength: 6 }),
        (bytes, cuts) => {
          const points = [0, ...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length];
          let crc = 0;
          let copied = 0;
          const target = new Uint8Array(bytes.length);
          for (let i = 0; i + 1 < points.length; i++) {
            const piece = bytes.subarray(points[i], points[i + 1]);
            crc = i % 2 ? crc32(piece, crc) : copyCrc32(target, points[i], piece, crc);
            copied += piece.length;
          }
          expect(copied).toBe(bytes.length);
          expect(crc).toBe(zlibChecksum(bytes));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('leaves the seed as it is for no bytes, on every path, where node:zlib alone answers 0', () => {
    // an empty view of a zero-length buffer whose store exists: node:zlib passes zlib a null pointer
    const empty = new Uint8Array(0);
    void empty.buffer;
    expect(zlibCrc32(empty, 12345)).toBe(0);
    for (const bytes of [empty, new Uint8Array(8).subarray(3, 3), new Uint8Array(0)]) {
      expect(crc32(bytes, 12345)).toBe(12345);
      expect(zlibChecksum(bytes, 12345)).toBe(12345);
      expect(addon.crc32(bytes, 12345)).toBe(12345);
      expect(copyCrc32(new Uint8Array(4), 4, bytes, 12345)).toBe(12345);
      expect(zlibCopyChecksum(new Uint8Array(4), 4, bytes, 12345)).toBe(12345);
      expect(addon.copyCrc32(new Uint8Array(4), 4, bytes, 12345)).toBe(12345);
    }
    // so a stream continued over an empty piece keeps its check
    const a = new Uint8Array(1000).fill(7);
    expect(crc32(a, crc32(empty, crc32(a)))).toBe(zlibChecksum(new Uint8Array(2000).fill(7)));
  });

  it('checks then moves overlapping views of one buffer, as Uint8Array.set does', () => {
    for (const shift of [-4096, -17, -1, 1, 16, 300, 4096]) {
      const buf = new Uint8Array(20000).map((_, i) => (i * 7 + 3) & 0xff);
      const want = new Uint8Array(buf);
      const src = buf.subarray(5000, 15000);
      const crcWant = zlibChecksum(src);
      want.set(new Uint8Array(src), 5000 + shift);
      expect(copyCrc32(buf, 5000 + shift, src)).toBe(crcWant);
      expect(Buffer.compare(buf, want)).toBe(0);
    }
  });

  it('refuses bytes that do not fit, bad offsets and bad seeds before touching the target', () => {
    const target = new Uint8Array(1000);
    const bytes = new Uint8Array(600).fill(1);
    expect(() => copyCrc32(target, 401, bytes)).toThrow(
      /600 bytes do not fit at offset 401 of a 1000-byte target/,
    );
    expect(() => copyCrc32(target, -1, bytes)).toThrow(RangeError);
    expect(() => copyCrc32(target, 1.5, bytes)).toThrow(RangeError);
    expect(() => crc32(bytes, -1)).toThrow(/unsigned 32-bit integer/);
    expect(() => crc32(bytes, 2 ** 32)).toThrow(/unsigned 32-bit integer/);
    expect(() => crc32(bytes.subarray(0, 10), -1)).toThrow(/unsigned 32-bit integer/);
    expect(() => copyCrc32(target, 0, bytes, Number.NaN)).toThrow(/unsigned 32-bit integer/);
    expect(target.every((b) => b === 0)).toBe(true);
    // the addon itself refuses too (a caller that skips the checks cannot write out of bounds)
    expect(() => addon.copyCrc32(target, 401, bytes, 0)).toThrow(/do not fit/);
    expect(() => addon.copyCrc32(target, 0, new Uint16Array(4) as unknown as Uint8Array, 0)).toThrow(
      /Uint8Array/,
    );
    expect(() => addon.crc32('text' as unknown as Uint8Array, 0)).toThrow(/Uint8Array/);
  });

  it('every kernel of this CPU equals node:zlib (a child process per kernel choice)', () => {
    const script = `
      const { crc32 } = require('node:zlib');
      const a = require(${JSON.stringify(addonPath)});
      let x = 12345;
      const rnd = (n) => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x % n; };
      let bad = 0;
      // one pool of random bytes; each case copies a random stretch of it (a byte-by-byte fill of
      // every case made this test take most of a minute on a loaded machine)
      const pool = Buffer.alloc(1 << 18); for (let j = 0; j < pool.length; j++) pool[j] = rnd(256);
      for (let i = 0; i < 3000; i++) {
        const n = rnd(i < 2000 ? 600 : 70000), off = rnd(64), at = rnd(64), seed = (rnd(65536) * 65536 + rnd(65536)) >>> 0;
        const from = rnd(pool.length - (n + off));
        const buf = Buffer.from(pool.subarray(from, from + n + off));
        const v = buf.subarray(off);
        const t = new Uint8Array(n + at);
        const want = crc32(v, seed) >>> 0;
        if (a.crc32(v, seed) !== want || a.copyCrc32(t, at, v, seed) !== want || Buffer.compare(t.subarray(at), v) !== 0) bad++;
      }
      // 4 MiB into a 64-byte-aligned target: the non-temporal path
      const big = Buffer.alloc(4 << 20); for (let j = 0; j < big.length; j += 61) big[j] = j & 0xff;
      const dst = new Uint8Array(4 << 20);
      if (a.copyCrc32(dst, 0, big, 7) !== (crc32(big, 7) >>> 0) || Buffer.compare(dst, big) !== 0) bad++;
      // the same off a 64-byte line, from an odd source offset: a short head, then the non-temporal path
      for (const at of [1, 32, 63]) {
        const src = big.subarray(5, big.length - 64);
        const off = new Uint8Array((4 << 20) + 64).fill(0xa5);
        if (a.copyCrc32(off, at, src, 9) !== (crc32(src, 9) >>> 0) || Buffer.compare(off.subarray(at, at + src.length), src) !== 0) bad++;
        if (off.subarray(0, at).some((b) => b !== 0xa5) || off.subarray(at + src.length).some((b) => b !== 0xa5)) bad++;
      }
      console.log(JSON.stringify({ bad, accelerated: a.accelerated, wide: a.wide }));`;
    for (const choice of ['', 'pclmul']) {
      const run = spawnSync(process.execPath, ['-e', script], {
        env: { ...process.env, VFIOKIT_CRC32: choice },
        encoding: 'utf8',
      });
      expect(run.status, run.stderr).toBe(0);
      const result = JSON.parse(run.stdout);
      expect(result.bad).toBe(0);
      if (choice === 'pclmul') expect(result.wide).toBe(false);
    }
  });

  it("falls back to node:zlib when told to (VFIOKIT_CRC32=zlib): node:zlib's numbers for random lengths, alignments and seeds (property)", async () => {
    const before = process.env.VFIOKIT_CRC32;
    process.env.VFIOKIT_CRC32 = 'zlib';
    try {
      vi.resetModules();
      const fallback = await import('../src/index.js');
      expect(fallback.crc32Implementation).toBe('node:zlib (VFIOKIT_CRC32=zlib)');
      fc.assert(
        fc.property(viewArb, seedArb, fc.nat(100), fc.nat(100), (bytes, seed, at, spare) => {
          // node:zlib itself, except that no bytes keep the seed (see the test below)
          const want = bytes.length === 0 ? seed : zlibCrc32(bytes, seed) >>> 0;
          expect(fallback.crc32(bytes, seed)).toBe(want);
          const target = new Uint8Array(at + bytes.length + spare).fill(0x5a);
          const expected = new Uint8Array(target);
          expected.set(bytes, at);
          expect(fallback.copyCrc32(target, at, bytes, seed)).toBe(want);
          expect(Buffer.compare(target, expected)).toBe(0);
        }),
        { numRuns: 300 },
      );
      // long enough for every native kernel width, at an odd offset
      const bytes = new Uint8Array(70001).map((_, i) => (i * 37) & 0xff).subarray(1);
      const target = new Uint8Array(70010);
      expect(fallback.copyCrc32(target, 10, bytes, 99)).toBe(zlibCrc32(bytes, 99) >>> 0);
      expect(Buffer.compare(target.subarray(10), bytes)).toBe(0);
      expect(() => fallback.copyCrc32(target, 11, bytes)).toThrow(/do not fit/);
      expect(() => fallback.crc32(bytes, -1)).toThrow(/unsigned 32-bit integer/);
      expect(target.subarray(0, 10).every((b) => b === 0)).toBe(true);
      // the checker ahead computes the same numbers, in order, and refuses the same misuse
      const ahead = new fallback.Crc32Ahead(bytes);
      for (const [at, n] of [
        [0, 70000],
        [0, 0],
        [9, 256],
        [69999, 1],
      ])
        ahead.submit(at, n);
      expect(ahead.pending).toBe(4);
      for (const [at, n] of [
        [0, 70000],
        [0, 0],
        [9, 256],
        [69999, 1],
      ])
        expect(ahead.next()).toBe(zlibChecksum(bytes.subarray(at, at + n)));
      expect(() => ahead.next()).toThrow(/no range waiting/);
      expect(() => ahead.submit(1, 70000)).toThrow(/does not lie in/);
      ahead.submit(0, 10);
      ahead.close();
      expect(() => ahead.next()).toThrow(/closed/);
    } finally {
      if (before === undefined) delete process.env.VFIOKIT_CRC32;
      else process.env.VFIOKIT_CRC32 = before;
      vi.resetModules();
    }
  });

  it('falls back to node:zlib when the addon cannot be loaded, and says why', async () => {
    vi.resetModules();
    vi.doMock('node:module', () => ({
      createRequire: () => () => {
        throw new Error("Cannot find module '../build/Release/vfiokit_crc32.node'\nRequire stack: ...");
      },
    }));
    try {
      const fallback = await import('../src/index.js');
      expect(fallback.crc32Implementation).toBe(
        "node:zlib (the addon is not built (Cannot find module '../build/Release/vfiokit_crc32.node'))",
      );
      const bytes = new Uint8Array(5003).map((_, i) => (i * 13) & 0xff).subarray(3);
      const target = new Uint8Array(5007);
      expect(fallback.crc32(bytes, 5)).toBe(zlibCrc32(bytes, 5) >>> 0);
      expect(fallback.copyCrc32(target, 7, bytes, 5)).toBe(zlibCrc32(bytes, 5) >>> 0);
      expect(Buffer.compare(target.subarray(7), bytes)).toBe(0);
    } finally {
      vi.doUnmock('node:module');
      vi.resetModules();
    }
  });
});

/** A buffer of random-looking bytes (a multiplicative hash of the index). */
const filled = (n: number) => new Uint8Array(n).map((_, i) => Math.imul(i, 2654435761) >>> 24);

describe('Crc32Ahead', () => {
  const memory = filled(1 << 20);
  const rangeArb = fc
    .tuple(fc.nat(memory.length), fc.nat(memory.length))
    .map(([a, b]) => [Math.min(a, b), Math.abs(a - b)] as const);

  it("gives node:zlib's CRC32 of every range, in the order submitted, however submits and takes interleave (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(rangeArb, fc.constant('take' as const)), { maxLength: 40 }), (ops) => {
        const ahead = new Crc32Ahead(memory);
        const want: number[] = [];
        try {
          for (const op of ops) {
            if (op === 'take') {
              if (want.length === 0) continue;
              expect(ahead.next()).toBe(want.shift());
            } else {
              ahead.submit(op[0], op[1]);
              want.push(zlibChecksum(memory.subarray(op[0], op[0] + op[1])));
            }
            expect(ahead.pending).toBe(want.length);
          }
          while (want.length > 0) expect(ahead.next()).toBe(want.shift());
        } finally {
          ahead.close();
        }
      }),
      { numRuns: 100 },
    );
  });

  it(`holds ${CRC32_AHEAD_SLOTS} ranges at once and refuses one more until the oldest is taken`, () => {
    const ahead = new Crc32Ahead(memory);
    for (let i = 0; i < CRC32_AHEAD_SLOTS; i++) ahead.submit(i * 1000, 4096);
    expect(() => ahead.submit(0, 1)).toThrow(/64 ranges wait already .* take the oldest with next\(\)/);
    expect(ahead.next()).toBe(zlibChecksum(memory.subarray(0, 4096)));
    ahead.submit(5, 7);
    for (let i = 1; i < CRC32_AHEAD_SLOTS; i++)
      expect(ahead.next()).toBe(zlibChecksum(memory.subarray(i * 1000, i * 1000 + 4096)));
    expect(ahead.next()).toBe(zlibChecksum(memory.subarray(5, 12)));
    ahead.close();
  });

  it('refuses ranges outside its memory, a take with nothing waiting, and any use after close', () => {
    const ahead = new Crc32Ahead(memory.subarray(100, 200));
    expect(() => ahead.submit(50, 51)).toThrow(
      /range of 51 bytes at offset 50 does not lie in the checker's 100-byte memory/,
    );
    expect(() => ahead.submit(-1, 1)).toThrow(RangeError);
    expect(() => ahead.submit(0.5, 1)).toThrow(RangeError);
    expect(() => ahead.submit(0, Number.NaN)).toThrow(RangeError);
    expect(() => ahead.next()).toThrow(/no range waiting; submit\(\) one/);
    // offsets are the view's, not the buffer's
    ahead.submit(0, 100);
    expect(ahead.next()).toBe(zlibChecksum(memory.subarray(100, 200)));
    ahead.submit(0, 100);
    ahead.close();
    ahead.close();
    expect(ahead.pending).toBe(0);
    expect(() => ahead.submit(0, 1)).toThrow(/Crc32Ahead.submit: the checker is closed/);
    expect(() => ahead.next()).toThrow(/Crc32Ahead.next: the checker is closed/);
    expect(() => new Crc32Ahead([1, 2, 3] as unknown as Uint8Array)).toThrow(/Uint8Array/);
  });

  it('the addon refuses the same misuse itself (a caller that skips the checks cannot read out of bounds)', () => {
    const ahead = new addon.Ahead(memory.subarray(0, 1000));
    expect(() => ahead.submit(999, 2)).toThrow(/does not lie in the memory/);
    expect(() => ahead.submit(-1, 2)).toThrow(/does not lie in the memory/);
    expect(() => ahead.submit('0' as unknown as number, 2)).toThrow(/must be numbers/);
    expect(() => ahead.next()).toThrow(/no range was submitted/);
    for (let i = 0; i < 64; i++) ahead.submit(i, 10);
    expect(() => ahead.submit(0, 1)).toThrow(/64 ranges wait already/);
    expect(ahead.next()).toBe(zlibChecksum(memory.subarray(0, 10)));
    ahead.close();
    expect(() => ahead.next()).toThrow(/closed/);
    expect(() => ahead.submit(0, 1)).toThrow(/closed/);
    expect(() => new addon.Ahead(new Uint16Array(4) as unknown as Uint8Array)).toThrow(/Uint8Array/);
  });

  it('close() drops the queued ranges and stops the thread mid-range instead of finishing the work', () => {
    const big = new Uint8Array(64 << 20).fill(0x5a);
    crc32(big); // the pages are touched once
    const t0 = performance.now();
    crc32(big);
    const once = performance.now() - t0;
    const ahead = new Crc32Ahead(big);
    for (let i = 0; i < CRC32_AHEAD_SLOTS; i++) ahead.submit(0, big.length);
    const t1 = performance.now();
    ahead.close();
    // 64 passes over 64 MiB were queued: finishing them would take about 64 x `once`; the bound
    // leaves room for a loaded machine to deschedule the thread before it sees the stop
    expect(performance.now() - t1).toBeLessThan(Math.max(16 * once, 60));
    expect(() => ahead.next()).toThrow(/closed/);
  });

  it('many checkers at once over different memories each give their own ranges', () => {
    const memories = Array.from({ length: 12 }, (_, k) => filled(65536 + k * 4099).subarray(k));
    const checkers = memories.map((m) => new Crc32Ahead(m));
    for (let round = 0; round < 5; round++)
      for (const [k, c] of checkers.entries()) c.submit(round * 7, memories[k].length - round * 1000);
    for (let round = 0; round < 5; round++)
      for (const [k, c] of checkers.entries())
        expect(c.next()).toBe(
          zlibChecksum(memories[k].subarray(round * 7, round * 7 + memories[k].length - round * 1000)),
        );
    for (const c of checkers) c.close();
  });

  it('a checker dropped without close() is stopped when collected, and the process exits cleanly', () => {
    const script = `
      const a = require(${JSON.stringify(addonPath)});
      const { crc32 } = require('node:zlib');
      const m = new Uint8Array(8 << 20).fill(7);
      let bad = 0;
      for (let i = 0; i < 50; i++) {
        const c = new a.Ahead(m);
        for (let j = 0; j < 8; j++) c.submit(j << 20, 1 << 20);
        if (c.next() !== (crc32(m.subarray(0, 1 << 20)) >>> 0)) bad++;
      }
      globalThis.gc();
      // one more left open with work queued at exit
      const last = new a.Ahead(m);
      for (let j = 0; j < 8; j++) last.submit(0, 8 << 20);
      console.log(JSON.stringify({ bad }));`;
    const run = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).bad).toBe(0);
  });
});
