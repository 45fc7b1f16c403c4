/**
 * A vfio-user message connection over a UNIX socket: framing on receive, one sendmsg per message
 * with its fds on send, a queue when the socket would block, and one close with one reason.
 */
import { VfioError } from '@vfiokit/core';
import { ERRNO } from '@vfiokit/core/abi';
import { closeFds } from './native/memory.js';
import { UnixConnection, type UnixConnectionOptions } from './native/socket.js';
import { VFIO_USER_HEADER_SIZE } from './protocol/constants.js';
import { type Frame, FrameReassembler, type FrameSink } from './protocol/framing.js';
import { encodeErrorReply, isCommand, maxMessageSize, wantsReply } from './protocol/header.js';

export interface MessageConnectionOptions {
  /** Largest msg_size accepted from the peer; above it the connection is closed (EPROTO). */
  maxMessageSize?: number;
  /**
   * Called for each whole message, in order; the handler owns `frame.fds`. Without a handler
   * messages wait for nextMessage().
   */
  onMessage?(frame: Frame): void;
  /**
   * onMessage for a receiver that handles each message before returning: small messages come in
   * a frame reused for the next one (FrameReassembler.feed), so receiving allocates nothing per
   * message. When `lent`, whatever the handler keeps past its return it must copy (ownFrame).
   * Used instead of onMessage when given.
   */
  onLentMessage?(frame: Frame, lent: boolean): void;
  /**
   * Asked after each received chunk was handled: true stops this round of reading, so a caller
   * driving the socket with pump() returns as soon as what it waits for has come.
   */
  readUntil?(): boolean;
  /** Called once. `reason` is undefined for a plain local close(). */
  onClose?(reason: VfioError | undefined): void;
  /** The send queue emptied after the socket pushed back. */
  onDrain?(): void;
}

export class MessageConnection {
  readonly socket: UnixConnection;
  /** Resolves once, with the reason, when the connection is closed. */
  readonly closed: Promise<VfioError | undefined>;
  private readonly framer: FrameReassembler;
  private readonly options: MessageConnectionOptions;
  private inbox: Frame[] = [];
  private waiters: { resolve(f: Frame): void; reject(e: VfioError): void }[] = [];
  private resolveClosed!: (reason: VfioError | undefined) => void;
  private closeReason: VfioError | undefined;
  private isOpen = true;
  /** The sink of lent frames, made once (see MessageConnectionOptions.onLentMessage). */
  private readonly lendSink: FrameSink | undefined;
  private readonly readUntil: (() => boolean) | undefined;

  /** Take over a connected socket (not yet started) and start receiving. */
  constructor(socket: UnixConnection, options: MessageConnectionOptions = {}) {
    this.socket = socket;
    this.options = options;
    this.framer = new FrameReassembler({ maxMessageSize: options.maxMessageSize ?? maxMessageSize() });
    this.readUntil = options.readUntil;
    const lentHandler = options.onLentMessage;
    this.lendSink =
      lentHandler !== undefined
        ? (frame, lent) => {
            if (this.isOpen) lentHandler(frame, lent);
            else closeFds(frame.fds);
          }
        : undefined;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    socket.start({
      onData: (chunk, fds) => this.receive(chunk, fds),
      onClose: (reason) => this.finish(reason),
      onDrain: () => this.options.onDrain?.(),
    });
  }

  /** Two connected ends over socketpair(2). */
  static pair(
    a: MessageConnectionOptions = {},
    b: MessageConnectionOptions = {},
  ): [MessageConnection, MessageConnection] {
    const [x, y] = UnixConnection.pair();
    return [new MessageConnection(x, a), new MessageConnection(y, b)];
  }

  static async connect(
    path: string,
    options: MessageConnectionOptions & UnixConnectionOptions & { timeoutMs?: number } = {},
  ): Promise<MessageConnection> {
    return new MessageConnection(await UnixConnection.connect(path, options), options);
  }

  /** connect() for a synchronous caller. */
  static connectSync(
    path: string,
    options: MessageConnectionOptions & UnixConnectionOptions & { timeoutMs?: number } = {},
  ): MessageConnection {
    return new MessageConnection(UnixConnection.connectSync(path, options), options);
  }

  /**
   * Wait at most `timeoutMs` on this thread for the socket and handle what came (see
   * UnixConnection.pump): the way a synchronous caller waits for its reply.
   */
  pump(timeoutMs: number): boolean {
    return this.socket.pump(timeoutMs);
  }

  get open(): boolean {
    return this.isOpen;
  }

  /** Bytes waiting for the socket (back-pressure). */
  get queuedBytes(): number {
    return this.socket.queuedBytes;
  }

