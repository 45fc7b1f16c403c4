/**
 * The served device's regions as this client sees them: REGION_INFO read once at connect (with
 * the mmap areas mapped from the fd the server sends), REGION_READ/REGION_WRITE for trapped
 * accesses, and mmap() answered from the areas mapped here.
 */
import {
  ERRNO,
  errnoName,
  type Logger,
  type MmapArea,
  type RegionInfo,
  type RegionMapping,
  type SharedMemory,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  VfioError,
} from '@vfiokit/core';
import { closeFds, mapFd } from '../native/memory.js';
import {
  VFIO_USER_F_ERROR,
  VFIO_USER_F_TYPE_MASK,
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_HEADER_SIZE,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_RW_SIZE,
} from '../protocol/constants.js';
import { decodeRegionInfoReply, encodeRegionInfoRequest, type RegionInfoReply } from '../protocol/device.js';
import type { Frame } from '../protocol/framing.js';
import { decodeRegionWriteReply, encodeRegionWriteRequest } from '../protocol/region.js';
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

export class ClientRegions {
  private readonly regions: (RemoteRegion | undefined)[] = [];

  constructor(
    private readonly link: ChannelLink,
    private readonly log: Logger,
  ) {}

  /** Ask REGION_INFO for regions 0..count-1 (at connect). */
  fetch(count: number): void {
    for (let i = 0; i < count; i++) this.regions.push(this.fetchRegion(i));
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
