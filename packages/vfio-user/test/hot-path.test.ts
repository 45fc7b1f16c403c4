/**
 * The allocation-free hot path: FrameReassembler.feed and its lent frames, the in-place region
 * access decoders and reply writer, and a session serving reads and writes from reused buffers,
 * each checked against the allocating path it stands beside.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VFIO_PCI_CONFIG_REGION_INDEX } from '@vfiokit/core';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/host.js';
import {
  VFIO_USER_F_NO_REPLY,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_WRITE,
  VFIO_USER_REGION_WRITE_MULTI,
} from '../src/protocol/constants.js';
import { BORROW_MAX, type Frame, FrameReassembler, ownFrame } from '../src/protocol/framing.js';
import { DEFAULT_LIMITS, isErrorReply } from '../src/protocol/header.js';
import {
  allocRegionReadReply,
  checkRegionWriteMultiRequest,
  decodeRegionReadReply,
  decodeRegionReadRequest,
  decodeRegionReadRequestInto,
  decodeRegionWriteMultiRequest,
  decodeRegionWriteRequest,
  decodeRegionWriteRequestInto,
  encodeRegionReadRequest,
  encodeRegionWriteMultiRequest,
  encodeRegionWriteReply,
  encodeRegionWriteRequest,
  putRegionReply,
  putRegionRequest,
  putSmallData,
  putWriteMultiEntry,
  type RegionAccessSlot,
} from '../src/protocol/region.js';
import { encodeVersionRequest } from '../src/protocol/version.js';
import { putHeaderAt } from '../src/protocol/wire.js';
import { createPluginHostForServer } from '../src/server/plugin-host.js';
import { serveDevice, type VfioUserServer } from '../src/server/server.js';
import { MessageConnection } from '../src/transport.js';
import { MMAP_AREA, TestDevice } from './device.js';
import { waitFor } from './helpers.js';
import { RawClient } from './raw-client.js';

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** What a frame says, copied out (a lent frame is only valid during its call). */
function summary(f: Frame) {
  const h = f.header;
  return {
    msgId: h.msgId,
    command: h.command,
    size: h.size,
    flags: h.flags,
    errno: h.errno,
    message: Array.from(f.message),
    payload: Array.from(f.payload),
    fds: [...f.fds],
  };
}

// Small and large REGION_WRITEs, so that some messages are lent and some are not.
const message = fc
  .tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: BORROW_MAX + 64 }))
  .map(([id, data]) => encodeRegionWriteRequest(id, { offset: 0, region: 0, count: data.length, data }));

