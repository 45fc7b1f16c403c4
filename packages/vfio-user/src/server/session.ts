/**
 * One client's session on a served device: VERSION first, then every command answered through
 * core's DeviceFile (the one place the VFIO rules live). This file only translates between the
 * vfio-user payloads and the device file's ioctl arguments, offsets and typed calls, and keeps
 * what the client handed over (DMA mappings, eventfds) so that all of it is released when the
 * connection goes away, however it goes away.
 */
import {
  type Clock,
  DeviceFile,
  type DeviceHost,
  DirtyTracker,
  errnoName,
  HostDma,
  IovaMap,
  type IrqTrigger,
  type Logger,
  type ResolvedRegion,
  toVfioError,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  type VfioDevice,
  VfioError,
  vfio_device_feature_mig_state,
  vfio_device_info,
  vfio_irq_info,
  vfio_irq_set,
  vfio_region_info,
} from '@vfiokit/core';
import { Eventfd } from '../native/eventfd.js';
import { closeFd, closeFds, fdSize, mapFd } from '../native/memory.js';
import type { UnixConnection } from '../native/socket.js';
import {
  commandName,
  VFIO_USER_DEVICE_FEATURE,
  VFIO_USER_DEVICE_GET_INFO,
  VFIO_USER_DEVICE_GET_IRQ_INFO,
  VFIO_USER_DEVICE_GET_REGION_INFO,
  VFIO_USER_DEVICE_GET_REGION_IO_FDS,
  VFIO_USER_DEVICE_RESET,
  VFIO_USER_DEVICE_SET_IRQS,
  VFIO_USER_DMA_MAP,
  VFIO_USER_DMA_READ,
  VFIO_USER_DMA_UNMAP,
  VFIO_USER_DMA_WRITE,
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_MAJOR,
  VFIO_USER_MAX_MSG_FDS_LIMIT,
  VFIO_USER_MIG_DATA_READ,
  VFIO_USER_MIG_DATA_WRITE,
  VFIO_USER_MINOR,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_WRITE,
  VFIO_USER_VERSION,
} from '../protocol/constants.js';
import {
  decodeDeviceInfoRequest,
  decodeIrqInfoRequest,
  decodeRegionInfoRequest,
  decodeRegionIoFdsRequest,
  decodeResetRequest,
  decodeSetIrqsRequest,
  encodeDeviceInfoReply,
  encodeIrqInfoReply,
  encodeRegionIoFdsReply,
} from '../protocol/device.js';
import {
  type DmaLayout,
  decodeDmaMapRequest,
  decodeDmaReadReply,
  decodeDmaUnmapRequest,
  decodeDmaWriteReply,
  encodeDmaReadRequest,
  encodeDmaUnmapReply,
  encodeDmaWriteRequest,
} from '../protocol/dma.js';
import {
  decodeDeviceFeatureRequest,
  decodeDmaLoggingReport,
  decodeMigDataReadRequest,
  decodeMigDataWriteRequest,
  dirtyBitmapBytes,
  encodeDeviceFeatureReply,
  encodeMigDataReadReply,
} from '../protocol/feature.js';
import type { Frame } from '../protocol/framing.js';
import {
  DEFAULT_LIMITS,
  encodeEmptyReply,
  encodeErrorReply,
  isCommand,
  isErrorReply,
  isReply,
  type Limits,
  type MessageHeader,
  maxMessageSize,
  replyErrno,
  wantsReply,
} from '../protocol/header.js';
import {
  allocRegionReadReply,
  decodeRegionReadRequest,
  decodeRegionWriteRequest,
  encodeRegionWriteReply,
} from '../protocol/region.js';
import { capabilityLimits, decodeVersion, encodeVersionReply } from '../protocol/version.js';
import { allocMessage } from '../protocol/wire.js';
import { MessageConnection } from '../transport.js';

const PAGE = 4096;
/** The largest argument buffer built for an info ioctl, whatever argsz the client claims. */
const MAX_INFO_ARG = 64 * 1024;
const REGION_INFO_SIZE = vfio_region_info.size;
const NO_FDS: readonly number[] = Object.freeze([]);
/** vfio-user's inline DMA logging heads: control {page_size, num_ranges, reserved}, report {iova, length, page_size}. */
const LOGGING_CONTROL_HEAD = 16;
const LOGGING_REPORT_HEAD = 24;

