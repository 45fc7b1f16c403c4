/**
 * serveDevice: expose any VfioDevice on a UNIX socket. One client at a time, as the
 * specification says: a connection that arrives while a session runs waits, unread, until the
 * session ends (libvfio-user leaves it in the listen backlog the same way); past
 * `maxPendingClients` waiting connections a new one is closed at once.
 */
import { type Clock, type Logger, toVfioError, type VfioDevice, VfioError } from '@vfiokit/core';
import { createRealClock, stderrLogger } from '../host.js';
import { type UnixConnection, UnixListener } from '../native/socket.js';
import type { DmaLayout } from '../protocol/dma.js';
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
  /** Connections that may wait while a session runs (default 4); more are refused. */
  readonly maxPendingClients?: number;
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
}

export class VfioUserServer {
  readonly socketPath: string;
  readonly name: string;
  /** Resolves when close() finished. */
  readonly closed: Promise<void>;
  private readonly listener: UnixListener;
  private readonly waiting: UnixConnection[] = [];
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
    if (!this.current && this.waiting.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Stop listening, end the session (its client's resources are released), remove the socket file. */
  async close(): Promise<void> {
    if (!this.isOpen) return this.closed;
    this.isOpen = false;
    this.listener.close();
    for (const c of this.waiting.splice(0)) c.close();
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
        this.log.warn(`${this.socketPath}: a client was refused; one session runs and others wait.`);
        conn.close();
      } else this.waiting.push(conn);
      return;
    }
    this.start(conn);
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
      const conn = this.waiting.shift()!;
      if (!conn.open) continue;
      this.start(conn);
      return;
    }
    if (!this.current && this.waiting.length === 0) for (const w of this.idleWaiters.splice(0)) w();
  }
}

/** Listen on `socketPath` and serve `device` to one client at a time until close(). */
export async function serveDevice(options: ServeDeviceOptions): Promise<VfioUserServer> {
  const log = options.log ?? stderrLogger(`vfio-user ${options.name ?? options.device.name}`);
  const listener = UnixListener.listen(options.socketPath);
  try {
    return new VfioUserServer(listener, options, log, options.clock ?? createRealClock());
  } catch (err) {
    listener.close();
    throw err;
  }
}
