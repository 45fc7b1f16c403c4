/**
 * The migration channel between two VMM processes: typed messages on a stream socket. Each is a
 * 17-byte header and its payload:
 *
 *   0 u8 type   1 u32 sequence   5 u32 payload length   9 u32 payload CRC32   13 u32 CRC32 of bytes 0..12
 *
 * (little-endian). Each direction numbers its messages from 0, so a lost, repeated or reordered
 * message is refused; the header's own CRC means a damaged length or type is refused as soon as
 * its 17 bytes arrive (never waited on), and the payload's CRC covers every byte of guest RAM
 * and device data. JSON messages carry control (hello, ready, complete, resumed, done, error);
 * binary ones carry guest RAM (f64 guest-physical address + bytes) and device data (u8 device
 * index + a chunk of the device's VFIO migration stream, exactly as read from its data fd).
 */
import type { Socket } from 'node:net';
import { VfioError } from '@vfiokit/core';
import { checksum } from './checksum.js';

export { checksum };

export const MSG_HELLO = 1;
export const MSG_READY = 2;
export const MSG_RAM = 3;
export const MSG_DEVICE = 4;
export const MSG_COMPLETE = 5;
export const MSG_RESUMED = 6;
export const MSG_DONE = 7;
export const MSG_ERROR = 8;

const NAMES = ['HELLO', 'READY', 'RAM', 'DEVICE', 'COMPLETE', 'RESUMED', 'DONE', 'ERROR'];

/** `RAM`, or `message type 9` for a number that names none. */
export function messageName(type: number): string {
  return NAMES[type - MSG_HELLO] ?? `message type ${type}`;
}

export const MESSAGE_HEADER_SIZE = 17;
/** Larger payloads are refused: a chunk is at most 1 MiB plus its small prefix. */
export const MAX_PAYLOAD = 4 << 20;
const HEADER_CHECKED = 13;

export interface Message {
  readonly type: number;
  readonly seq: number;
  readonly payload: Uint8Array;
}

/** The header of message `seq` whose payload is `parts` joined. */
export function encodeHeader(type: number, seq: number, parts: readonly Uint8Array[]): Uint8Array {
  const h = new Uint8Array(MESSAGE_HEADER_SIZE);
  const dv = new DataView(h.buffer);
  let length = 0;
  for (const p of parts) length += p.length;
  h[0] = type;
  dv.setUint32(1, seq >>> 0, true);
  dv.setUint32(5, length, true);
  dv.setUint32(9, checksum(parts), true);
  dv.setUint32(HEADER_CHECKED, checksum([h.subarray(0, HEADER_CHECKED)]), true);
  return h;
}

/** One whole message as bytes (header and payload). */
export function encodeMessage(type: number, seq: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(MESSAGE_HEADER_SIZE + payload.length);
  out.set(encodeHeader(type, seq, [payload]));
  out.set(payload, MESSAGE_HEADER_SIZE);
  return out;
}

export function jsonPayload(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

export function parseJson<T>(m: Message, what: string): T {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(m.payload)) as T;
  } catch {
    throw new VfioError('EPROTO', `the migration peer sent a ${what} message that is not JSON.`);
  }
}

/** The 8-byte prefix of a RAM message: the guest-physical address (f64, exact below 2^53). */
export function ramPrefix(gpa: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, gpa, true);
  return out;
}

export function decodeRam(payload: Uint8Array): { gpa: number; bytes: Uint8Array } {
  if (payload.length < 8) throw new VfioError('EPROTO', 'a RAM message is shorter than its 8-byte address.');
  const gpa = new DataView(payload.buffer, payload.byteOffset, 8).getFloat64(0, true);
  if (!Number.isSafeInteger(gpa) || gpa < 0)
    throw new VfioError('EPROTO', `a RAM message names guest address ${gpa}.`);
  return { gpa, bytes: payload.subarray(8) };
}