export interface SessionOptions {
  readonly device: VfioDevice;
  readonly name: string;
  readonly log: Logger;
  readonly clock: Clock;
  /** What this server accepts: the limits it announces in its VERSION reply. */
  readonly limits: Limits;
  readonly dmaLayout: DmaLayout;
  /** How long a DMA_READ/DMA_WRITE sent to the client may wait for its reply. */
  readonly requestTimeoutMs: number;
  /** Called once, after everything the client held was released. */
  readonly onEnd: (session: Session) => void;
}

interface Reply {
  readonly bytes: Uint8Array;
  readonly fds?: readonly number[];
}

interface PendingRequest {
  readonly command: number;
  resolve(frame: Frame): void;
  reject(err: VfioError): void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** A region's mmappable memory as one memfd: the fd and the fd offset of the region's start. */
interface RegionFd {
  readonly fd: number;
  readonly base: number;
}

export class Session {
  readonly conn: MessageConnection;
  private readonly o: SessionOptions;
  private negotiated = false;
  private clientLimits: Limits = DEFAULT_LIMITS;
  private file: DeviceFile | undefined;
  private readonly map = new IovaMap();
  private readonly tracker = new DirtyTracker();
  private readonly dma: HostDma;
  private readonly pending = new Map<number, PendingRequest>();
  private readonly regionFds = new Map<number, RegionFd | null>();
  /** The fds of the SET_IRQS being handled, not yet adopted as eventfds. */
  private irqFds: Set<number> | undefined;
  private adopted: Eventfd[] = [];
  private nextMsgId = 0;
  private ended = false;

  constructor(socket: UnixConnection, options: SessionOptions) {
    this.o = options;
    this.dma = new HostDma({
      map: this.map,
      dirty: this.tracker,
      device: options.name,
      remote: {
        read: (iova, dst) => this.remoteRead(iova, dst),
        write: (iova, src) => this.remoteWrite(iova, src),
      },
    });
    this.conn = new MessageConnection(socket, {
      maxMessageSize: maxMessageSize(options.limits),
      onMessage: (frame) => this.receive(frame),
      onClose: (reason) => this.end(reason),
    });
  }

  get open(): boolean {
    return !this.ended;
  }

  /** The device file of this session, once VERSION succeeded. */
  get deviceFile(): DeviceFile | undefined {
    return this.file;
  }

  /** Bytes of client memory mapped with an fd and without one (for tests and logs). */
  get dmaMappings(): number {
    return this.map.count;
  }

  close(reason?: VfioError): void {
    this.conn.close(reason);
  }

  // ---- receiving -------------------------------------------------------------------------

  private receive(frame: Frame): void {
    const h = frame.header;
    // Whatever a handler does not take over is closed when the message is done.
    const fds = frame.fds;
    let closeAfter = false;
    try {
      if (isReply(h)) {
        if (this.takeReply(frame)) return;
        throw new VfioError(
          'EINVAL',
          `a reply to ${commandName(h.command)} with msg_id ${h.msgId} answers no request of this server.`,
        );
      }
      if (!isCommand(h))
        throw new VfioError('EINVAL', `message type ${h.flags & 0xf} is neither a command nor a reply.`);
      if (!this.negotiated && h.command !== VFIO_USER_VERSION) {
        closeAfter = true;
        throw new VfioError('EINVAL', `${commandName(h.command)} came before VERSION.`, {
          hint: 'The first message of a session must be VFIO_USER_VERSION; the connection is closed.',
        });
      }
      if (h.command === VFIO_USER_VERSION && !this.negotiated) closeAfter = true;
      const reply = this.dispatch(h, frame.payload, fds);
      closeAfter = false;
      if (wantsReply(h)) this.send(reply.bytes, reply.fds);
    } catch (err) {
      const e = toVfioError(err, { device: this.o.name });
      this.o.log.debug(`${commandName(h.command)} (msg_id ${h.msgId}) failed: ${e.message}`);
      if (wantsReply(h)) this.send(encodeErrorReply(h.msgId, h.command, e.errno));
      if (closeAfter) this.conn.close(e);
    } finally {
      if (fds.length) closeFds(fds.splice(0));
    }
  }

