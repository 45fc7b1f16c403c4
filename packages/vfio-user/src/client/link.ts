/**
 * A client device's connection to its server, driven from the thread that makes the requests.
 *
 * The device contract is synchronous, so a request is sent with one sendmsg and its reply is
 * waited for right here: one blocking recvmsg, bounded by the socket's receive timeout (set to
 * the request timeout at connect), as a C client's blocking read; a later wait of the same
 * request (after the server's own command, or a stray reply) is poll(2) for what is left of the
 * deadline, then recvmsg (MessageConnection.pump). No other thread is involved. A server may need guest memory before it can reply (DMA_READ/DMA_WRITE when the
 * memory has no fd): those commands are answered while the request waits, from inside the
 * same receive loop. Between requests the event loop watches the socket (an unref'd uv_poll,
 * so an idle connection keeps no process alive) and answers them there, and notices a server
 * that went away.
 *
 * Small replies come in the framer's lent frame and are copied into one reused buffer; the
 * hot path (regions.ts) builds its requests in `out` and reads the reply from `reply` and
 * `replyView` in place, so a small region access allocates nothing.
 */
import { VfioError } from '@vfiokit/core';
import { errnoName } from '@vfiokit/core/abi';
import { toVfioError } from '@vfiokit/core/host';
import { type NativeAddon, native, systemCode } from '../native/addon.js';
import { closeFds } from '../native/memory.js';
import { MAX_FDS_PER_SENDMSG } from '../native/socket.js';
import {
  commandName,
  VFIO_USER_F_TYPE_MASK,
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_HEADER_SIZE,
  VFIO_USER_MULTI_MAX,
  VFIO_USER_WRITE_MULTI_ENTRY_SIZE,
  VFIO_USER_WRITE_MULTI_HEADER_SIZE,
} from '../protocol/constants.js';
import { BORROW_MAX, type Frame } from '../protocol/framing.js';
import {
  DEFAULT_LIMITS,
  decodeHeader,
  encodeErrorReply,
  isCommand,
  isErrorReply,
  type Limits,
  maxMessageSize,
  replyErrno,
  wantsReply,
} from '../protocol/header.js';
import { MessageConnection } from '../transport.js';

/** SCM_MAX_FD (include/net/scm.h): the most fds one message carries either way. */
export const MAX_FDS = MAX_FDS_PER_SENDMSG;

/** The size of `out`: the largest request built in place, a full REGION_WRITE_MULTI. */
export const OUT_SIZE =
  VFIO_USER_HEADER_SIZE +
  VFIO_USER_WRITE_MULTI_HEADER_SIZE +
  VFIO_USER_MULTI_MAX * VFIO_USER_WRITE_MULTI_ENTRY_SIZE;

const NO_FDS: number[] = [];

export interface LinkOptions {
  readonly socketPath: string;
  /** The device's name, for messages. */
  readonly name: string;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  /** max_data_xfer_size this client accepts: bounds the messages it frames. */
  readonly maxDataXferSize: number;
}

export class ClientLink {
  readonly socketPath: string;
  readonly name: string;
  /** What the server accepts per message (set after VERSION), capped by what this side frames. */
  limits: Limits = DEFAULT_LIMITS;
  /** A buffer to build a small request in (sent through outMessage(length)). */
  readonly out = new Uint8Array(OUT_SIZE);
  readonly outView = new DataView(this.out.buffer);
  /** The last reply (the whole message), valid until the next request. */
  reply: Uint8Array;
  /** A view of the last reply's bytes, offsets from its first byte. */
  replyView: DataView;
  /** The fds that came with the last reply; the caller owns them. */
  replyFds: number[] = NO_FDS;
  /**
   * The server's commands (DMA_READ/DMA_WRITE): returns the reply to send. A throw becomes an
   * error reply with its errno. The frame may be lent: copy what is kept.
   */
  onCommand: ((frame: Frame) => Uint8Array) | undefined;
  /** Called when a request timed out, before the connection closes (the device drops its eventfds). */
  onTimeout: (() => void) | undefined;
  private readonly timeoutMs: number;
  private readonly frameSize: number;
  private conn: MessageConnection | undefined;
  private dead: VfioError | undefined;
  private closeReason: VfioError | undefined;
  private nextMsgId = 0;
  /** The reply being waited for. */
  private waiting = false;
  private expectId = 0;
  private expectCommand = 0;
  private got = false;
  /** Small replies are copied here out of the lent frame. */
  private readonly small = new Uint8Array(BORROW_MAX);
  private readonly smallView = new DataView(this.small.buffer);
  private readonly smallViews: (Uint8Array | undefined)[] = [];
  private readonly outViews: (Uint8Array | undefined)[] = [];
  /** Views of a posted message's buffer with the next request copied behind it, by length (sendJoined). */
  private readonly joinedViews: (Uint8Array | undefined)[] = [];
  /** The clock of the reply deadline (ns), read without allocating. */
  private readonly clock = new Float64Array(1);
  /** The addon, resolved once the connection stands (every request reads its clock). */
  private addon: NativeAddon | undefined;
  /** Runs before every request and post: sends the posted writes still held (regions.ts). */
  private beforeSend: (() => void) | undefined;

