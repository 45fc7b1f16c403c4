import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  allocateMemfdMemory,
  closeFds,
  Eventfd,
  mapFd,
  openFdCount,
  UnixListener,
} from '../src/native/index.js';
import * as P from '../src/protocol/index.js';
import { MessageConnection } from '../src/transport.js';
import { waitFor } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'vfiokit-transport-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('MessageConnection', () => {
  it('carries messages with fds both ways, and a received memfd is the same memory', async () => {
    const [client, server] = MessageConnection.pair();
    const mem = allocateMemfdMemory('guest-ram', 1 << 16);
    client.send(P.encodeDmaMapRequest(1, { flags: 3, offset: 0, address: 0x100000, size: 1 << 16 }), [
      mem.fd,
    ]);
    const req = await server.nextMessage(2000);
    expect(req.header).toMatchObject({ msgId: 1, command: P.VFIO_USER_DMA_MAP });
    const map = P.decodeDmaMapRequest(req.payload, req.fds);
    expect(map.fd).toBeDefined();
    const serverView = new Uint8Array(mapFd(map.fd!, map.size));
    serverView.set([0xde, 0xad], 0x200);
    expect(Array.from(mem.bytes.subarray(0x200, 0x202))).toEqual([0xde, 0xad]);
    mem.bytes[0x300] = 0x42;
    expect(serverView[0x300]).toBe(0x42);

    // Server to client: a region fd in a REGION_INFO reply.
    const bar = allocateMemfdMemory('bar2', 4096);
    const { bytes } = P.encodeRegionInfoReply(1, { flags: 7, index: 2, size: 4096, offset: 0, caps: [] }, 32);
    server.send(bytes, [bar.fd]);
    const reply = await client.nextMessage(2000);
    const info = P.decodeRegionInfoReply(reply.payload, reply.fds);
    new Uint8Array(mapFd(info.fd!, 4096))[5] = 0x99;
    expect(bar.bytes[5]).toBe(0x99);

    closeFds([map.fd!, info.fd!]);
    mem.close();
    bar.close();
    client.close();
    server.close();
  });

  it('passes SET_IRQS eventfds that the receiver can signal back through', async () => {
    const [client, server] = MessageConnection.pair();
    const irqs = [new Eventfd(), new Eventfd()];
    client.send(
      P.encodeSetIrqsRequest(5, { index: 2, start: 0, count: 2, dataType: 'eventfd', action: 'trigger' }),
      irqs.map((e) => e.fd),
    );
    const f = await server.nextMessage(2000);
    const set = P.decodeSetIrqsRequest(f.payload, f.fds, { maxMsgFds: 8, maxDataXferSize: 4096 });
    const serverSide = new Eventfd(set.fds[1]);
    const waited = irqs[1].wait(2000);
    serverSide.signal();
    expect(await waited).toBe(1);
    serverSide.close();
    closeFds([set.fds[0]]);
    for (const e of irqs) e.close();
    client.close();
    server.close();
  });

  it('keeps pipelined messages in order and answers each by msg id', async () => {
    const [client, server] = MessageConnection.pair(
      {},
      {
        onMessage: (f) => {
          const a = P.decodeRegionReadRequest(f.payload);
          const { bytes, data } = P.allocRegionReadReply(f.header.msgId, a);
          data.fill(f.header.msgId & 0xff);
          server.send(bytes);
        },
      },
    );
    for (let id = 0; id < 100; id++)
      client.send(P.encodeRegionReadRequest(id, { offset: id, region: 0, count: 8 }));
    for (let id = 0; id < 100; id++) {
      const r = await client.nextMessage(2000);
      expect(r.header.msgId).toBe(id);
      expect(P.decodeRegionReadReply(r.payload).data[0]).toBe(id);
    }
    client.close();
    server.close();
  });

  it('closes with EPROTO when the peer loses framing, and closes the fds it had received', async () => {
    const before = openFdCount();
    let reason: unknown;
    const [client, server] = MessageConnection.pair(
      {},
      { maxMessageSize: 4096, onClose: (r) => (reason = r) },
    );
    const e = new Eventfd();
    const bad = P.encodeDeviceInfoRequest(1);
    new DataView(bad.buffer).setUint32(4, 8, true);
    client.socket.send(bad, [e.fd]);
    await server.closed;
    expect(reason).toMatchObject({ code: 'EPROTO' });
    await expect(server.nextMessage(100)).rejects.toMatchObject({ code: 'EPROTO' });
    await client.closed;
    e.close();
    expect(openFdCount()).toBe(before);
  });

  it('sends several whole messages in one sendmsg, each framed on the other side, and refuses a cut one', async () => {
    const [a, b] = MessageConnection.pair();
    const one = P.encodeRegionReadRequest(7, { offset: 0, region: 0, count: 4 });
    const two = P.encodeDeviceInfoRequest(8);
    const both = new Uint8Array(one.length + two.length);
    both.set(one);
    both.set(two, one.length);
    expect(a.sendMessages(both)).toBe(true);
    expect((await b.nextMessage(2000)).header.msgId).toBe(7);
    expect((await b.nextMessage(2000)).header.msgId).toBe(8);
    // Cut inside the second message, inside its header, and a first msg_size below the header.
    expect(() => a.sendMessages(both.subarray(0, both.length - 1))).toThrow(/msg_size 32 but 31 bytes/);
    expect(() => a.sendMessages(both.subarray(0, one.length + 10))).toThrow(
      /shorter than the vfio-user header/,
    );
    const small = both.slice();
    new DataView(small.buffer).setUint32(4, 8, true);
    expect(() => a.sendMessages(small)).toThrow(/msg_size 8/);
    expect(() => a.sendMessages(new Uint8Array(0))).toThrow(/no message/);
    await expect(b.nextMessage(100)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    a.close();
    expect(() => a.sendMessages(both)).toThrow(/closed/);
    b.close();
  });

  it('refuses to send a message whose msg_size lies, and anything after close', () => {
    const [a, b] = MessageConnection.pair();
    const m = P.encodeDeviceInfoRequest(1);
    expect(() => a.send(m.subarray(0, 20))).toThrow(/msg_size 32/);
    a.close();
    expect(() => a.send(m)).toThrow(/closed/);
    b.close();
  });

  it('leaves the open fd count unchanged after 200 connect/disconnect cycles over a real socket', async () => {
    const path = join(dir, 'cycles.sock');
    const listener = UnixListener.listen(path);
    const serverSide: MessageConnection[] = [];
    listener.onConnection((sock) => {
      const conn = new MessageConnection(sock, {
        onMessage: (f) => {
          closeFds(f.fds); // the handler owns received fds
          conn.send(
            P.encodeVersionReply(f.header.msgId, { major: 0, minor: 2, capabilities: { maxMsgFds: 8 } }),
          );
        },
      });
      serverSide.push(conn);
    });
    // Warm up once so lazily opened descriptors (the addon, libuv internals) are counted in the baseline.
    const warm = await MessageConnection.connect(path, { timeoutMs: 2000 });
    warm.close();
    await waitFor(() => serverSide.length === 1 && !serverSide[0].open);
    const before = openFdCount();
    for (let i = 0; i < 200; i++) {
      const c = await MessageConnection.connect(path, { timeoutMs: 2000 });
      const mem = allocateMemfdMemory('cycle', 4096);
      c.send(P.encodeVersionRequest(i, { major: 0, minor: 2, capabilities: {} }), [mem.fd]);
      mem.close();
      const reply = await c.nextMessage(2000);
      expect(P.decodeVersion(reply.payload).minor).toBe(2);
      c.close();
    }
    await waitFor(() => serverSide.length === 201 && serverSide.every((s) => !s.open), 5000);
    expect(openFdCount()).toBe(before);
    listener.close();
  });
});
