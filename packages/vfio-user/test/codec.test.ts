/**
 * Round trips and refusals of every message codec, one describe per command (header, VERSION,
 * DMA, device queries, region info and I/O fds, SET_IRQS, region access, device features); past
 * 600 lines because it covers the whole protocol folder.
 */
import {
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
} from '@vfiokit/core/abi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as P from '../src/protocol/index.js';
import { embed, expectVfioError, split } from './helpers.js';

const msgId = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.maxSafeNat();
const bytes = (max: number) => fc.uint8Array({ maxLength: max });

function roundTrip<T>(encoded: Uint8Array, command: number, decode: (payload: Uint8Array) => T): T {
  const { header, payload } = split(encoded);
  expect(header.command).toBe(command);
  expect(header.size).toBe(encoded.length);
  return decode(payload);
}

describe('header', () => {
  it('puts msg id, command, size, flags and errno at the offsets of the spec', () => {
    const m = P.encodeErrorReply(0x1234, P.VFIO_USER_REGION_READ, 22);
    expect(Array.from(m)).toEqual([0x34, 0x12, 9, 0, 16, 0, 0, 0, 0x21, 0, 0, 0, 22, 0, 0, 0]);
    const h = P.decodeHeader(m);
    expect(P.isReply(h) && P.isErrorReply(h)).toBe(true);
    expect(P.replyErrno(h)).toBe(22);
  });

  it('reads an errno of 0 or above 4096 in an error reply as EINVAL, as libvfio-user does', () => {
    expect(P.replyErrno(P.decodeHeader(P.encodeErrorReply(1, 4, 0)))).toBe(22);
    expect(P.replyErrno(P.decodeHeader(P.encodeErrorReply(1, 4, 5000)))).toBe(22);
    expect(P.replyErrno(P.decodeHeader(P.encodeErrorReply(1, 4, 14)))).toBe(14);
  });

  it('sets No_reply only when asked', () => {
    expect(P.wantsReply(P.decodeHeader(P.encodeEmptyRequest(1, P.VFIO_USER_DEVICE_RESET)))).toBe(true);
    const h = P.decodeHeader(P.encodeEmptyRequest(1, P.VFIO_USER_DEVICE_RESET, { noReply: true }));
    expect(P.wantsReply(h)).toBe(false);
    expect(P.isCommand(h)).toBe(true);
  });

  it('refuses a header shorter than 16 bytes with EPROTO', () => {
    expectVfioError(() => P.decodeHeader(new Uint8Array(15)), 'EPROTO');
  });

  it('refuses a msg id that does not fit 16 bits', () => {
    expectVfioError(() => P.encodeEmptyRequest(0x10000, P.VFIO_USER_DEVICE_RESET), 'EINVAL', /msg_id/);
  });

  it('names commands as the spec does', () => {
    expect(P.commandName(P.VFIO_USER_DEVICE_FEATURE)).toBe('VFIO_USER_DEVICE_FEATURE');
    expect(P.commandName(14)).toBe('command 14');
    // Every number names a known command or says it is none, out of range and non-integers too.
    expect(P.commandName(P.VFIO_USER_VERSION)).toBe('VFIO_USER_VERSION');
    expect(P.commandName(P.VFIO_USER_MIG_DATA_WRITE)).toBe('VFIO_USER_MIG_DATA_WRITE');
    for (const bad of [0, -1, 1.5, 31, 32, 0xffff, Number.NaN])
      expect(P.commandName(bad)).toBe(`command ${bad}`);
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18].every(P.isKnownCommand)).toBe(true);
    expect(P.isKnownCommand(14)).toBe(false);
  });
});