  private constructor(o: LinkOptions) {
    this.socketPath = o.socketPath;
    this.name = o.name;
    this.timeoutMs = o.timeoutMs;
    this.frameSize = maxMessageSize({ maxMsgFds: 0, maxDataXferSize: o.maxDataXferSize });
    this.reply = this.small.subarray(0, 0);
    this.replyView = this.smallView;
  }

  /** Connect without blocking the event loop. */
  static async connect(o: LinkOptions): Promise<ClientLink> {
    const link = new ClientLink(o);
    try {
      link.conn = await MessageConnection.connect(o.socketPath, link.connectionOptions(o));
      link.conn.socket.setReceiveTimeout(o.timeoutMs);
      link.addon = native();
    } catch (err) {
      link.conn?.close();
      throw link.connectError(err, o.connectTimeoutMs);
    }
    return link;
  }

  /** The same, blocking (only while a full listen backlog makes the connect retry). */
  static connectSync(o: LinkOptions): ClientLink {
    const link = new ClientLink(o);
    try {
      link.conn = MessageConnection.connectSync(o.socketPath, link.connectionOptions(o));
      link.conn.socket.setReceiveTimeout(o.timeoutMs);
      link.addon = native();
    } catch (err) {
      link.conn?.close();
      throw link.connectError(err, o.connectTimeoutMs);
    }
    return link;
  }

  private connectionOptions(o: LinkOptions) {
    return {
      name: o.socketPath,
      timeoutMs: o.connectTimeoutMs,
      maxMessageSize: this.frameSize,
      ref: false,
      onLentMessage: (frame: Frame, lent: boolean) => this.receive(frame, lent),
      readUntil: () => this.got,
      onClose: (reason: VfioError | undefined) => {
        this.closeReason = reason;
      },
    };
  }

  private connectError(err: unknown, ms: number): VfioError {
    if (systemCode(err) === 'EAGAIN')
      return new VfioError('ETIMEDOUT', `connecting to ${this.socketPath} did not finish within ${ms} ms.`, {
        device: this.name,
        hint: 'Is a server listening there? A busy one keeps later clients waiting.',
        cause: err,
      });
    const e = toVfioError(err);
    return new VfioError(e.code, e.problem, {
      device: this.name,
      ...(e.hint ? { hint: e.hint } : {}),
      cause: err,
    });
  }

  /** Whether the connection is still up. */
  get open(): boolean {
    return this.dead === undefined && this.conn !== undefined && this.conn.open;
  }

  /** Close the connection (the server sees the hang-up at once). Idempotent. */
  close(): void {
    this.conn?.close();
    this.dead ??= new VfioError('ECONNRESET', `the connection to ${this.socketPath} was closed.`);
  }

  private closedError(what: string): VfioError {
    const r = this.closeReason;
    return new VfioError(
      'ECONNRESET',
      `${what}: the vfio-user server at ${this.socketPath} is gone (${r ? `${r.code}: ${r.problem.replace(/\.$/, '')}` : 'ECONNRESET'}).`,
      { device: this.name, hint: 'Restart the server and attach the device again.' },
    );
  }