describe('FrameReassembler.feed', () => {
  it('hands out the same messages as push() for any chunking, lending whole ones (copied when small, else views of the chunk)', () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (msgs, cutsRaw) => {
          const stream = concat(msgs);
          const cuts = [...new Set([0, ...cutsRaw.map((c) => c % (stream.length + 1)), stream.length])].sort(
            (a, b) => a - b,
          );
          const pushed: ReturnType<typeof summary>[] = [];
          const fed: ReturnType<typeof summary>[] = [];
          const a = new FrameReassembler();
          const b = new FrameReassembler();
          for (let i = 0; i + 1 < cuts.length; i++) {
            const chunk = stream.subarray(cuts[i], cuts[i + 1]);
            for (const f of a.push(chunk)) pushed.push(summary(f));
            b.feed(chunk, [], (f, lent) => {
              if (lent && f.message.length > BORROW_MAX) expect(f.message.buffer).toBe(chunk.buffer);
              else if (lent) expect(f.message.buffer).not.toBe(chunk.buffer);
              fed.push(summary(f));
            });
          }
          expect(fed).toEqual(pushed);
          expect(fed.length).toBe(msgs.length);
          expect(b.buffered).toBe(0);
        },
      ),
    );
  });

  it('reuses one frame for the small messages of a chunk and gives fds only in frames of their own', () => {
    const small = encodeRegionReadRequest(1, { offset: 0, region: 0, count: 4 });
    const small2 = encodeRegionReadRequest(2, { offset: 4, region: 0, count: 4 });
    const r = new FrameReassembler();
    const seen: { frame: Frame; lent: boolean; id: number }[] = [];
    r.feed(concat([small, small2]), [], (frame, lent) => seen.push({ frame, lent, id: frame.header.msgId }));
    expect(seen.map((s) => [s.id, s.lent])).toEqual([
      [1, true],
      [2, true],
    ]);
    expect(seen[0].frame).toBe(seen[1].frame);
    const withFds: { fds: number[]; lent: boolean }[] = [];
    r.feed(small, [7, 8], (frame, lent) => withFds.push({ fds: [...frame.fds], lent }));
    expect(withFds).toEqual([{ fds: [7, 8], lent: false }]);
  });

  it('keeps a lent frame intact in ownFrame() after the next message overwrote the buffer', () => {
    const r = new FrameReassembler();
    const kept: Frame[] = [];
    const a = encodeRegionReadRequest(1, { offset: 0x10, region: 0, count: 4 });
    const b = encodeRegionReadRequest(2, { offset: 0x20, region: 0, count: 4 });
    r.feed(concat([a, b]), [], (frame) => kept.push(ownFrame(frame)));
    expect(kept.map((f) => f.header.msgId)).toEqual([1, 2]);
    expect(Array.from(kept[0].message)).toEqual(Array.from(a));
    expect(decodeRegionReadRequest(kept[0].payload).offset).toBe(0x10);
  });

  it('loses framing on a bad msg_size as push() does, handing out the messages before it', () => {
    const good = encodeRegionReadRequest(1, { offset: 0, region: 0, count: 4 });
    const bad = encodeRegionReadRequest(2, { offset: 0, region: 0, count: 4 });
    new DataView(bad.buffer).setUint32(4, 8, true);
    const stream = concat([good, bad]);
    const byPush = new FrameReassembler();
    const pushed = byPush.push(stream).map((f) => f.header.msgId);
    const byFeed = new FrameReassembler();
    const fed: number[] = [];
    byFeed.feed(stream, [], (f) => fed.push(f.header.msgId));
    expect(fed).toEqual(pushed);
    expect(fed).toEqual([1]);
    expect(byFeed.failed).toBe(true);
    expect(byFeed.lostError?.message).toBe(byPush.lostError?.message);
    expect(byFeed.lostHeader?.msgId).toBe(2);
  });
});

/** Payloads of REGION_READ/WRITE requests, well formed or not. */
const accessPayload = fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  fc
    .tuple(
      fc.oneof(fc.nat(), fc.constant(2 ** 53 - 1), fc.constant(2 ** 53)),
      fc.nat(),
      fc.oneof(fc.nat({ max: 64 }), fc.constant(2 ** 21)),
      fc.uint8Array({ maxLength: 64 }),
    )
    .map(([offset, region, count, data]) => {
      const p = new Uint8Array(16 + data.length);
      const dv = new DataView(p.buffer);
      dv.setUint32(0, offset % 2 ** 32, true);
      dv.setUint32(4, Math.floor(offset / 2 ** 32), true);
      dv.setUint32(8, region >>> 0, true);
      dv.setUint32(12, count >>> 0, true);
      p.set(data, 16);
      return p;
    }),
);

