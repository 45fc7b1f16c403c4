/**
 * Non-blocking UNIX stream sockets with descriptor passing, driven by uv_poll: reads happen
 * when the socket is readable, queued writes when it is writable, and the event loop is never
 * held: a connection made with waitInPlace waits for its next message inside its callback only
 * as long as the loop would wait anyway, polling for at most 32 us of that (native poll.c).
 * A caller that waits for an answer on its own thread (the client's synchronous requests) may
 * also drive the socket itself with pump(): one bounded poll(2), then the same send and
 * receive steps the event loop's readiness callback takes; or, once setReceiveTimeout made the
 * socket blocking, with receiveWaiting(): one recvmsg that waits, bounded by that timeout.
 */
import { unlinkSync } from 'node:fs';
import { VfioError } from '@vfiokit/core';
import {
  native,
  POLL_IN_PLACE,
  POLL_POLLED,
  POLL_READABLE,
  POLL_WRITABLE,
  type PollHandle,
  RECV_FDS_TRUNCATED,
  RECV_POLLED,
  systemCode,
  systemError,
  type Waiter,
} from './addon.js';
import { closeFds, dupFd } from './memory.js';

/** SCM_MAX_FD (include/net/scm.h): the most descriptors one sendmsg can carry. */
export const MAX_FDS_PER_SENDMSG = 253;

const NO_FDS: readonly number[] = Object.freeze([]);
/** At most this many recvmsg calls per readiness callback, so one busy peer cannot starve the loop. */
const READS_PER_WAKEUP = 32;
/**
 * With waitInPlace, how many chunks one connection may receive between two turns of the event
 * loop (native pollStart's hold bounds the waits in place the same). Its timers and immediates
 * never wait for this: a wait in place ends as soon as one is due. What it bounds is how long the
 * loop's other descriptors (other connections, signals, the platform's tasks) may wait while this
 * peer keeps its socket readable at every wait: about the bound times one message's time. It is
 * counted in chunks, and a callback that stopped at READS_PER_WAKEUP goes on in place too: a peer
 * on the same CPU has its next request queued before the reply's sendmsg returns, so with a
 * bound per callback every 32nd request went through a turn of the loop (epoll_wait and Node's
 * phases): 3% of the requests, inside the p99.
 */
const LOOP_TURN_EVERY = 1024;
/** Received chunks up to this size are handed out in views made once per size (no allocation). */
const SMALL_CHUNK = 512;
/** How many larger chunk sizes keep their view (chunk()). */
const LARGE_CHUNK_VIEWS = 8;

export interface UnixConnectionHandlers {
  /**
   * Bytes and the descriptors that arrived with them. `chunk` is a view of the connection's
   * receive buffer, valid only during the call; the descriptors now belong to the handler.
   * Returning `true` stops this round of reading (what the caller waited for has come); the
   * rest stays in the socket for the next one.
   */
  onData(chunk: Uint8Array, fds: readonly number[]): unknown;
  /** Called once: `error` is undefined for a local close() without a reason. */
  onClose?(error: VfioError | undefined): void;
  /** The send queue emptied after back-pressure. */
  onDrain?(): void;
}

interface Pending {
  bytes: Uint8Array;
  /** Duplicates owned by the queue, sent with the first byte of `bytes`. */
  fds: number[] | undefined;
}

export interface UnixConnectionOptions {
  /** Size of the receive buffer (bytes per recvmsg). */
  receiveBufferSize?: number;
  /** How many descriptors one recvmsg accepts; more are cut off by the kernel and closed. */
  maxReceiveFds?: number;
  /** A name for messages (the socket path, "socketpair"...). */
  name?: string;
  /** Whether the open connection keeps the event loop alive (default true). */
  ref?: boolean;
  /**
   * For a peer that sends its next message as soon as it has the answer to the last (a VMM's
   * vCPU waiting on a register read): once a readiness callback has read the socket empty,
   * wait for the next message inside the callback, in poll(2) on this socket and the event
   * loop's own descriptor, for as long as the loop would wait anyway (native pollStart's hold);
   * the wait polls first, for up to 32 us as the peer's recent pace warrants, unless this thread
   * may run on one CPU only (polledInPlaceWakeups). Nothing of the loop is delayed: its timers, immediates and every other handle end the wait.
   * What is saved is the loop's turn between two messages, which in Node allocates on every
   * turn (the check phase), so a busy connection makes garbage and GC pauses without it.
   */
  waitInPlace?: boolean;
}