  private send(bytes: Uint8Array, fds: readonly number[] = NO_FDS): void {
    if (!this.conn.open) return;
    try {
      this.conn.send(bytes, fds);
    } catch (err) {
      this.o.log.warn(`sending a reply failed: ${toVfioError(err).message}`);
    }
  }

  private dispatch(h: MessageHeader, payload: Uint8Array, fds: number[]): Reply {
    switch (h.command) {
      case VFIO_USER_VERSION:
        return this.version(h, payload);
      case VFIO_USER_DMA_MAP:
        return this.dmaMap(h, payload, fds);
      case VFIO_USER_DMA_UNMAP:
        return this.dmaUnmap(h, payload);
      case VFIO_USER_DEVICE_GET_INFO:
        return this.deviceInfo(h, payload);
      case VFIO_USER_DEVICE_GET_REGION_INFO:
        return this.regionInfo(h, payload);
      case VFIO_USER_DEVICE_GET_REGION_IO_FDS:
        return this.regionIoFds(h, payload);
      case VFIO_USER_DEVICE_GET_IRQ_INFO:
        return this.irqInfo(h, payload);
      case VFIO_USER_DEVICE_SET_IRQS:
        return this.setIrqs(h, payload, fds);
      case VFIO_USER_REGION_READ:
        return this.regionRead(h, payload);
      case VFIO_USER_REGION_WRITE:
        return this.regionWrite(h, payload);
      case VFIO_USER_DEVICE_RESET:
        decodeResetRequest(payload);
        this.device().reset();
        return { bytes: encodeEmptyReply(h.msgId, h.command) };
      case VFIO_USER_DEVICE_FEATURE:
        return this.feature(h, payload);
      case VFIO_USER_MIG_DATA_READ: {
        const r = decodeMigDataReadRequest(payload, this.o.limits);
        return { bytes: encodeMigDataReadReply(h.msgId, this.device().migrationRead(r.size)) };
      }
      case VFIO_USER_MIG_DATA_WRITE: {
        const r = decodeMigDataWriteRequest(payload, this.o.limits);
        this.device().migrationWrite(r.data);
        return { bytes: encodeEmptyReply(h.msgId, h.command) };
      }
      default:
        throw new VfioError(
          'EINVAL',
          `${commandName(h.command)} is not a command a client sends to this server.`,
          { hint: 'DMA_READ and DMA_WRITE go from server to client; REGION_WRITE_MULTI is not supported.' },
        );
    }
  }

  private device(): DeviceFile {
    // negotiated implies open; kept as a check so a logic slip answers EBADF, never crashes.
    if (!this.file) throw new VfioError('EBADF', 'the device is not open in this session.');
    return this.file;
  }

  // ---- VERSION ---------------------------------------------------------------------------

  private version(h: MessageHeader, payload: Uint8Array): Reply {
    if (this.negotiated)
      throw new VfioError('EINVAL', 'VERSION was already negotiated in this session.', {
        hint: 'Send VERSION once, as the first message.',
      });
    const v = decodeVersion(payload);
    if (v.major !== VFIO_USER_MAJOR)
      throw new VfioError(
        'EINVAL',
        `protocol major version ${v.major} is not supported; this server speaks ${VFIO_USER_MAJOR}.${VFIO_USER_MINOR}.`,
      );
    this.clientLimits = capabilityLimits(v.capabilities);
    const file = new DeviceFile(this.o.device, this.host());
    file.open();
    this.file = file;
    this.negotiated = true;
    const migration = file.migrationCaps() !== 0 ? { migration: { pgsize: PAGE } } : {};
    return {
      bytes: encodeVersionReply(h.msgId, {
        major: VFIO_USER_MAJOR,
        minor: Math.min(v.minor, VFIO_USER_MINOR),
        capabilities: {
          maxMsgFds: this.o.limits.maxMsgFds,
          maxDataXferSize: this.o.limits.maxDataXferSize,
          ...migration,
        },
      }),
    };
  }

  private host(): DeviceHost {
    const tracker = this.tracker;
    return {
      dma: this.dma,
      dirty: this.dma,
      clock: this.o.clock,
      log: this.o.log,
      resolveEventfd: (fd) => this.resolveEventfd(fd),
      dmaLogging: {
        start: (pageSize, ranges) => {
          tracker.start(pageSize, ranges);
        },
        stop: () => tracker.stop(),
        report: (iova, length, pageSize) => tracker.report(iova, length, pageSize),
      },
    };
  }

