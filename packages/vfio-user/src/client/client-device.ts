/**
 * VfioUserClientDevice: a device served by another process, behind the same VfioDevice contract
 * as an in-process one, so the reference VMM and the conformance suite use it unchanged.
 *
 * The contract is synchronous: an access sends its request and waits for the reply on the
 * calling thread, in poll(2) bounded by the request timeout (link.ts), answering the server's
 * DMA_READ/DMA_WRITE meanwhile; between requests the event loop answers them.
 *
 * What crosses the socket: VERSION and device, region and IRQ info once, at connect (so info(),
 * regionInfo() and irqInfo() are plain reads); REGION_READ/WRITE for read()/write()
 * (regions.ts); DMA_MAP of the guest memory at open (dma.ts); SET_IRQS with real eventfds when
 * the interrupt setup changes (irqs.ts); DEVICE_RESET; DEVICE_FEATURE and MIG_DATA_READ/WRITE
 * for migration (migration.ts). mmap() returns the region memory the server sent as an fd and
 * this process mapped, so direct accesses never cross the socket.
 */
import {
  type DeviceContext,
  type DeviceInfo,
  type IrqInfo,
  type Logger,
  type MigrationOps,
  type RegionInfo,
  type RegionMapping,
  type SharedMemory,
  type ValueSize,
  type VfioDevice,
  VfioError,
} from '@vfiokit/core';
import { VFIO_DEVICE_FLAGS_RESET } from '@vfiokit/core/abi';
import { silentLogger } from '../host.js';
import { closeFds } from '../native/memory.js';
import { VFIO_USER_DEVICE_RESET, VFIO_USER_MAJOR, VFIO_USER_MINOR } from '../protocol/constants.js';
import { decodeDeviceInfoReply, encodeDeviceInfoRequest } from '../protocol/device.js';
import type { DmaLayout } from '../protocol/dma.js';
import { DEFAULT_LIMITS, encodeEmptyRequest, type Limits } from '../protocol/header.js';
import { capabilityLimits, decodeVersion, encodeVersionRequest } from '../protocol/version.js';
import { ClientDma } from './dma.js';
import { ClientIrqs } from './irqs.js';
import { ClientLink, type LinkOptions, MAX_FDS } from './link.js';
import { fetchMigration } from './migration.js';
import { ClientRegions } from './regions.js';

export interface ConnectOptions {
  /**
   * Guest memory, DMA_MAPped at IOVA 0 when the device opens: with its fd when it has one (the
   * server maps it), else without (this client answers the server's DMA_READ/DMA_WRITE from its
   * bytes, while a request waits or whenever the event loop runs).
   */
  readonly guestMemory?: SharedMemory;
  readonly log?: Logger;
  /** Longest wait for one reply, in ms (default 5000). */
  readonly timeoutMs?: number;
  /** Longest wait for the connect, in ms (default 5000). */
  readonly connectTimeoutMs?: number;
  /** The DMA_READ/DMA_WRITE layout the server uses (default 'qemu', as serveDevice). */
  readonly dmaLayout?: DmaLayout;
  /** max_data_xfer_size this client accepts (default 1 MiB). */
  readonly maxDataXferSize?: number;
  /** A name for messages; the socket path by default. */
  readonly name?: string;
  /**
   * Post region writes as QEMU's client does (default false): write() sends with No_reply and
   * returns without waiting, and small writes travel together as REGION_WRITE_MULTI when the
   * server offers write_multiple. A posted write's error is not reported to the caller. Writes
   * are never posted to a device that has an mmapped region.
   */
  readonly postedWrites?: boolean;
  /**
   * @deprecated Has no effect. V8's memory reducer (a full GC for an idle-looking heap, 6–18 ms
   * pauses) can only be turned off when node starts: run the VMM as `node --no-memory-reducer ...`
   * (the `vfiokit` executable starts so); setting the flag at run time stops nothing in Node 20.
   */
  readonly memoryReducer?: boolean;
}

export class VfioUserClientDevice implements VfioDevice {
  readonly name: string;
  readonly socketPath: string;
  declare readonly migration?: MigrationOps;
  private readonly link: ClientLink;
  private readonly regions: ClientRegions;
  private readonly irqs: ClientIrqs;
  private readonly dma: ClientDma;
  private readonly maxDataXferSize: number;
  private readonly postedWrites: boolean;
  private deviceInfo: DeviceInfo = { reset: false, numRegions: 0, numIrqs: 0 };
  private ctx: DeviceContext | undefined;

  private constructor(link: ClientLink, opts: ConnectOptions) {
    this.socketPath = link.socketPath;
    this.name = link.name;
    const log = opts.log ?? silentLogger;
    this.maxDataXferSize = opts.maxDataXferSize ?? DEFAULT_LIMITS.maxDataXferSize;
    this.postedWrites = opts.postedWrites ?? false;
    this.link = link;
    this.regions = new ClientRegions(link, log);
    this.irqs = new ClientIrqs(link, log, (index, vector) => this.ctx?.irq.trigger(index, vector));
    this.dma = new ClientDma(link, log, opts.guestMemory, opts.dmaLayout ?? 'qemu', this.maxDataXferSize);
    link.onTimeout = () => this.irqs.closeAll();
    link.onCommand = (frame) => this.dma.serve(frame);
  }

  private static linkOptions(socketPath: string, opts: ConnectOptions): LinkOptions {
    return {
      socketPath,
      name: opts.name ?? `vfio-user:${socketPath}`,
      timeoutMs: opts.timeoutMs ?? 5000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
      maxDataXferSize: opts.maxDataXferSize ?? DEFAULT_LIMITS.maxDataXferSize,
    };
  }

