/**
 * DEVICE_FEATURE and migration data (src/protocol/feature.ts): feature requests and replies, the
 * migration, device-state and DMA logging feature data, MIG_DATA_READ and MIG_DATA_WRITE.
 */
import {
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_MIGRATION,
} from '@vfiokit/core/abi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as P from '../src/protocol/index.js';
import { bytes, msgId, roundTrip } from './codec-helpers.js';
import { embed, expectVfioError, split } from './helpers.js';

describe('DEVICE_FEATURE and migration data', () => {
  it('round-trips feature requests and replies with their flags split out', () => {
    fc.assert(
      fc.property(
        msgId,
        fc.integer({ min: 0, max: 0xffff }),
        fc.constantFrom({ get: true }, { set: true }, { probe: true }, { probe: true, get: true, set: true }),
        bytes(64),
        (id, feature, op, data) => {
          const flags = P.featureFlags(feature, op);
          const r = roundTrip(
            P.encodeDeviceFeatureRequest(id, { flags, data }),
            16,
            P.decodeDeviceFeatureRequest,
          );
          expect(r).toMatchObject({
            argsz: 8 + data.length,
            flags,
            feature,
            get: !!op.get,
            set: !!op.set,
            probe: !!op.probe,
          });
          expect(Array.from(r.data)).toEqual(Array.from(data));
          const reply = roundTrip(
            P.encodeDeviceFeatureReply(id, { flags, data }),
            16,
            P.decodeDeviceFeatureReply,
          );
          expect(reply.argsz).toBe(8 + data.length);
        },
      ),
    );
  });

  it('refuses GET with SET but without PROBE, unknown flag bits and a short argsz', () => {
    const p = (flags: number, argsz?: number) =>
      split(P.encodeDeviceFeatureRequest(1, { flags, ...(argsz !== undefined ? { argsz } : {}) })).payload;
    expectVfioError(
      () => P.decodeDeviceFeatureRequest(p(P.featureFlags(2, { get: true, set: true }))),
      'EINVAL',
      /without PROBE/,
    );
    expectVfioError(() => P.decodeDeviceFeatureRequest(p(1 << 20)), 'EINVAL', /flags/);
    expectVfioError(() => P.decodeDeviceFeatureRequest(p(1 << 16, 4)), 'EINVAL', /argsz 4/);
  });

  it('round-trips the migration, device-state and DMA logging feature data', () => {
    expect(P.decodeMigrationFeatureData(embed(P.encodeMigrationFeatureData(5)))).toBe(5);
    expect(P.decodeMigStateData(embed(P.encodeMigStateData(3)))).toEqual({ deviceState: 3, dataFd: 0 });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.array(
          fc.record({
            iova: fc.integer({ min: 0, max: 2 ** 50 }),
            length: fc.integer({ min: 0, max: 2 ** 40 }),
          }),
          { maxLength: 8 },
        ),
        (pageSize, ranges) => {
          expect(P.decodeDmaLoggingControl(embed(P.encodeDmaLoggingControl({ pageSize, ranges })))).toEqual({
            pageSize,
            ranges,
          });
        },
      ),
    );
    const report = { iova: 0x100000, length: 64 * 4096 + 1, pageSize: 4096 };
    expect(P.dirtyBitmapBytes(report.length, report.pageSize)).toBe(16);
    expect(P.decodeDmaLoggingReport(embed(P.encodeDmaLoggingReport(report)))).toEqual(report);
    const bitmap = new Uint8Array(16).fill(0xff);
    const back = P.decodeDmaLoggingReportReply(embed(P.encodeDmaLoggingReport(report, bitmap)));
    expect(Array.from(back.bitmap)).toEqual(Array.from(bitmap));
    expect([
      VFIO_DEVICE_FEATURE_MIGRATION,
      VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
      VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
      VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
    ]).toEqual([1, 2, 6, 8]);
  });

  it('refuses a report page size that is not a power of two, a bitmap of the wrong size and one above the limit', () => {
    expectVfioError(
      () =>
        P.decodeDmaLoggingReport(embed(P.encodeDmaLoggingReport({ iova: 0, length: 4096, pageSize: 3000 }))),
      'EINVAL',
      /power of two/,
    );
    expectVfioError(
      () =>
        P.decodeDmaLoggingReportReply(
          embed(P.encodeDmaLoggingReport({ iova: 0, length: 4096, pageSize: 4096 }, new Uint8Array(16))),
        ),
      'EINVAL',
      /8 are needed/,
    );
    expectVfioError(
      () =>
        P.decodeDmaLoggingReport(
          embed(P.encodeDmaLoggingReport({ iova: 0, length: 2 ** 40, pageSize: 4096 })),
          { maxMsgFds: 1, maxDataXferSize: 4096 },
        ),
      'E2BIG',
    );
    expectVfioError(() => P.decodeDmaLoggingControl(embed(new Uint8Array(20))), 'EINVAL', /num_ranges/);
  });

  it('round-trips MIG_DATA_READ and MIG_DATA_WRITE and bounds their size', () => {
    fc.assert(
      fc.property(msgId, bytes(256), (id, data) => {
        expect(
          roundTrip(P.encodeMigDataReadRequest(id, data.length), 17, (p) => P.decodeMigDataReadRequest(p)),
        ).toEqual({ argsz: 8 + data.length, size: data.length });
        const r = roundTrip(P.encodeMigDataReadReply(id, data), 17, (p) => P.decodeMigDataReadReply(p));
        expect(Array.from(r.data)).toEqual(Array.from(data));
        const w = roundTrip(P.encodeMigDataWriteRequest(id, data), 18, (p) => P.decodeMigDataWriteRequest(p));
        expect([w.size, Array.from(w.data)]).toEqual([data.length, Array.from(data)]);
      }),
    );
    const limits = { maxMsgFds: 1, maxDataXferSize: 16 };
    expectVfioError(
      () => P.decodeMigDataReadRequest(split(P.encodeMigDataReadRequest(1, 17)).payload, limits),
      'E2BIG',
      /size 17/,
    );
    const small = P.encodeMigDataReadRequest(1, 8);
    small[16] = 9; // argsz 9 < 8 + 8
    expectVfioError(() => P.decodeMigDataReadRequest(split(small).payload), 'EINVAL', /argsz 9/);
    const w = P.encodeMigDataWriteRequest(1, new Uint8Array(4));
    expectVfioError(() => P.decodeMigDataWriteRequest(embed(w.subarray(16, 27))), 'EINVAL', /size 4 differs/);
  });
});
