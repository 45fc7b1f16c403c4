/**
 * The client I/O worker: owns the sockets of every VfioUserClientDevice of this process. It
 * forwards each request the main thread posts in a channel, hands the matching reply back, and
 * answers the server's DMA_READ / DMA_WRITE from guest memory itself, so those are served even
 * while the main thread waits. Its event loop never blocks: it watches the channels with
 * Atomics.waitAsync and the sockets with uv_poll.
 */
import { parentPort } from 'node:worker_threads';
import { VfioError } from '@vfiokit/core';
import { ERRNO as ERRNO_CODES } from '@vfiokit/core/abi';
import { toVfioError } from '@vfiokit/core/host';
import { closeFds, mapFd } from '../native/memory.js';
import { VFIO_USER_DMA_READ, VFIO_USER_DMA_WRITE } from '../protocol/constants.js';
import {
  decodeDmaReadRequest,
  decodeDmaWriteRequest,
  encodeDmaReadReply,
  encodeDmaWriteReply,
} from '../protocol/dma.js';
import type { Frame } from '../protocol/framing.js';
import { encodeErrorReply, isCommand, isReply, wantsReply } from '../protocol/header.js';
import { MessageConnection } from '../transport.js';
import {
  type ChannelMessage,
  CLOSED,
  ERRNO,
  FDS_AT,
  IDLE,
  LEN,
  MAPPED,
  MAX_CHANNEL_FDS,
  NFDS,
  NOREPLY,
  type OpenChannel,
  REPLY,
  REQUEST,
  STATE,
  waitAsync,
} from './channel.js';

class Channel {
  private readonly ctrl: Int32Array;
  private readonly data: Uint8Array;
  private conn: MessageConnection | undefined;
  private expect: { msgId: number; command: number } | undefined;
  private guest: Uint8Array | undefined;
  private done = false;

  constructor(private readonly o: OpenChannel) {
    this.ctrl = new Int32Array(o.control);
    this.data = new Uint8Array(o.data);
  }

  async start(): Promise<void> {
    try {
      const g = this.o.guest;
      if (g?.buffer) this.guest = new Uint8Array(g.buffer, g.byteOffset ?? 0, g.size);
      else if (g?.fd !== undefined) this.guest = new Uint8Array(mapFd(g.fd, g.size));
      this.conn = await MessageConnection.connect(this.o.path, {
        timeoutMs: this.o.connectTimeoutMs,
        maxMessageSize: this.data.length,
        onMessage: (f) => this.receive(f),
        onClose: (reason) => this.finish(reason),
      });
    } catch (err) {
      this.finish(toVfioError(err));
      return;
    }
    if (this.done) {
      this.conn.close();
      return;
    }
    Atomics.store(this.ctrl, STATE, IDLE);
    Atomics.notify(this.ctrl, STATE);
    this.watch();
  }

  close(): void {
    if (this.conn) this.conn.close();
    else this.finish(undefined);
  }

  /** Wait for the next request without blocking: Atomics.waitAsync on STATE. */
  private watch(): void {
    for (;;) {
      if (this.done) return;
      const s = Atomics.load(this.ctrl, STATE);
      if (s === REQUEST) {
        this.forward();
        if (this.expect) return; // the reply arrives through receive()
        continue;
      }
      const w = waitAsync(this.ctrl, STATE, s);
      if (w.async) {
        void w.value.then(() => this.watch());
        return;
      }
    }
  }

  private forward(): void {
    const c = this.ctrl;
    const message = this.data.slice(0, c[LEN]);
    const fds: number[] = [];
    for (let i = 0; i < c[NFDS]; i++) fds.push(c[FDS_AT + i]);
    try {
      this.conn!.send(message, fds);
    } catch (err) {
      this.conn!.close(toVfioError(err));
      return;
    }
    if (c[NOREPLY]) {
      this.answer(undefined);
      return;
    }
    const dv = new DataView(message.buffer);
    this.expect = { msgId: dv.getUint16(0, true), command: dv.getUint16(2, true) };
  }

  private answer(frame: Frame | undefined): void {
    const c = this.ctrl;
    c[LEN] = 0;
    c[NFDS] = 0;
    if (frame) {
      this.data.set(frame.message);
      c[LEN] = frame.message.length;
      c[NFDS] = frame.fds.length;
      for (let i = 0; i < frame.fds.length; i++) c[FDS_AT + i] = frame.fds[i];
    }
    Atomics.store(c, STATE, REPLY);
    Atomics.notify(c, STATE);
  }

  private receive(frame: Frame): void {
    const h = frame.header;
    const e = this.expect;
    if (isReply(h) && e && h.msgId === e.msgId && h.command === e.command) {
      this.expect = undefined;
      if (frame.fds.length > MAX_CHANNEL_FDS) {
        closeFds(frame.fds);
        this.conn!.close(new VfioError('EPROTO', `a reply carried ${frame.fds.length} fds.`));
        return;
      }
      this.answer(frame);
      this.watch();
      return;
    }
    closeFds(frame.fds);
    if (!isCommand(h)) return; // a stray reply: nothing asked for it
    let reply: Uint8Array;
    try {
      reply = this.serveDma(frame);
    } catch (err) {
      if (!wantsReply(h)) return;
      reply = encodeErrorReply(h.msgId, h.command, toVfioError(err).errno);
    }
    if (wantsReply(h)) this.conn!.send(reply);
  }

  /** DMA_READ / DMA_WRITE from the server, answered from guest memory mapped at IOVA 0. */
  private serveDma(frame: Frame): Uint8Array {
    const h = frame.header;
    const limits = { maxMsgFds: 0, maxDataXferSize: this.o.maxDataXferSize };
    const layout = this.o.dmaLayout;
    const guest = Atomics.load(this.ctrl, MAPPED) ? this.guest : undefined;
    const inside = (address: number, count: number) => {
      if (!guest || address + count > guest.length)
        throw new VfioError(
          'EFAULT',
          `DMA of ${count} bytes at 0x${address.toString(16)} is outside the mapped guest memory.`,
        );
    };
    if (h.command === VFIO_USER_DMA_READ) {
      const a = decodeDmaReadRequest(frame.payload, layout, limits);
      inside(a.address, a.count);
      return encodeDmaReadReply(
        h.msgId,
        { ...a, data: guest!.subarray(a.address, a.address + a.count) },
        layout,
      );
    }
    if (h.command === VFIO_USER_DMA_WRITE) {
      const t = decodeDmaWriteRequest(frame.payload, layout, limits);
      inside(t.address, t.count);
      guest!.set(t.data, t.address);
      return encodeDmaWriteReply(h.msgId, t, layout);
    }
    throw new VfioError('EINVAL', `command ${h.command} is not one a server sends to a client.`);
  }

  private finish(reason: VfioError | undefined): void {
    if (this.done) return;
    this.done = true;
    channels.delete(this.o.id);
    this.ctrl[ERRNO] = reason?.errno ?? ERRNO_CODES.ECONNRESET;
    Atomics.store(this.ctrl, STATE, CLOSED);
    Atomics.notify(this.ctrl, STATE);
  }
}

const channels = new Map<number, Channel>();

parentPort!.on('message', (m: ChannelMessage) => {
  if (m.type === 'open') {
    const ch = new Channel(m);
    channels.set(m.id, ch);
    void ch.start();
  } else channels.get(m.id)?.close();
});
