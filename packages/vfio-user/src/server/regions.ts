/**
 * A session's regions: REGION_INFO (with the memfd behind a region's mmap areas as its fd),
 * REGION_IO_FDS, and REGION_READ/REGION_WRITE/REGION_WRITE_MULTI translated to device-file
 * offsets.
 *
 * A 0-byte REGION_READ or REGION_WRITE inside an implemented region succeeds and reaches no
 * device: the kernel's read()/write() on a vfio-pci region return 0 for count 0
 * (vfio_pci_config_rw loops while count, vfio_pci_bar_rw checks only pos < end), and
 * libvfio-user succeeds too. At or past the region's end it is EINVAL, as vfio_pci_bar_rw.
 * QEMU itself never sends one (vfio_region_read/write have sizes 1, 2, 4 and 8).
 */
import { TWO_32, VfioError } from '@vfiokit/core';
import {
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  vfio_region_info,
} from '@vfiokit/core/abi';
import { type DeviceFile, type RegionPort, type ResolvedRegion, toVfioError } from '@vfiokit/core/host';
import {
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_HEADER_SIZE,
  VFIO_USER_MULTI_DATA,
  VFIO_USER_REGION_RW_SIZE,
  VFIO_USER_WRITE_MULTI_ENTRY_SIZE,
  VFIO_USER_WRITE_MULTI_HEADER_SIZE,
} from '../protocol/constants.js';
import { encodeErrorReply, type MessageHeader } from '../protocol/header.js';
import {
  allocRegionReadReply,
  checkRegionWriteMultiRequest,
  decodeRegionReadRequestInto,
  decodeRegionWriteRequestInto,
  putRegionReply,
  type RegionAccessSlot,
} from '../protocol/region.js';
import {
  decodeRegionInfoRequest,
  decodeRegionIoFdsRequest,
  encodeRegionIoFdsReply,
} from '../protocol/region-info.js';
import { allocMessage, putHeaderAt } from '../protocol/wire.js';
import { ioctl, PAGE, type Reply, type SessionContext } from './context.js';

/** The largest argument buffer built for an info ioctl, whatever argsz the client claims. */
const MAX_INFO_ARG = 64 * 1024;
const REGION_INFO_SIZE = vfio_region_info.size;
/** Where a REGION_READ reply's data start: after the header and the echoed access. */
const REPLY_DATA = 16 + VFIO_USER_REGION_RW_SIZE;
/** The largest REGION_READ reply built in the reused buffer (bigger reads get their own). */
const REPLY_MAX = 16 + VFIO_USER_REGION_RW_SIZE + 256;

/** A region's mmappable memory as one memfd: the fd and the fd offset of the region's start. */
interface RegionFd {
  readonly fd: number;
  readonly base: number;
}

export class SessionRegions {
  private readonly regionFds = new Map<number, RegionFd | null>();
  /** The access being served, decoded in place. */
  private readonly access: RegionAccessSlot = { offset: 0, region: 0, count: 0 };
  /**
   * Replies of small reads and writes: one buffer, and views of it by size made on first use.
   * The view tables are made full (of undefined) so that every session's arrays have the same
   * elements kind: a `[]` filled sparsely turns holey, and the next session's fresh `[]` then
   * deoptimises the hot path and recompiles it (1–18 ms, a stall when the CPU is shared).
   */
  private readonly replyBuffer = new Uint8Array(REPLY_MAX);
  private readonly replyView = new DataView(this.replyBuffer.buffer);
  private readonly replyViews: (Uint8Array | undefined)[] = new Array(REPLY_MAX + 1).fill(undefined);
  private readonly replyData: (Uint8Array | undefined)[] = new Array(REPLY_MAX + 1).fill(undefined);
  private readonly reply: { bytes: Uint8Array; fds?: readonly number[] } = { bytes: this.replyBuffer };
  private writePayload: Uint8Array | undefined;
  /** The data of one REGION_WRITE_MULTI entry, by count (entryData). */
  private readonly entryBuffer = new Uint8Array(VFIO_USER_MULTI_DATA);
  private readonly entryViews: Uint8Array[] = Array.from({ length: VFIO_USER_MULTI_DATA + 1 }, (_, n) =>
    this.entryBuffer.subarray(0, n),
  );
  private readonly entryView = new DataView(this.entryBuffer.buffer);
  private multiBuffer: ArrayBufferLike | undefined;
  private multiView: DataView | undefined;
  private writeData: Uint8Array = this.replyBuffer;
  /** The entry multiWrites() was at (the one that threw, when it threw). */
  private multiAt = 0;

  constructor(private readonly ctx: SessionContext) {}

  // ---- REGION_INFO and REGION_IO_FDS -----------------------------------------------------

