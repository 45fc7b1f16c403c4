/**
 * The main thread's end of a client channel (channel.ts): it starts the one I/O worker of the
 * process, opens a channel in it, writes each request into the shared buffer and waits with
 * Atomics.wait until the worker hands the reply back. That wait is the one blocking call on
 * the main thread, it is bounded by the request timeout, and it waits only on the worker: the
 * server's DMA_READ/DMA_WRITE are answered by the worker meanwhile.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type SharedMemory, VfioError } from '@vfiokit/core';
import { ERRNO, errnoName } from '@vfiokit/core/abi';
import { closeFds } from '../native/memory.js';
import { commandName, VFIO_USER_HEADER_SIZE } from '../protocol/constants.js';
import type { DmaLayout } from '../protocol/dma.js';
import type { Frame } from '../protocol/framing.js';
import {
  DEFAULT_LIMITS,
  decodeHeader,
  isErrorReply,
  type Limits,
  maxMessageSize,
  replyErrno,
} from '../protocol/header.js';
import {
  type ChannelMessage,
  CLOSED,
  CONNECTING,
  CONTROL_WORDS,
  ERRNO as ERRNO_WORD,
  FDS_AT,
  type GuestMemoryRef,
  IDLE,
  LEN,
  MAPPED,
  MAX_CHANNEL_FDS,
  NFDS,
  NOREPLY,
  REPLY,
  REQUEST,
  STATE,
  waitAsync,
} from './channel.js';

// ---- the shared I/O worker ------------------------------------------------------------------

let ioWorker: Worker | undefined;
let nextChannel = 1;

function worker(): Worker {
  if (ioWorker) return ioWorker;
  const here = import.meta.url;
  let w: Worker;
  if (here.endsWith('.ts')) {
    // Running from source (tests, tsx): the worker needs the same TypeScript loader.
    const tsx = tsxEsmApi(here);
    const entry = new URL('./worker.ts', here).href;
    w = new Worker(
      `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`,
      { eval: true, execArgv: ['--conditions=@vfiokit/source'] },
    );
  } else w = new Worker(new URL('./worker.js', here));
  w.unref();
  w.on('error', (err) => {
    process.stderr.write(`vfio-user client worker failed: ${String(err)}\n`);
    ioWorker = undefined;
  });
  w.on('exit', () => {
    if (ioWorker === w) ioWorker = undefined;
  });
  ioWorker = w;
  return w;
}

/** tsx's ESM register API, found through its package exports (require.resolve would pick the CJS build). */
function tsxEsmApi(from: string): string {
  const pkgPath = createRequire(from).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as {
    exports: Record<string, { import: { default: string } }>;
  };
  return pathToFileURL(join(dirname(pkgPath), pkg.exports['./esm/api'].import.default)).href;
}

function guestRef(memory: SharedMemory | undefined): GuestMemoryRef | undefined {
  if (!memory) return undefined;
  if (memory.fd !== undefined) return { fd: memory.fd, size: memory.size };
  const buf = memory.bytes.buffer;
  if (!(buf instanceof SharedArrayBuffer))
    throw new VfioError(
      'EINVAL',
      'guest memory without an fd must live in a SharedArrayBuffer, so the client I/O worker can answer DMA_READ and DMA_WRITE from it.',
      { hint: 'Use allocateSharedMemory() or memfd-backed memory.' },
    );
  return { buffer: buf, byteOffset: memory.bytes.byteOffset, size: memory.size };
}

// ---- one channel ----------------------------------------------------------------------------

/**
 * How long the first connection of a process may wait for the I/O worker itself to start (it
 * loads its modules, and from source compiles them) on top of connectTimeoutMs. The connect
 * deadline is the worker's (it connects with connectTimeoutMs and reports ETIMEDOUT); this one
 * only catches a worker that never starts.
 */
const WORKER_START_MS = 30_000;

