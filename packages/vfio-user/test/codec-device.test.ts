/**
 * Device queries (src/protocol/device.ts, with IRQ info from irqs.ts): DEVICE_GET_INFO,
 * DEVICE_GET_IRQ_INFO and DEVICE_RESET, round trips and refusals.
 */
import { VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET } from '@vfiokit/core/abi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as P from '../src/protocol/index.js';
import { msgId, roundTrip, u32 } from './codec-helpers.js';
import { embed, expectVfioError, split } from './helpers.js';

describe('DEVICE_GET_INFO / DEVICE_GET_IRQ_INFO / DEVICE_RESET', () => {
  it('round-trips device info requests and replies', () => {
    fc.assert(
      fc.property(
        msgId,
        fc.integer({ min: 16, max: 0xffffffff }),
        u32,
        u32,
        u32,
        (id, argsz, flags, numRegions, numIrqs) => {
          expect(roundTrip(P.encodeDeviceInfoRequest(id, argsz), 4, P.decodeDeviceInfoRequest)).toEqual({
            argsz,
          });
          expect(
            roundTrip(
              P.encodeDeviceInfoReply(id, { flags, numRegions, numIrqs }),
              4,
              P.decodeDeviceInfoReply,
            ),
          ).toEqual({
            argsz: 16,
            flags,
            numRegions,
            numIrqs,
          });
        },
      ),
    );
  });

  it('refuses GET_INFO with argsz 8 or without payload, as libvfio-user does', () => {
    expectVfioError(
      () => P.decodeDeviceInfoRequest(split(P.encodeDeviceInfoRequest(1, 8)).payload),
      'EINVAL',
      /argsz 8/,
    );
    expectVfioError(() => P.decodeDeviceInfoRequest(embed(new Uint8Array(0))), 'EINVAL', /exactly 16/);
  });

  it('answers the flags libvfio-user sends for a PCI device', () => {
    const r = roundTrip(
      P.encodeDeviceInfoReply(1, {
        flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
        numRegions: 9,
        numIrqs: 5,
      }),
      4,
      P.decodeDeviceInfoReply,
    );
    expect(r.flags).toBe(3);
  });

  it('round-trips IRQ info', () => {
    fc.assert(
      fc.property(
        msgId,
        fc.integer({ min: 16, max: 0xffffffff }),
        u32,
        u32,
        u32,
        (id, argsz, index, flags, count) => {
          expect(roundTrip(P.encodeIrqInfoRequest(id, { argsz, index }), 7, P.decodeIrqInfoRequest)).toEqual({
            argsz,
            index,
          });
          expect(
            roundTrip(P.encodeIrqInfoReply(id, { flags, index, count }), 7, P.decodeIrqInfoReply),
          ).toEqual({ argsz: 16, flags, index, count });
        },
      ),
    );
    expectVfioError(
      () => P.decodeIrqInfoRequest(split(P.encodeIrqInfoRequest(1, { argsz: 15, index: 0 })).payload),
      'EINVAL',
      /argsz 15/,
    );
  });

  it('accepts DEVICE_RESET only without payload', () => {
    expect(() => P.decodeResetRequest(split(P.encodeEmptyRequest(1, 13)).payload)).not.toThrow();
    expectVfioError(() => P.decodeResetRequest(embed(new Uint8Array(4))), 'EINVAL', /DEVICE_RESET/);
  });
});
