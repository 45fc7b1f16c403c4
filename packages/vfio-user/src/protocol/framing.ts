/**
 * Message framing over a byte stream: bytes arrive in any chunking (a header split across
 * reads, several messages in one read) and whole messages come out, each with the fds that
 * arrived with its first bytes.
 *
 * fds rule: a UNIX stream recvmsg may glue the bytes of earlier sendmsgs in front of one that
 * carried fds, but it stops right after that one (net/unix/af_unix.c unix_stream_read_generic:
 * the fds are detached with the first bytes copied from their skb, then the read breaks). Every
 * sender here puts one message and its fds in one sendmsg, so the fds of a chunk belong to the
 * message that holds the chunk's last byte: the last one completed, or the one still arriving.
 *
 * A msg_size below 16 or above the limit means framing is lost: push() still returns the
 * messages completed before that header (they were framed correctly and are answered), then
 * `failed` is set, the header is kept as lostHeader (so the peer can be told which message it
 * was), every later push() throws EPROTO, and the connection must be closed. Everything else (unknown command, bad type) is the dispatcher's to answer; the
 * body is always consumed, so the stream stays in step.
 */
import { VfioError } from '@vfiokit/core';
import { commandName, VFIO_USER_HEADER_SIZE } from './constants.js';
import { decodeHeader, type MessageHeader, maxMessageSize } from './header.js';

export interface Frame {
  readonly header: MessageHeader;
  /** The whole message, header included (its own buffer). */
  readonly message: Uint8Array;
  /** The bytes after the header (a view of `message`). */
  readonly payload: Uint8Array;
  /** Descriptors that came with the message; the receiver owns them. */
  readonly fds: number[];
}

export interface FrameReassemblerOptions {
  /** Largest msg_size accepted (default: maxMessageSize() for the default limits). */
  maxMessageSize?: number;
}

const NO_FDS: readonly number[] = Object.freeze([]);

/**
 * The largest message feed() copies into its reused frame. REGION_READ/WRITE of small registers,
 * their replies and most info commands fit; a larger one is lent as a view of the chunk.
 */
export const BORROW_MAX = 512;
/** How many (chunk, position, size) views feed() keeps for large lent messages. */
const BIG_VIEWS = 4;

/** A header whose fields feed() rewrites for every lent message. */
interface MutableHeader {
  msgId: number;
  command: number;
  size: number;
  flags: number;
  errno: number;
}

/** A frame feed() reuses: valid only until onFrame returns. */
interface LentFrame {
  header: MutableHeader;
  message: Uint8Array;
  payload: Uint8Array;
  fds: number[];
}

/**
 * Called by feed() for each whole message, in order. `lent` frames are reused for the next
 * message: whatever the receiver keeps past its return (the message, the payload, the header)
 * it must copy first (ownFrame does). A lent frame carries no fds.
 */
export type FrameSink = (frame: Frame, lent: boolean) => void;

/** A frame in buffers of its own, for a receiver that keeps a lent one past its call. */
export function ownFrame(frame: Frame): Frame {
  const message = frame.message.slice();
  const h = frame.header;
  return {
    header: { msgId: h.msgId, command: h.command, size: h.size, flags: h.flags, errno: h.errno },
    message,
    payload: message.subarray(VFIO_USER_HEADER_SIZE),
    fds: frame.fds,
  };
}

function u16(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}

function u32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

export class FrameReassembler {
  readonly maxMessageSize: number;
  private readonly head = new Uint8Array(VFIO_USER_HEADER_SIZE);
  private headFill = 0;
  private header: MessageHeader | undefined;
  private body: Uint8Array | undefined;
  private bodyFill = 0;
  private fds: number[] = [];
  private lost: VfioError | undefined;
  private lostAt: MessageHeader | undefined;
  /**
   * feed()'s lent frame: one buffer and, per message size, views of it made on first use. The
   * tables are made full so that every connection's have the same elements kind (see
   * SessionRegions: a sparse `[]` turns holey and the next connection's deoptimises feed()).
   */
  private readonly lendBuffer = new Uint8Array(BORROW_MAX);
  private readonly lendMessages: (Uint8Array | undefined)[] = new Array(BORROW_MAX + 1).fill(undefined);
  private readonly lendPayloads: (Uint8Array | undefined)[] = new Array(BORROW_MAX + 1).fill(undefined);
  private readonly lent: LentFrame = {
    header: { msgId: 0, command: 0, size: 0, flags: 0, errno: 0 },
    message: this.lendBuffer,
    payload: this.lendBuffer,
    fds: [],
  };
  /** Views lent for large messages (lendView), a few kept. */
  private readonly bigViews: { chunk: Uint8Array; pos: number; message: Uint8Array; payload: Uint8Array }[] =
    [];
  private bigNext = 0;

