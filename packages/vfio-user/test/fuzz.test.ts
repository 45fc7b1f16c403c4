import fc from 'fast-check';
import { describe, it } from 'vitest';
import * as P from '../src/protocol/index.js';
import { embed, onlyVfioError } from './helpers.js';

const limits = { maxMsgFds: 8, maxDataXferSize: 4096 };

/** Every decoder, given a payload embedded in poison and the fds that came with it. */
const DECODERS: Record<string, (payload: Uint8Array, fds: number[]) => unknown> = {
  version: (p) => P.decodeVersion(p),
  dmaMap: (p, f) => P.decodeDmaMapRequest(p, f),
  dmaUnmap: (p) => P.decodeDmaUnmapRequest(p),
  dmaUnmapReply: (p) => P.decodeDmaUnmapReply(p),
  dmaReadSpec: (p) => P.decodeDmaReadRequest(p, 'spec', limits),
  dmaReadQemu: (p) => P.decodeDmaReadRequest(p, 'qemu', limits),
  dmaReadReplySpec: (p) => P.decodeDmaReadReply(p, 'spec', limits),
  dmaReadReplyQemu: (p) => P.decodeDmaReadReply(p, 'qemu', limits),
  dmaWriteSpec: (p) => P.decodeDmaWriteRequest(p, 'spec', limits),
  dmaWriteQemu: (p) => P.decodeDmaWriteRequest(p, 'qemu', limits),
  dmaWriteReplySpec: (p) => P.decodeDmaWriteReply(p, 'spec', limits),
  dmaWriteReplyQemu: (p) => P.decodeDmaWriteReply(p, 'qemu', limits),
  deviceInfo: (p) => P.decodeDeviceInfoRequest(p),
  deviceInfoReply: (p) => P.decodeDeviceInfoReply(p),
  regionInfo: (p) => P.decodeRegionInfoRequest(p),
  regionInfoReply: (p, f) => P.decodeRegionInfoReply(p, f),
  ioFds: (p) => P.decodeRegionIoFdsRequest(p),
  ioFdsReply: (p, f) => P.decodeRegionIoFdsReply(p, f),
  irqInfo: (p) => P.decodeIrqInfoRequest(p),
  irqInfoReply: (p) => P.decodeIrqInfoReply(p),
  setIrqs: (p, f) => P.decodeSetIrqsRequest(p, f, limits),
  reset: (p) => P.decodeResetRequest(p),
  regionRead: (p) => P.decodeRegionReadRequest(p, limits),
  regionReadReply: (p) => P.decodeRegionReadReply(p, limits),
  regionWrite: (p) => P.decodeRegionWriteRequest(p, limits),
  regionWriteReply: (p) => P.decodeRegionWriteReply(p, limits),
  writeMulti: (p) => P.decodeRegionWriteMultiRequest(p),
  writeMultiReply: (p) => P.decodeRegionWriteMultiReply(p),
  feature: (p) => P.decodeDeviceFeatureRequest(p),
  featureReply: (p) => P.decodeDeviceFeatureReply(p),
  migrationData: (p) => P.decodeMigrationFeatureData(p),
  migState: (p) => P.decodeMigStateData(p),
  loggingControl: (p) => P.decodeDmaLoggingControl(p),
  loggingReport: (p) => P.decodeDmaLoggingReport(p, limits),
  loggingReportReply: (p) => P.decodeDmaLoggingReportReply(p, limits),
  migDataRead: (p) => P.decodeMigDataReadRequest(p, limits),
  migDataReadReply: (p) => P.decodeMigDataReadReply(p, limits),
  migDataWrite: (p) => P.decodeMigDataWriteRequest(p, limits),
  header: (p) => P.decodeHeader(p),
};