  /** Connect, negotiate and read every info up front; the wait for the socket does not block. */
  static async connect(socketPath: string, opts: ConnectOptions = {}): Promise<VfioUserClientDevice> {
    const d = new VfioUserClientDevice(
      await ClientLink.connect(VfioUserClientDevice.linkOptions(socketPath, opts)),
      opts,
    );
    d.afterConnect();
    return d;
  }

  /** The same, blocking, for callers that are synchronous (a parent's create()). */
  static connectSync(socketPath: string, opts: ConnectOptions = {}): VfioUserClientDevice {
    const d = new VfioUserClientDevice(
      ClientLink.connectSync(VfioUserClientDevice.linkOptions(socketPath, opts)),
      opts,
    );
    d.afterConnect();
    return d;
  }

  private afterConnect(): void {
    try {
      this.handshake();
    } catch (err) {
      this.disconnect();
      throw err;
    }
  }

  /** Whether the connection is still up. */
  get connected(): boolean {
    return this.link.open;
  }

  /** The limits the server announced. */
  get limits(): Limits {
    return this.link.limits;
  }

  /** Whether write() posts its writes (postedWrites asked for, and no region is mmapped). */
  get postsWrites(): boolean {
    return this.regions.postsWrites;
  }

  /** End the connection (the server releases what this client held). Idempotent; never throws. */
  disconnect(): void {
    if (this.link.open) this.regions.flushQuietly();
    this.irqs.closeAll();
    this.link.close();
  }

  // ---- handshake ---------------------------------------------------------------------------

  private handshake(): void {
    const link = this.link;
    const v = link.request(
      encodeVersionRequest(link.msgId(), {
        major: VFIO_USER_MAJOR,
        minor: VFIO_USER_MINOR,
        capabilities: {
          maxMsgFds: MAX_FDS,
          maxDataXferSize: this.maxDataXferSize,
          writeMultiple: true,
        },
      }),
    );
    const version = decodeVersion(v.payload);
    closeFds(v.fds);
    if (version.major !== VFIO_USER_MAJOR)
      throw new VfioError('EPROTO', `the server speaks vfio-user ${version.major}.${version.minor}.`);
    const limits = capabilityLimits(version.capabilities);
    // Never send more than this side can frame in one message either.
    link.limits = {
      maxMsgFds: Math.min(limits.maxMsgFds, MAX_FDS),
      maxDataXferSize: Math.min(limits.maxDataXferSize, this.maxDataXferSize),
    };
    const info = decodeDeviceInfoReply(link.request(encodeDeviceInfoRequest(link.msgId())).payload);
    this.deviceInfo = {
      reset: (info.flags & VFIO_DEVICE_FLAGS_RESET) !== 0,
      numRegions: info.numRegions,
      numIrqs: info.numIrqs,
    };
    this.regions.fetch(info.numRegions, {
      post: this.postedWrites,
      multi: version.capabilities?.writeMultiple === true,
    });
    this.irqs.fetch(info.numIrqs);
    const migration = fetchMigration(link);
    if (migration) (this as { migration?: MigrationOps }).migration = migration;
  }

  // ---- VfioDevice ------------------------------------------------------------------------

  info(): DeviceInfo {
    return this.deviceInfo;
  }

  regionInfo(index: number): RegionInfo | undefined {
    return this.regions.info(index);
  }

  irqInfo(index: number): IrqInfo | undefined {
    return this.irqs.info(index);
  }

  open(ctx: DeviceContext): void {
    this.ctx = ctx;
    this.dma.map();
  }

  close(): void {
    this.ctx = undefined;
    this.irqs.releaseAll();
    this.dma.unmap();
  }

  read(index: number, offset: number, dst: Uint8Array): void {
    this.regions.read(index, offset, dst);
  }

  write(index: number, offset: number, src: Uint8Array): void {
    this.regions.write(index, offset, src);
  }

  /**
   * A read of `size` (1, 2 or 4) bytes as its little-endian value, straight from the reply: the
   * road of the VMM's trapped MMIO read (RegionPort.readValue). Errors as read()'s.
   */
  readValue(index: number, offset: number, size: ValueSize): number {
    return this.regions.readValue(index, offset, size);
  }

  /**
   * write() of the low `size` (1, 2 or 4) bytes of `value`: a posted write goes into its
   * REGION_WRITE_MULTI entry as the value, with no bytes in between.
   */
  writeValue(index: number, offset: number, size: ValueSize, value: number): void {
    this.regions.writeValue(index, offset, size, value);
  }

  mmap(index: number, offset: number, size: number): RegionMapping {
    return this.regions.mmap(index, offset, size);
  }

  reset(): void {
    this.link.call(encodeEmptyRequest(this.link.msgId(), VFIO_USER_DEVICE_RESET));
  }

  irqsChanged(index: number, count: number): void {
    this.irqs.changed(index, count);
  }
}

/** Connect to a vfio-user server and return the device it serves. */
export function connectVfioUser(
  socketPath: string,
  opts: ConnectOptions = {},
): Promise<VfioUserClientDevice> {
  return VfioUserClientDevice.connect(socketPath, opts);
}

/** connectVfioUser for synchronous callers: blocks until attached. */
export function connectVfioUserSync(socketPath: string, opts: ConnectOptions = {}): VfioUserClientDevice {
  return VfioUserClientDevice.connectSync(socketPath, opts);
}