export interface LinkOptions {
  readonly socketPath: string;
  /** The device's name, for messages. */
  readonly name: string;
  readonly guestMemory: SharedMemory | undefined;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly dmaLayout: DmaLayout;
  /** max_data_xfer_size this client accepts: the size of the shared buffer. */
  readonly maxDataXferSize: number;
  /** Called when a request timed out, before the channel closes (the device drops its eventfds). */
  readonly onTimeout: () => void;
}

export class ChannelLink {
  readonly socketPath: string;
  readonly name: string;
  /** The control words and the message buffer shared with the worker. */
  readonly ctrl: Int32Array;
  readonly data: Uint8Array;
  readonly dv: DataView;
  /** What the server accepts per message (set after VERSION), capped by what this side frames. */
  limits: Limits = DEFAULT_LIMITS;
  private readonly id: number;
  private readonly timeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly onTimeout: () => void;
  private dead: VfioError | undefined;
  private nextMsgId = 0;
  /** Runs before every request and post: sends the posted writes still held (regions.ts). */
  private beforeSend: (() => void) | undefined;

  constructor(o: LinkOptions) {
    this.socketPath = o.socketPath;
    this.name = o.name;
    this.timeoutMs = o.timeoutMs;
    this.connectTimeoutMs = o.connectTimeoutMs;
    this.onTimeout = o.onTimeout;
    const dataSize = maxMessageSize({ maxMsgFds: 0, maxDataXferSize: o.maxDataXferSize });
    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    const data = new SharedArrayBuffer(dataSize);
    this.ctrl = new Int32Array(control);
    this.data = new Uint8Array(data);
    this.dv = new DataView(data);
    this.id = nextChannel++;
    const guest = guestRef(o.guestMemory);
    const msg: ChannelMessage = {
      type: 'open',
      id: this.id,
      path: o.socketPath,
      control,
      data,
      ...(guest ? { guest } : {}),
      dmaLayout: o.dmaLayout,
      maxDataXferSize: o.maxDataXferSize,
      connectTimeoutMs: o.connectTimeoutMs,
    };
    worker().postMessage(msg);
  }

  /** Wait for the worker's connect without blocking the event loop. */
  async connected(): Promise<void> {
    const r = waitAsync(this.ctrl, STATE, CONNECTING, this.connectTimeoutMs + WORKER_START_MS);
    if (r.async) {
      // Atomics.waitAsync holds no handle on the event loop and the I/O worker is unref'd: a
      // ref'd timer keeps a process that has nothing else to do alive until the connection is up.
      const keepAlive = setInterval(() => {}, 60_000);
      try {
        await r.value;
      } finally {
        clearInterval(keepAlive);
      }
    }
    this.checkConnected();
  }

  /** The same, blocking. */
  connectedSync(): void {
    Atomics.wait(this.ctrl, STATE, CONNECTING, this.connectTimeoutMs + WORKER_START_MS);
    this.checkConnected();
  }

  private checkConnected(): void {
    const s = Atomics.load(this.ctrl, STATE);
    if (s === IDLE) return;
    const timedOut = s === CONNECTING || this.ctrl[ERRNO_WORD] === ERRNO.ETIMEDOUT;
    const err = timedOut
      ? new VfioError(
          'ETIMEDOUT',
          `connecting to ${this.socketPath} did not finish within ${this.connectTimeoutMs} ms.`,
          {
            device: this.name,
            hint:
              s === CONNECTING
                ? 'The client I/O worker did not start.'
                : 'Is a server listening there? A busy one keeps later clients waiting.',
          },
        )
      : this.closedError('connecting');
    this.close();
    throw err;
  }

  /** Whether the connection is still up. */
  get open(): boolean {
    return this.dead === undefined && Atomics.load(this.ctrl, STATE) !== CLOSED;
  }

  /** Tell the worker whether guest memory is mapped (it answers DMA_READ/WRITE only then). */
  set guestMapped(mapped: boolean) {
    Atomics.store(this.ctrl, MAPPED, mapped ? 1 : 0);
  }

