/**
 * VfioUserClientDevice: a device served by another process, behind the same VfioDevice contract
 * as an in-process one, so the reference VMM and the conformance suite use it unchanged.
 *
 * The contract is synchronous and the socket is not. The socket lives in an I/O worker thread
 * (worker.ts) whose event loop never blocks; a synchronous access writes its request into a
 * SharedArrayBuffer and waits with Atomics.wait until the worker hands the reply back. That wait
 * is the one blocking call on the main thread, it is bounded by the request timeout, and it
 * waits only on the worker: the server's DMA_READ/DMA_WRITE are answered by the worker meanwhile.
 *
 * What crosses the socket: device, region and IRQ info once, at connect (so info(),
 * regionInfo() and irqInfo() are plain reads); REGION_READ/WRITE for read()/write();
 * DMA_MAP of the guest memory at open; SET_IRQS with real eventfds when the interrupt setup
 * changes; DEVICE_RESET; DEVICE_FEATURE and MIG_DATA_READ/WRITE for migration. mmap() returns
 * the region memory the server sent as an fd and this process mapped, so direct accesses never
 * cross the socket.
 *
 * INTx: the server's device file masks INTx when it fires (AUTOMASKED), and so does the local
 * device file in front of this device. The local UNMASK never reaches a device (the core keeps
 * SET_IRQS), so after each INTx signal this client re-arms the server with SET_IRQS UNMASK
 * (No_reply) and lets the local device file do the masking the guest sees.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  type DeviceContext,
  type DeviceInfo,
  ERRNO,
  errnoName,
  type IrqInfo,
  type Logger,
  type MigrationOps,
  type MigrationStream,
  MigState,
  type MmapArea,
  type RegionInfo,
  type RegionMapping,
  type SharedMemory,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  type VfioDevice,
  VfioError,
} from '@vfiokit/core';
import { silentLogger } from '../host.js';
import { Eventfd } from '../native/eventfd.js';
import { closeFds, mapFd } from '../native/memory.js';
import {
  commandName,
  VFIO_USER_DEVICE_FEATURE,
  VFIO_USER_DEVICE_RESET,
  VFIO_USER_F_ERROR,
  VFIO_USER_F_TYPE_MASK,
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_HEADER_SIZE,
  VFIO_USER_MAJOR,
  VFIO_USER_MINOR,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_RW_SIZE,
} from '../protocol/constants.js';
import {
  decodeDeviceInfoReply,
  decodeIrqInfoReply,
  decodeRegionInfoReply,
  encodeDeviceInfoRequest,
  encodeIrqInfoRequest,
  encodeRegionInfoRequest,
  encodeSetIrqsRequest,
  type RegionInfoReply,
} from '../protocol/device.js';
import { type DmaLayout, encodeDmaMapRequest, encodeDmaUnmapRequest } from '../protocol/dma.js';
import {
  decodeDeviceFeatureReply,
  decodeMigDataReadReply,
  encodeDeviceFeatureRequest,
  encodeMigDataReadRequest,
  encodeMigDataWriteRequest,
  encodeMigStateData,
  featureFlags,
} from '../protocol/feature.js';
import type { Frame } from '../protocol/framing.js';
import {
  DEFAULT_LIMITS,
  decodeHeader,
  encodeEmptyRequest,
  isErrorReply,
  type Limits,
  maxMessageSize,
  replyErrno,
} from '../protocol/header.js';
import { decodeRegionWriteReply, encodeRegionWriteRequest } from '../protocol/region.js';
import { capabilityLimits, decodeVersion, encodeVersionRequest } from '../protocol/version.js';
import { getU64, setU64 } from '../protocol/wire.js';
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

export interface ConnectOptions {
  /**
   * Guest memory, DMA_MAPped at IOVA 0 when the device opens: with its fd when it has one (the
   * server maps it), else without (the worker answers DMA_READ/DMA_WRITE; the bytes must then be
   * a SharedArrayBuffer so the worker can reach them).
   */
  readonly guestMemory?: SharedMemory;
  readonly log?: Logger;
  /** Longest wait for one reply, in ms (default 5000). */
  readonly timeoutMs?: number;
  /** Longest wait for connect and handshake, in ms (default 5000). */
  readonly connectTimeoutMs?: number;
  /** The DMA_READ/DMA_WRITE layout the server uses (default 'qemu', as serveDevice). */
  readonly dmaLayout?: DmaLayout;
  /** max_data_xfer_size this client accepts (default 1 MiB). */
  readonly maxDataXferSize?: number;
  /** A name for messages; the socket path by default. */
  readonly name?: string;
}