  // ---- DMA -------------------------------------------------------------------------------

  private dmaMap(h: MessageHeader, payload: Uint8Array, fds: number[]): Reply {
    const r = decodeDmaMapRequest(payload, fds);
    const read = (r.flags & VFIO_DMA_MAP_FLAG_READ) !== 0;
    const write = (r.flags & VFIO_DMA_MAP_FLAG_WRITE) !== 0;
    if (r.fd === undefined) {
      this.map.map({ iova: r.address, size: r.size, read, write, memory: new Uint8Array(0), remote: true });
      return { bytes: encodeEmptyReply(h.msgId, h.command) };
    }
    const fd = fds.splice(0, 1)[0];
    try {
      // Mapping past the end of the file would turn the first access into SIGBUS: refuse it.
      const fileSize = fdSize(fd);
      if (r.offset + r.size > fileSize)
        throw new VfioError(
          'EINVAL',
          `DMA_MAP of 0x${r.size.toString(16)} bytes at file offset 0x${r.offset.toString(16)} runs past the ${fileSize}-byte file behind the fd.`,
          {
            hint: 'Send the fd of the memory that backs the whole range (a memfd or a shareable memory backend).',
          },
        );
      const start = r.offset - (r.offset % PAGE);
      const lead = r.offset - start;
      // A mapping the IOVA rules refuse is dropped with its ArrayBuffer (unmapped when collected).
      const memory = new Uint8Array(mapFd(fd, lead + r.size, start), lead, r.size);
      this.map.map({ iova: r.address, size: r.size, read, write, memory });
    } finally {
      closeFd(fd); // the mapping keeps the memory; the fd is not needed any more
    }
    return { bytes: encodeEmptyReply(h.msgId, h.command) };
  }

  private dmaUnmap(h: MessageHeader, payload: Uint8Array): Reply {
    const r = decodeDmaUnmapRequest(payload);
    if (r.flags & VFIO_DMA_UNMAP_FLAG_ALL) this.map.unmapAll();
    else this.map.unmap(r.address, r.size);
    return { bytes: encodeDmaUnmapReply(h.msgId, r) };
  }

  private request(message: Uint8Array, command: number, msgId: number): Promise<Frame> {
    return new Promise((resolve, reject) => {
      if (this.ended || !this.conn.open) {
        reject(new VfioError('ECONNRESET', 'the client is gone; guest memory cannot be reached.'));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(msgId);
        reject(
          new VfioError(
            'ETIMEDOUT',
            `the client did not answer ${commandName(command)} within ${this.o.requestTimeoutMs} ms.`,
          ),
        );
      }, this.o.requestTimeoutMs);
      this.pending.set(msgId, { command, resolve, reject, timer });
      try {
        this.conn.send(message);
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(msgId);
        reject(toVfioError(err));
      }
    });
  }

  private takeReply(frame: Frame): boolean {
    const h = frame.header;
    const p = this.pending.get(h.msgId);
    if (!p || p.command !== h.command) return false;
    this.pending.delete(h.msgId);
    clearTimeout(p.timer);
    if (isErrorReply(h)) {
      const errno = replyErrno(h);
      p.reject(
        new VfioError(
          errnoName(errno) ?? 'EIO',
          `the client refused ${commandName(h.command)} (errno ${errno}).`,
        ),
      );
    } else p.resolve(frame);
    return true;
  }

  private msgId(): number {
    this.nextMsgId = (this.nextMsgId + 1) & 0xffff;
    return this.nextMsgId;
  }

  /** DMA_READ messages, each at most the client's max_data_xfer_size. */
  private async remoteRead(iova: number, dst: Uint8Array): Promise<void> {
    const chunk = this.clientLimits.maxDataXferSize;
    for (let pos = 0; pos < dst.length; pos += chunk) {
      const count = Math.min(chunk, dst.length - pos);
      const address = iova + pos;
      const id = this.msgId();
      const frame = await this.request(
        encodeDmaReadRequest(id, { address, count }, this.o.dmaLayout),
        VFIO_USER_DMA_READ,
        id,
      );
      const t = decodeDmaReadReply(frame.payload, this.o.dmaLayout, this.clientLimits);
      if (t.address !== address || t.count !== count)
        throw new VfioError(
          'EPROTO',
          `the DMA_READ reply is for 0x${t.address.toString(16)}+${t.count}; 0x${address.toString(16)}+${count} was asked.`,
        );
      dst.set(t.data, pos);
    }
  }

