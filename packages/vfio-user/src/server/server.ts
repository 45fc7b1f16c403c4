/**
 * serveDevice: expose any VfioDevice on a UNIX socket. One client at a time, as the
 * specification says. A connection that arrives while a session runs waits, unread, for the
 * session to end (libvfio-user leaves it in the listen backlog the same way), so a client that
 * replaces one that just died is served; but only for `pendingTimeoutMs`: then its VERSION is
 * answered with EBUSY and the connection closed, so that the client reports "Device or resource
 * busy" (QEMU: "version reply: Device or resource busy") instead of its own silent timeout
 * (QEMU waits 5 s, hw/vfio-user/pci.c x-msg-timeout). Past `maxPendingClients` waiting
 * connections a new one is refused the same way at once.
 */

import { type Clock, type Logger, type VfioDevice, VfioError } from '@vfiokit/core';
import { ERRNO } from '@vfiokit/core/abi';
import { toVfioError } from '@vfiokit/core/host';
import { createRealClock, stderrLogger } from '../host.js';
import { closeFds } from '../native/memory.js';
import { type UnixConnection, UnixListener } from '../native/socket.js';
import type { DmaLayout } from '../protocol/dma.js';
import { encodeErrorReply, isCommand, wantsReply } from '../protocol/header.js';
import { MessageConnection } from '../transport.js';
import { Session, serverLimits } from './session.js';

export interface ServerLimitOptions {
  /** max_data_xfer_size announced and enforced (default 1 MiB, as libvfio-user). */
  readonly maxDataXferSize?: number;
  /**
   * max_msg_fds announced and enforced (default 8, as libvfio-user). QEMU's client refuses a
   * value above 16 (hw/vfio-user/protocol.h VFIO_USER_MAX_MAX_FDS) and sends SET_IRQS eventfds in
   * chunks of this size.
   */
  readonly maxMsgFds?: number;
  /** Connections that may wait while a session runs (default 4); more are refused with EBUSY. */
  readonly maxPendingClients?: number;
  /**
   * How long a connection waits for the running session to end before it is refused with EBUSY
   * (default 2000 ms: less than the 5 s QEMU waits for the VERSION reply, more than a dead
   * client's session takes to end).
   */
  readonly pendingTimeoutMs?: number;
  /** How long a DMA_READ/DMA_WRITE to the client may wait for its reply (default 5000 ms). */
  readonly requestTimeoutMs?: number;
}

export interface ServeDeviceOptions {
  readonly socketPath: string;
  readonly device: VfioDevice;
  /** A name for messages; the device name by default. */
  readonly name?: string;
  readonly log?: Logger;
  readonly clock?: Clock;
  readonly limits?: ServerLimitOptions;
  /**
   * The DMA_READ/DMA_WRITE layout the client speaks: 'qemu' (hw/vfio-user, the default) or
   * 'spec' (libvfio-user's samples/client).
   */
  readonly dmaLayout?: DmaLayout;
  /**
   * @deprecated Has no effect. V8's memory reducer (a full GC for an idle-looking heap, 6–18 ms
   * pauses ~8 s after start on a server whose hot path allocates nothing) can only be turned off
   * when node starts: run the serving process as `node --no-memory-reducer ...` (the `vfiokit`
   * executable starts so); setting the flag at run time stops nothing in Node 20.
   */
  readonly memoryReducer?: boolean;
}

export class VfioUserServer {
  readonly socketPath: string;
  readonly name: string;
  /** Resolves when close() finished. */
  readonly closed: Promise<void>;
  private readonly listener: UnixListener;
  private readonly waiting: { conn: UnixConnection; timer: ReturnType<typeof setTimeout> }[] = [];
  /** Connections being told EBUSY. */
  private readonly refusing = new Set<MessageConnection>();
  private current: Session | undefined;
  private served = 0;
  private isOpen = true;
  private idleWaiters: (() => void)[] = [];
  private resolveClosed!: () => void;