interface MappedArea extends MmapArea {
  readonly memory: SharedMemory;
}

interface RemoteRegion {
  readonly info: RegionInfo;
  readonly areas: readonly MappedArea[];
}

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

// ---- the device -----------------------------------------------------------------------------

export class VfioUserClientDevice implements VfioDevice {
  readonly name: string;
  readonly socketPath: string;
  declare readonly migration?: MigrationOps;
  private readonly ctrl: Int32Array;
  private readonly data: Uint8Array;
  private readonly dv: DataView;
  private readonly id: number;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly guest: SharedMemory | undefined;
  private dead: VfioError | undefined;
  private nextMsgId = 0;
  private serverLimits: Limits = DEFAULT_LIMITS;
  private deviceInfo: DeviceInfo = { reset: false, numRegions: 0, numIrqs: 0 };
  private regions: (RemoteRegion | undefined)[] = [];
  private irqs: (IrqInfo | undefined)[] = [];
  private ctx: DeviceContext | undefined;
  private readonly eventfds = new Map<number, Eventfd[]>();
  private dmaMapped = false;
  private readonly maxDataXferSize: number;

  private constructor(socketPath: string, opts: ConnectOptions) {
    this.socketPath = socketPath;
    this.name = opts.name ?? `vfio-user:${socketPath}`;
    this.log = opts.log ?? silentLogger;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.guest = opts.guestMemory;
    this.maxDataXferSize = opts.maxDataXferSize ?? DEFAULT_LIMITS.maxDataXferSize;
    const dataSize = maxMessageSize({ maxMsgFds: 0, maxDataXferSize: this.maxDataXferSize });
    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    const data = new SharedArrayBuffer(dataSize);
    this.ctrl = new Int32Array(control);
    this.data = new Uint8Array(data);
    this.dv = new DataView(data);
    this.id = nextChannel++;
    const guest = guestRef(opts.guestMemory);
    const msg: ChannelMessage = {
      type: 'open',
      id: this.id,
      path: socketPath,
      control,
      data,
      ...(guest ? { guest } : {}),
      dmaLayout: opts.dmaLayout ?? 'qemu',
      maxDataXferSize: this.maxDataXferSize,
      connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
    };
    worker().postMessage(msg);
  }

  /** Connect, negotiate and read every info up front; the wait for the socket does not block. */
  static async connect(socketPath: string, opts: ConnectOptions = {}): Promise<VfioUserClientDevice> {
    const d = new VfioUserClientDevice(socketPath, opts);
    const r = waitAsync(d.ctrl, STATE, CONNECTING, opts.connectTimeoutMs ?? 5000);
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
    d.afterConnect();
    return d;
  }

  /** The same, blocking (Atomics.wait on the worker) for callers that are synchronous (a parent's create()). */
  static connectSync(socketPath: string, opts: ConnectOptions = {}): VfioUserClientDevice {
    const d = new VfioUserClientDevice(socketPath, opts);
    Atomics.wait(d.ctrl, STATE, CONNECTING, opts.connectTimeoutMs ?? 5000);
    d.afterConnect();
    return d;
  }

  private afterConnect(): void {
    const s = Atomics.load(this.ctrl, STATE);
    if (s !== IDLE) {
      const err =
        s === CONNECTING
          ? new VfioError('ETIMEDOUT', `connecting to ${this.socketPath} did not finish in time.`)
          : this.closedError('connecting');
      this.disconnect();
      throw err;
    }
    try {
      this.handshake();
    } catch (err) {
      this.disconnect();
      throw err;
    }
  }

  /** Whether the connection is still up. */
  get connected(): boolean {
    return this.dead === undefined && Atomics.load(this.ctrl, STATE) !== CLOSED;
  }

  /** The limits the server announced. */
  get limits(): Limits {
    return this.serverLimits;
  }