describe('VERSION', () => {
  const caps = fc.record(
    {
      maxMsgFds: fc.integer({ min: 0, max: 1024 }),
      maxDataXferSize: fc.integer({ min: 1, max: 0xffffffff }),
      maxDmaMaps: u32,
      pgsizes: fc.integer({ min: 1, max: 2 ** 40 }),
      migration: fc.record(
        { pgsize: fc.integer({ min: 1, max: 2 ** 30 }), maxBitmapSize: fc.integer({ min: 0, max: 2 ** 40 }) },
        { requiredKeys: ['pgsize'] },
      ),
      twinSocket: fc.record(
        { supported: fc.boolean(), fdIndex: fc.integer({ min: 0, max: 8 }) },
        { requiredKeys: [] },
      ),
      writeMultiple: fc.boolean(),
    },
    { requiredKeys: [] },
  );

  it('round-trips major, minor and every capability', () => {
    fc.assert(
      fc.property(
        msgId,
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        caps,
        (id, major, minor, c) => {
          const v = roundTrip(
            P.encodeVersionRequest(id, { major, minor, capabilities: c }),
            1,
            P.decodeVersion,
          );
          expect(v).toEqual({ major, minor, capabilities: c });
        },
      ),
    );
  });

  it('accepts a version without JSON and ends the JSON with one NUL', () => {
    expect(roundTrip(P.encodeVersionReply(1, { major: 0, minor: 2 }), 1, P.decodeVersion)).toEqual({
      major: 0,
      minor: 2,
    });
    const m = P.encodeVersionReply(1, { major: 0, minor: 2, capabilities: { maxMsgFds: 8 } });
    expect(m[m.length - 1]).toBe(0);
    expect(new TextDecoder().decode(m.subarray(20, -1))).toBe('{"capabilities":{"max_msg_fds":8}}');
  });

  it('parses what libvfio-user sends and ignores unknown keys', () => {
    const json =
      '{"capabilities":{"max_msg_fds":8,"max_data_xfer_size":1048576,"migration":{"pgsize":4096},"future":{"x":1}},"other":true}';
    const payload = new Uint8Array(4 + json.length + 1);
    payload.set(new TextEncoder().encode(json), 4);
    payload[2] = 2;
    expect(P.decodeVersion(embed(payload))).toEqual({
      major: 0,
      minor: 2,
      capabilities: { maxMsgFds: 8, maxDataXferSize: 1048576, migration: { pgsize: 4096 } },
    });
  });

  const withJson = (json: string, nul = true) => {
    const text = new TextEncoder().encode(json);
    const p = new Uint8Array(4 + text.length + (nul ? 1 : 0));
    p.set(text, 4);
    return embed(p);
  };

  it.each([
    ['a string where a number belongs', '{"capabilities":{"max_msg_fds":"8"}}', /max_msg_fds/],
    ['a negative max_msg_fds', '{"capabilities":{"max_msg_fds":-1}}', /max_msg_fds/],
    ['max_msg_fds above 1024', '{"capabilities":{"max_msg_fds":1025}}', /max_msg_fds/],
    ['a fractional max_data_xfer_size', '{"capabilities":{"max_data_xfer_size":1.5}}', /max_data_xfer_size/],
    ['a zero max_data_xfer_size', '{"capabilities":{"max_data_xfer_size":0}}', /max_data_xfer_size/],
    ['migration without pgsize', '{"capabilities":{"migration":{}}}', /pgsize/],
    ['migration that is not an object', '{"capabilities":{"migration":4096}}', /migration/],
    [
      'twin_socket.supported as a number',
      '{"capabilities":{"twin_socket":{"supported":1}}}',
      /twin_socket\.supported/,
    ],
    ['write_multiple as a string', '{"capabilities":{"write_multiple":"yes"}}', /write_multiple/],
    ['capabilities as an array', '{"capabilities":[]}', /capabilities/],
    ['a JSON array', '[1]', /object/],
    ['invalid JSON', '{"capabilities":', /not JSON/],
  ])('refuses %s with EINVAL', (_what, json, pattern) => {
    expectVfioError(() => P.decodeVersion(withJson(json)), 'EINVAL', pattern);
  });

  it('refuses JSON without its NUL, a NUL inside, and invalid UTF-8', () => {
    expectVfioError(() => P.decodeVersion(withJson('{}', false)), 'EINVAL', /NUL-terminated/);
    expectVfioError(() => P.decodeVersion(withJson('{}\u0000{}')), 'EINVAL', /NUL at byte 2/);
    const bad = new Uint8Array([0, 0, 0, 0, 0xff, 0xfe, 0]);
    expectVfioError(() => P.decodeVersion(embed(bad)), 'EINVAL', /UTF-8/);
    expectVfioError(() => P.decodeVersion(embed(new Uint8Array(3))), 'EINVAL', /at least 4/);
  });

  it('applies the spec defaults for limits that were not announced', () => {
    expect(P.capabilityLimits({})).toEqual({ maxMsgFds: 1, maxDataXferSize: 1048576 });
    expect(P.capabilityLimits({ maxMsgFds: 8, maxDataXferSize: 4096 })).toEqual({
      maxMsgFds: 8,
      maxDataXferSize: 4096,
    });
  });
});

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
