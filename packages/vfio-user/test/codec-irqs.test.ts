/**
 * DEVICE_SET_IRQS (src/protocol/irqs.ts): NONE, BOOL and EVENTFD requests with their data and fds,
 * round trips and refusals.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as P from '../src/protocol/index.js';
import { msgId, roundTrip, u32 } from './codec-helpers.js';
import { embed, expectVfioError, split } from './helpers.js';

describe('DEVICE_SET_IRQS', () => {
  const action = fc.constantFrom<P.IrqAction>('mask', 'unmask', 'trigger');

  it('round-trips NONE, BOOL and EVENTFD requests with their data and fds', () => {
    fc.assert(
      fc.property(
        msgId,
        u32,
        fc.integer({ min: 0, max: 2048 }),
        fc.integer({ min: 0, max: 40 }),
        action,
        fc.constantFrom<P.IrqDataType>('none', 'bool', 'eventfd'),
        (id, index, start, count, act, dataType) => {
          const bools = dataType === 'bool' ? new Uint8Array(count).map((_, i) => i & 1) : undefined;
          const fds = dataType === 'eventfd' ? Array.from({ length: count }, (_, i) => 100 + i) : [];
          const m = P.encodeSetIrqsRequest(id, {
            index,
            start,
            count,
            dataType,
            action: act,
            ...(bools ? { bools } : {}),
          });
          const r = roundTrip(m, 8, (p) =>
            P.decodeSetIrqsRequest(p, fds, { maxMsgFds: 64, maxDataXferSize: 1 << 20 }),
          );
          expect(r).toMatchObject({
            index,
            start,
            count,
            dataType,
            action: act,
            fds,
            flags: P.setIrqsFlags(dataType, act),
          });
          expect(r.argsz).toBe(20 + (bools?.length ?? 0));
          if (bools) expect(Array.from(r.bools!)).toEqual(Array.from(bools));
        },
      ),
    );
  });

  it('accepts EVENTFD without fds (de-assign) and refuses a different number of fds', () => {
    const m = P.encodeSetIrqsRequest(1, {
      index: 2,
      start: 0,
      count: 3,
      dataType: 'eventfd',
      action: 'trigger',
    });
    const limits = { maxMsgFds: 8, maxDataXferSize: 4096 };
    expect(P.decodeSetIrqsRequest(split(m).payload, [], limits).fds).toEqual([]);
    expectVfioError(
      () => P.decodeSetIrqsRequest(split(m).payload, [5, 6], limits),
      'EINVAL',
      /count is 3 but 2 eventfds/,
    );
    expectVfioError(
      () => P.decodeSetIrqsRequest(split(m).payload, [1, 2, 3], { maxMsgFds: 2, maxDataXferSize: 4096 }),
      'E2BIG',
      /max_msg_fds 2/,
    );
  });

  it('refuses two data types, two actions, none, unknown bits, fds with BOOL and a start + count overflow', () => {
    const m = P.encodeSetIrqsRequest(1, {
      index: 0,
      start: 0,
      count: 1,
      dataType: 'none',
      action: 'trigger',
    });
    const withFlags = (flags: number, start = 0, count = 1) => {
      const c = m.slice();
      const dv = new DataView(c.buffer);
      dv.setUint32(20, flags, true);
      dv.setUint32(28, start, true);
      dv.setUint32(32, count, true);
      return split(c).payload;
    };
    expectVfioError(() => P.decodeSetIrqsRequest(withFlags(0x3 | 0x20)), 'EINVAL', /exactly one DATA/);
    expectVfioError(() => P.decodeSetIrqsRequest(withFlags(0x1 | 0x18)), 'EINVAL', /exactly one ACTION/);
    expectVfioError(() => P.decodeSetIrqsRequest(withFlags(0x1)), 'EINVAL', /exactly one ACTION/);
    expectVfioError(() => P.decodeSetIrqsRequest(withFlags(0x21 | 0x100)), 'EINVAL', /unknown bits/);
    expectVfioError(() => P.decodeSetIrqsRequest(withFlags(0x21, 0xffffffff, 2)), 'EINVAL', /overflows/);
    expectVfioError(
      () => P.decodeSetIrqsRequest(withFlags(0x21), [5]),
      'EINVAL',
      /only DATA_EVENTFD carries fds/,
    );
    const b = P.encodeSetIrqsRequest(1, {
      index: 0,
      start: 0,
      count: 4,
      dataType: 'bool',
      action: 'mask',
      bools: new Uint8Array(4),
    });
    expectVfioError(() => P.decodeSetIrqsRequest(embed(b.subarray(16, b.length - 1))), 'EINVAL', /4 bools/);
  });
});
