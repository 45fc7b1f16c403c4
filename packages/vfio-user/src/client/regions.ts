/**
 * The served device's regions as this client sees them: REGION_INFO read once at connect (with
 * the mmap areas mapped from the fd the server sends), REGION_READ/REGION_WRITE for trapped
 * accesses, and mmap() answered from the areas mapped here.
 *
 * Posted writes (ConnectOptions.postedWrites), as QEMU's client posts them: a write is sent with
 * No_reply and not waited for, so its errors are not seen (the server logs them). Writes of at
 * most 8 bytes are held and go out together as one REGION_WRITE_MULTI when the server offers
 * write_multiple: before the next message of any kind (so the server sees every access in the
 * order made), at VFIO_USER_MULTI_MAX writes, or when the current task ends. QEMU coalesces
 * only once its send queue is long; a synchronous caller here never has a queue, so holding
 * until the next message is what saves the round trips. Like QEMU (hw/vfio-user/device.c
 * vfio_user_get_region_info), writes are never posted to a device with an mmapped region: a
 * direct access could overtake a write still on its way.
 */
import {
  type Logger,
  type MmapArea,
  type RegionInfo,
  type RegionMapping,
  type SharedMemory,
  VfioError,
} from '@vfiokit/core';
import {
  ERRNO,
  errnoName,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
} from '@vfiokit/core/abi';
import { closeFds, mapFd } from '../native/memory.js';
import {
  VFIO_USER_F_ERROR,
  VFIO_USER_F_TYPE_MASK,
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_HEADER_SIZE,
  VFIO_USER_MULTI_DATA,
  VFIO_USER_MULTI_MAX,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_RW_SIZE,
} from '../protocol/constants.js';
import { decodeRegionInfoReply, encodeRegionInfoRequest, type RegionInfoReply } from '../protocol/device.js';
import type { Frame } from '../protocol/framing.js';
import {
  decodeRegionWriteReply,
  encodeRegionWriteMultiRequest,
  encodeRegionWriteRequest,
  type RegionData,
} from '../protocol/region.js';
import { setU64 } from '../protocol/wire.js';
import { FDS_AT, LEN, NFDS } from './channel.js';
import type { ChannelLink } from './link.js';

interface MappedArea extends MmapArea {
  readonly memory: SharedMemory;
}

interface RemoteRegion {
  readonly info: RegionInfo;
  readonly areas: readonly MappedArea[];
}

export interface PostedWrites {
  /** Post writes (No_reply) when no region is mmapped. */
  readonly post: boolean;
  /** The server offered write_multiple: small posted writes may travel as REGION_WRITE_MULTI. */
  readonly multi: boolean;
}

export class ClientRegions {
  private readonly regions: (RemoteRegion | undefined)[] = [];
  private posting = false;
  private multi = false;
  /** Posted writes of at most 8 bytes not sent yet. */
  private held: RegionData[] = [];
  private flushQueued = false;

  constructor(
    private readonly link: ChannelLink,
    private readonly log: Logger,
  ) {}

  /** Ask REGION_INFO for regions 0..count-1 (at connect), then decide on posted writes. */
  fetch(count: number, posted: PostedWrites = { post: false, multi: false }): void {
    for (let i = 0; i < count; i++) this.regions.push(this.fetchRegion(i));
    const mapped = this.regions.some((r) => r !== undefined && r.areas.length > 0);
    this.posting = posted.post && !mapped;
    this.multi = this.posting && posted.multi;
    if (this.multi) this.link.onBeforeSend(() => this.flush());
  }

  /** Whether write() posts (for tests and logs). */
  get postsWrites(): boolean {
    return this.posting;
  }

  info(index: number): RegionInfo | undefined {
    return this.regions[index]?.info;
  }