  constructor(options: FrameReassemblerOptions = {}) {
    this.maxMessageSize = options.maxMessageSize ?? maxMessageSize();
    if (this.maxMessageSize < VFIO_USER_HEADER_SIZE)
      throw new VfioError(
        'EINVAL',
        `a maximum message size of ${this.maxMessageSize} cannot hold the 16-byte header.`,
      );
  }

  /** Bytes of an unfinished message held so far. */
  get buffered(): number {
    return this.header ? this.bodyFill : this.headFill;
  }

  /** Why framing was lost, once it was. */
  get lostError(): VfioError | undefined {
    return this.lost;
  }

  /** True once framing was lost; every later push() throws. */
  get failed(): boolean {
    return this.lost !== undefined;
  }

  /** The header whose msg_size lost framing, once push() threw for it. */
  get lostHeader(): MessageHeader | undefined {
    return this.lostAt;
  }

  /** The fds of the unfinished message, handed over (to be closed when the connection goes away). */
  takeFds(): number[] {
    const fds = this.fds;
    this.fds = [];
    return fds;
  }

  /** Feed one received chunk and the fds that came with it; returns the messages it completed. */
  push(chunk: Uint8Array, fds: readonly number[] = NO_FDS): Frame[] {
    if (this.lost) {
      // Keep the promise that received fds are never lost track of.
      for (const fd of fds) this.fds.push(fd);
      throw this.lost;
    }
    const frames: Frame[] = [];
    this.consume(chunk, frames);
    if (this.lost) {
      // The chunk's fds belong to the message whose header lost framing: they wait in takeFds().
      for (const fd of fds) this.fds.push(fd);
      return frames;
    }
    if (fds.length > 0) {
      // The fds belong to the message holding the chunk's last byte (see the module comment).
      const inProgress = this.header !== undefined || this.headFill > 0;
      const owner = inProgress || frames.length === 0 ? this.fds : frames[frames.length - 1].fds;
      for (const fd of fds) owner.push(fd);
    }
    return frames;
  }