function outcome(fn: () => unknown): unknown {
  try {
    return { ok: fn() };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

describe('allocation-free region access codecs', () => {
  it('decode exactly what decodeRegionReadRequest and decodeRegionWriteRequest decode, errors included', () => {
    const slot: RegionAccessSlot = { offset: 0, region: 0, count: 0 };
    const copy = () => ({ offset: slot.offset, region: slot.region, count: slot.count });
    fc.assert(
      fc.property(accessPayload, (p) => {
        const read = outcome(() => {
          const a = decodeRegionReadRequest(p, DEFAULT_LIMITS);
          return { offset: a.offset, region: a.region, count: a.count };
        });
        expect(
          outcome(() => {
            decodeRegionReadRequestInto(p, DEFAULT_LIMITS, slot);
            return copy();
          }),
        ).toEqual(read);
        const write = outcome(() => {
          const d = decodeRegionWriteRequest(p, DEFAULT_LIMITS);
          return { offset: d.offset, region: d.region, count: d.count };
        });
        expect(
          outcome(() => {
            decodeRegionWriteRequestInto(p, DEFAULT_LIMITS, slot);
            return copy();
          }),
        ).toEqual(write);
      }),
    );
  });

  it('write the replies allocRegionReadReply and encodeRegionWriteReply write', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.nat({ max: 2 ** 53 - 65 }),
        fc.nat(),
        fc.uint8Array({ maxLength: 64 }),
        (msgId, offset, region, data) => {
          const a = { offset, region: region >>> 0, count: data.length };
          const read = allocRegionReadReply(msgId, a);
          read.data.set(data);
          const mine = new Uint8Array(read.bytes.length);
          mine.set(data, 32);
          putRegionReply(new DataView(mine.buffer), mine.length, msgId, VFIO_USER_REGION_READ, a);
          expect(Array.from(mine)).toEqual(Array.from(read.bytes));
          const written = encodeRegionWriteReply(msgId, a);
          const mine2 = new Uint8Array(32);
          putRegionReply(new DataView(mine2.buffer), 32, msgId, VFIO_USER_REGION_WRITE, a);
          expect(Array.from(mine2)).toEqual(Array.from(written));
        },
      ),
    );
  });
});

/** REGION_WRITE_MULTI decoded as it was before the in-place check: DataView reads, entry by entry. */
function referenceWriteMulti(payload: Uint8Array) {
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.length);
  if (payload.length < 8) throw new Error('short');
  const u64 = (at: number) => {
    const hi = dv.getUint32(at + 4, true);
    if (hi > 0x1fffff) throw new Error('EOVERFLOW');
    return hi * 2 ** 32 + dv.getUint32(at, true);
  };
  const n = u64(0);
  if (n !== (payload.length - 8) / 24) throw new Error('EINVAL count');
  const out: { offset: number; region: number; count: number; data: number[] }[] = [];
  for (let i = 0; i < n; i++) {
    const p = 8 + i * 24;
    const offset = u64(p);
    const count = dv.getUint32(p + 12, true);
    if (count > 8) throw new Error('EINVAL entry');
    if (offset + count > Number.MAX_SAFE_INTEGER) throw new Error('EOVERFLOW');
    out.push({
      offset,
      region: dv.getUint32(p + 8, true),
      count,
      data: Array.from(payload.subarray(p + 16, p + 16 + count)),
    });
  }
  return out;
}

/** What happened, with the error's errno kind only (the wording is the codec's own). */
function kind(fn: () => unknown): unknown {
  try {
    return { ok: fn() };
  } catch (err) {
    const m = (err as Error).message;
    return { error: /EOVERFLOW|above 2\^53|wraps/.test(m) ? 'EOVERFLOW' : 'EINVAL' };
  }
}

const multiEntry = fc.record({
  offsetLo: fc.nat({ max: 0xffffffff }),
  offsetHi: fc.oneof(fc.nat({ max: 0x1fffff }), fc.nat({ max: 0xffffffff })),
  region: fc.nat({ max: 0xffffffff }),
  count: fc.oneof(fc.nat({ max: 8 }), fc.nat({ max: 0xffffffff })),
  data: fc.uint8Array({ minLength: 8, maxLength: 8 }),
});