  /** End the connection (the server releases what this client held). Idempotent; never throws. */
  disconnect(): void {
    for (const list of this.eventfds.values()) for (const e of list) e.close();
    this.eventfds.clear();
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

  // ---- the request channel ---------------------------------------------------------------

  private closedError(what: string): VfioError {
    const errno = this.ctrl[ERRNO_WORD] || ERRNO.ECONNRESET;
    const code = errnoName(errno) ?? 'EIO';
    return new VfioError(
      code === 'ECONNRESET' || code === 'EIO' ? code : 'ECONNRESET',
      `${what}: the vfio-user server at ${this.socketPath} is gone (${errnoName(errno) ?? `errno ${errno}`}).`,
      { device: this.name, hint: 'Restart the server and attach the device again.' },
    );
  }

  private msgId(): number {
    this.nextMsgId = (this.nextMsgId + 1) & 0xffff;
    return this.nextMsgId;
  }

  /** Hand `len` bytes already in the data buffer to the worker and wait for the reply (or the send, for No_reply). */
  private exchange(len: number, fds: readonly number[], noReply: boolean, what: string): void {
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
        this.disconnect();
        throw this.dead;
      }
      Atomics.wait(c, STATE, REQUEST, left);
    }
  }

  /** Send a whole message and return the reply; an error reply throws its errno. */
  private request(message: Uint8Array, fds: readonly number[] = []): Frame {
    const command = new DataView(message.buffer, message.byteOffset).getUint16(2, true);
    const what = commandName(command);
    this.data.set(message);
    this.exchange(message.length, fds, false, what);
    const c = this.ctrl;
    const reply = this.data.slice(0, c[LEN]);
    const got: number[] = [];
    for (let i = 0; i < c[NFDS]; i++) got.push(c[FDS_AT + i]);
    Atomics.store(c, STATE, IDLE);
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

  /** Send without waiting for a reply (No_reply set); returns once the worker sent it. */
  private post(message: Uint8Array): void {
    this.data.set(message);
    this.exchange(message.length, [], true, commandName(new DataView(message.buffer).getUint16(2, true)));
    Atomics.store(this.ctrl, STATE, IDLE);
  }

  // ---- handshake ---------------------------------------------------------------------------

  private handshake(): void {
    const v = this.request(
      encodeVersionRequest(this.msgId(), {
        major: VFIO_USER_MAJOR,
        minor: VFIO_USER_MINOR,
        capabilities: { maxMsgFds: MAX_CHANNEL_FDS, maxDataXferSize: this.maxDataXferSize },
      }),
    );
    const version = decodeVersion(v.payload);
    closeFds(v.fds);
    if (version.major !== VFIO_USER_MAJOR)
      throw new VfioError('EPROTO', `the server speaks vfio-user ${version.major}.${version.minor}.`);
    const limits = capabilityLimits(version.capabilities);
    // Never send more than this side can frame in one message either.
    this.serverLimits = {
      maxMsgFds: Math.min(limits.maxMsgFds, MAX_CHANNEL_FDS),
      maxDataXferSize: Math.min(limits.maxDataXferSize, this.maxDataXferSize),
    };
    const info = decodeDeviceInfoReply(this.request(encodeDeviceInfoRequest(this.msgId())).payload);
    this.deviceInfo = {
      reset: (info.flags & VFIO_DEVICE_FLAGS_RESET) !== 0,
      numRegions: info.numRegions,
      numIrqs: info.numIrqs,
    };
    for (let i = 0; i < info.numRegions; i++) this.regions.push(this.fetchRegion(i));
    for (let i = 0; i < info.numIrqs; i++) this.irqs.push(this.fetchIrq(i));
    const migration = this.fetchMigration();
    if (migration) (this as { migration?: MigrationOps }).migration = migration;
  }

  private fetchRegion(index: number): RemoteRegion | undefined {
    let reply: RegionInfoReply;
    let argsz = 32;
    for (let attempt = 0; ; attempt++) {
      let frame: Frame;
      try {
        frame = this.request(encodeRegionInfoRequest(this.msgId(), { argsz, index }));
      } catch (err) {
        if (err instanceof VfioError && err.code === 'EINVAL') return undefined;
        throw err;
      }
      try {
        reply = decodeRegionInfoReply(frame.payload, frame.fds);
      } catch (err) {
        closeFds(frame.fds);
        throw err;
      }
      if (reply.complete || attempt > 0) break;
      closeFds(frame.fds);
      argsz = reply.argsz;
    }
    const fd = reply.fd;
    try {
      if (
        reply.size === 0 &&
        (reply.flags & (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)) === 0
      )
        return undefined;
      const sparse = reply.caps.find((c) => c.kind === 'sparse-mmap');
      const type = reply.caps.find((c) => c.kind === 'type');
      let areas: MappedArea[] = [];
      if (reply.flags & VFIO_REGION_INFO_FLAG_MMAP && fd !== undefined) {
        const wanted = sparse ? sparse.areas : [{ offset: 0, size: reply.size }];
        try {
          areas = wanted
            .filter((a) => a.size > 0)
            .map((a) => ({
              ...a,
              memory: { size: a.size, bytes: new Uint8Array(mapFd(fd, a.size, reply.offset + a.offset)) },
            }));
        } catch (err) {
          this.log.warn(`region ${index} will be trapped: mapping its fd failed: ${String(err)}`);
          areas = [];
        }
      }
      const mmap =
        areas.length > 0 || (sparse !== undefined && fd !== undefined && sparse.areas.length === 0);
      const info: RegionInfo = {
        index,
        size: reply.size,
        read: (reply.flags & VFIO_REGION_INFO_FLAG_READ) !== 0,
        write: (reply.flags & VFIO_REGION_INFO_FLAG_WRITE) !== 0,
        mmap,
        ...(mmap && sparse ? { sparseMmap: sparse.areas } : {}),
        ...(type ? { type: { type: type.type, subtype: type.subtype } } : {}),
        ...(reply.caps.some((c) => c.kind === 'msix-mappable') ? { msixMappable: true } : {}),
      };
      return { info, areas };
    } finally {
      if (fd !== undefined) closeFds([fd]);
    }
  }

  private fetchIrq(index: number): IrqInfo | undefined {
    try {
      const r = decodeIrqInfoReply(
        this.request(encodeIrqInfoRequest(this.msgId(), { argsz: 16, index })).payload,
      );
      return {
        index,
        count: r.count,
        eventfd: (r.flags & VFIO_IRQ_INFO_EVENTFD) !== 0,
        maskable: (r.flags & VFIO_IRQ_INFO_MASKABLE) !== 0,
        automasked: (r.flags & VFIO_IRQ_INFO_AUTOMASKED) !== 0,
        noresize: (r.flags & VFIO_IRQ_INFO_NORESIZE) !== 0,
      };
    } catch (err) {
      if (err instanceof VfioError && err.code === 'EINVAL') return undefined;
      throw err;
    }
  }

  private feature(feature: number, op: 'get' | 'set', data: Uint8Array, replyData: number): Uint8Array {
    const flags = featureFlags(feature, op === 'get' ? { get: true } : { set: true });
    const frame = this.request(
      encodeDeviceFeatureRequest(this.msgId(), {
        flags,
        data,
        argsz: 8 + Math.max(data.length, replyData),
      }),
    );
    closeFds(frame.fds);
    return decodeDeviceFeatureReply(frame.payload).data;
  }

  private fetchMigration(): MigrationOps | undefined {
    let flags: number;
    try {
      const data = this.feature(VFIO_DEVICE_FEATURE_MIGRATION, 'get', new Uint8Array(0), 8);
      if (data.length < 8) return undefined;
      flags = getU64(new DataView(data.buffer, data.byteOffset, 8), 0, VFIO_USER_DEVICE_FEATURE, 'flags');
    } catch (err) {
      if (err instanceof VfioError && err.code !== 'ECONNRESET' && err.code !== 'ETIMEDOUT') return undefined;
      throw err;
    }
    const saving = new Set([MigState.STOP_COPY, MigState.PRE_COPY, MigState.PRE_COPY_P2P]);
    return {
      caps: {
        stopCopy: true,
        p2p: (flags & VFIO_MIGRATION_P2P) !== 0,
        preCopy: (flags & VFIO_MIGRATION_PRE_COPY) !== 0,
      },
      step: (from: MigState, to: MigState): MigrationStream | undefined => {
        this.feature(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, 'set', encodeMigStateData(to, 0), 8);
        const opens = (saving.has(to) && !saving.has(from)) || to === MigState.RESUMING;
        if (!opens) return undefined;
        return to === MigState.RESUMING
          ? { write: (chunk) => this.migrationWrite(chunk) }
          : { read: (max) => this.migrationRead(max) };
      },
      stopCopySize: () => {
        const data = this.feature(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, 'get', new Uint8Array(0), 8);
        return getU64(
          new DataView(data.buffer, data.byteOffset, 8),
          0,
          VFIO_USER_DEVICE_FEATURE,
          'stop_copy_length',
        );
      },
    };
  }

  private migrationRead(max: number): Uint8Array {
    const size = Math.min(max, this.serverLimits.maxDataXferSize);
    const frame = this.request(encodeMigDataReadRequest(this.msgId(), size));
    closeFds(frame.fds);
    return decodeMigDataReadReply(frame.payload, this.serverLimits).data.slice();
  }

  private migrationWrite(chunk: Uint8Array): void {
    const step = this.serverLimits.maxDataXferSize;
    for (let pos = 0; pos < chunk.length; pos += step) {
      const frame = this.request(encodeMigDataWriteRequest(this.msgId(), chunk.subarray(pos, pos + step)));
      closeFds(frame.fds);
    }
  }

  // ---- VfioDevice ------------------------------------------------------------------------

  info(): DeviceInfo {
    return this.deviceInfo;
  }

  regionInfo(index: number): RegionInfo | undefined {
    return this.regions[index]?.info;
  }

  irqInfo(index: number): IrqInfo | undefined {
    return this.irqs[index];
  }

  open(ctx: DeviceContext): void {
    this.ctx = ctx;
    const g = this.guest;
    if (!g) return;
    const size = g.size - (g.size % 4096);
    if (size === 0) return;
    const frame = this.request(
      encodeDmaMapRequest(this.msgId(), {
        flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        offset: 0,
        address: 0,
        size,
      }),
      g.fd !== undefined ? [g.fd] : [],
    );
    closeFds(frame.fds);
    this.dmaMapped = true;
    Atomics.store(this.ctrl, MAPPED, 1);
  }

  close(): void {
    this.ctx = undefined;
    for (const index of [...this.eventfds.keys()]) this.releaseEventfds(index);
    if (!this.dmaMapped) return;
    this.dmaMapped = false;
    Atomics.store(this.ctrl, MAPPED, 0);
    try {
      const frame = this.request(
        encodeDmaUnmapRequest(this.msgId(), {
          argsz: 24,
          flags: VFIO_DMA_UNMAP_FLAG_ALL,
          address: 0,
          size: 0,
        }),
      );
      closeFds(frame.fds);
    } catch (err) {
      this.log.warn(`unmapping guest memory on close failed: ${(err as Error).message}`);
    }
  }

  read(index: number, offset: number, dst: Uint8Array): void {
    const step = this.serverLimits.maxDataXferSize;
    for (let pos = 0; pos < dst.length; pos += step)
      this.readChunk(index, offset + pos, dst.subarray(pos, Math.min(dst.length, pos + step)));
  }

  /** REGION_READ written straight into the channel buffer and read straight out of it. */
  private readChunk(index: number, offset: number, dst: Uint8Array): void {
    const dv = this.dv;
    const id = this.msgId();
    const count = dst.length;
    const size = VFIO_USER_HEADER_SIZE + VFIO_USER_REGION_RW_SIZE;
    dv.setUint16(0, id, true);
    dv.setUint16(2, VFIO_USER_REGION_READ, true);
    dv.setUint32(4, size, true);
    dv.setUint32(8, 0, true);
    dv.setUint32(12, 0, true);
    setU64(dv, 16, offset);
    dv.setUint32(24, index, true);
    dv.setUint32(28, count, true);
    this.exchange(size, [], false, 'VFIO_USER_REGION_READ');
    const c = this.ctrl;
    const len = c[LEN];
    const nfds = c[NFDS];
    if (nfds > 0) closeFds(Array.from(c.subarray(FDS_AT, FDS_AT + nfds)));
    const flags = len >= VFIO_USER_HEADER_SIZE ? dv.getUint32(8, true) : 0;
    let problem: VfioError | undefined;
    if (len < VFIO_USER_HEADER_SIZE || (flags & VFIO_USER_F_TYPE_MASK) !== VFIO_USER_F_TYPE_REPLY)
      problem = new VfioError('EPROTO', 'the REGION_READ reply is malformed.', { device: this.name });
    else if (flags & VFIO_USER_F_ERROR) {
      const errno = dv.getUint32(12, true) || ERRNO.EINVAL;
      problem = new VfioError(errnoName(errno) ?? 'EIO', `the server refused REGION_READ (errno ${errno}).`, {
        device: this.name,
        region: index,
        offset,
      });
    } else if (len !== size + count || dv.getUint32(28, true) !== count)
      problem = new VfioError(
        'EPROTO',
        `the REGION_READ reply carries ${len - size} bytes; ${count} were asked.`,
        {
          device: this.name,
          region: index,
          offset,
        },
      );
    else dst.set(this.data.subarray(size, size + count));
    Atomics.store(c, STATE, IDLE);
    if (problem) throw problem;
  }

  write(index: number, offset: number, src: Uint8Array): void {
    const step = this.serverLimits.maxDataXferSize;
    for (let pos = 0; pos < src.length; pos += step) {
      const data = src.subarray(pos, Math.min(src.length, pos + step));
      const frame = this.request(
        encodeRegionWriteRequest(this.msgId(), {
          offset: offset + pos,
          region: index,
          count: data.length,
          data,
        }),
      );
      closeFds(frame.fds);
      decodeRegionWriteReply(frame.payload, this.serverLimits);
    }
  }

  mmap(index: number, offset: number, size: number): RegionMapping {
    const area = this.regions[index]?.areas.find(
      (a) => offset >= a.offset && offset + size <= a.offset + a.size,
    );
    if (!area)
      throw new VfioError(
        'EINVAL',
        `0x${size.toString(16)} bytes at 0x${offset.toString(16)} are not in a mapped area.`,
        {
          device: this.name,
          region: index,
          offset,
        },
      );
    return { memory: area.memory, memoryOffset: offset - area.offset, size };
  }

  reset(): void {
    closeFds(this.request(encodeEmptyRequest(this.msgId(), VFIO_USER_DEVICE_RESET)).fds);
  }

  irqsChanged(index: number, count: number): void {
    if (count === 0) {
      if (this.eventfds.has(index)) {
        this.releaseEventfds(index);
      }
      return;
    }
    const fresh: Eventfd[] = [];
    try {
      for (let v = 0; v < count; v++) fresh.push(new Eventfd());
      const frame = this.request(
        encodeSetIrqsRequest(this.msgId(), {
          index,
          start: 0,
          count,
          dataType: 'eventfd',
          action: 'trigger',
        }),
        fresh.map((e) => e.fd),
      );
      closeFds(frame.fds);
    } catch (err) {
      for (const e of fresh) e.close();
      throw err;
    }
    for (const e of this.eventfds.get(index) ?? []) e.close();
    this.eventfds.set(index, fresh);
    for (let vector = 0; vector < fresh.length; vector++)
      fresh[vector].onSignal(() => this.interrupt(index, vector));
  }

  /** Tell the server to drop the eventfds of `index`, and close ours. */
  private releaseEventfds(index: number): void {
    const list = this.eventfds.get(index) ?? [];
    this.eventfds.delete(index);
    for (const e of list) e.close();
    if (!this.connected) return;
    try {
      closeFds(
        this.request(
          encodeSetIrqsRequest(this.msgId(), {
            index,
            start: 0,
            count: 0,
            dataType: 'none',
            action: 'trigger',
          }),
        ).fds,
      );
    } catch (err) {
      this.log.warn(`disabling IRQ index ${index} on the server failed: ${(err as Error).message}`);
    }
  }

  private interrupt(index: number, vector: number): void {
    if (index === VFIO_PCI_INTX_IRQ_INDEX && this.connected) {
      try {
        this.post(
          encodeSetIrqsRequest(
            this.msgId(),
            { index, start: vector, count: 1, dataType: 'none', action: 'unmask' },
            { noReply: true },
          ),
        );
      } catch (err) {
        this.log.warn(`re-arming INTx on the server failed: ${(err as Error).message}`);
      }
    }
    this.ctx?.irq.trigger(index, vector);
  }
}

/** Connect to a vfio-user server and return the device it serves. */
export function connectVfioUser(
  socketPath: string,
  opts: ConnectOptions = {},
): Promise<VfioUserClientDevice> {
  return VfioUserClientDevice.connect(socketPath, opts);
}

/** connectVfioUser for synchronous callers: blocks (Atomics.wait on the I/O worker) until attached. */
export function connectVfioUserSync(socketPath: string, opts: ConnectOptions = {}): VfioUserClientDevice {
  return VfioUserClientDevice.connectSync(socketPath, opts);
}