/** Valid messages to mutate, so the fuzzer reaches past the first length check. */
const SEEDS: Uint8Array[] = [
  P.encodeVersionRequest(1, {
    major: 0,
    minor: 2,
    capabilities: { maxMsgFds: 8, migration: { pgsize: 4096 }, twinSocket: { supported: true } },
  }),
  P.encodeDmaMapRequest(1, { flags: 3, offset: 0, address: 0x1000, size: 0x1000 }),
  P.encodeDmaUnmapRequest(1, { argsz: 24, flags: 0, address: 0x1000, size: 0x1000 }),
  P.encodeDmaWriteRequest(1, { address: 0, count: 8, data: new Uint8Array(8).fill(1) }),
  P.encodeDmaWriteRequest(1, { address: 0, count: 8, data: new Uint8Array(8).fill(1) }, 'qemu'),
  P.encodeDeviceInfoRequest(1),
  P.encodeRegionInfoReply(
    1,
    {
      flags: 7,
      index: 0,
      size: 0x10000,
      offset: 0,
      caps: [
        { kind: 'sparse-mmap', areas: [{ offset: 0, size: 4096 }] },
        { kind: 'type', type: 1, subtype: 1 },
        { kind: 'msix-mappable' },
      ],
    },
    4096,
  ).bytes,
  P.encodeRegionIoFdsReply(
    1,
    { index: 0, subRegions: [{ offset: 0, size: 4, fdIndex: 0, type: 0, flags: 0, data: 1n }] },
    4096,
  ).bytes,
  P.encodeSetIrqsRequest(1, {
    index: 0,
    start: 0,
    count: 4,
    dataType: 'bool',
    action: 'trigger',
    bools: new Uint8Array([1, 0, 1, 0]),
  }),
  P.encodeRegionWriteRequest(1, { offset: 0, region: 0, count: 4, data: new Uint8Array(4) }),
  P.encodeRegionWriteMultiRequest(1, [{ offset: 0, region: 0, count: 2, data: new Uint8Array(2) }]),
  P.encodeDeviceFeatureRequest(1, {
    flags: P.featureFlags(6, { set: true }),
    data: P.encodeDmaLoggingControl({ pageSize: 4096, ranges: [{ iova: 0, length: 4096 }] }),
  }),
  P.encodeDeviceFeatureReply(1, {
    flags: P.featureFlags(8, { get: true }),
    data: P.encodeDmaLoggingReport({ iova: 0, length: 4096 * 64, pageSize: 4096 }, new Uint8Array(8)),
  }),
  P.encodeMigDataWriteRequest(1, new Uint8Array(16)),
].map((m) => m.subarray(16));

const mutated = fc
  .tuple(
    fc.constantFrom(...SEEDS),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.option(fc.nat(), { nil: undefined }),
  )
  .map(([seed, edits, cut]) => {
    const out = seed.slice();
    for (const [at, v] of edits) if (out.length) out[at % out.length] = v;
    return cut === undefined ? out : out.subarray(0, cut % (out.length + 1));
  });

const anyPayload = fc.oneof(fc.uint8Array({ maxLength: 200 }), mutated);
const fds = fc.array(fc.integer({ min: 3, max: 50 }), { maxLength: 3 });

describe('decoders under random and mutated input', () => {
  for (const [name, decode] of Object.entries(DECODERS)) {
    it(`${name} throws only VfioError and never reads past its input`, () => {
      fc.assert(
        fc.property(anyPayload, fds, fc.integer({ min: 0, max: 255 }), (payload, f, poison) => {
          onlyVfioError(() => decode(embed(payload, poison), f));
        }),
        { numRuns: 300 },
      );
    });
  }

  it('gives the same answer whatever poison surrounds the payload', () => {
    fc.assert(
      fc.property(mutated, fds, (payload, f) => {
        for (const decode of Object.values(DECODERS)) {
          const a = outcome(() => decode(embed(payload, 0x00), f));
          const b = outcome(() => decode(embed(payload, 0xff), f));
          if (a !== b) throw new Error(`the outcome depends on bytes after the payload: ${a} vs ${b}`);
        }
      }),
      { numRuns: 200 },
    );
  });
});

function outcome(fn: () => unknown): string {
  try {
    return JSON.stringify(fn() ?? null, (_k, v) =>
      typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Array.from(v) : v,
    );
  } catch (err) {
    return `throw ${(err as Error).message}`;
  }
}
