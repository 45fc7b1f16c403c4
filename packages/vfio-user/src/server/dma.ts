/**
 * A session's view of client memory: DMA_MAP and DMA_UNMAP keep the IOVA map, a range mapped
 * with an fd is reached directly, and one mapped without is reached with DMA_READ/DMA_WRITE
 * requests sent to the client (the only commands a server sends), each answered by a reply
 * matched here by msg_id.
 */
import { VfioError } from '@vfiokit/core';
import {
  errnoName,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
} from '@vfiokit/core/abi';
import { type DeviceHost, DirtyTracker, HostDma, IovaMap, toVfioError } from '@vfiokit/core/host';
import { closeFd, fdSize, mapFd } from '../native/memory.js';
import { commandName, VFIO_USER_DMA_READ, VFIO_USER_DMA_WRITE } from '../protocol/constants.js';
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
import type { Frame } from '../protocol/framing.js';
import { encodeEmptyReply, isErrorReply, type MessageHeader, replyErrno } from '../protocol/header.js';
import { PAGE, type Reply, type SessionContext } from './context.js';

export interface SessionDmaOptions {
  readonly dmaLayout: DmaLayout;
  /** How long a DMA_READ/DMA_WRITE sent to the client may wait for its reply. */
  readonly requestTimeoutMs: number;
  /** Whether the client can still be sent a request. */
  connected(): boolean;
  /** Send one message to the client; throws when the socket refuses it. */
  send(message: Uint8Array): void;
}

interface PendingRequest {
  readonly command: number;
  resolve(frame: Frame): void;
  reject(err: VfioError): void;
  readonly timer: ReturnType<typeof setTimeout>;
}

export class SessionDma {
  private readonly map = new IovaMap();
  private readonly tracker = new DirtyTracker();
  private readonly dma: HostDma;
  private readonly pending = new Map<number, PendingRequest>();
  private nextMsgId = 0;

  constructor(
    private readonly ctx: SessionContext,
    private readonly o: SessionDmaOptions,
  ) {
    this.dma = new HostDma({
      map: this.map,
      dirty: this.tracker,
      device: ctx.name,
      remote: {
        read: (iova, dst) => this.remoteRead(iova, dst),
        write: (iova, src) => this.remoteWrite(iova, src),
      },
    });
  }

  /** Mappings of client memory, with an fd and without one. */
  get mappings(): number {
    return this.map.count;
  }

  /** The DMA and dirty-logging parts of the device file's host. */
  host(): Pick<DeviceHost, 'dma' | 'dirty' | 'dmaLogging'> {
    const tracker = this.tracker;
    return {
      dma: this.dma,
      dirty: this.dma,
      dmaLogging: {
        start: (pageSize, ranges) => {
          tracker.start(pageSize, ranges);
        },
        stop: () => tracker.stop(),
        report: (iova, length, pageSize) => tracker.report(iova, length, pageSize),
      },
    };
  }

  // ---- DMA_MAP / DMA_UNMAP ---------------------------------------------------------------

  dmaMap(h: MessageHeader, payload: Uint8Array, fds: number[]): Reply {
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

  dmaUnmap(h: MessageHeader, payload: Uint8Array): Reply {
    const r = decodeDmaUnmapRequest(payload);
    if (r.flags & VFIO_DMA_UNMAP_FLAG_ALL) this.map.unmapAll();
    else this.map.unmap(r.address, r.size);
    return { bytes: encodeDmaUnmapReply(h.msgId, r) };
  }

  // ---- DMA_READ / DMA_WRITE to the client ------------------------------------------------

  /** A reply from the client to one of our requests; false when it answers none. */
  takeReply(frame: Frame): boolean {
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

  private request(message: Uint8Array, command: number, msgId: number): Promise<Frame> {
    return new Promise((resolve, reject) => {
      if (!this.o.connected()) {
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
        this.o.send(message);
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(msgId);
        reject(toVfioError(err));
      }
    });
  }

  private msgId(): number {
    this.nextMsgId = (this.nextMsgId + 1) & 0xffff;
    return this.nextMsgId;
  }

  /**
   * The most bytes one DMA_READ/DMA_WRITE carries: the smaller of the two max_data_xfer_sizes.
   * The spec bounds it by the client's; QEMU's client holds a server's request to the value the
   * server announced (hw/vfio-user/pci.c vfio_user_dma_read answers E2BIG above it, and
   * proxy.c refuses a larger message), so a server announcing less than the client must keep to
   * its own figure too.
   */
  private chunk(): number {
    return Math.min(this.ctx.clientLimits().maxDataXferSize, this.ctx.limits.maxDataXferSize);
  }

  /** DMA_READ messages, each at most chunk() bytes. */
  private async remoteRead(iova: number, dst: Uint8Array): Promise<void> {
    const limits = this.ctx.clientLimits();
    const chunk = this.chunk();
    for (let pos = 0; pos < dst.length; pos += chunk) {
      const count = Math.min(chunk, dst.length - pos);
      const address = iova + pos;
      const id = this.msgId();
      const frame = await this.request(
        encodeDmaReadRequest(id, { address, count }, this.o.dmaLayout),
        VFIO_USER_DMA_READ,
        id,
      );
      const t = decodeDmaReadReply(frame.payload, this.o.dmaLayout, limits);
      if (t.address !== address || t.count !== count)
        throw new VfioError(
          'EPROTO',
          `the DMA_READ reply is for 0x${t.address.toString(16)}+${t.count}; 0x${address.toString(16)}+${count} was asked.`,
        );
      dst.set(t.data, pos);
    }
  }

  private async remoteWrite(iova: number, src: Uint8Array): Promise<void> {
    const limits = this.ctx.clientLimits();
    const chunk = this.chunk();
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
      decodeDmaWriteReply(frame.payload, this.o.dmaLayout, limits);
    }
  }

  // ---- the end ---------------------------------------------------------------------------

  /** Fail every request still waiting for the client. */
  failPending(reason: VfioError): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(reason);
    }
    this.pending.clear();
  }

  /** Drop every mapping (pins hear onUnmap first). */
  unmapAll(): void {
    this.map.unmapAll();
  }

  /** Release the DMA engine and stop dirty logging; after unmapAll. */
  dispose(): void {
    this.dma.dispose();
    if (this.tracker.started) this.tracker.stop();
  }
}