  private async remoteWrite(iova: number, src: Uint8Array): Promise<void> {
    const chunk = this.clientLimits.maxDataXferSize;
    for (let pos = 0; pos < src.length; pos += chunk) {
      const count = Math.min(chunk, src.length - pos);
      const id = this.msgId();
      const frame = await this.request(
        encodeDmaWriteRequest(
          id,
          { address: iova + pos, count, data: src.subarray(pos, pos + count) },
          this.o.dmaLayout,
        ),
        VFIO_USER_DMA_WRITE,
        id,
      );
      decodeDmaWriteReply(frame.payload, this.o.dmaLayout, this.clientLimits);
    }
  }

  // ---- device queries --------------------------------------------------------------------

  private ioctl(request: number, arg: Uint8Array): Uint8Array {
    const r = this.device().ioctl(request, arg);
    if (r.ret < 0) throw r.error ?? new VfioError('EIO', `ioctl 0x${request.toString(16)} failed.`);
    return r.out;
  }

  private deviceInfo(h: MessageHeader, payload: Uint8Array): Reply {
    decodeDeviceInfoRequest(payload);
    const arg = new Uint8Array(vfio_device_info.size);
    const f = vfio_device_info.fields;
    new DataView(arg.buffer).setUint32(f.argsz.offset, arg.length, true);
    const out = new DataView(this.ioctl(VFIO_DEVICE_GET_INFO, arg).buffer);
    return {
      bytes: encodeDeviceInfoReply(h.msgId, {
        flags: out.getUint32(f.flags.offset, true),
        numRegions: out.getUint32(f.num_regions.offset, true),
        numIrqs: out.getUint32(f.num_irqs.offset, true),
      }),
    };
  }

  private regionInfo(h: MessageHeader, payload: Uint8Array): Reply {
    const req = decodeRegionInfoRequest(payload);
    const f = vfio_region_info.fields;
    const arg = new Uint8Array(Math.max(REGION_INFO_SIZE, Math.min(req.argsz, MAX_INFO_ARG)));
    const dv = new DataView(arg.buffer);
    dv.setUint32(f.argsz.offset, req.argsz, true);
    dv.setUint32(f.index.offset, req.index, true);
    const out = this.ioctl(VFIO_DEVICE_GET_REGION_INFO, arg);
    const odv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const needed = odv.getUint32(f.argsz.offset, true);
    const complete = needed <= req.argsz && needed <= out.length;
    const length = complete ? needed : REGION_INFO_SIZE;
    let flags = odv.getUint32(f.flags.offset, true);
    // CAPS only with the chain in the reply, as libvfio-user: QEMU's client refuses CAPS whose
    // cap_offset lies inside the header (hw/vfio-user/device.c) before it retries with argsz.
    if (!complete) flags &= ~VFIO_REGION_INFO_FLAG_CAPS;
    // vfio-user's offset is the mmap offset in the region's fd, not a device-file offset.
    let fdOffset = 0;
    let fd: number | undefined;
    if (flags & VFIO_REGION_INFO_FLAG_MMAP) {
      const backing = this.clientLimits.maxMsgFds > 0 ? this.regionFd(req.index) : undefined;
      if (backing) {
        fdOffset = backing.base;
        if (complete) fd = backing.fd;
      } else flags &= ~VFIO_REGION_INFO_FLAG_MMAP;
    }
    odv.setUint32(f.flags.offset, flags >>> 0, true);
    odv.setUint32(f.offset.offset, fdOffset % 2 ** 32, true);
    odv.setUint32(f.offset.offset + 4, Math.floor(fdOffset / 2 ** 32), true);
    const { bytes } = allocMessage(h.msgId, h.command, VFIO_USER_F_TYPE_REPLY, length);
    bytes.set(out.subarray(0, length), 16);
    return fd === undefined ? { bytes } : { bytes, fds: [fd] };
  }

