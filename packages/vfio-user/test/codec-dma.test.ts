/**
 * DMA messages (src/protocol/dma.ts): DMA_MAP and DMA_UNMAP, and DMA_READ and DMA_WRITE in the spec
 * and the QEMU layouts, round trips and refusals.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as P from '../src/protocol/index.js';
import { bytes, msgId, roundTrip, u64 } from './codec-helpers.js';
import { embed, expectVfioError, split } from './helpers.js';

describe('DMA_MAP / DMA_UNMAP', () => {
  it('round-trips DMA_MAP with and without its fd', () => {
    fc.assert(
      fc.property(
        msgId,
        fc.integer({ min: 0, max: 3 }),
        u64,
        fc.integer({ min: 0, max: 2 ** 52 }),
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.boolean(),
        (id, flags, offset, address, size, withFd) => {
          const fds = withFd ? [7] : [];
          const r = roundTrip(P.encodeDmaMapRequest(id, { flags, offset, address, size }), 2, (p) =>
            P.decodeDmaMapRequest(p, fds),
          );
          expect(r).toEqual({ argsz: 32, flags, offset, address, size, ...(withFd ? { fd: 7 } : {}) });
        },
      ),
    );
  });

  it('refuses DMA_MAP with unknown flags, size 0, two fds, a short argsz, a wrapping range or a wrong length', () => {
    const ok = { flags: 3, offset: 0, address: 0x1000, size: 0x1000 };
    const payload = (r: Partial<typeof ok> & { argsz?: number }) =>
      split(P.encodeDmaMapRequest(1, { ...ok, ...r })).payload;
    expectVfioError(() => P.decodeDmaMapRequest(payload({ flags: 4 })), 'EINVAL', /flags 0x4/);
    expectVfioError(() => P.decodeDmaMapRequest(payload({ size: 0 })), 'EINVAL', /size is 0/);
    expectVfioError(() => P.decodeDmaMapRequest(payload({}), [4, 5]), 'EINVAL', /2 fds/);
    expectVfioError(() => P.decodeDmaMapRequest(payload({ argsz: 8 })), 'EINVAL', /argsz 8/);
    expectVfioError(() => P.decodeDmaMapRequest(payload({ address: 2 ** 53 - 16, size: 32 })), 'EOVERFLOW');
    expectVfioError(() => P.decodeDmaMapRequest(embed(new Uint8Array(31))), 'EINVAL', /exactly 32/);
  });

  it('round-trips DMA_UNMAP requests and replies, UNMAP_ALL included', () => {
    fc.assert(
      fc.property(msgId, u64, u64, (id, address, size) => {
        const r = { argsz: 24, flags: 0, address, size };
        expect(roundTrip(P.encodeDmaUnmapRequest(id, r), 3, P.decodeDmaUnmapRequest)).toEqual(r);
        expect(roundTrip(P.encodeDmaUnmapReply(id, r), 3, P.decodeDmaUnmapReply)).toEqual(r);
      }),
    );
    const all = { argsz: 24, flags: 2, address: 0, size: 0 };
    expect(roundTrip(P.encodeDmaUnmapRequest(1, all), 3, P.decodeDmaUnmapRequest)).toEqual(all);
  });

  it('refuses DMA_UNMAP with a dirty bitmap, unknown flags or UNMAP_ALL with a range', () => {
    const p = (flags: number, address = 0, size = 0) =>
      split(P.encodeDmaUnmapRequest(1, { argsz: 24, flags, address, size })).payload;
    expectVfioError(() => P.decodeDmaUnmapRequest(p(1)), 'EINVAL', /GET_DIRTY_BITMAP/);
    expectVfioError(() => P.decodeDmaUnmapRequest(p(8)), 'EINVAL', /unknown bits/);
    expectVfioError(() => P.decodeDmaUnmapRequest(p(2, 0x1000, 0x1000)), 'EINVAL', /UNMAP_ALL/);
  });

  it('refuses a u64 above 2^53 - 1 with EOVERFLOW naming the field', () => {
    const m = P.encodeDmaUnmapRequest(1, { argsz: 24, flags: 0, address: 0, size: 4096 });
    m[16 + 15] = 0xff; // top byte of address
    expectVfioError(() => P.decodeDmaUnmapRequest(split(m).payload), 'EOVERFLOW', /address/);
  });
});

describe('DMA_READ / DMA_WRITE', () => {
  for (const layout of ['spec', 'qemu'] as const) {
    it(`round-trips requests and replies in the ${layout} layout`, () => {
      fc.assert(
        fc.property(msgId, fc.integer({ min: 0, max: 2 ** 52 }), bytes(300), (id, address, data) => {
          const a = { address, count: data.length };
          expect(
            roundTrip(P.encodeDmaReadRequest(id, a, layout), 11, (p) => P.decodeDmaReadRequest(p, layout)),
          ).toEqual(a);
          const rr = roundTrip(P.encodeDmaReadReply(id, { ...a, data }, layout), 11, (p) =>
            P.decodeDmaReadReply(p, layout),
          );
          expect(rr.address).toBe(address);
          expect(Array.from(rr.data)).toEqual(Array.from(data));
          const wr = roundTrip(P.encodeDmaWriteRequest(id, { ...a, data }, layout), 12, (p) =>
            P.decodeDmaWriteRequest(p, layout),
          );
          expect(Array.from(wr.data)).toEqual(Array.from(data));
          const reply = roundTrip(P.encodeDmaWriteReply(id, a, layout), 12, (p) =>
            P.decodeDmaWriteReply(p, layout),
          );
          expect(reply).toEqual(layout === 'qemu' ? undefined : a);
        }),
      );
    });
  }

  it('lays out QEMU messages as VFIOUserDMARW: count u32 at 8, data at 12, 32 + count bytes', () => {
    const m = P.encodeDmaWriteRequest(
      1,
      { address: 0x1000, count: 4, data: new Uint8Array([1, 2, 3, 4]) },
      'qemu',
    );
    expect(m.length).toBe(32 + 4);
    expect(Array.from(m.subarray(24, 32))).toEqual([4, 0, 0, 0, 1, 2, 3, 4]);
    const s = P.encodeDmaWriteRequest(
      1,
      { address: 0x1000, count: 4, data: new Uint8Array([1, 2, 3, 4]) },
      'spec',
    );
    expect(Array.from(s.subarray(24, 36))).toEqual([4, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
  });

  it('refuses a count above max_data_xfer_size with E2BIG and a count that disagrees with the data', () => {
    const big = split(P.encodeDmaReadRequest(1, { address: 0, count: 4097 })).payload;
    expectVfioError(
      () => P.decodeDmaReadRequest(big, 'spec', { maxMsgFds: 1, maxDataXferSize: 4096 }),
      'E2BIG',
      /max_data_xfer_size 4096/,
    );
    const m = P.encodeDmaWriteRequest(1, { address: 0, count: 4, data: new Uint8Array(4) });
    const short = embed(m.subarray(16, m.length - 1));
    expectVfioError(() => P.decodeDmaWriteRequest(short), 'EINVAL', /count 4 needs 20/);
  });
});