  /**
   * Send one whole message (header included) with its fds in one sendmsg; the fds stay the
   * caller's. Returns false when part of it waits in the queue.
   */
  send(message: Uint8Array, fds: readonly number[] = []): boolean {
    if (!this.isOpen)
      throw new VfioError(
        'ECONNRESET',
        `connection ${this.socket.name} is closed${this.closeReason ? `: ${this.closeReason.problem}` : '.'}`,
      );
    if (message.length < VFIO_USER_HEADER_SIZE)
      throw new VfioError(
        'EINVAL',
        `a message of ${message.length} bytes is shorter than the vfio-user header.`,
      );
    const size = (message[4] | (message[5] << 8) | (message[6] << 16) | (message[7] << 24)) >>> 0;
    if (size !== message.length)
      throw new VfioError('EINVAL', `the message says msg_size ${size} but is ${message.length} bytes long.`);
    return this.socket.send(message, fds);
  }

  /**
   * Send several whole messages lying back to back in `messages` in one sendmsg, without fds:
   * the peer is woken once for all of them (a posted batch and the request behind it). Each
   * message's msg_size is checked as send() checks one. Returns false when part of it waits in
   * the queue.
   */
  sendMessages(messages: Uint8Array): boolean {
    if (!this.isOpen)
      throw new VfioError(
        'ECONNRESET',
        `connection ${this.socket.name} is closed${this.closeReason ? `: ${this.closeReason.problem}` : '.'}`,
      );
    let at = 0;
    while (at < messages.length) {
      if (messages.length - at < VFIO_USER_HEADER_SIZE)
        throw new VfioError(
          'EINVAL',
          `the last ${messages.length - at} bytes of the messages are shorter than the vfio-user header.`,
        );
      const size =
        (messages[at + 4] | (messages[at + 5] << 8) | (messages[at + 6] << 16) | (messages[at + 7] << 24)) >>>
        0;
      if (size < VFIO_USER_HEADER_SIZE || size > messages.length - at)
        throw new VfioError(
          'EINVAL',
          `a message at byte ${at} says msg_size ${size} but ${messages.length - at} bytes are left.`,
        );
      at += size;
    }
    if (at === 0) throw new VfioError('EINVAL', 'no message to send.');
    return this.socket.send(messages);
  }

  /** The next message, when no onMessage handler is set; rejects after `timeoutMs` or on close. */
  nextMessage(timeoutMs = 5000): Promise<Frame> {
    const queued = this.inbox.shift();
    if (queued) return Promise.resolve(queued);
    if (!this.isOpen)
      return Promise.reject(
        this.closeReason ?? new VfioError('ECONNRESET', `connection ${this.socket.name} is closed.`),
      );
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (f: Frame) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (e: VfioError) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(
          new VfioError('ETIMEDOUT', `no message arrived on ${this.socket.name} within ${timeoutMs} ms.`),
        );
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Close once; later calls do nothing. */
  close(reason?: VfioError): void {
    this.socket.close(reason);
  }

  private receive(chunk: Uint8Array, fds: readonly number[]): boolean {
    // A framing error throws out of here; the socket closes with it as the reason. The messages
    // framed before it are delivered first.
    if (this.lendSink !== undefined) this.framer.feed(chunk, fds, this.lendSink);
    else {
      const frames = this.framer.push(chunk, fds);
      for (let i = 0; i < frames.length; i++) {
        if (!this.isOpen) {
          closeFds(frames[i].fds);
          continue;
        }
        try {
          this.deliver(frames[i]);
        } catch (err) {
          for (let j = i + 1; j < frames.length; j++) closeFds(frames[j].fds);
          throw err;
        }
      }
    }
    const lost = this.framer.lostError;
    if (lost) {
      this.refuseLostFrame();
      throw lost;
    }
    return this.readUntil?.() === true;
  }

  /**
   * A command whose msg_size cannot be framed is answered before the close: EINVAL below the
   * 16-byte header, E2BIG above the limit. libvfio-user answers EINVAL and reads on (its
   * stream is then out of step); QEMU's client shuts the connection down for a bad size
   * (hw/vfio-user/proxy.c vfio_user_recv_one). Closing keeps the first; the reply tells the
   * peer which message and why, so a waiting request fails with a reason, not a bare EOF.
   */
  private refuseLostFrame(): void {
    const h = this.framer.lostHeader;
    if (!h || !isCommand(h) || !wantsReply(h) || !this.isOpen) return;
    const errno = h.size < VFIO_USER_HEADER_SIZE ? ERRNO.EINVAL : ERRNO.E2BIG;
    try {
      this.socket.send(encodeErrorReply(h.msgId, h.command, errno));
    } catch {
      // The connection closes next either way.
    }
  }

  private deliver(frame: Frame): void {
    if (this.options.onMessage) {
      this.options.onMessage(frame);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(frame);
    else this.inbox.push(frame);
  }

  private finish(reason: VfioError | undefined): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.closeReason = reason;
    closeFds(this.framer.takeFds());
    for (const f of this.inbox) closeFds(f.fds);
    this.inbox = [];
    const err = reason ?? new VfioError('ECONNRESET', `connection ${this.socket.name} was closed.`);
    for (const w of this.waiters) w.reject(err);
    this.waiters = [];
    this.resolveClosed(reason);
    this.options.onClose?.(reason);
  }
}