  /** @internal use serveDevice */
  constructor(
    listener: UnixListener,
    private readonly opts: ServeDeviceOptions,
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {
    this.listener = listener;
    this.socketPath = opts.socketPath;
    this.name = opts.name ?? opts.device.name;
    serverLimits(opts.limits); // refuse bad limits before the first client
    this.closed = new Promise((r) => {
      this.resolveClosed = r;
    });
    listener.onConnection((conn) => this.accept(conn));
  }

  /** Sessions started so far. */
  get sessions(): number {
    return this.served;
  }

  /** The running session, if a client is attached. */
  get session(): Session | undefined {
    return this.current;
  }

  /** Connections waiting for the running session to end. */
  get waitingClients(): number {
    return this.waiting.length;
  }

  /** Resolves when no session runs and no connection waits. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Stop listening, end the session (its client's resources are released), remove the socket file. */
  async close(): Promise<void> {
    if (!this.isOpen) return this.closed;
    this.isOpen = false;
    this.listener.close();
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.conn.close();
    }
    for (const r of this.refusing) r.close();
    this.current?.close(new VfioError('ECONNRESET', 'the server is shutting down.'));
    this.current = undefined;
    this.resolveClosed();
    for (const w of this.idleWaiters.splice(0)) w();
    return this.closed;
  }

  private accept(conn: UnixConnection): void {
    if (!this.isOpen) {
      conn.close();
      return;
    }
    if (this.current) {
      if (this.waiting.length >= (this.opts.limits?.maxPendingClients ?? 4)) {
        this.refuse(conn, `${this.waiting.length} more wait already`);
        return;
      }
      const entry = {
        conn,
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(entry);
          if (i < 0) return;
          this.waiting.splice(i, 1);
          this.refuse(conn, 'the running session did not end in time');
        }, this.opts.limits?.pendingTimeoutMs ?? 2000),
      };
      this.waiting.push(entry);
      return;
    }
    this.start(conn);
  }

  /** Answer the client's first command with EBUSY, then close (at most 1 s for it to come). */
  private refuse(conn: UnixConnection, why: string): void {
    this.log.warn(
      `${this.socketPath}: a client was refused with EBUSY: one client is served at a time, and ${why}.`,
    );
    if (!conn.open) {
      this.settle();
      return;
    }
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (mc: MessageConnection) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      mc.close();
    };
    const mc = new MessageConnection(conn, {
      onMessage: (f) => {
        closeFds(f.fds.splice(0));
        if (!done && isCommand(f.header) && wantsReply(f.header)) {
          try {
            mc.send(encodeErrorReply(f.header.msgId, f.header.command, ERRNO.EBUSY));
          } catch {
            // it left already
          }
        }
        finish(mc);
      },
      onClose: () => {
        done = true;
        clearTimeout(timer);
        this.refusing.delete(mc);
        this.settle();
      },
    });
    this.refusing.add(mc);
    timer = setTimeout(() => finish(mc), 1000);
  }

  private isIdle(): boolean {
    return !this.current && this.waiting.length === 0 && this.refusing.size === 0;
  }

  private settle(): void {
    if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
  }

  private start(conn: UnixConnection): void {
    this.served++;
    try {
      this.current = new Session(conn, {
        device: this.opts.device,
        name: this.name,
        log: this.log,
        clock: this.clock,
        limits: serverLimits(this.opts.limits),
        dmaLayout: this.opts.dmaLayout ?? 'qemu',
        requestTimeoutMs: this.opts.limits?.requestTimeoutMs ?? 5000,
        onEnd: (s) => this.ended(s),
      });
    } catch (err) {
      this.log.error(`starting a session failed: ${toVfioError(err).message}`);
      conn.close();
      this.current = undefined;
      this.next();
    }
  }

  private ended(s: Session): void {
    if (this.current === s) this.current = undefined;
    // Start the next one outside the closing session's call stack.
    setImmediate(() => this.next());
  }

  private next(): void {
    if (this.current) return;
    while (this.isOpen && this.waiting.length > 0) {
      const { conn, timer } = this.waiting.shift()!;
      clearTimeout(timer);
      if (!conn.open) continue;
      this.start(conn);
      return;
    }
    this.settle();
  }
}

/** Listen on `socketPath` and serve `device` to one client at a time until close(). */
export async function serveDevice(options: ServeDeviceOptions): Promise<VfioUserServer> {
  const log = options.log ?? stderrLogger(`vfio-user ${options.name ?? options.device.name}`);
  // A VMM's vCPU sends its next access as soon as it has the last one's reply: wait for it in
  // place (UnixConnectionOptions.waitInPlace) rather than through a turn of the loop.
  const listener = UnixListener.listen(options.socketPath, { waitInPlace: true });
  try {
    return new VfioUserServer(listener, options, log, options.clock ?? createRealClock());
  } catch (err) {
    listener.close();
    throw err;
  }
}
