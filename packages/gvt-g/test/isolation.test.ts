/**
 * Two vGPUs of one parent are isolated: what one guest does (register writes and reads, GGTT
 * entries, trapped and direct aperture accesses, fences, planes, resets) never changes the
 * other's registers, GGTT, fences, aperture slice, guest memory or interrupts, and neither can
 * reach the other's aperture bytes, not even through the fd vfio-user hands out for BAR2.
 *
 * The property is differential: one parent runs A's and B's operations interleaved, a second
 * parent runs only A's and a third only B's (each beside an idle twin, so the slices are the
 * same). A on the first must end exactly as A on the second, and B as B on the third.
 */
import { Buffer } from 'node:buffer';
import { fstatSync, readSync } from 'node:fs';
import { createFakeClock, createRecordingLogger } from '@vfiokit/conformance';
import { VfioError } from '@vfiokit/core';
import { allocateMemfdSharedMemory } from '@vfiokit/vfio-user';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createGvtParent,
  FENCE_REG_GEN6_BASE,
  GTT_PAGE_SIZE,
  GVT_GTT_START_OFFSET,
  type GvtParent,
  gpuAddress,
  MI_STORE_DATA_IMM,
  MI_USE_GGTT,
  MiB,
  PLANE_CTL_1_A,
  PLANE_STRIDE_1_A,
  PLANE_SURF_1_A,
  RING_CTL,
  RING_HEAD,
  RING_START,
  RING_TAIL,
  RING_VALID,
} from '../src/index.js';
import { mapGm, newParent, type OpenVgpu, openVgpu, UUID_A, UUID_B } from './helpers.js';

const TYPE = 'i915-GVTg_V5_8';

/** A marker no fresh memory holds: 8 bytes, then its owner's letter. */
const marker = (who: 'A' | 'B') => Buffer.from(`vfk-iso-${who}`);