  /**
   * The memfd behind a region's mmap areas. vfio-user sends one fd per region and places every
   * sparse area at `offset + area.offset` in it, so all areas must live in one memfd at one
   * distance from their region offsets; otherwise the region is served by messages only.
   */
  private regionFd(index: number): RegionFd | undefined {
    const cached = this.regionFds.get(index);
    if (cached !== undefined) return cached ?? undefined;
    let found: RegionFd | null = null;
    try {
      found = this.findRegionFd(this.device().regionInfo(index));
    } catch (err) {
      this.o.log.warn(`region ${index} cannot be mapped by the client: ${toVfioError(err).message}`);
    }
    if (found === null)
      this.o.log.warn(`region ${index} is served without an fd: its mmap memory is not one memfd.`);
    this.regionFds.set(index, found);
    return found ?? undefined;
  }

  private findRegionFd(r: ResolvedRegion): RegionFd | null {
    const areas = r.sparseMmap ?? [{ offset: 0, size: r.size }];
    let fd: number | undefined;
    let base = 0;
    for (const a of areas) {
      if (a.size === 0) continue;
      const m = this.device().mmap(r.offset + a.offset, a.size);
      const at = m.memoryOffset - a.offset;
      if (m.memory.fd === undefined) return null;
      if (fd === undefined) {
        fd = m.memory.fd;
        base = at;
      } else if (fd !== m.memory.fd || base !== at) return null;
    }
    if (fd === undefined || base < 0 || base % PAGE !== 0) return null;
    return { fd, base };
  }

  private regionIoFds(h: MessageHeader, payload: Uint8Array): Reply {
    const req = decodeRegionIoFdsRequest(payload);
    const count = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(12, true);
    if (count !== 0) throw new VfioError('EINVAL', `count is ${count}; it must be 0 in the request.`);
    const r = this.device().regionInfo(req.index);
    if (r.flags === 0)
      throw new VfioError('EINVAL', `region ${req.index} is not implemented, so it has no I/O fds.`);
    // libvfio-user answers a region without ioeventfds with count 0 and no fds; so do we.
    return { bytes: encodeRegionIoFdsReply(h.msgId, { index: req.index, subRegions: [] }, req.argsz).bytes };
  }

  private irqInfo(h: MessageHeader, payload: Uint8Array): Reply {
    const req = decodeIrqInfoRequest(payload);
    const f = vfio_irq_info.fields;
    const arg = new Uint8Array(vfio_irq_info.size);
    const dv = new DataView(arg.buffer);
    dv.setUint32(f.argsz.offset, arg.length, true);
    dv.setUint32(f.index.offset, req.index, true);
    const out = new DataView(this.ioctl(VFIO_DEVICE_GET_IRQ_INFO, arg).buffer);
    return {
      bytes: encodeIrqInfoReply(h.msgId, {
        flags: out.getUint32(f.flags.offset, true),
        index: req.index,
        count: out.getUint32(f.count.offset, true),
      }),
    };
  }

  // ---- interrupts ------------------------------------------------------------------------

  private setIrqs(h: MessageHeader, payload: Uint8Array, fds: number[]): Reply {
    const req = decodeSetIrqsRequest(payload, fds, this.o.limits);
    const f = vfio_irq_set.fields;
    const dataLen = req.dataType === 'bool' ? req.count : req.dataType === 'eventfd' ? req.count * 4 : 0;
    const arg = new Uint8Array(vfio_irq_set.size + dataLen);
    const dv = new DataView(arg.buffer);
    dv.setUint32(f.argsz.offset, arg.length, true);
    dv.setUint32(f.flags.offset, req.flags, true);
    dv.setUint32(f.index.offset, req.index, true);
    dv.setUint32(f.start.offset, req.start, true);
    dv.setUint32(f.count.offset, req.count, true);
    if (req.bools) arg.set(req.bools, vfio_irq_set.size);
    if (req.dataType === 'eventfd')
      for (let i = 0; i < req.count; i++)
        dv.setInt32(vfio_irq_set.size + 4 * i, i < fds.length ? fds[i] : -1, true);
    // The fds now belong to this call: adopted ones to the device file, the rest are closed.
    const mine = fds.splice(0);
    this.irqFds = new Set(mine);
    this.adopted = [];
    try {
      this.ioctl(VFIO_DEVICE_SET_IRQS, arg);
    } catch (err) {
      for (const e of this.adopted) e.close();
      throw err;
    } finally {
      const adopted = new Set(this.adopted.map((e) => e.fd));
      closeFds(mine.filter((fd) => !adopted.has(fd)));
      this.irqFds = undefined;
      this.adopted = [];
    }
    return { bytes: encodeEmptyReply(h.msgId, h.command) };
  }