  /**
   * push() for a receiver that handles each message as it comes (a session): each whole message
   * goes to `onFrame`, in order. A message that lies whole in `chunk` comes in a frame the
   * reassembler reuses (`lent`: no allocation per message), copied into its buffer when it has
   * at most BORROW_MAX bytes, else as a view of the chunk; a message split across chunks, and
   * every message of a chunk that carries fds, get frames of their own, as push() makes them. When framing is lost the messages before the bad header are handed
   * out and lostError tells, as after push().
   */
  feed(chunk: Uint8Array, fds: readonly number[], onFrame: FrameSink): void {
    if (fds.length > 0 || this.lost !== undefined) {
      this.handOut(this.push(chunk, fds), onFrame);
      return;
    }
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      const rest = end - pos;
      if (this.header !== undefined || this.headFill > 0 || rest < VFIO_USER_HEADER_SIZE) break;
      const size = u32(chunk, pos + 4);
      if (size < VFIO_USER_HEADER_SIZE || size > rest || size > this.maxMessageSize) break;
      const frame = this.lent;
      const h = frame.header;
      if (size > BORROW_MAX) {
        // Too large to copy for nothing: lend a view of the chunk itself (valid, as the chunk,
        // for the call).
        this.lendView(chunk, pos, size);
        h.msgId = u16(chunk, pos);
        h.command = u16(chunk, pos + 2);
        h.size = size;
        h.flags = u32(chunk, pos + 8);
        h.errno = u32(chunk, pos + 12);
        pos += size;
        onFrame(frame, true);
        continue;
      }
      const buffer = this.lendBuffer;
      for (let i = 0; i < size; i++) buffer[i] = chunk[pos + i];
      h.msgId = u16(buffer, 0);
      h.command = u16(buffer, 2);
      h.size = size;
      h.flags = u32(buffer, 8);
      h.errno = u32(buffer, 12);
      let message = this.lendMessages[size];
      let payload = this.lendPayloads[size];
      if (message === undefined || payload === undefined) {
        message = buffer.subarray(0, size);
        payload = buffer.subarray(VFIO_USER_HEADER_SIZE, size);
        this.lendMessages[size] = message;
        this.lendPayloads[size] = payload;
      }
      frame.message = message;
      frame.payload = payload;
      pos += size;
      onFrame(frame, true);
    }
    if (pos === end) return;
    this.handOut(this.push(pos === 0 ? chunk : chunk.subarray(pos)), onFrame);
  }

  /**
   * Point the lent frame at `size` bytes of `chunk` from `pos`. The views are kept for a few
   * (chunk, position, size) triples: a receiver that hands in the same chunk view for the same
   * length (a socket does) gets no allocation for a batch that comes again and again.
   */
  private lendView(chunk: Uint8Array, pos: number, size: number): void {
    const c = this.bigViews;
    for (let i = 0; i < c.length; i++) {
      const e = c[i];
      if (e.chunk === chunk && e.pos === pos && e.message.length === size) {
        this.lent.message = e.message;
        this.lent.payload = e.payload;
        return;
      }
    }
    const message = chunk.subarray(pos, pos + size);
    const e = { chunk, pos, message, payload: message.subarray(VFIO_USER_HEADER_SIZE) };
    if (c.length < BIG_VIEWS) c.push(e);
    else c[this.bigNext++ % BIG_VIEWS] = e;
    this.lent.message = e.message;
    this.lent.payload = e.payload;
  }

  /** Frames of their own to `onFrame`; if it throws, the fds of the rest wait in takeFds(). */
  private handOut(frames: Frame[], onFrame: FrameSink): void {
    for (let i = 0; i < frames.length; i++) {
      try {
        onFrame(frames[i], false);
      } catch (err) {
        for (let j = i + 1; j < frames.length; j++) for (const fd of frames[j].fds) this.fds.push(fd);
        throw err;
      }
    }
  }

  private consume(chunk: Uint8Array, frames: Frame[]): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.header === undefined) {
        const take = Math.min(VFIO_USER_HEADER_SIZE - this.headFill, chunk.length - pos);
        this.head.set(chunk.subarray(pos, pos + take), this.headFill);
        this.headFill += take;
        pos += take;
        if (this.headFill < VFIO_USER_HEADER_SIZE) break;
        const header = decodeHeader(this.head);
        if (header.size < VFIO_USER_HEADER_SIZE || header.size > this.maxMessageSize) {
          this.lostAt = header;
          this.lost = new VfioError(
            'EPROTO',
            `${commandName(header.command)} (msg_id ${header.msgId}) has msg_size ${header.size}; it must be between ${VFIO_USER_HEADER_SIZE} and ${this.maxMessageSize}. Framing is lost.`,
            { hint: 'The connection must be closed.' },
          );
          return;
        }
        this.header = header;
        this.body = new Uint8Array(header.size);
        this.body.set(this.head, 0);
        this.bodyFill = VFIO_USER_HEADER_SIZE;
      }
      const body = this.body!;
      const take = Math.min(body.length - this.bodyFill, chunk.length - pos);
      if (take > 0) {
        body.set(chunk.subarray(pos, pos + take), this.bodyFill);
        this.bodyFill += take;
        pos += take;
      }
      if (this.bodyFill === body.length) {
        frames.push({
          header: this.header,
          message: body,
          payload: body.subarray(VFIO_USER_HEADER_SIZE),
          fds: this.fds,
        });
        this.header = undefined;
        this.body = undefined;
        this.bodyFill = 0;
        this.headFill = 0;
        this.fds = [];
      }
    }
  }
}
