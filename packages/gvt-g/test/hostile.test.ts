/**
 * A hostile guest on vGPU A, with vGPU B beside it on the same GPU: random register writes,
 * PTEs into B's range, forbidden commands, self-referencing batches, impossible plane settings,
 * wild aperture and EDID accesses. Nothing but VfioError comes out, and B's GGTT, aperture
 * slice and guest memory stay the same, byte for byte.
 */
import { Buffer } from 'node:buffer';
import { VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GTT_PAGE_SIZE,
  GVT_GTT_START_OFFSET,
  MI_BATCH_BUFFER_END,
  MI_BATCH_BUFFER_START_GEN8,
  MI_STORE_DATA_IMM,
  MI_USE_GGTT,
  MI_USER_INTERRUPT,
  MiB,
  PLANE_CTL_1_A,
  PLANE_SIZE_1_A,
  PLANE_STRIDE_1_A,
  PLANE_SURF_1_A,
  RING_CTL,
  RING_HEAD,
  RING_START,
  RING_TAIL,
  RING_VALID,
  XY_COLOR_BLT_CMD,
} from '../src/index.js';
import { mapGm, newParent, type OpenVgpu, openVgpu, UUID_B } from './helpers.js';

type Op =
  | { kind: 'reg'; offset: number; value: number; size: 1 | 2 | 4 | 8 }
  | { kind: 'pte'; page: number; value: number }
  | { kind: 'batch'; words: number[] }
  | { kind: 'plane'; ctl: number; stride: number; size: number; surf: number }
  | { kind: 'aperture'; offset: number; length: number; write: boolean }
  | { kind: 'region'; index: number; offset: number; length: number; write: boolean };

function snapshot(b: OpenVgpu, gpuPte: Float64Array) {
  const r = b.vgpu.resources;
  const ggtt: number[] = [];
  for (const range of [r.low, r.high]) {
    const first = range.base / GTT_PAGE_SIZE;
    for (let p = first; p < first + 64; p++) ggtt.push(gpuPte[p], b.readPte(p));
  }
  const ap = b.vgpu.resources.aperture.bytes;
  return {
    ggtt,
    hostPteRange: [r.low, r.high].map((range) =>
      gpuPte.slice(range.base / GTT_PAGE_SIZE, (range.base + range.size) / GTT_PAGE_SIZE),
    ),
    slice: Buffer.from(ap.buffer, ap.byteOffset + r.low.base, r.low.size),
    sliceCopy: Buffer.from(ap.slice(r.low.base, r.low.base + r.low.size)),
    memory: Buffer.from(b.host.memory.bytes.slice()),
  };
}