  /** An eventfd from the SET_IRQS being handled, as a trigger that signals it and closes it on release. */
  private resolveEventfd(fd: number): IrqTrigger {
    if (!this.irqFds?.has(fd))
      throw new VfioError('EBADF', `fd ${fd} did not come with this SET_IRQS message.`);
    this.irqFds.delete(fd);
    const eventfd = new Eventfd(fd);
    this.adopted.push(eventfd);
    const log = this.o.log;
    return {
      signal() {
        if (!eventfd.open) return;
        try {
          eventfd.signal();
        } catch (err) {
          log.warn(`signalling eventfd ${fd} failed: ${toVfioError(err).message}`);
        }
      },
      release() {
        eventfd.close();
      },
    };
  }

  // ---- region access ---------------------------------------------------------------------

  /** The device-file offset of `offset` inside region `index`; EINVAL when it is not inside. */
  private fileOffset(index: number, offset: number, count: number): number {
    const r = this.device().regionInfo(index);
    if (offset >= r.size)
      throw new VfioError(
        'EINVAL',
        `offset 0x${offset.toString(16)} (+${count}) is outside the ${r.size}-byte region.`,
        {
          device: this.o.name,
          region: index,
          hint: 'Keep offset + count within the size REGION_INFO reports.',
        },
      );
    return r.offset + offset;
  }

  private regionRead(h: MessageHeader, payload: Uint8Array): Reply {
    const a = decodeRegionReadRequest(payload, this.o.limits);
    const at = this.fileOffset(a.region, a.offset, a.count);
    const reply = allocRegionReadReply(h.msgId, a);
    this.device().read(at, reply.data);
    return { bytes: reply.bytes };
  }

  private regionWrite(h: MessageHeader, payload: Uint8Array): Reply {
    const d = decodeRegionWriteRequest(payload, this.o.limits);
    this.device().write(this.fileOffset(d.region, d.offset, d.count), d.data);
    return { bytes: encodeRegionWriteReply(h.msgId, d) };
  }

  // ---- device features -------------------------------------------------------------------

  private feature(h: MessageHeader, payload: Uint8Array): Reply {
    const req = decodeDeviceFeatureRequest(payload);
    if (
      (req.feature === VFIO_DEVICE_FEATURE_DMA_LOGGING_START ||
        req.feature === VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT) &&
      !req.probe
    )
      return this.loggingFeature(h, req.feature, req.argsz, req.flags, req.data);
    let replyData = req.data.length;
    if (req.get && !req.probe) {
      switch (req.feature) {
        case VFIO_DEVICE_FEATURE_MIGRATION:
        case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
        case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
          replyData = 8;
          break;
      }
    }
    const arg = new Uint8Array(8 + Math.max(req.data.length, replyData));
    arg.set(req.data, 8);
    const dv = new DataView(arg.buffer);
    // For GET the client's argsz bounds the reply, as the kernel's argsz bounds the buffer.
    dv.setUint32(0, req.get ? Math.min(req.argsz, arg.length) : 8 + req.data.length, true);
    dv.setUint32(4, req.flags, true);
    const out = this.ioctl(VFIO_DEVICE_FEATURE, arg);
    const data = out.slice(8, 8 + replyData);
    if (
      req.feature === VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE &&
      data.length >= vfio_device_feature_mig_state.size
    )
      // docs/interop/vfio-user.rst: data_fd is unused; the stream travels in MIG_DATA_READ/WRITE.
      new DataView(data.buffer).setInt32(vfio_device_feature_mig_state.fields.data_fd.offset, -1, true);
    return { bytes: encodeDeviceFeatureReply(h.msgId, { flags: req.flags, data }) };
  }