function damaged(problem: string): VfioError {
  return new VfioError('EPROTO', `the migration stream is damaged: ${problem}`, {
    hint: 'Nothing of it was taken. Look at what carries the stream between the two VMMs.',
  });
}

interface Header {
  readonly type: number;
  readonly seq: number;
  readonly length: number;
  readonly crc: number;
}

/**
 * Splits a byte stream into checked messages. `push` takes whatever arrived (the bytes are kept,
 * not copied, until their message is whole) and returns the messages completed, in order. A
 * damaged header or payload, an unknown type, a length above MAX_PAYLOAD or a message out of
 * sequence sets `error` (an EPROTO VfioError): the messages before it still come out, nothing
 * after it does.
 */
export class MessageParser {
  private readonly chunks: Uint8Array[] = [];
  private buffered = 0;
  private header: Header | undefined;
  private seq = 0;
  private broken: VfioError | undefined;

  /** Messages taken so far. */
  get received(): number {
    return this.seq;
  }

  /** Why the stream stopped being read; undefined while it is sound. */
  get error(): VfioError | undefined {
    return this.broken;
  }

  push(data: Uint8Array): Message[] {
    if (this.broken) return [];
    if (data.length > 0) {
      this.chunks.push(data);
      this.buffered += data.length;
    }
    const out: Message[] = [];
    try {
      for (;;) {
        if (!this.header) {
          if (this.buffered < MESSAGE_HEADER_SIZE) break;
          this.header = this.readHeader(this.take(MESSAGE_HEADER_SIZE));
        }
        const h = this.header;
        if (this.buffered < h.length) break;
        const payload = this.take(h.length);
        if (checksum([payload]) !== h.crc)
          throw damaged(
            `the ${h.length}-byte payload of message ${h.seq} (${messageName(h.type)}) fails its CRC32 check.`,
          );
        out.push({ type: h.type, seq: h.seq, payload });
        this.header = undefined;
        this.seq++;
      }
    } catch (err) {
      this.broken = err as VfioError;
      this.chunks.length = 0;
      this.buffered = 0;
    }
    return out;
  }

  private readHeader(b: Uint8Array): Header {
    const dv = new DataView(b.buffer, b.byteOffset, MESSAGE_HEADER_SIZE);
    if (dv.getUint32(HEADER_CHECKED, true) !== checksum([b.subarray(0, HEADER_CHECKED)]))
      throw damaged(`the header of message ${this.seq} fails its CRC32 check.`);
    const type = b[0];
    const seq = dv.getUint32(1, true);
    const length = dv.getUint32(5, true);
    if (type < MSG_HELLO || type > MSG_ERROR)
      throw new VfioError('EPROTO', `the migration peer sent message type ${type}, which does not exist.`);
    if (length > MAX_PAYLOAD)
      throw new VfioError(
        'EPROTO',
        `the migration peer announced a ${length}-byte ${messageName(type)} message (at most ${MAX_PAYLOAD}).`,
      );
    if (seq !== this.seq)
      throw new VfioError(
        'EPROTO',
        `the migration stream is out of order: message ${seq} (${messageName(type)}) came where message ${this.seq} was due.`,
        { hint: 'A message was lost, repeated or reordered on the way; nothing after it was taken.' },
      );
    return { type, seq, length, crc: dv.getUint32(9, true) };
  }

