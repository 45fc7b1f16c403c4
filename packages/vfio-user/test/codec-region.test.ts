/**
 * Region access (src/protocol/region.ts): REGION_READ, REGION_WRITE and REGION_WRITE_MULTI, the
 * in-place read reply, and a WRITE_MULTI entry written from a value.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as P from '../src/protocol/index.js';
import { bytes, msgId, roundTrip, u32 } from './codec-helpers.js';
import { embed, expectVfioError, split } from './helpers.js';

describe('REGION_READ / REGION_WRITE / REGION_WRITE_MULTI', () => {
  it('round-trips reads, writes and their replies with the data untouched', () => {
    fc.assert(
      fc.property(
        msgId,
        fc.integer({ min: 0, max: 2 ** 52 }),
        u32,
        bytes(512),
        (id, offset, region, data) => {
          const a = { offset, region, count: data.length };
          expect(roundTrip(P.encodeRegionReadRequest(id, a), 9, (p) => P.decodeRegionReadRequest(p))).toEqual(
            a,
          );
          const rr = roundTrip(P.encodeRegionReadReply(id, { ...a, data }), 9, (p) =>
            P.decodeRegionReadReply(p),
          );
          expect({ ...rr, data: Array.from(rr.data) }).toEqual({ ...a, data: Array.from(data) });
          const w = roundTrip(P.encodeRegionWriteRequest(id, { ...a, data }), 10, (p) =>
            P.decodeRegionWriteRequest(p),
          );
          expect(Array.from(w.data)).toEqual(Array.from(data));
          expect(roundTrip(P.encodeRegionWriteReply(id, a), 10, (p) => P.decodeRegionWriteReply(p))).toEqual(
            a,
          );
        },
      ),
    );
  });

  it('gives a 4-byte read a 36-byte reply that can be filled in place', () => {
    const { bytes, data } = P.allocRegionReadReply(3, { offset: 0x10, region: 0, count: 4 });
    data.set([1, 2, 3, 4]);
    expect(bytes.length).toBe(36);
    expect(Array.from(P.decodeRegionReadReply(split(bytes).payload).data)).toEqual([1, 2, 3, 4]);
  });

  it('refuses a count above the limit (E2BIG), a write whose count differs from its data, and an 8-byte read request', () => {
    const limits = { maxMsgFds: 1, maxDataXferSize: 8 };
    expectVfioError(
      () =>
        P.decodeRegionReadRequest(
          split(P.encodeRegionReadRequest(1, { offset: 0, region: 0, count: 9 })).payload,
          limits,
        ),
      'E2BIG',
      /count 9/,
    );
    const w = P.encodeRegionWriteRequest(1, { offset: 0, region: 0, count: 4, data: new Uint8Array(4) });
    new DataView(w.buffer).setUint32(28, 5, true);
    expectVfioError(
      () => P.decodeRegionWriteRequest(split(w).payload),
      'EINVAL',
      /count 5 differs from the 4 data bytes/,
    );
    expectVfioError(() => P.decodeRegionReadRequest(embed(new Uint8Array(8))), 'EINVAL', /exactly 16/);
  });

  it('round-trips WRITE_MULTI and refuses entries above 8 bytes or a wrong wr_cnt', () => {
    const write = fc
      .record({
        offset: fc.integer({ min: 0, max: 2 ** 52 }),
        region: u32,
        data: fc.uint8Array({ maxLength: 8 }),
      })
      .map((w) => ({ ...w, count: w.data.length }));
    fc.assert(
      fc.property(msgId, fc.array(write, { maxLength: 10 }), (id, writes) => {
        const r = roundTrip(P.encodeRegionWriteMultiRequest(id, writes), 15, P.decodeRegionWriteMultiRequest);
        expect(r.map((w) => ({ ...w, data: Array.from(w.data) }))).toEqual(
          writes.map((w) => ({ ...w, data: Array.from(w.data) })),
        );
        expect(
          roundTrip(P.encodeRegionWriteMultiReply(id, writes.length), 15, P.decodeRegionWriteMultiReply),
        ).toBe(writes.length);
      }),
    );
    const m = P.encodeRegionWriteMultiRequest(1, [
      { offset: 0, region: 0, count: 4, data: new Uint8Array(4) },
    ]);
    const big = m.slice();
    new DataView(big.buffer).setUint32(16 + 8 + 12, 9, true);
    expectVfioError(() => P.decodeRegionWriteMultiRequest(split(big).payload), 'EINVAL', /count 9/);
    const cnt = m.slice();
    cnt[16] = 2;
    expectVfioError(() => P.decodeRegionWriteMultiRequest(split(cnt).payload), 'EINVAL', /wr_cnt is 2/);
  });
});

describe('a REGION_WRITE_MULTI entry written as a value', () => {
  it("is the entry of the value's low 1, 2 or 4 bytes, little-endian, over any old contents", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 52 }),
        u32,
        fc.constantFrom(1 as const, 2 as const, 4 as const),
        fc.oneof(u32, fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
        fc.uint8Array({ minLength: 48, maxLength: 48 }),
        fc.integer({ min: 0, max: 24 }),
        (offset, region, size, value, old, at) => {
          const byValue = old.slice();
          P.putWriteMultiValue(new DataView(byValue.buffer), at, region, offset, size, value);
          const data = new Uint8Array(size);
          for (let i = 0; i < size; i++) data[i] = (value >>> (8 * i)) & 0xff;
          const byBytes = old.slice();
          P.putWriteMultiEntry(new DataView(byBytes.buffer), at, region, offset, data);
          expect(Array.from(byValue)).toEqual(Array.from(byBytes));
          // And it decodes as that write, in a whole message.
          const m = P.encodeRegionWriteMultiRequest(1, [{ offset, region, count: size, data }]);
          const entry = m.slice();
          entry.set(byValue.subarray(at, at + 24), 24);
          const [w] = P.decodeRegionWriteMultiRequest(split(entry).payload);
          expect({ ...w, data: Array.from(w.data) }).toEqual({
            offset,
            region,
            count: size,
            data: Array.from(data),
          });
        },
      ),
    );
  });
});