describe('two vGPUs of one parent', () => {
  it('map only their own aperture slice: B’s slice is refused to A, and A’s memory holds none of B’s bytes', () => {
    const parent = newParent(512);
    const a = openVgpu(parent, TYPE, UUID_A);
    const b = openVgpu(parent, TYPE, UUID_B);
    const rA = a.vgpu.resources;
    const rB = b.vgpu.resources;
    expect(rA.low.base + rA.low.size <= rB.low.base || rB.low.base + rB.low.size <= rA.low.base).toBe(true);
    const mapB = b.file.mmap(b.offset(2) + rB.low.base, rB.low.size);
    mapB.memory.bytes.set(marker('B'), mapB.memoryOffset + 4096);
    for (const [offset, size] of [
      [rB.low.base, 4096],
      [rA.low.base + rA.low.size - 4096, 8192],
      [0, 4096],
    ]) {
      let err: unknown;
      try {
        a.file.mmap(a.offset(2) + offset, size);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(VfioError);
      expect((err as VfioError).code).toBe('EINVAL');
      expect((err as VfioError).message).toContain('is outside every mmap area');
    }
    const mapA = a.file.mmap(a.offset(2) + rA.low.base, rA.low.size);
    expect(mapA.memory === mapB.memory).toBe(false);
    expect(
      Buffer.from(mapA.memory.bytes.buffer, mapA.memory.bytes.byteOffset, mapA.memory.size).indexOf(
        marker('B'),
      ),
    ).toBe(-1);
    // Trapped: A's accesses at B's slice are refused, and B's marker is intact.
    expect(() => a.file.write(a.offset(2) + rB.low.base + 4096, new Uint8Array(8))).toThrow(
      /outside this vGPU's slice/,
    );
    expect(
      Buffer.from(
        b.file
          .mmap(b.offset(2) + rB.low.base + 4096, 4096)
          .memory.bytes.subarray(rB.low.base + 4096, rB.low.base + 4105),
      ),
    ).toEqual(marker('B'));
  });

  it('hand vfio-user clients BAR2 fds that hold only their own slice', () => {
    const parent = createGvtParent(
      { clock: createFakeClock(), log: createRecordingLogger(), allocateMemory: allocateMemfdSharedMemory },
      { apertureMiB: 512 },
    );
    const a = openVgpu(parent, TYPE, UUID_A);
    const b = openVgpu(parent, TYPE, UUID_B);
    const fdOf = (d: OpenVgpu) => {
      const { low } = d.vgpu.resources;
      const m = d.file.mmap(d.offset(2) + low.base, low.size);
      // What the vfio-user server sends with REGION_INFO: the memory's fd, the area at its region offset.
      expect(m.memoryOffset).toBe(low.base);
      expect(m.memory.fd).toBeTypeOf('number');
      return { fd: m.memory.fd!, map: m };
    };
    const fa = fdOf(a);
    const fb = fdOf(b);
    expect(fa.fd === fb.fd).toBe(false);
    fa.map.memory.bytes.set(marker('A'), a.vgpu.resources.low.base);
    fb.map.memory.bytes.set(marker('B'), b.vgpu.resources.low.base);
    // Everything a client could map of A's fd: the head is a hole, then A's slice, then the end.
    const sizeA = fstatSync(fa.fd).size;
    expect(sizeA).toBe(a.vgpu.resources.low.base + a.vgpu.resources.low.size);
    const chunk = Buffer.alloc(4 * MiB);
    let foundA = false;
    for (let at = 0; at < sizeA; at += chunk.length) {
      const n = readSync(fa.fd, chunk, 0, chunk.length, at);
      expect(chunk.subarray(0, n).indexOf(marker('B'))).toBe(-1);
      if (chunk.subarray(0, n).indexOf(marker('A')) >= 0) foundA = true;
    }
    expect(foundA).toBe(true);
    // Past A's slice the fd has nothing: B's offsets read as end of file.
    expect(readSync(fa.fd, chunk, 0, 16, b.vgpu.resources.low.base)).toBe(0);
  });

  it('run the commands of the vGPU whose hidden GM lies above 2 GiB as those of the one below', () => {
    // A 1 GiB aperture, as `vfiokit serve` simulates: the second V5_4's hidden GM crosses 2 GiB.
    const parent = newParent(1024);
    openVgpu(parent, 'i915-GVTg_V5_4', UUID_A);
    const b = openVgpu(parent, 'i915-GVTg_V5_4', UUID_B, 8 * MiB);
    const hi = b.vgpu.resources.high;
    expect(hi.base < 2 ** 31 && hi.base + hi.size > 2 ** 31).toBe(true);
    const ring = 2 ** 31;
    const target = ring + GTT_PAGE_SIZE;
    mapGm(b, ring, 0x100000, 2);
    const words = [
      MI_STORE_DATA_IMM | MI_USE_GGTT | 2,
      target,
      0,
      0xc0ffee,
      0x7a000004, // PIPE_CONTROL, post-sync QW write to a global GTT address
      (1 << 24) | (1 << 14),
      target + 8,
      0,
      0x5eed,
      0,
    ];
    const mem = new DataView(b.host.memory.bytes.buffer);
    for (const [i, w] of words.entries()) mem.setUint32(0x100000 + 4 * i, w >>> 0, true);
    b.setReg(RING_CTL, 0);
    b.setReg(RING_HEAD, 0);
    b.setReg(RING_START, ring);
    b.setReg(RING_CTL, RING_VALID);
    b.setReg(RING_TAIL, words.length * 4);
    parent.scheduler.tick();
    expect(mem.getUint32(0x101000, true)).toBe(0xc0ffee);
    expect(mem.getUint32(0x101008, true)).toBe(0x5eed);
  });

  it('read command addresses as unsigned 48-bit numbers, from 2 GiB up too (property)', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffffffff }),
        fc.nat({ max: 0xffffffff }),
        fc.constantFrom(3, 7),
        (lo, hi, align) => {
          const want = (BigInt(hi & 0xffff) << 32n) | (BigInt(lo) & ~BigInt(align));
          expect(gpuAddress(lo, hi, align)).toBe(Number(want));
        },
      ),
    );
  });

  type Op =
    | { kind: 'reg'; offset: number; value: number; size: 1 | 2 | 4 | 8; read: boolean }
    | { kind: 'fence'; index: number; value: number }
    | { kind: 'pte'; page: number; value: number }
    | { kind: 'aperture'; offset: number; length: number; byte: number; write: boolean }
    | { kind: 'direct'; offset: number; byte: number }
    | { kind: 'plane'; ctl: number; stride: number; surf: number }
    | { kind: 'reset' };

  /** Everything of a vGPU another vGPU must not change. */
  function state(d: OpenVgpu) {
    const r = d.vgpu.resources;
    const gpu = d.parent.gpu;
    const pteRange = (range: { base: number; size: number }) =>
      Buffer.from(
        gpu.ggtt.pte.slice(range.base / GTT_PAGE_SIZE, (range.base + range.size) / GTT_PAGE_SIZE).buffer,
      );
    const words = d.vgpu.regs.words;
    const ap = r.aperture.bytes;
    return {
      vreg: Buffer.from(words.buffer, words.byteOffset, words.byteLength),
      ggttLow: pteRange(r.low),
      ggttHigh: pteRange(r.high),
      fences: r.fences.map((f) => gpu.fenceRegs[f]),
      slice: Buffer.from(ap.buffer, ap.byteOffset + r.low.base, r.low.size),
      memory: Buffer.from(d.host.memory.bytes.buffer, d.host.memory.bytes.byteOffset, d.host.memory.size),
      msi: d.msiCount(),
    };
  }

  type State = ReturnType<typeof state>;
  const copy = (st: State): State =>
    Object.fromEntries(
      Object.entries(st).map(([k, v]) => [k, Buffer.isBuffer(v) ? Buffer.from(v) : v]),
    ) as State;

  function expectSame(got: OpenVgpu, want: OpenVgpu | State, who: string) {
    const g = state(got);
    const w = 'vreg' in want ? want : state(want);
    const differ = (k: keyof typeof g) =>
      Buffer.isBuffer(g[k])
        ? !(g[k] as Buffer).equals(w[k] as Buffer)
        : JSON.stringify(g[k]) !== JSON.stringify(w[k]);
    const keys = Object.keys(g) as (keyof typeof g)[];
    expect(keys.filter(differ).map((k) => `${who}.${k}`)).toEqual([]);
  }

  it('never change each other: A beside B ends as A alone, B beside A as B alone (property)', {
    timeout: 60_000,
  }, () => {
    const parents: GvtParent[] = [newParent(512), newParent(512), newParent(512)];
    const pairs = parents.map((p) => [openVgpu(p, TYPE, UUID_A), openVgpu(p, TYPE, UUID_B)] as const);
    const [both, onlyA, onlyB] = pairs;
    const r = both[0].vgpu.resources;
    const rB = both[1].vgpu.resources;
    for (const k of [1, 2]) expect(pairs[k][0].vgpu.resources.low).toEqual(r.low);
    const ranges = [r.low, r.high, rB.low, rB.high];
    const gmPage = fc.oneof(
      fc.nat({ max: (8 * MiB) / 8 - 1 }),
      fc.constantFrom(...ranges.map((x) => x.base / GTT_PAGE_SIZE)),
      fc.constantFrom(...ranges.map((x) => x.base / GTT_PAGE_SIZE + x.size / GTT_PAGE_SIZE - 1)),
    );
    const apertureOffset = fc.oneof(
      fc.nat({ max: 512 * MiB - 64 }),
      fc.constantFrom(...[r.low, rB.low].flatMap((x) => [x.base, x.base + x.size - 8, x.base + 4096])),
    );
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({
        kind: fc.constant('reg' as const),
        offset: fc.oneof(
          fc.nat({ max: 2 * MiB - 8 }).map((o) => o & ~3),
          // PVINFO (vgt_id, ballooning, g2v), interrupt, display and GT registers.
          fc.constantFrom(0x7800c, 0x78040, 0x78818, 0x44004, 0x4400c, 0x70180, 0x7019c, 0x2098, 0xa188),
        ),
        value: fc.nat({ max: 0xffffffff }),
        size: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
        read: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant('fence' as const),
        index: fc.nat({ max: 7 }),
        value: fc.nat({ max: 0xffffffff }),
      }),
      fc.record({
        kind: fc.constant('pte' as const),
        page: gmPage,
        value: fc.oneof(
          fc.nat({ max: 2 ** 40 }),
          fc.nat({ max: 1023 }).map((p) => p * GTT_PAGE_SIZE + 1), // present, inside the guest's 4 MiB
        ),
      }),
      fc.record({
        kind: fc.constant('aperture' as const),
        offset: apertureOffset,
        length: fc.integer({ min: 1, max: 16 }),
        byte: fc.integer({ min: 1, max: 255 }),
        write: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant('direct' as const),
        offset: fc.nat({ max: r.low.size - 1 }),
        byte: fc.integer({ min: 1, max: 255 }),
      }),
      fc.record({
        kind: fc.constant('plane' as const),
        ctl: fc.constantFrom(0, 0x84000000, 0x80000000),
        stride: fc.integer({ min: 1, max: 64 }),
        surf: fc.oneof(
          fc.constantFrom(r.low.base, rB.low.base, r.high.base, rB.high.base),
          fc.nat({ max: 2 ** 32 - 1 }),
        ),
      }),
      fc.constant({ kind: 'reset' as const }),
    );

    const run = (d: OpenVgpu, o: Op) => {
      try {
        if (o.kind === 'reg') {
          const buf = new Uint8Array(o.size);
          if (o.read) d.file.read(d.offset(0) + o.offset, buf);
          else {
            for (let i = 0; i < o.size; i++) buf[i] = (o.value >>> (8 * (i % 4))) & 0xff;
            d.file.write(d.offset(0) + o.offset, buf);
          }
        } else if (o.kind === 'fence') {
          d.setReg(FENCE_REG_GEN6_BASE + 8 * o.index, o.value);
          d.setReg(FENCE_REG_GEN6_BASE + 8 * o.index + 4, o.value ^ 0x5a5a5a5a);
        } else if (o.kind === 'pte') {
          d.writePte(o.page, o.value);
        } else if (o.kind === 'aperture') {
          const buf = new Uint8Array(o.length).fill(o.byte);
          if (o.write) d.file.write(d.offset(2) + o.offset, buf);
          else d.file.read(d.offset(2) + o.offset, buf);
        } else if (o.kind === 'direct') {
          // One page of the guest's mapping (a mapped page is cleared at every reset from then on).
          const { low } = d.vgpu.resources;
          const page = o.offset - (o.offset % GTT_PAGE_SIZE);
          const m = d.file.mmap(d.offset(2) + low.base + page, GTT_PAGE_SIZE);
          m.memory.bytes[m.memoryOffset + (o.offset % GTT_PAGE_SIZE)] = o.byte;
        } else if (o.kind === 'plane') {
          d.setReg(PLANE_STRIDE_1_A, o.stride);
          d.setReg(PLANE_SURF_1_A, o.surf);
          d.setReg(PLANE_CTL_1_A, o.ctl);
          d.vgpu.display!.queryPlane('region', 1);
        } else {
          d.file.reset();
        }
      } catch (err) {
        if (!(err instanceof VfioError)) throw err;
      }
      // A guest may turn its memory decode off; keep it on so the next operation reaches the BARs.
      d.setCfg32(0x04, 0x0006);
    };

    // The idle twins get no operation at all, in any run: they must stay as they are now.
    const idle = [copy(state(onlyA[1])), copy(state(onlyB[0]))];
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), op), { minLength: 1, maxLength: 24 }), (ops) => {
        for (const d of [both[0], both[1], onlyA[0], onlyB[1]]) {
          d.file.reset();
          d.setCfg32(0x04, 0x0006);
        }
        for (const [onA, o] of ops) {
          const k = onA ? 0 : 1;
          run(both[k], o);
          run((onA ? onlyA : onlyB)[k], o);
        }
        expectSame(both[0], onlyA[0], 'A');
        expectSame(both[1], onlyB[1], 'B');
        // And the idle twins saw nothing at all of their neighbour.
        expectSame(onlyA[1], idle[0], 'idle B');
        expectSame(onlyB[0], idle[1], 'idle A');
      }),
      { numRuns: 25 },
    );
    expect(GVT_GTT_START_OFFSET).toBe(8 * MiB);
  });
});