  msgId(): number {
    this.nextMsgId = (this.nextMsgId + 1) & 0xffff;
    return this.nextMsgId;
  }

  /** The first `length` bytes of `out`, as one message to send (views made once per length). */
  outMessage(length: number): Uint8Array {
    let v = this.outViews[length];
    if (v === undefined) {
      v = this.out.subarray(0, length);
      this.outViews[length] = v;
    }
    return v;
  }

  /**
   * Send one whole message and, unless `noReply`, wait here for its reply, answering the
   * server's commands meanwhile. The reply is then in `reply`, `replyView` and `replyFds`.
   * `before`, a posted message (No_reply) at the start of a buffer with room behind it, goes
   * out first, in the same sendmsg when it can (sendJoined).
   */
  exchange(
    message: Uint8Array,
    fds: readonly number[],
    noReply: boolean,
    what: string,
    before?: Uint8Array,
  ): void {
    if (this.dead) throw this.dead;
    const conn = this.conn!;
    if (!conn.open) throw (this.dead = this.closedError(what));
    if (fds.length > MAX_FDS)
      throw new VfioError('E2BIG', `${fds.length} fds do not fit one message.`, { device: this.name });
    this.expectId = message[0] | (message[1] << 8);
    this.expectCommand = message[2] | (message[3] << 8);
    this.got = false;
    this.waiting = !noReply;
    try {
      if (before === undefined) conn.send(message, fds);
      else this.sendJoined(conn, before, message, fds);
    } catch (err) {
      this.waiting = false;
      if (!conn.open) throw (this.dead = this.closedError(what));
      throw err;
    }
    if (noReply) return;
    // One clock read per request, into a Float64Array (Date.now() and performance.now() each
    // make a heap number: 16 B per request, the scavenges of a long run). The first wait takes
    // the whole timeout and only a wait woken by something else (the server's own commands)
    // reads the clock again. Not a short first wait without the clock instead: measured on a
    // virtual machine, a 1 ms first poll(2) made a 4-byte read ~2 us and a batch ~9 us slower
    // (arming a timer that fires before the next tick, most likely).
    const clock = this.clock;
    const addon = this.addon!;
    addon.clockNs(clock);
    const end = clock[0] + this.timeoutMs * 1e6;
    let left = this.timeoutMs;
    let first = true;
    while (!this.got) {
      if (!conn.open) {
        this.waiting = false;
        throw (this.dead = this.closedError(what));
      }
      if (left <= 0) {
        this.waiting = false;
        this.dead = new VfioError(
          'ETIMEDOUT',
          `${what}: the server at ${this.socketPath} did not answer within ${this.timeoutMs} ms.`,
          { device: this.name, hint: 'The connection is closed; attach the device again.' },
        );
        this.onTimeout?.();
        conn.close();
        throw this.dead;
      }
      // An int crosses the call unboxed (a fractional ms would be a heap number per wait).
      if (first && conn.queuedBytes === 0) {
        // The first wait is one blocking recvmsg, bounded by the socket's receive timeout (the
        // request timeout): one system call, not poll(2) and recvmsg, and no high-resolution
        // timer armed and cancelled per request (SO_RCVTIMEO is a timer-wheel timeout). Pinned
        // with the C device, this made the 4-byte read's p99 ~1.1x the C floor's, from ~1.3x.
        // Before it blocks it polls for as long as replies have recently come (up to 32 us, on
        // a thread that may use another CPU): unpinned, a 4-byte read went 24-26 -> 19 us.
        first = false;
        conn.socket.receiveWaiting();
      } else conn.pump((left | 0) + 1);
      if (!this.got) {
        addon.clockNs(clock);
        left = (end - clock[0]) / 1e6;
      }
    }
  }