/** Sleep on the calling thread (a connect retry of a synchronous caller). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export class UnixConnection {
  readonly fd: number;
  readonly name: string;
  private readonly recvBuffer: Uint8Array;
  private readonly fdsOut: Int32Array;
  /** Views of the start of recvBuffer by length, for chunks of at most SMALL_CHUNK bytes. */
  private readonly chunkViews: (Uint8Array | undefined)[] = [];
  private readonly largeChunks = new Map<number, Uint8Array>();
  private handlers: UnixConnectionHandlers | undefined;
  private poll: PollHandle | undefined;
  private queue: Pending[] = [];
  private queued = 0;
  private writeInterest = false;
  private isOpen = true;
  private readonly ref: boolean;
  private readonly hold: number;
  /** The addon, resolved once: the receive and send paths call it for every message. */
  private readonly addon = native();
  private heldWakeups = 0;
  private polledWakeups = 0;
  /** receiveWaiting's adaptive polling (made by setReceiveTimeout), and its replies found so. */
  private waiter: Waiter | undefined;
  private polledReplies = 0;
  /** Chunks received since the event loop last called ready() (waitInPlace bounds it). */
  private sinceLoop = 0;

  /** Take ownership of a connected, non-blocking socket descriptor. */
  constructor(fd: number, options: UnixConnectionOptions = {}) {
    this.fd = fd;
    this.name = options.name ?? `fd ${fd}`;
    this.recvBuffer = new Uint8Array(options.receiveBufferSize ?? 256 * 1024);
    const maxFds = Math.min(options.maxReceiveFds ?? MAX_FDS_PER_SENDMSG, MAX_FDS_PER_SENDMSG);
    this.fdsOut = new Int32Array(2 + maxFds);
    this.ref = options.ref ?? true;
    this.hold = options.waitInPlace === true ? LOOP_TURN_EVERY : 0;
  }

  /** A connected pair (socketpair(AF_UNIX, SOCK_STREAM)). */
  static pair(options: UnixConnectionOptions = {}): [UnixConnection, UnixConnection] {
    let fds: [number, number];
    try {
      fds = native().socketPair();
    } catch (err) {
      throw systemError(err, 'socketpair failed');
    }
    return [
      new UnixConnection(fds[0], { name: 'socketpair[0]', ...options }),
      new UnixConnection(fds[1], { name: 'socketpair[1]', ...options }),
    ];
  }

  /** Connect to a listening socket; retries while the listener's backlog is full, up to `timeoutMs`. */
  static connect(
    path: string,
    options: UnixConnectionOptions & { timeoutMs?: number } = {},
  ): Promise<UnixConnection> {
    const deadline = Date.now() + (options.timeoutMs ?? 5000);
    return new Promise((resolve, reject) => {
      const attempt = () => {
        try {
          resolve(new UnixConnection(native().unixConnect(path), { name: path, ...options }));
        } catch (err) {
          if (systemCode(err) === 'EAGAIN' && Date.now() < deadline) {
            setTimeout(attempt, 2);
            return;
          }
          reject(
            systemError(
              err,
              `connecting to ${path} failed`,
              'Check that a vfio-user server listens on that path.',
            ),
          );
        }
      };
      attempt();
    });
  }

  /** connect() for a synchronous caller: the retries while the backlog is full sleep on this thread. */
  static connectSync(
    path: string,
    options: UnixConnectionOptions & { timeoutMs?: number } = {},
  ): UnixConnection {
    const deadline = Date.now() + (options.timeoutMs ?? 5000);
    for (;;) {
      try {
        return new UnixConnection(native().unixConnect(path), { name: path, ...options });
      } catch (err) {
        if (systemCode(err) === 'EAGAIN' && Date.now() < deadline) {
          sleepSync(2);
          continue;
        }
        throw systemError(
          err,
          `connecting to ${path} failed`,
          'Check that a vfio-user server listens on that path.',
        );
      }
    }
  }

  get open(): boolean {
    return this.isOpen;
  }

  /** Bytes waiting in the send queue (back-pressure). */
  get queuedBytes(): number {
    return this.queued;
  }

  /** How many readiness callbacks came from a wait in place (waitInPlace), not from the loop. */
  get inPlaceWakeups(): number {
    return this.heldWakeups;
  }

  /**
   * How many of inPlaceWakeups found their message while the wait polled, before it blocked:
   * the peer's next message came within the polling window, and no thread slept between.
   */
  get polledInPlaceWakeups(): number {
    return this.polledWakeups;
  }

  /**
   * How long the next wait in place polls before it blocks, in ns: 0 until waits keep ending
   * within 32 us, and again after one took longer (or when this thread may use one CPU only).
   */
  get inPlacePollNs(): number {
    return this.poll ? this.addon.pollWindow(this.poll) : 0;
  }

  /** Start receiving. Call once. */
  start(handlers: UnixConnectionHandlers): void {
    if (this.handlers) throw new VfioError('EBUSY', `connection ${this.name} was already started.`);
    if (!this.isOpen) throw new VfioError('EBADF', `connection ${this.name} is closed.`);
    this.handlers = handlers;
    try {
      this.poll = native().pollStart(
        this.fd,
        this.interest(),
        (status, events) => this.ready(status, events),
        this.hold,
      );
      if (!this.ref) native().pollRef(this.poll, false);
    } catch (err) {
      this.close(systemError(err, `polling connection ${this.name} failed`));
    }
  }

  /**
   * Send `bytes` with `fds` in one sendmsg when the socket takes it; otherwise queue the rest
   * (the descriptors are duplicated first, so the caller may close its own at once). Returns
   * true when everything was written now, false when some of it waits for the socket.
   */
  send(bytes: Uint8Array, fds: readonly number[] = NO_FDS): boolean {
    if (!this.isOpen)
      throw new VfioError('ECONNRESET', `connection ${this.name} is closed; nothing can be sent.`);
    if (bytes.length === 0)
      throw new VfioError('EINVAL', `connection ${this.name}: an empty message cannot be sent.`);
    if (fds.length > MAX_FDS_PER_SENDMSG)
      throw new VfioError(
        'E2BIG',
        `connection ${this.name}: ${fds.length} fds exceed the ${MAX_FDS_PER_SENDMSG} one sendmsg can carry.`,
      );
    if (this.queue.length === 0) {
      const n = this.write(bytes, fds);
      if (n === bytes.length) return true;
      if (!this.isOpen) throw new VfioError('ECONNRESET', `connection ${this.name} closed while sending.`);
      if (n > 0) {
        this.enqueue(bytes.slice(n), undefined);
      } else {
        this.enqueue(bytes.slice(), this.dupAll(fds));
      }
    } else {
      this.enqueue(bytes.slice(), this.dupAll(fds));
    }
    this.updateInterest();
    return false;
  }

  /**
   * Drive the socket from the calling thread: wait at most `timeoutMs` in poll(2) until it is
   * readable (or writable, while something is queued), then send what is queued and receive
   * what came, as the event loop's readiness callback does (onData, onClose). Returns false
   * when nothing was ready in time.
   */
  pump(timeoutMs: number): boolean {
    if (!this.isOpen) return false;
    let ready: number;
    try {
      ready = this.addon.waitFd(this.fd, this.interest(), Math.max(0, Math.ceil(timeoutMs)));
    } catch (err) {
      this.close(systemError(err, `waiting on connection ${this.name} failed`));
      return false;
    }
    if (ready === 0) return false;
    if (ready & POLL_WRITABLE) this.flush();
    if (this.isOpen && ready & POLL_READABLE) this.drainReadable();
    return true;
  }

  /**
   * Block on this thread in one recvmsg until something comes or the receive timeout ends
   * (setReceiveTimeout; the socket must have been made blocking by it), then hand what came to
   * onData and read on without waiting, as drainReadable. False when nothing came. Before it
   * blocks it polls, as a served connection's wait in place does (native poll.c: up to 32 us,
   * adapting to how soon replies come, never on a thread limited to one CPU), so that a reply
   * coming a few microseconds after the request finds this thread awake.
   */
  receiveWaiting(): boolean {
    if (!this.isOpen) return false;
    let n: number;
    try {
      n = this.addon.recvMsg(this.fd, this.recvBuffer, this.fdsOut, true, this.waiter);
    } catch (err) {
      this.close(systemError(err, `receiving on ${this.name} failed`));
      return false;
    }
    if (n < 0) return false;
    if (this.fdsOut[1] & RECV_POLLED) this.polledReplies++;
    if (this.handleChunk(n) && this.isOpen) this.drainReadable();
    return true;
  }

  /** How many receiveWaiting() calls found what came while they polled, before blocking. */
  get polledReceives(): number {
    return this.polledReplies;
  }

  /** How long receiveWaiting's next wait polls before it blocks, in ns (0 before setReceiveTimeout). */
  get receivePollNs(): number {
    return this.waiter ? this.addon.waiterWindow(this.waiter) : 0;
  }

  /**
   * Make receiveWaiting() wait at most `ms` (rounded up to whole ms): the socket becomes
   * blocking, which changes nothing else here (every other send and receive passes
   * MSG_DONTWAIT, and uv_poll only watches it).
   */
  setReceiveTimeout(ms: number): void {
    if (!this.isOpen) return;
    try {
      this.addon.setReceiveTimeout(this.fd, Math.min(0x7fffffff, Math.max(1, Math.ceil(ms))));
      this.waiter ??= this.addon.waiterCreate();
    } catch (err) {
      throw systemError(err, `setting the receive timeout of ${this.name} failed`);
    }
  }

  /** Close once: stop polling, close the socket and any queued descriptors, tell onClose. */
  close(error?: VfioError): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    if (this.poll) native().pollStop(this.poll);
    this.poll = undefined;
    for (const p of this.queue) if (p.fds) closeFds(p.fds);
    this.queue = [];
    this.queued = 0;
    closeFds([this.fd]);
    this.handlers?.onClose?.(error);
  }

  private dupAll(fds: readonly number[]): number[] | undefined {
    if (fds.length === 0) return undefined;
    const out: number[] = [];
    try {
      for (const fd of fds) out.push(dupFd(fd));
    } catch (err) {
      closeFds(out);
      throw err;
    }
    return out;
  }

  private enqueue(bytes: Uint8Array, fds: number[] | undefined): void {
    this.queue.push({ bytes, fds });
    this.queued += bytes.length;
  }

  /** One sendmsg; returns bytes written (0 when it would block), or -1 after closing on error. */
  private write(bytes: Uint8Array, fds: readonly number[]): number {
    try {
      const n = this.addon.sendMsg(this.fd, bytes, fds.length ? fds : undefined);
      return Math.max(n, 0);
    } catch (err) {
      this.close(systemError(err, `sending ${bytes.length} bytes on ${this.name} failed`));
      return -1;
    }
  }

  private flush(): void {
    while (this.queue.length > 0 && this.isOpen) {
      const head = this.queue[0];
      const n = this.write(head.bytes, head.fds ?? NO_FDS);
      if (n < 0) return;
      if (n === 0) break;
      if (head.fds) closeFds(head.fds);
      head.fds = undefined;
      this.queued -= n;
      if (n === head.bytes.length) this.queue.shift();
      else head.bytes = head.bytes.subarray(n);
    }
    if (!this.isOpen) return;
    this.updateInterest();
    if (this.queue.length === 0) this.handlers?.onDrain?.();
  }

  private interest(): number {
    return POLL_READABLE | (this.queue.length > 0 ? POLL_WRITABLE : 0);
  }

  private updateInterest(): void {
    const want = this.queue.length > 0;
    if (want === this.writeInterest || !this.poll) return;
    this.writeInterest = want;
    native().pollUpdate(this.poll, this.interest());
  }

  /**
   * The readiness callback. True asks the native side to wait in place for the next message
   * (waitInPlace): the socket was read empty and nothing waits to be sent.
   */
  private ready(status: number, events: number): boolean {
    if (!this.isOpen) return false;
    if (status < 0) {
      this.close(new VfioError('EIO', `polling connection ${this.name} failed with libuv status ${status}.`));
      return false;
    }
    if (events & POLL_IN_PLACE) {
      this.heldWakeups++;
      if (events & POLL_POLLED) this.polledWakeups++;
    } else this.sinceLoop = 0;
    if (events & POLL_WRITABLE) this.flush();
    return (
      this.isOpen &&
      this.drainReadable() &&
      this.isOpen &&
      this.queue.length === 0 &&
      this.sinceLoop < LOOP_TURN_EVERY
    );
  }

  /** The first `n` received bytes (the view is valid until the next receive, as the buffer). */
  private chunk(n: number): Uint8Array {
    if (n > SMALL_CHUNK) {
      // Views kept for a few large sizes: batches of one size come again and again, alone or
      // with the next request behind them.
      let v = this.largeChunks.get(n);
      if (v === undefined) {
        if (this.largeChunks.size >= LARGE_CHUNK_VIEWS) this.largeChunks.clear();
        v = this.recvBuffer.subarray(0, n);
        this.largeChunks.set(n, v);
      }
      return v;
    }
    let v = this.chunkViews[n];
    if (v === undefined) {
      v = this.recvBuffer.subarray(0, n);
      this.chunkViews[n] = v;
    }
    return v;
  }

  /**
   * Receive until the socket would block or for READS_PER_WAKEUP chunks (true: the caller may
   * wait for more), or until a stop or a close (false).
   */
  private drainReadable(): boolean {
    const addon = this.addon;
    for (let i = 0; i < READS_PER_WAKEUP && this.isOpen; i++) {
      let n: number;
      try {
        n = addon.recvMsg(this.fd, this.recvBuffer, this.fdsOut);
      } catch (err) {
        this.close(systemError(err, `receiving on ${this.name} failed`));
        return false;
      }
      if (n < 0) return true;
      if (!this.handleChunk(n)) return false;
    }
    return false;
  }

  /** recvmsg returned `n` >= 0 (0: the peer closed): hand the bytes and fds to onData. False when reading should stop. */
  private handleChunk(n: number): boolean {
    const count = this.fdsOut[0];
    const fds = count > 0 ? Array.from(this.fdsOut.subarray(2, 2 + count)) : NO_FDS;
    if (n === 0) {
      closeFds(fds);
      this.close(new VfioError('ECONNRESET', `the peer closed connection ${this.name}.`));
      return false;
    }
    if (this.fdsOut[1] & RECV_FDS_TRUNCATED) {
      closeFds(fds);
      this.close(
        new VfioError(
          'EPROTO',
          `connection ${this.name}: the peer sent more fds than one message may carry; they were cut off.`,
        ),
      );
      return false;
    }
    this.sinceLoop++;
    try {
      if (this.handlers!.onData(this.chunk(n), fds) === true) return false;
    } catch (err) {
      this.close(
        err instanceof VfioError ? err : systemError(err, `the data handler of ${this.name} failed`),
      );
      return false;
    }
    return this.isOpen;
  }
}