  /**
   * DMA logging carries its ranges and bitmap inline in vfio-user, right after the 16-byte
   * control head and the 24-byte report head; the kernel structs (which the device file reads)
   * have a u64 pointer there first. Only that slot is added and removed here.
   */
  private loggingFeature(
    h: MessageHeader,
    feature: number,
    argsz: number,
    flags: number,
    data: Uint8Array,
  ): Reply {
    const start = feature === VFIO_DEVICE_FEATURE_DMA_LOGGING_START;
    const head = start ? LOGGING_CONTROL_HEAD : LOGGING_REPORT_HEAD;
    if (data.length < head)
      throw new VfioError(
        'EINVAL',
        `DMA logging data of ${data.length} bytes is shorter than its ${head}-byte head.`,
      );
    let tail = data.length - head;
    if (!start) {
      if (data.length !== head)
        throw new VfioError('EINVAL', `DMA_LOGGING_REPORT data is ${data.length} bytes; it must be ${head}.`);
      const r = decodeDmaLoggingReport(data, this.o.limits);
      tail = dirtyBitmapBytes(r.length, r.pageSize);
      if (argsz < 8 + head + tail)
        throw new VfioError('EINVAL', `argsz ${argsz} cannot hold the ${tail}-byte bitmap.`, {
          hint: `Send argsz ${8 + head + tail}.`,
        });
    }
    const arg = new Uint8Array(8 + head + 8 + tail);
    const dv = new DataView(arg.buffer);
    dv.setUint32(0, arg.length, true);
    dv.setUint32(4, flags, true);
    arg.set(data.subarray(0, head), 8);
    if (start) arg.set(data.subarray(head), 8 + head + 8);
    const out = this.ioctl(VFIO_DEVICE_FEATURE, arg);
    if (start) return { bytes: encodeDeviceFeatureReply(h.msgId, { flags, data }) };
    const reply = new Uint8Array(head + tail);
    reply.set(data);
    reply.set(out.subarray(8 + head + 8), head);
    return { bytes: encodeDeviceFeatureReply(h.msgId, { flags, data: reply }) };
  }

  // ---- the end ---------------------------------------------------------------------------

  /**
   * The client is gone: fail the requests sent to it, reset the device (libvfio-user's
   * VFU_RESET_LOST_CONN), drop its DMA mappings (pins hear onUnmap first), close the device file
   * (which releases and closes every eventfd), and tell the server.
   */
  private end(reason: VfioError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    const gone = new VfioError('ECONNRESET', 'the client disconnected.');
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(gone);
    }
    this.pending.clear();
    if (reason && reason.code !== 'ECONNRESET') this.o.log.debug(`session ended: ${reason.message}`);
    const file = this.file;
    this.file = undefined;
    const guard = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (err) {
        this.o.log.warn(`${what} after the client left failed: ${toVfioError(err).message}`);
      }
    };
    if (file) {
      if (file.deviceInfo().reset) guard('resetting the device', () => file.reset());
      guard('unmapping DMA', () => this.map.unmapAll());
      guard('closing the device', () => file.close());
    } else guard('unmapping DMA', () => this.map.unmapAll());
    this.dma.dispose();
    if (this.tracker.started) this.tracker.stop();
    this.regionFds.clear();
    this.o.onEnd(this);
  }
}

/** The limits a server announces, with libvfio-user's values where the caller gives none. */
export function serverLimits(l: { maxDataXferSize?: number; maxMsgFds?: number } = {}): Limits {
  const maxDataXferSize = l.maxDataXferSize ?? DEFAULT_LIMITS.maxDataXferSize;
  // libvfio-user advertises max_msg_fds 8 (lib/tran.c); SET_IRQS for many vectors needs more.
  const maxMsgFds = l.maxMsgFds ?? 8;
  if (!Number.isInteger(maxDataXferSize) || maxDataXferSize < 1 || maxDataXferSize > 0xffffffff)
    throw new VfioError('EINVAL', `maxDataXferSize ${maxDataXferSize} is not a count of bytes.`);
  if (!Number.isInteger(maxMsgFds) || maxMsgFds < 0 || maxMsgFds > VFIO_USER_MAX_MSG_FDS_LIMIT)
    throw new VfioError('EINVAL', `maxMsgFds ${maxMsgFds} must be 0..${VFIO_USER_MAX_MSG_FDS_LIMIT}.`);
  return { maxDataXferSize, maxMsgFds };
}
