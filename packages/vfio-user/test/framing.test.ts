import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as P from '../src/protocol/index.js';
import { expectVfioError } from './helpers.js';

const message = fc
  .tuple(
    fc.integer({ min: 0, max: 0xffff }),
    fc.uint8Array({ maxLength: 300 }),
    fc.array(fc.integer({ min: 3, max: 999 }), { maxLength: 3 }),
  )
  .map(([id, data, fds]) => ({
    bytes: P.encodeRegionWriteRequest(id, { offset: 0, region: 0, count: data.length, data }),
    fds,
  }));

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('FrameReassembler', () => {
  it('yields the same messages with the same fds for any chunking of the stream', () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (msgs, cutsRaw) => {
          const stream = concat(msgs.map((m) => m.bytes));
          // Linux ends a recvmsg after the sendmsg that carried fds (earlier bytes may be glued in
          // front), and hands the fds over with the read that holds that sendmsg's first byte.
          const ends: number[] = [];
          let at = 0;
          for (const m of msgs) {
            at += m.bytes.length;
            if (m.fds.length) ends.push(at);
          }
          const cuts = [
            ...new Set([0, ...ends, ...cutsRaw.map((c) => c % (stream.length + 1)), stream.length]),
          ].sort((a, b) => a - b);
          const r = new P.FrameReassembler();
          const frames: P.Frame[] = [];
          for (let i = 0; i + 1 < cuts.length; i++) {
            const fds = msgs.flatMap((m, k) => {
              const first = offsetOf(msgs, k);
              return m.fds.length && first >= cuts[i] && first < cuts[i + 1] ? m.fds : [];
            });
            frames.push(...r.push(stream.subarray(cuts[i], cuts[i + 1]), fds));
          }
          expect(frames.length).toBe(msgs.length);
          frames.forEach((f, i) => {
            expect(Array.from(f.message)).toEqual(Array.from(msgs[i].bytes));
            expect(f.fds).toEqual(msgs[i].fds);
            expect(f.header.size).toBe(msgs[i].bytes.length);
            expect(f.payload.length).toBe(msgs[i].bytes.length - 16);
          });
          expect(r.buffered).toBe(0);
        },
      ),
    );
  });

  it('holds a header split across reads until the rest arrives', () => {
    const m = P.encodeRegionReadRequest(7, { offset: 0x10, region: 2, count: 4 });
    const r = new P.FrameReassembler();
    expect(r.push(m.subarray(0, 8))).toEqual([]);
    expect(r.buffered).toBe(8);
    const [f] = r.push(m.subarray(8));
    expect(f.header).toMatchObject({ msgId: 7, command: P.VFIO_USER_REGION_READ, size: 32 });
  });

  it('yields several messages from one read, and gives its fds to the last one (the read ends with them)', () => {
    const a = P.encodeEmptyRequest(1, P.VFIO_USER_DEVICE_RESET);
    const b = P.encodeDeviceInfoRequest(2);
    const frames = new P.FrameReassembler().push(concat([a, b, a]), [42]);
    expect(frames.map((f) => [f.header.msgId, f.payload.length, f.fds])).toEqual([
      [1, 0, []],
      [2, 16, []],
      [1, 0, [42]],
    ]);
  });

  it('gives the fds of a read that ends inside a message to that message', () => {
    const a = P.encodeEmptyRequest(1, P.VFIO_USER_DEVICE_RESET);
    const b = P.encodeDeviceInfoRequest(2);
    const r = new P.FrameReassembler();
    const first = r.push(concat([a, b.subarray(0, 20)]), [7]);
    expect(first.map((f) => f.fds)).toEqual([[]]);
    const [f] = r.push(b.subarray(20));
    expect(f.fds).toEqual([7]);
  });

  it('delivers the messages framed before a lost header with their fds, and keeps the rest for closing', () => {
    const a = P.encodeEmptyRequest(1, P.VFIO_USER_DEVICE_RESET);
    const bad = P.encodeDeviceInfoRequest(2);
    new DataView(bad.buffer).setUint32(4, 3, true);
    const r = new P.FrameReassembler();
    r.push(a.subarray(0, 8), [3]);
    const frames = r.push(concat([a.subarray(8), bad]), [4]);
    expect(frames.map((f) => [f.header.msgId, f.fds])).toEqual([[1, [3]]]);
    expect(r.failed).toBe(true);
    expect(r.lostHeader).toMatchObject({ msgId: 2, size: 3 });
    expect(r.lostError?.code).toBe('EPROTO');
    expect(r.takeFds()).toEqual([4]);
  });

  it('gives fds arriving in the middle of a message to that message', () => {
    const m = P.encodeRegionWriteRequest(3, { offset: 0, region: 0, count: 100, data: new Uint8Array(100) });
    const r = new P.FrameReassembler();
    r.push(m.subarray(0, 50), [5]);
    const [f] = r.push(m.subarray(50), [6]);
    expect(f.fds).toEqual([5, 6]);
  });

  it.each([
    ['below 16', 15],
    ['above the maximum', 1025],
  ])('refuses a msg_size %s with EPROTO, keeps the fds for closing and stays failed', (_what, size) => {
    const m = P.encodeDeviceInfoRequest(9);
    new DataView(m.buffer).setUint32(4, size, true);
    const r = new P.FrameReassembler({ maxMessageSize: 1024 });
    expect(r.push(m, [77])).toEqual([]);
    expect(r.failed).toBe(true);
    expect(r.lostError?.message).toMatch(/msg_size/);
    expectVfioError(() => r.push(P.encodeDeviceInfoRequest(1), [78]), 'EPROTO');
    expect(r.takeFds()).toEqual([77, 78]);
  });

  it('accepts a message of exactly the maximum size', () => {
    const m = P.encodeRegionWriteRequest(1, {
      offset: 0,
      region: 0,
      count: 1024 - 32,
      data: new Uint8Array(1024 - 32),
    });
    expect(new P.FrameReassembler({ maxMessageSize: 1024 }).push(m)).toHaveLength(1);
  });

  it('bounds the default maximum by max_data_xfer_size as libvfio-user does (1 MiB + 32)', () => {
    expect(P.maxMessageSize()).toBe(1024 * 1024 + 32);
    expect(P.maxMessageSize({ maxMsgFds: 1, maxDataXferSize: 16 })).toBe(64 * 1024);
  });
});

function offsetOf(msgs: { bytes: Uint8Array }[], k: number): number {
  let at = 0;
  for (let i = 0; i < k; i++) at += msgs[i].bytes.length;
  return at;
}