export class UnixListener {
  readonly fd: number;
  readonly path: string;
  private poll: PollHandle | undefined;
  private isOpen = true;
  private waiters: ((conn: UnixConnection) => void)[] = [];
  private handler: ((conn: UnixConnection) => void) | undefined;
  private readonly connOptions: UnixConnectionOptions;

  private constructor(fd: number, path: string, connOptions: UnixConnectionOptions) {
    this.fd = fd;
    this.path = path;
    this.connOptions = connOptions;
  }

  /** bind + listen on `path` (a stale socket file left by a dead server is removed first). */
  static listen(path: string, options: UnixConnectionOptions & { backlog?: number } = {}): UnixListener {
    try {
      return new UnixListener(native().unixListen(path, options.backlog ?? 16), path, options);
    } catch (err) {
      throw systemError(err, `listening on ${path} failed`, 'Is another server using that path?');
    }
  }

  get open(): boolean {
    return this.isOpen;
  }

  /** Call `fn` for every accepted connection (not yet started). */
  onConnection(fn: (conn: UnixConnection) => void): void {
    this.handler = fn;
    this.ensurePolling();
  }

  /** The next connection, at most `timeoutMs` from now. */
  accept(timeoutMs = 5000): Promise<UnixConnection> {
    return new Promise((resolve, reject) => {
      const waiter = (conn: UnixConnection) => {
        clearTimeout(timer);
        resolve(conn);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new VfioError('ETIMEDOUT', `no client connected to ${this.path} within ${timeoutMs} ms.`));
      }, timeoutMs);
      this.waiters.push(waiter);
      this.ensurePolling();
    });
  }

  /** Stop accepting, close the socket and remove the socket file. Idempotent. */
  close(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    if (this.poll) native().pollStop(this.poll);
    this.poll = undefined;
    closeFds([this.fd]);
    try {
      unlinkSync(this.path);
    } catch {
      // already removed
    }
  }

  private ensurePolling(): void {
    if (this.poll || !this.isOpen) return;
    this.poll = native().pollStart(this.fd, POLL_READABLE, (status) => {
      if (status < 0 || !this.isOpen) return;
      for (;;) {
        if (!this.handler && this.waiters.length === 0) {
          // Nobody wants a connection now: stop polling so a pending one does not spin the loop.
          if (this.poll) native().pollStop(this.poll);
          this.poll = undefined;
          return;
        }
        let fd: number;
        try {
          fd = native().unixAccept(this.fd);
        } catch {
          return; // EMFILE and friends: try again on the next readiness callback
        }
        if (fd < 0) return;
        const conn = new UnixConnection(fd, { name: `${this.path}#${fd}`, ...this.connOptions });
        const waiter = this.waiters.shift();
        if (waiter) waiter(conn);
        else this.handler!(conn);
      }
    });
  }
}