describe('REGION_WRITE_MULTI without allocation', () => {
  it('checks and decodes any payload as the entry-by-entry decoder did, errors included (property)', () => {
    fc.assert(
      fc.property(
        fc.array(multiEntry, { maxLength: 6 }),
        fc.integer({ min: -2, max: 2 }),
        (entries, skew) => {
          const payload = new Uint8Array(8 + entries.length * 24);
          const dv = new DataView(payload.buffer);
          dv.setUint32(0, Math.max(0, entries.length + skew), true);
          entries.forEach((e, i) => {
            const p = 8 + i * 24;
            dv.setUint32(p, e.offsetLo, true);
            dv.setUint32(p + 4, e.offsetHi, true);
            dv.setUint32(p + 8, e.region, true);
            dv.setUint32(p + 12, e.count, true);
            payload.set(e.data, p + 16);
          });
          const want = kind(() => referenceWriteMulti(payload));
          expect(
            kind(() =>
              decodeRegionWriteMultiRequest(payload).map((w) => ({ ...w, data: Array.from(w.data) })),
            ),
          ).toEqual(want);
          const n = kind(() => checkRegionWriteMultiRequest(payload));
          expect(n).toEqual('ok' in (want as object) ? { ok: (want as { ok: unknown[] }).ok.length } : want);
          // The same payload lent inside a larger buffer (a receive buffer), read through one
          // view of that whole buffer, as the server reads it.
          const lent = new Uint8Array(payload.length + 24).fill(0xff);
          lent.set(payload, 16);
          const inPlace = lent.subarray(16, 16 + payload.length);
          expect(kind(() => checkRegionWriteMultiRequest(inPlace, new DataView(lent.buffer)))).toEqual(n);
        },
      ),
    );
  });

  it('refuses a view that is not of the whole buffer under the payload, instead of reading the wrong bytes', () => {
    const payload = encodeRegionWriteMultiRequest(1, [
      { offset: 0, region: 0, count: 4, data: new Uint8Array(4) },
    ]).subarray(16);
    expect(() => checkRegionWriteMultiRequest(payload, new DataView(new ArrayBuffer(64)))).toThrow(
      /whole buffer under payload/,
    );
    expect(() => checkRegionWriteMultiRequest(payload, new DataView(payload.buffer, 16))).toThrow(
      /whole buffer under payload/,
    );
    expect(checkRegionWriteMultiRequest(payload, new DataView(payload.buffer))).toBe(1);
  });

  it('builds requests and entries in place exactly as the allocating encoders do', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.array(
          fc.record({
            offset: fc.nat({ max: 2 ** 53 - 9 }),
            region: fc.nat({ max: 0xffffffff }),
            data: fc.uint8Array({ maxLength: 8 }),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        (msgId, writes) => {
          const w0 = writes[0];
          const read = new Uint8Array(32);
          putRegionRequest(
            new DataView(read.buffer),
            32,
            msgId,
            VFIO_USER_REGION_READ,
            0,
            w0.region,
            w0.offset,
            w0.data.length,
          );
          expect(Array.from(read)).toEqual(
            Array.from(
              encodeRegionReadRequest(msgId, { offset: w0.offset, region: w0.region, count: w0.data.length }),
            ),
          );
          const write = new Uint8Array(32 + w0.data.length);
          const writeView = new DataView(write.buffer);
          putRegionRequest(
            writeView,
            write.length,
            msgId,
            VFIO_USER_REGION_WRITE,
            VFIO_USER_F_NO_REPLY,
            w0.region,
            w0.offset,
            w0.data.length,
          );
          putSmallData(writeView, 32, w0.data, false);
          const d = writes.map((w) => ({
            offset: w.offset,
            region: w.region,
            count: w.data.length,
            data: w.data,
          }));
          expect(Array.from(write)).toEqual(
            Array.from(encodeRegionWriteRequest(msgId, d[0], { noReply: true })),
          );
          const multi = encodeRegionWriteMultiRequest(msgId, d, { noReply: true });
          const mine = new Uint8Array(multi.length).fill(0xee);
          const dv = new DataView(mine.buffer);
          putHeaderAt(dv, mine.length, msgId, VFIO_USER_REGION_WRITE_MULTI, VFIO_USER_F_NO_REPLY);
          dv.setUint32(16, writes.length, true);
          dv.setUint32(20, 0, true);
          writes.forEach((w, i) => {
            putWriteMultiEntry(dv, 24 + i * 24, w.region, w.offset, w.data);
          });
          expect(Array.from(mine)).toEqual(Array.from(multi));
        },
      ),
    );
  });
});

