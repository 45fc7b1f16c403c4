/**
 * Region queries (src/protocol/region-info.ts): DEVICE_GET_REGION_INFO with its capability chain
 * and DEVICE_GET_REGION_IO_FDS, round trips, the argsz retry and refusals of malformed chains.
 */
import {
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
} from '@vfiokit/core/abi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as P from '../src/protocol/index.js';
import { msgId, roundTrip, u32, u64 } from './codec-helpers.js';
import { embed, expectVfioError, split } from './helpers.js';

describe('DEVICE_GET_REGION_INFO', () => {
  const area = fc.record({ offset: u64, size: u64 });
  const cap: fc.Arbitrary<P.RegionCap> = fc.oneof(
    fc.record({ kind: fc.constant('sparse-mmap' as const), areas: fc.array(area, { maxLength: 5 }) }),
    fc.record({ kind: fc.constant('type' as const), type: u32, subtype: u32 }),
    fc.constant({ kind: 'msix-mappable' as const }),
    fc.record({
      kind: fc.constant('unknown' as const),
      id: fc.integer({ min: 4, max: 0xffff }),
      version: fc.integer({ min: 0, max: 0xffff }),
      data: fc
        .integer({ min: 0, max: 4 })
        .chain((n) => fc.uint8Array({ minLength: n * 8, maxLength: n * 8 })),
    }),
  );
  const info = fc.record({
    flags: fc.integer({ min: 0, max: 7 }),
    index: u32,
    size: u64,
    offset: u64,
    caps: fc.array(cap, { maxLength: 4 }),
  });

  it('round-trips the request', () => {
    fc.assert(
      fc.property(msgId, fc.integer({ min: 32, max: 0xffffffff }), u32, (id, argsz, index) => {
        expect(
          roundTrip(P.encodeRegionInfoRequest(id, { argsz, index }), 5, P.decodeRegionInfoRequest),
        ).toEqual({ argsz, index });
      }),
    );
  });

  it('round-trips region info and its capability chain when argsz is large enough', () => {
    fc.assert(
      fc.property(msgId, info, fc.boolean(), (id, i, withFd) => {
        const { bytes, argsz, capsIncluded } = P.encodeRegionInfoReply(id, i, 0xffffffff);
        expect(capsIncluded).toBe(i.caps.length > 0);
        const r = roundTrip(bytes, 5, (p) => P.decodeRegionInfoReply(p, withFd ? [9] : []));
        expect(r.complete).toBe(true);
        expect(r.argsz).toBe(argsz);
        expect(r.flags).toBe(i.flags | (i.caps.length ? VFIO_REGION_INFO_FLAG_CAPS : 0));
        expect({ index: r.index, size: r.size, offset: r.offset }).toEqual({
          index: i.index,
          size: i.size,
          offset: i.offset,
        });
        expect(r.caps.map((c) => (c.kind === 'unknown' ? { ...c, data: Array.from(c.data) } : c))).toEqual(
          i.caps.map((c) => (c.kind === 'unknown' ? { ...c, data: Array.from(c.data) } : c)),
        );
        expect(r.fd).toBe(withFd ? 9 : undefined);
      }),
    );
  });

  it('sends only the 32-byte struct with the needed argsz and no CAPS flag when the caps do not fit, as libvfio-user does', () => {
    const i = {
      flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP,
      index: 0,
      size: 0x1000000,
      offset: 0,
      caps: [
        {
          kind: 'sparse-mmap' as const,
          areas: [
            { offset: 0x1000, size: 0x2000 },
            { offset: 0x8000, size: 0x1000 },
          ],
        },
      ],
    };
    const { bytes, argsz, capsIncluded } = P.encodeRegionInfoReply(1, i, 32);
    expect(capsIncluded).toBe(false);
    expect(argsz).toBe(32 + 16 + 32);
    expect(bytes.length).toBe(16 + 32);
    const r = P.decodeRegionInfoReply(split(bytes).payload);
    expect(r).toMatchObject({ complete: false, argsz: 80, capOffset: 0, caps: [] });
    // QEMU's client refuses CAPS with cap_offset 0 (inside the header) before it retries.
    expect(r.flags & VFIO_REGION_INFO_FLAG_CAPS).toBe(0);
  });

  it('places the sparse-mmap capability as linux/vfio.h lays it out', () => {
    const { bytes } = P.encodeRegionInfoReply(
      1,
      {
        flags: 7,
        index: 2,
        size: 0x4000,
        offset: 0,
        caps: [{ kind: 'sparse-mmap', areas: [{ offset: 0x1000, size: 0x1000 }] }],
      },
      1024,
    );
    const dv = new DataView(bytes.buffer, 16);
    expect(dv.getUint32(12, true)).toBe(32); // cap_offset
    expect([dv.getUint16(32, true), dv.getUint16(34, true), dv.getUint32(36, true)]).toEqual([1, 1, 0]);
    expect(dv.getUint32(40, true)).toBe(1); // nr_areas
    expect([Number(dv.getBigUint64(48, true)), Number(dv.getBigUint64(56, true))]).toEqual([0x1000, 0x1000]);
  });

  it('refuses a capability chain that loops, points outside the reply or claims too many areas', () => {
    const good = P.encodeRegionInfoReply(
      1,
      {
        flags: 1,
        index: 0,
        size: 16,
        offset: 0,
        caps: [{ kind: 'msix-mappable' }, { kind: 'msix-mappable' }],
      },
      1024,
    ).bytes;
    const loop = good.slice();
    new DataView(loop.buffer).setUint32(16 + 40 + 4, 32, true); // second cap links back to the first
    expectVfioError(() => P.decodeRegionInfoReply(split(loop).payload), 'EINVAL', /links back/);
    const outside = good.slice();
    new DataView(outside.buffer).setUint32(16 + 12, 4000, true);
    expectVfioError(() => P.decodeRegionInfoReply(split(outside).payload), 'EINVAL', /outside/);
    const sparse = P.encodeRegionInfoReply(
      1,
      { flags: 1, index: 0, size: 16, offset: 0, caps: [{ kind: 'sparse-mmap', areas: [] }] },
      1024,
    ).bytes;
    new DataView(sparse.buffer).setUint32(16 + 32 + 8, 1000, true);
    expectVfioError(() => P.decodeRegionInfoReply(split(sparse).payload), 'EINVAL', /claims 1000 areas/);
  });

  it('refuses an argsz below 32 in the request and a reply cut at an odd length', () => {
    expectVfioError(
      () => P.decodeRegionInfoRequest(split(P.encodeRegionInfoRequest(1, { argsz: 16, index: 0 })).payload),
      'EINVAL',
      /argsz 16/,
    );
    const { bytes } = P.encodeRegionInfoReply(
      1,
      { flags: 1, index: 0, size: 16, offset: 0, caps: [{ kind: 'msix-mappable' }] },
      1024,
    );
    expectVfioError(
      () => P.decodeRegionInfoReply(embed(bytes.subarray(16, bytes.length - 4))),
      'EINVAL',
      /cut short/,
    );
  });
});