  /** The next `n` buffered bytes: a view when one chunk holds them, else one copy. */
  private take(n: number): Uint8Array {
    this.buffered -= n;
    const first = this.chunks[0];
    if (n === 0) return new Uint8Array(0);
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}

/**
 * A socket as a queue of messages, with writes that wait for the kernel buffer to drain. The
 * socket is half-open: a peer that stops sending (or whose stream is damaged) can still be told
 * why by an ERROR, and a peer that is refused can still read it.
 */
export class Channel {
  private readonly parser = new MessageParser();
  private readonly queue: Message[] = [];
  private waiting: { resolve: (m: Message) => void; reject: (e: Error) => void } | undefined;
  /** Why nothing more will be received. */
  private readFailure: Error | undefined;
  /** Why nothing more can be sent. */
  private writeFailure: Error | undefined;
  private sendSeq = 0;
  private closing = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (data: Buffer) => {
      // After a damaged message the rest is read and dropped, so a peer never blocks writing to us.
      if (this.readFailure || this.closing) return;
      for (const m of this.parser.push(new Uint8Array(data.buffer, data.byteOffset, data.length)))
        this.deliver(m);
      if (this.parser.error) this.failRead(this.parser.error);
    });
    socket.on('end', () =>
      this.failRead(
        new VfioError('ECONNRESET', 'the migration peer ended the stream before the migration was over.', {
          hint: 'Look at the other VMM process: it stopped or gave up.',
        }),
      ),
    );
    socket.on('error', (err) => {
      const e = new VfioError('ECONNRESET', `the migration socket failed: ${err.message}.`);
      this.failRead(e);
      this.writeFailure ??= e;
    });
    socket.on('close', () => {
      const e = new VfioError('ECONNRESET', 'the migration peer closed the connection.', {
        hint: 'Look at the other VMM process: it stopped or crashed.',
      });
      this.failRead(e);
      this.writeFailure ??= e;
    });
  }

  private deliver(m: Message): void {
    const w = this.waiting;
    if (w) {
      this.waiting = undefined;
      w.resolve(m);
    } else this.queue.push(m);
  }

  private failRead(err: Error): void {
    if (this.readFailure) return;
    this.readFailure = err;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(err);
  }

  /**
   * The next message; rejects when nothing more can come first, or with ETIMEDOUT when
   * `timeoutMs` passes without one (a peer that stays connected and says nothing).
   */
  next(timeoutMs?: number): Promise<Message> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.readFailure) return Promise.reject(this.readFailure);
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              this.waiting = undefined;
              reject(
                new VfioError('ETIMEDOUT', `the migration peer sent nothing for ${timeoutMs / 1000} s.`, {
                  hint: 'Look at the other VMM process: it hangs, or what carries the stream lost it.',
                }),
              );
            }, timeoutMs);
      this.waiting = {
        resolve: (x) => {
          clearTimeout(timer);
          resolve(x);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  /** Messages sent so far (the next one's sequence number). */
  get sent(): number {
    return this.sendSeq;
  }

  /** A message already received, without waiting (an ERROR the peer sent early, say). */
  poll(): Message | undefined {
    return this.queue.shift();
  }

  /** Send one message whose payload is `parts` joined (they are written as they are, not copied). */
  async send(type: number, ...parts: Uint8Array[]): Promise<void> {
    if (this.writeFailure) throw this.writeFailure;
    const s = this.socket;
    s.cork();
    s.write(encodeHeader(type, this.sendSeq++, parts));
    let flushed = true;
    for (const p of parts) if (p.length > 0) flushed = s.write(p);
    s.uncork();
    if (!flushed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          s.off('drain', done);
          s.off('close', done);
          resolve();
        };
        s.on('drain', done);
        s.on('close', done);
      });
    }
  }

  sendJson(type: number, value: unknown): Promise<void> {
    return this.send(type, jsonPayload(value));
  }

  /**
   * End our side once everything is written. What the peer still sends is read and dropped until
   * it ends too (or `lingerMs` passes), so a peer still writing reads our last message (an ERROR,
   * say) instead of failing with EPIPE first.
   */
  close(lingerMs = 5000): void {
    const s = this.socket;
    if (s.destroyed) return;
    this.closing = true;
    const timer = setTimeout(() => s.destroy(), lingerMs);
    timer.unref();
    s.once('close', () => clearTimeout(timer));
    s.once('end', () => s.destroy());
    if (s.readableEnded) s.destroy();
    else s.end();
  }
}