  regionInfo(h: MessageHeader, payload: Uint8Array): Reply {
    const req = decodeRegionInfoRequest(payload);
    const f = vfio_region_info.fields;
    const arg = new Uint8Array(Math.max(REGION_INFO_SIZE, Math.min(req.argsz, MAX_INFO_ARG)));
    const dv = new DataView(arg.buffer);
    dv.setUint32(f.argsz.offset, req.argsz, true);
    dv.setUint32(f.index.offset, req.index, true);
    const out = ioctl(this.ctx.device(), VFIO_DEVICE_GET_REGION_INFO, arg);
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
      const backing = this.ctx.clientLimits().maxMsgFds > 0 ? this.regionFd(req.index) : undefined;
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
      found = this.findRegionFd(this.ctx.device().regionInfo(index));
    } catch (err) {
      this.ctx.log.warn(`region ${index} cannot be mapped by the client: ${toVfioError(err).message}`);
    }
    if (found === null)
      this.ctx.log.warn(`region ${index} is served without an fd: its mmap memory is not one memfd.`);
    this.regionFds.set(index, found);
    return found ?? undefined;
  }

  private findRegionFd(r: ResolvedRegion): RegionFd | null {
    const areas = r.sparseMmap ?? [{ offset: 0, size: r.size }];
    let fd: number | undefined;
    let base = 0;
    for (const a of areas) {
      if (a.size === 0) continue;
      const m = this.ctx.device().mmap(r.offset + a.offset, a.size);
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

  regionIoFds(h: MessageHeader, payload: Uint8Array): Reply {
    const req = decodeRegionIoFdsRequest(payload);
    const count = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(12, true);
    if (count !== 0) throw new VfioError('EINVAL', `count is ${count}; it must be 0 in the request.`);
    const r = this.ctx.device().regionInfo(req.index);
    if (r.flags === 0)
      throw new VfioError('EINVAL', `region ${req.index} is not implemented, so it has no I/O fds.`);
    // libvfio-user answers a region without ioeventfds with count 0 and no fds; so do we.
    return { bytes: encodeRegionIoFdsReply(h.msgId, { index: req.index, subRegions: [] }, req.argsz).bytes };
  }

  // ---- REGION_READ / REGION_WRITE --------------------------------------------------------
  // The hot path of a session: a small read or write allocates nothing. The access is decoded
  // into one reused slot, the reply is built in one reused buffer (through views made once per
  // size; the socket copies a reply only when it has to queue it), and the device is reached by
  // region index, so no file offset (a number above 2^40) crosses a call.

  /** Region `index`; EINVAL unless `offset` lies inside it (the rest is the device file's to check). */
  private regionHolding(index: number, offset: number, count: number): ResolvedRegion {
    const r = this.ctx.device().regionInfo(index);
    if (offset >= r.size) throw this.outsideRegion(index, offset, count, r.size);
    return r;
  }

  /** The error of an access at or past the end of region `index` (`size` bytes). */
  private outsideRegion(index: number, offset: number, count: number, size: number): VfioError {
    return new VfioError(
      'EINVAL',
      `offset 0x${offset.toString(16)} (+${count}) is outside the ${size}-byte region.`,
      {
        device: this.ctx.name,
        region: index,
        hint: 'Keep offset + count within the size REGION_INFO reports.',
      },
    );
  }

  /** A reply of `size` bytes in the reused buffer (size <= REPLY_MAX). */
  private replyOfSize(size: number): Uint8Array {
    let v = this.replyViews[size];
    if (v === undefined) {
      v = this.replyBuffer.subarray(0, size);
      this.replyViews[size] = v;
    }
    return v;
  }

  /** The data part of a reused read reply of `count` bytes. */
  private replyDataOf(count: number): Uint8Array {
    let v = this.replyData[count];
    if (v === undefined) {
      v = this.replyBuffer.subarray(REPLY_DATA, REPLY_DATA + count);
      this.replyData[count] = v;
    }
    return v;
  }

  private replyWith(bytes: Uint8Array): Reply {
    const r = this.reply;
    r.bytes = bytes;
    return r;
  }

  regionRead(h: MessageHeader, payload: Uint8Array): Reply {
    const a = this.access;
    decodeRegionReadRequestInto(payload, this.ctx.limits, a);
    this.regionHolding(a.region, a.offset, a.count);
    if (REPLY_DATA + a.count > REPLY_MAX) {
      const big = allocRegionReadReply(h.msgId, a);
      this.ctx.device().readRegion(a.region, a.offset, big.data);
      return { bytes: big.bytes };
    }
    const bytes = this.replyOfSize(REPLY_DATA + a.count);
    // A 0-byte access succeeds without reaching the device, as read(2) of 0 bytes.
    if (a.count > 0) this.ctx.device().readRegion(a.region, a.offset, this.replyDataOf(a.count));
    putRegionReply(this.replyView, bytes.length, h.msgId, h.command, a);
    return this.replyWith(bytes);
  }

  regionWrite(h: MessageHeader, payload: Uint8Array): Reply {
    const a = this.access;
    decodeRegionWriteRequestInto(payload, this.ctx.limits, a);
    this.regionHolding(a.region, a.offset, a.count);
    if (a.count > 0) {
      // A lent payload is the same view for every message of its size: so is its data view.
      let data = this.writeData;
      if (payload !== this.writePayload) {
        data = payload.subarray(VFIO_USER_REGION_RW_SIZE);
        // Only small payloads are kept for the next message (never a large buffer of a past one).
        if (payload.length <= REPLY_MAX) {
          this.writePayload = payload;
          this.writeData = data;
        }
      }
      this.ctx.device().writeRegion(a.region, a.offset, data);
    }
    const bytes = this.replyOfSize(REPLY_DATA);
    putRegionReply(this.replyView, bytes.length, h.msgId, h.command, a);
    return this.replyWith(bytes);
  }

  /**
   * REGION_WRITE_MULTI: QEMU coalesces posted writes of at most 8 bytes into one message when
   * its outgoing queue is long (hw/vfio-user/device.c vfio_user_device_io_region_write, sent
   * with No_reply). It stands for the REGION_WRITEs it replaces, so every write is tried in
   * order, as a REGION_WRITE would be, and one that fails does not stop the ones after it, as
   * separate posted writes would not. The reply (when asked for) carries wr_cnt, the writes
   * done; if one failed it is an error reply with the first failure's errno instead, so a
   * client learns what went wrong. The entries are read in place (a malformed message is
   * refused whole before any write) and each write's data is copied into a reused 8-byte view,
   * so a batch allocates nothing.
   */
  regionWriteMulti(h: MessageHeader, payload: Uint8Array): Reply {
    const dv = this.viewOf(payload);
    const n = checkRegionWriteMultiRequest(payload, dv);
    const file = this.ctx.device();
    const base = payload.byteOffset + VFIO_USER_WRITE_MULTI_HEADER_SIZE;
    let first: VfioError | undefined;
    let failed = 0;
    // The writes run in multiWrites() without a handler around each: one that throws is
    // recorded here and the rest go on from the next.
    for (let i = 0; i < n; ) {
      try {
        i = this.multiWrites(file, dv, base, i, n);
      } catch (err) {
        i = this.multiAt;
        const e = toVfioError(err, { device: this.ctx.name });
        this.ctx.log.debug(`REGION_WRITE_MULTI write ${i} of ${n} failed: ${e.message}`);
        first ??= e;
        failed++;
        i++;
      }
    }
    if (first) return { bytes: encodeErrorReply(h.msgId, h.command, first.errno) };
    const bytes = this.replyOfSize(VFIO_USER_HEADER_SIZE + 8);
    const out = this.replyView;
    putHeaderAt(out, bytes.length, h.msgId, h.command, VFIO_USER_F_TYPE_REPLY);
    out.setUint32(VFIO_USER_HEADER_SIZE, n - failed, true);
    out.setUint32(VFIO_USER_HEADER_SIZE + 4, 0, true);
    return this.replyWith(bytes);
  }

  /**
   * Writes `from`..`n` of a checked REGION_WRITE_MULTI (entries from `base` under `dv`); returns
   * `n`, or throws what a write threw with multiAt at that write. QEMU's batches are runs of
   * writes to one region: its port is looked up once per run.
   */
  private multiWrites(file: DeviceFile, dv: DataView, base: number, from: number, n: number): number {
    const data4 = this.entryViews[4];
    const view = this.entryView;
    let region = -1;
    let size = 0;
    let port: RegionPort | undefined;
    for (let i = from; i < n; i++) {
      this.multiAt = i;
      const p = base + i * VFIO_USER_WRITE_MULTI_ENTRY_SIZE;
      const hi = dv.getUint32(p + 4, true);
      const lo = dv.getUint32(p, true);
      const offset = hi === 0 ? lo : lo + hi * TWO_32;
      const r = dv.getUint32(p + 8, true);
      const count = dv.getUint32(p + 12, true);
      if (r !== region || port === undefined) {
        size = file.regionInfo(r).size;
        port = file.regionPort(r);
        region = r;
      }
      if (offset >= size) throw this.outsideRegion(r, offset, count, size);
      if (count === 4) {
        view.setInt32(0, dv.getInt32(p + 16, true), true);
        port.write(offset, data4);
      } else if (count > 0) port.write(offset, this.entryData(dv, p + 16, count));
    }
    return n;
  }

  /** `count` (at most 8) bytes at `at` of the message under `dv`, copied into a view reused per count. */
  private entryData(dv: DataView, at: number, count: number): Uint8Array {
    const v = this.entryViews[count];
    if (count === 4) this.entryView.setInt32(0, dv.getInt32(at, true), true);
    else for (let i = 0; i < count; i++) v[i] = dv.getUint8(at + i);
    return v;
  }

  /**
   * A DataView of the buffer under `payload` (read at payload.byteOffset + ...): a lent payload
   * lies in the socket's receive buffer or the framer's, the same for every message, so the
   * view made for it once serves them all.
   */
  private viewOf(payload: Uint8Array): DataView {
    const buffer = payload.buffer;
    if (buffer !== this.multiBuffer) {
      this.multiBuffer = buffer;
      this.multiView = new DataView(buffer);
    }
    return this.multiView!;
  }

  /** Forget the region fds found (the device file that owned them is closed). */
  clear(): void {
    this.regionFds.clear();
  }
}