  /** Close the channel and wait (at most 2 s) for the worker to close the socket. Idempotent. */
  close(): void {
    if (Atomics.load(this.ctrl, STATE) !== CLOSED) {
      ioWorker?.postMessage({ type: 'close', id: this.id } satisfies ChannelMessage);
      const end = performance.now() + 2000;
      for (;;) {
        const s = Atomics.load(this.ctrl, STATE);
        const left = end - performance.now();
        if (s === CLOSED || left <= 0) break;
        Atomics.wait(this.ctrl, STATE, s, left);
      }
    }
    this.dead ??= new VfioError('ECONNRESET', `the connection to ${this.socketPath} was closed.`);
  }

  private closedError(what: string): VfioError {
    const errno = this.ctrl[ERRNO_WORD] || ERRNO.ECONNRESET;
    const code = errnoName(errno) ?? 'EIO';
    return new VfioError(
      code === 'ECONNRESET' || code === 'EIO' ? code : 'ECONNRESET',
      `${what}: the vfio-user server at ${this.socketPath} is gone (${errnoName(errno) ?? `errno ${errno}`}).`,
      { device: this.name, hint: 'Restart the server and attach the device again.' },
    );
  }

  msgId(): number {
    this.nextMsgId = (this.nextMsgId + 1) & 0xffff;
    return this.nextMsgId;
  }

  /**
   * Hand `len` bytes already in the data buffer to the worker and wait for the reply (or the
   * send, for No_reply). The reply is then in `data` (LEN bytes, NFDS fds); the caller reads it
   * and calls done().
   */
  exchange(len: number, fds: readonly number[], noReply: boolean, what: string): void {
    if (this.dead) throw this.dead;
    const c = this.ctrl;
    if (Atomics.load(c, STATE) === CLOSED) throw (this.dead = this.closedError(what));
    if (fds.length > MAX_CHANNEL_FDS)
      throw new VfioError('E2BIG', `${fds.length} fds do not fit one message.`, { device: this.name });
    c[LEN] = len;
    c[NFDS] = fds.length;
    for (let i = 0; i < fds.length; i++) c[FDS_AT + i] = fds[i];
    c[NOREPLY] = noReply ? 1 : 0;
    Atomics.store(c, STATE, REQUEST);
    Atomics.notify(c, STATE);
    const end = performance.now() + this.timeoutMs;
    for (;;) {
      const s = Atomics.load(c, STATE);
      if (s === REPLY) return;
      if (s === CLOSED) throw (this.dead = this.closedError(what));
      const left = end - performance.now();
      if (left <= 0) {
        this.dead = new VfioError(
          'ETIMEDOUT',
          `${what}: the server at ${this.socketPath} did not answer within ${this.timeoutMs} ms.`,
          { device: this.name, hint: 'The connection is closed; attach the device again.' },
        );
        this.onTimeout();
        this.close();
        throw this.dead;
      }
      Atomics.wait(c, STATE, REQUEST, left);
    }
  }

  /** The reply of the last exchange has been read: the channel is free again. */
  done(): void {
    Atomics.store(this.ctrl, STATE, IDLE);
  }

  /** Have `fn` run before each later request() and post(), to keep messages in order. */
  onBeforeSend(fn: () => void): void {
    this.beforeSend = fn;
  }

  /** Send a whole message and return the reply; an error reply throws its errno. */
  request(message: Uint8Array, fds: readonly number[] = []): Frame {
    this.beforeSend?.();
    const command = new DataView(message.buffer, message.byteOffset).getUint16(2, true);
    const what = commandName(command);
    this.data.set(message);
    this.exchange(message.length, fds, false, what);
    const c = this.ctrl;
    const reply = this.data.slice(0, c[LEN]);
    const got: number[] = [];
    for (let i = 0; i < c[NFDS]; i++) got.push(c[FDS_AT + i]);
    this.done();
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

  /** Send without waiting for a reply (No_reply set); returns once the worker sent it. */
  post(message: Uint8Array): void {
    this.beforeSend?.();
    this.data.set(message);
    this.exchange(message.length, [], true, commandName(new DataView(message.buffer).getUint16(2, true)));
    this.done();
  }
}