describe('DEVICE_GET_REGION_IO_FDS', () => {
  const sub = fc.record({
    offset: u64,
    size: u64,
    fdIndex: fc.integer({ min: 0, max: 3 }),
    type: fc.constantFrom(0, 1),
    flags: u32,
    data: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  });

  it('round-trips requests and replies', () => {
    fc.assert(
      fc.property(msgId, u32, fc.array(sub, { maxLength: 6 }), (id, index, subRegions) => {
        expect(
          roundTrip(P.encodeRegionIoFdsRequest(id, { argsz: 4096, index }), 6, P.decodeRegionIoFdsRequest),
        ).toEqual({ argsz: 4096, index });
        const { bytes, included } = P.encodeRegionIoFdsReply(id, { index, subRegions }, 0xffffffff);
        expect(included).toBe(true);
        const r = roundTrip(bytes, 6, (p) => P.decodeRegionIoFdsReply(p, [10, 11, 12, 13]));
        expect(r).toMatchObject({ index, count: subRegions.length, complete: true });
        expect(r.subRegions).toEqual(subRegions);
      }),
    );
  });

  it('leaves the sub-regions out when argsz is too small and refuses a bad fd_index or type', () => {
    const s = { offset: 0, size: 4, fdIndex: 0, type: 0, flags: 0, data: 1n };
    const { bytes, included, argsz } = P.encodeRegionIoFdsReply(1, { index: 2, subRegions: [s] }, 16);
    expect([included, argsz, bytes.length]).toEqual([false, 56, 32]);
    expect(P.decodeRegionIoFdsReply(split(bytes).payload)).toMatchObject({
      complete: false,
      count: 1,
      subRegions: [],
    });
    const full = P.encodeRegionIoFdsReply(1, { index: 2, subRegions: [s] }, 56).bytes;
    expectVfioError(() => P.decodeRegionIoFdsReply(split(full).payload, []), 'EINVAL', /fd_index 0/);
    const badType = P.encodeRegionIoFdsReply(1, { index: 2, subRegions: [{ ...s, type: 7 }] }, 56).bytes;
    expectVfioError(() => P.decodeRegionIoFdsReply(split(badType).payload, [5]), 'EINVAL', /unknown type 7/);
    const flags = P.encodeRegionIoFdsRequest(1, { argsz: 16, index: 0 });
    flags[20] = 1;
    expectVfioError(() => P.decodeRegionIoFdsRequest(split(flags).payload), 'EINVAL', /must be 0/);
  });
});