const pathOf = (dir: string) => join(dir, 'dev.sock');

describe('a session on the hot path', () => {
  let dir: string;
  let server: VfioUserServer;
  let client: RawClient;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vfio-user-hot-'));
    const path = pathOf(dir);
    const device = new TestDevice('hot0', createPluginHostForServer({ log: silentLogger }));
    server = await serveDevice({ socketPath: path, device, log: silentLogger });
    client = await RawClient.connect(path);
    await client.handshake();
    // COMMAND.MEMORY on: BAR0 decodes.
    await client.call(
      encodeRegionWriteRequest(client.nextId(), {
        offset: 4,
        region: VFIO_PCI_CONFIG_REGION_INDEX,
        count: 2,
        data: new Uint8Array([0x06, 0x00]),
      }),
    );
  });

  afterEach(async () => {
    client.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers thousands of pipelined reads correctly although every reply is built in one buffer', async () => {
    // Two thousand 256-byte reads in one sendmsg: the server reads them in one go and its
    // replies (576 KiB) outrun the socket, so most wait in its send queue. Those must be copies,
    // not views of the buffer the next reply is built in.
    const pattern = Uint8Array.from({ length: 4096 }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
    client.close(); // one client at a time: the raw connection below is the next session
    const replies: Frame[] = [];
    const N = 2000;
    const conn = await MessageConnection.connect(pathOf(dir), { onMessage: (f) => replies.push(f) });
    conn.send(encodeVersionRequest(1, { major: 0, minor: 2, capabilities: {} }));
    conn.send(
      encodeRegionWriteRequest(2, {
        offset: 4,
        region: VFIO_PCI_CONFIG_REGION_INDEX,
        count: 2,
        data: new Uint8Array([0x06, 0x00]),
      }),
    );
    conn.send(
      encodeRegionWriteRequest(3, { offset: MMAP_AREA.offset, region: 0, count: 4096, data: pattern }),
    );
    await waitFor(() => replies.length === 3);
    for (const f of replies) expect(isErrorReply(f.header)).toBe(false);
    const reads = Array.from({ length: N }, (_, i) =>
      encodeRegionReadRequest((i + 4) & 0xffff, {
        offset: MMAP_AREA.offset + (i % 16) * 256,
        region: 0,
        count: 256,
      }),
    );
    conn.socket.send(concat(reads));
    await waitFor(() => replies.length === N + 3, 20_000);
    conn.close();
    for (let i = 0; i < N; i++) {
      const f = replies[i + 3];
      expect(isErrorReply(f.header)).toBe(false);
      expect(f.header.msgId).toBe((i + 4) & 0xffff);
      const at = (i % 16) * 256;
      expect(Array.from(decodeRegionReadReply(f.payload).data)).toEqual(
        Array.from(pattern.subarray(at, at + 256)),
      );
    }
  });

  it('still refuses a read outside the region, with the request that asked echoed in no reply', async () => {
    const f = await client.call(
      encodeRegionReadRequest(client.nextId(), { offset: 1 << 30, region: 0, count: 4 }),
    );
    expect(isErrorReply(f.header)).toBe(true);
    expect(f.header.errno).toBe(22);
    // The next read on the reused buffers is whole.
    const g = await client.call(encodeRegionReadRequest(client.nextId(), { offset: 0, region: 0, count: 4 }));
    expect(decodeRegionReadReply(g.payload).count).toBe(4);
  });
});