  /**
   * `before` (a posted message at the start of its buffer) and then `message`, in one sendmsg
   * when `message` fits behind it and carries no fds: the server is woken once for both, as for
   * one message, instead of once for each (pinned on one CPU, each wakeup let the server take the
   * CPU from this thread: two context switches more per batch than the C client's). Otherwise
   * one sendmsg each, in order.
   */
  private sendJoined(
    conn: MessageConnection,
    before: Uint8Array,
    message: Uint8Array,
    fds: readonly number[],
  ): void {
    const length = before.length + message.length;
    if (fds.length > 0 || before.byteOffset !== 0 || length > before.buffer.byteLength) {
      conn.send(before);
      conn.send(message, fds);
      return;
    }
    let joined = this.joinedViews[length];
    if (joined === undefined || joined.buffer !== before.buffer) {
      joined = new Uint8Array(before.buffer, 0, length);
      this.joinedViews[length] = joined;
    }
    const at = before.length;
    for (let i = 0; i < message.length; i++) joined[at + i] = message[i];
    conn.sendMessages(joined);
  }

  /** Each message from the server: the awaited reply, a command to answer, or a stray reply. */
  private receive(frame: Frame, lent: boolean): void {
    const h = frame.header;
    if (
      this.waiting &&
      (h.flags & VFIO_USER_F_TYPE_MASK) === VFIO_USER_F_TYPE_REPLY &&
      h.msgId === this.expectId &&
      h.command === this.expectCommand
    ) {
      this.waiting = false;
      this.got = true;
      if (lent && frame.message.length <= BORROW_MAX) {
        const size = frame.message.length;
        const small = this.small;
        const src = frame.message;
        for (let i = 0; i < size; i++) small[i] = src[i];
        let v = this.smallViews[size];
        if (v === undefined) {
          v = small.subarray(0, size);
          this.smallViews[size] = v;
        }
        this.reply = v;
        this.replyView = this.smallView;
        this.replyFds = NO_FDS;
      } else {
        // A large lent reply is a view of the socket's receive buffer: it gets its own.
        const m = lent ? frame.message.slice() : frame.message;
        this.reply = m;
        this.replyView = new DataView(m.buffer, m.byteOffset, m.length);
        this.replyFds = frame.fds;
      }
      return;
    }
    closeFds(frame.fds);
    if (!isCommand(h)) return; // a stray reply: nothing asked for it
    let reply: Uint8Array;
    try {
      if (!this.onCommand)
        throw new VfioError('EINVAL', `command ${h.command} is not one a server sends to a client.`);
      reply = this.onCommand(frame);
    } catch (err) {
      if (!wantsReply(h)) return;
      reply = encodeErrorReply(h.msgId, h.command, toVfioError(err).errno);
    }
    if (wantsReply(h)) this.conn!.send(reply);
  }

  /** Have `fn` run before each later request() and post(), to keep messages in order. */
  onBeforeSend(fn: () => void): void {
    this.beforeSend = fn;
  }

  /** Send a whole message and return the reply in buffers of its own; an error reply throws its errno. */
  request(message: Uint8Array, fds: readonly number[] = []): Frame {
    this.beforeSend?.();
    const what = commandName(message[2] | (message[3] << 8));
    this.exchange(message, fds, false, what);
    // A small reply lives in the reused buffer: the caller gets a copy it may keep.
    const reply = this.reply.buffer === this.small.buffer ? this.reply.slice() : this.reply;
    const got = this.replyFds === NO_FDS ? [] : this.replyFds;
    this.replyFds = NO_FDS;
    const header = decodeHeader(reply);
    if (isErrorReply(header)) {
      closeFds(got);
      const errno = replyErrno(header);
      throw new VfioError(errnoName(errno) ?? 'EIO', `the server refused ${what} (errno ${errno}).`, {
        device: this.name,
      });
    }
    return { header, message: reply, payload: reply.subarray(VFIO_USER_HEADER_SIZE), fds: got };
  }

  /** request() for replies that carry nothing but success: any fds that came are closed. */
  call(message: Uint8Array, fds: readonly number[] = []): Frame {
    const frame = this.request(message, fds);
    closeFds(frame.fds);
    return frame;
  }

  /** Send without waiting for a reply (No_reply set). */
  post(message: Uint8Array): void {
    this.beforeSend?.();
    this.exchange(message, NO_FDS, true, commandName(message[2] | (message[3] << 8)));
  }
}
