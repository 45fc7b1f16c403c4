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