  private fetchRegion(index: number): RemoteRegion | undefined {
    let reply: RegionInfoReply;
    let argsz = 32;
    for (let attempt = 0; ; attempt++) {
      let frame: Frame;
      try {
        frame = this.link.request(encodeRegionInfoRequest(this.link.msgId(), { argsz, index }));
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

  read(index: number, offset: number, dst: Uint8Array): void {
    if (this.held.length > 0) this.flush();
    const step = this.link.limits.maxDataXferSize;
    for (let pos = 0; pos < dst.length; pos += step)
      this.readChunk(index, offset + pos, dst.subarray(pos, Math.min(dst.length, pos + step)));
  }

  /** REGION_READ written straight into the channel buffer and read straight out of it. */
  private readChunk(index: number, offset: number, dst: Uint8Array): void {
    const link = this.link;
    const dv = link.dv;
    const id = link.msgId();
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
    link.exchange(size, [], false, 'VFIO_USER_REGION_READ');
    const c = link.ctrl;
    const len = c[LEN];
    const nfds = c[NFDS];
    if (nfds > 0) closeFds(Array.from(c.subarray(FDS_AT, FDS_AT + nfds)));
    const flags = len >= VFIO_USER_HEADER_SIZE ? dv.getUint32(8, true) : 0;
    let problem: VfioError | undefined;
    if (len < VFIO_USER_HEADER_SIZE || (flags & VFIO_USER_F_TYPE_MASK) !== VFIO_USER_F_TYPE_REPLY)
      problem = new VfioError('EPROTO', 'the REGION_READ reply is malformed.', { device: link.name });
    else if (flags & VFIO_USER_F_ERROR) {
      const errno = dv.getUint32(12, true) || ERRNO.EINVAL;
      problem = new VfioError(errnoName(errno) ?? 'EIO', `the server refused REGION_READ (errno ${errno}).`, {
        device: link.name,
        region: index,
        offset,
      });
    } else if (len !== size + count || dv.getUint32(28, true) !== count)
      problem = new VfioError(
        'EPROTO',
        `the REGION_READ reply carries ${len - size} bytes; ${count} were asked.`,
        {
          device: link.name,
          region: index,
          offset,
        },
      );
    else dst.set(link.data.subarray(size, size + count));
    link.done();
    if (problem) throw problem;
  }

  write(index: number, offset: number, src: Uint8Array): void {
    const link = this.link;
    const step = link.limits.maxDataXferSize;
    if (this.posting) {
      this.post(index, offset, src, step);
      return;
    }
    for (let pos = 0; pos < src.length; pos += step) {
      const data = src.subarray(pos, Math.min(src.length, pos + step));
      const frame = link.call(
        encodeRegionWriteRequest(link.msgId(), {
          offset: offset + pos,
          region: index,
          count: data.length,
          data,
        }),
      );
      decodeRegionWriteReply(frame.payload, link.limits);
    }
  }

  private post(index: number, offset: number, src: Uint8Array, step: number): void {
    if (this.multi && src.length <= VFIO_USER_MULTI_DATA) {
      // The caller may reuse its buffer: keep a copy.
      this.held.push({ offset, region: index, count: src.length, data: src.slice() });
      if (this.held.length >= VFIO_USER_MULTI_MAX) this.flush();
      else if (!this.flushQueued) {
        this.flushQueued = true;
        queueMicrotask(() => {
          this.flushQueued = false;
          this.flushQuietly();
        });
      }
      return;
    }
    const link = this.link;
    for (let pos = 0; pos < src.length; pos += step) {
      const data = src.subarray(pos, Math.min(src.length, pos + step));
      link.post(
        encodeRegionWriteRequest(
          link.msgId(),
          { offset: offset + pos, region: index, count: data.length, data },
          { noReply: true },
        ),
      );
    }
  }

  /** Send the held posted writes: one REGION_WRITE for one, REGION_WRITE_MULTI for more. */
  flush(): void {
    const held = this.held;
    if (held.length === 0) return;
    this.held = [];
    const link = this.link;
    link.post(
      held.length === 1
        ? encodeRegionWriteRequest(link.msgId(), held[0], { noReply: true })
        : encodeRegionWriteMultiRequest(link.msgId(), held, { noReply: true }),
    );
  }

  /** flush() from a task of its own, where nobody could catch a failure. */
  flushQuietly(): void {
    try {
      this.flush();
    } catch (err) {
      this.log.warn(`sending posted writes failed: ${(err as Error).message}`);
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
          device: this.link.name,
          region: index,
          offset,
        },
      );
    return { memory: area.memory, memoryOffset: offset - area.offset, size };
  }
}
