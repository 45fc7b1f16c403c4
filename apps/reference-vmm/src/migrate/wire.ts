/**
 * The migration channel between two VMM processes: typed messages on a stream socket, each a
 * 5-byte header (u8 type, u32 little-endian payload length) and its payload. JSON messages carry
 * control (hello, ready, complete, resumed, done, error); binary ones carry guest RAM
 * (f64 guest-physical address + bytes) and device data (u8 device index + a chunk of the
 * device's VFIO migration stream, exactly as read from its data fd).
 */
import type { Socket } from 'node:net';
import { VfioError } from '@vfiokit/core';

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

export const MESSAGE_HEADER_SIZE = 5;
/** Larger payloads are refused: a chunk is at most 1 MiB plus its small prefix. */
export const MAX_PAYLOAD = 4 << 20;

export interface Message {
  readonly type: number;
  readonly payload: Uint8Array;
}

export function encodeMessage(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(MESSAGE_HEADER_SIZE + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.length, true);
  out.set(payload, MESSAGE_HEADER_SIZE);
  return out;
}

export function jsonPayload(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

export function parseJson<T>(m: Message, what: string): T {
  try {
    return JSON.parse(new TextDecoder().decode(m.payload)) as T;
  } catch {
    throw new VfioError('EPROTO', `the migration peer sent a ${what} message that is not JSON.`);
  }
}

/** RAM message: the guest-physical address (f64, exact below 2^53) and the bytes. */
export function ramPayload(gpa: number, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + bytes.length);
  new DataView(out.buffer).setFloat64(0, gpa, true);
  out.set(bytes, 8);
  return out;
}

export function decodeRam(payload: Uint8Array): { gpa: number; bytes: Uint8Array } {
  if (payload.length < 8) throw new VfioError('EPROTO', 'a RAM message is shorter than its 8-byte address.');
  const gpa = new DataView(payload.buffer, payload.byteOffset, 8).getFloat64(0, true);
  if (!Number.isSafeInteger(gpa) || gpa < 0)
    throw new VfioError('EPROTO', `a RAM message names guest address ${gpa}.`);
  return { gpa, bytes: payload.subarray(8) };
}

export function devicePayload(index: number, chunk: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + chunk.length);
  out[0] = index;
  out.set(chunk, 1);
  return out;
}

/**
 * Splits a byte stream into messages. `push` takes whatever arrived; complete messages come out
 * in order. A header that announces more than MAX_PAYLOAD or an unknown type is an EPROTO error.
 */
export class MessageParser {
  private buf = new Uint8Array(0);

  push(data: Uint8Array): Message[] {
    const joined = new Uint8Array(this.buf.length + data.length);
    joined.set(this.buf);
    joined.set(data, this.buf.length);
    const out: Message[] = [];
    let at = 0;
    while (joined.length - at >= MESSAGE_HEADER_SIZE) {
      const type = joined[at];
      const length = new DataView(joined.buffer, joined.byteOffset + at + 1, 4).getUint32(0, true);
      if (type < MSG_HELLO || type > MSG_ERROR)
        throw new VfioError('EPROTO', `the migration peer sent message type ${type}, which does not exist.`);
      if (length > MAX_PAYLOAD)
        throw new VfioError(
          'EPROTO',
          `the migration peer announced a ${length}-byte message (at most ${MAX_PAYLOAD}).`,
        );
      if (joined.length - at - MESSAGE_HEADER_SIZE < length) break;
      out.push({ type, payload: joined.slice(at + MESSAGE_HEADER_SIZE, at + MESSAGE_HEADER_SIZE + length) });
      at += MESSAGE_HEADER_SIZE + length;
    }
    this.buf = joined.slice(at);
    return out;
  }
}

/** A socket as a queue of messages, with writes that wait for the kernel buffer to drain. */
export class Channel {
  private readonly parser = new MessageParser();
  private readonly queue: Message[] = [];
  private waiting: { resolve: (m: Message) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(readonly socket: Socket) {
    socket.on('data', (data: Buffer) => {
      try {
        for (const m of this.parser.push(new Uint8Array(data.buffer, data.byteOffset, data.length)))
          this.deliver(m);
      } catch (err) {
        this.fail(err as Error);
        socket.destroy();
      }
    });
    socket.on('error', (err) =>
      this.fail(new VfioError('ECONNRESET', `the migration socket failed: ${err.message}.`)),
    );
    socket.on('close', () =>
      this.fail(
        new VfioError('ECONNRESET', 'the migration peer closed the connection.', {
          hint: 'Look at the other VMM process: it stopped or crashed.',
        }),
      ),
    );
  }

  private deliver(m: Message): void {
    const w = this.waiting;
    if (w) {
      this.waiting = undefined;
      w.resolve(m);
    } else this.queue.push(m);
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(err);
  }

  /** The next message; rejects when the connection fails first. */
  next(): Promise<Message> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  /** A message already received, without waiting (an ERROR the peer sent early, say). */
  poll(): Message | undefined {
    return this.queue.shift();
  }

  async send(type: number, payload: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.socket.write(encodeMessage(type, payload))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.socket.off('drain', done);
          this.socket.off('close', done);
          resolve();
        };
        this.socket.on('drain', done);
        this.socket.on('close', done);
      });
    }
  }

  sendJson(type: number, value: unknown): Promise<void> {
    return this.send(type, jsonPayload(value));
  }

  close(): void {
    this.socket.end();
  }
}