describe('a hostile guest beside another vGPU', () => {
  it('never crashes and never reads or writes outside its own slices (property)', () => {
    const parent = newParent(512);
    const a = openVgpu(parent, 'i915-GVTg_V5_8');
    const b = openVgpu(parent, 'i915-GVTg_V5_8', UUID_B);
    // B is busy and has state worth stealing.
    mapGm(b, b.vgpu.resources.low.base, 0x100000, 16);
    mapGm(b, b.vgpu.resources.high.base, 0x100000, 16);
    const bAperture = b.file.mmap(b.offset(2) + b.vgpu.resources.low.base, b.vgpu.resources.low.size);
    for (let i = 0; i < 4 * MiB; i += 4093)
      bAperture.memory.bytes[bAperture.memoryOffset + i] = (i * 7) & 0xff;
    b.host.memory.bytes.fill(0x5c, 0x100000, 0x110000);
    // A maps a ring and batch pages of its own.
    const ah = a.vgpu.resources.high.base;
    mapGm(a, ah, 0x100000, 4);
    const before = snapshot(b, parent.gpu.ggtt.pte);

    const rB = b.vgpu.resources;
    const anyGm = fc.oneof(
      fc.nat({ max: 0xffffffff }),
      fc.constantFrom(rB.low.base, rB.high.base, rB.low.base + 4096, ah, ah + 4096, 0),
    );
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({
        kind: fc.constant('reg' as const),
        offset: fc.oneof(
          fc.nat({ max: 16 * MiB - 8 }),
          fc.constantFrom(RING_TAIL, PLANE_CTL_1_A, 0x78818, 0x44200, 0x100000),
        ),
        value: fc.nat({ max: 0xffffffff }),
        size: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
      }),
      fc.record({
        kind: fc.constant('pte' as const),
        page: fc.oneof(
          fc.nat({ max: (8 * MiB) / 8 - 1 }),
          fc.constantFrom(
            rB.low.base / GTT_PAGE_SIZE,
            rB.high.base / GTT_PAGE_SIZE,
            rB.low.base / GTT_PAGE_SIZE + 1,
          ),
        ),
        value: fc.oneof(fc.nat({ max: 2 ** 46 }), fc.constantFrom(0x100001, 0x101001, 0x7fff_f001)),
      }),
      fc.record({
        kind: fc.constant('batch' as const),
        words: fc.array(
          fc.oneof(
            fc.constantFrom(
              MI_USER_INTERRUPT,
              MI_BATCH_BUFFER_END,
              MI_STORE_DATA_IMM | MI_USE_GGTT | 2,
              MI_BATCH_BUFFER_START_GEN8,
              XY_COLOR_BLT_CMD | 5,
              (3 << 24) | (0xf0 << 16) | 4096,
              0x7a000004,
            ),
            anyGm,
          ),
          { maxLength: 24 },
        ),
      }),
      fc.record({
        kind: fc.constant('plane' as const),
        ctl: fc.nat({ max: 0xffffffff }),
        stride: fc.nat({ max: 0x3ff }),
        size: fc.nat({ max: 0xffffffff }),
        surf: anyGm,
      }),
      fc.record({
        kind: fc.constant('aperture' as const),
        offset: fc.oneof(
          fc.nat({ max: 512 * MiB - 1 }),
          fc.constantFrom(rB.low.base, a.vgpu.resources.low.base + a.vgpu.resources.low.size - 2),
        ),
        length: fc.integer({ min: 1, max: 64 }),
        write: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant('region' as const),
        index: fc.constantFrom(7, 9, 10, 11, 12),
        offset: fc.nat({ max: 0x1000 }),
        length: fc.integer({ min: 1, max: 16 }),
        write: fc.boolean(),
      }),
    );

    const run = (o: Op) => {
      if (o.kind === 'reg') {
        const buf = new Uint8Array(o.size);
        for (let i = 0; i < o.size; i++) buf[i] = (o.value >>> (8 * (i % 4))) & 0xff;
        a.file.write(a.offset(0) + o.offset, buf);
      } else if (o.kind === 'pte') {
        a.writePte(o.page, o.value);
      } else if (o.kind === 'batch') {
        const words = [...o.words, MI_BATCH_BUFFER_END];
        words.forEach((w, i) => {
          new DataView(a.host.memory.bytes.buffer).setUint32(0x101000 + 4 * i, w >>> 0, true);
        });
        const ring = [MI_BATCH_BUFFER_START_GEN8, ah + 4096, 0, 0];
        ring.forEach((w, i) => {
          new DataView(a.host.memory.bytes.buffer).setUint32(0x100000 + 4 * i, w >>> 0, true);
        });
        a.setReg(RING_CTL, 0);
        a.setReg(RING_HEAD, 0);
        a.setReg(RING_START, ah);
        a.setReg(RING_CTL, RING_VALID);
        a.setReg(RING_TAIL, 16);
        parent.scheduler.tick();
      } else if (o.kind === 'plane') {
        a.setReg(PLANE_STRIDE_1_A, o.stride);
        a.setReg(PLANE_SIZE_1_A, o.size);
        a.setReg(PLANE_SURF_1_A, o.surf);
        a.setReg(PLANE_CTL_1_A, o.ctl);
        a.vgpu.display!.queryPlane('region', 1);
        a.vgpu.display!.queryPlane('region', 2);
      } else if (o.kind === 'aperture') {
        const buf = new Uint8Array(o.length).fill(0xee);
        if (o.write) a.file.write(a.offset(2) + o.offset, buf);
        else a.file.read(a.offset(2) + o.offset, buf);
      } else {
        const buf = new Uint8Array(o.length).fill(0xee);
        if (o.write) a.file.write(a.offset(o.index) + o.offset, buf);
        else a.file.read(a.offset(o.index) + o.offset, buf);
      }
    };

    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 20 }), (ops) => {
        for (const o of ops) {
          try {
            run(o);
          } catch (err) {
            if (!(err instanceof VfioError) || (err.cause !== undefined && !(err.cause instanceof VfioError)))
              throw err;
          }
        }
        // A may have turned its own memory decode off; keep it on so the next run reaches the BARs.
        a.setCfg32(0x04, 0x0006);
      }),
      { numRuns: 150 },
    );

    const after = snapshot(b, parent.gpu.ggtt.pte);
    expect(after.ggtt).toEqual(before.ggtt);
    for (let k = 0; k < 2; k++)
      expect(
        Buffer.from(after.hostPteRange[k].buffer).equals(Buffer.from(before.hostPteRange[k].buffer)),
      ).toBe(true);
    expect(after.slice.equals(before.sliceCopy)).toBe(true);
    expect(after.memory.equals(before.memory)).toBe(true);
    // B still works.
    expect(b.readPte(rB.low.base / GTT_PAGE_SIZE)).toBe(0x100001);
    expect(b.reg(0x78000)).toBe(0x76544776);
    expect(b.vgpu.ggtt.stats.refusedOutOfRange).toBe(0);
    expect(a.vgpu.ggtt.readEntry(rB.low.base / GTT_PAGE_SIZE)).toBe(0);
    expect(GVT_GTT_START_OFFSET).toBe(8 * MiB);
  });
});
