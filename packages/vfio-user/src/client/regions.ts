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
  giveValueBytes,
  type Logger,
  type MmapArea,
  type RegionInfo,
  type RegionMapping,
  type SharedMemory,
  TWO_32,
  takeValueBytes,
  type ValueSize,
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
  VFIO_USER_F_NO_REPLY,
  VFIO_USER_F_TYPE_COMMAND,
  VFIO_USER_F_TYPE_MASK,
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_HEADER_SIZE,
  VFIO_USER_MULTI_DATA,
  VFIO_USER_MULTI_MAX,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_RW_SIZE,
  VFIO_USER_REGION_WRITE,
  VFIO_USER_REGION_WRITE_MULTI,
  VFIO_USER_WRITE_MULTI_ENTRY_SIZE,
  VFIO_USER_WRITE_MULTI_HEADER_SIZE,
} from '../protocol/constants.js';
import type { Frame } from '../protocol/framing.js';
import {
  decodeRegionWriteReply,
  encodeRegionWriteRequest,
  putRegionRequest,
  putSmallData,
  putWriteMultiEntry,
  putWriteMultiValue,
} from '../protocol/region.js';
import {
  decodeRegionInfoReply,
  encodeRegionInfoRequest,
  type RegionInfoReply,
} from '../protocol/region-info.js';
import { putHeaderAt } from '../protocol/wire.js';
import { type ClientLink, OUT_SIZE } from './link.js';

const RW_SIZE = VFIO_USER_HEADER_SIZE + VFIO_USER_REGION_RW_SIZE;
/** Where a REGION_WRITE_MULTI's entries start: after the header and wr_cnt. */
const MULTI_ENTRIES = VFIO_USER_HEADER_SIZE + VFIO_USER_WRITE_MULTI_HEADER_SIZE;
const POSTED = VFIO_USER_F_TYPE_COMMAND | VFIO_USER_F_NO_REPLY;
/** Data of at most this many bytes is copied byte by byte (cheaper than a view for a register). */
const SMALL_COPY = 64;
const NO_FDS: readonly number[] = Object.freeze([]);
/** Room behind a full batch for the REGION_READ sent in the same sendmsg (link.exchange's `before`). */
const JOIN_ROOM = RW_SIZE;

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
  /** Posted writes of at most 8 bytes not sent yet, as the entries of a REGION_WRITE_MULTI. */
  private readonly batch = new Uint8Array(OUT_SIZE + JOIN_ROOM);
  private readonly batchView = new DataView(this.batch.buffer);
  private readonly batchViews: (Uint8Array | undefined)[] = [];
  private heldCount = 0;
  private flushQueued = false;
  /** The task that sends what is held when the current one ends (made once). */
  private readonly flushTask = () => {
    this.flushQueued = false;
    this.flushQuietly();
  };

  constructor(
    private readonly link: ClientLink,
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
    const step = this.link.limits.maxDataXferSize;
    for (let pos = 0; pos < dst.length; pos += step)
      this.readChunk(
        index,
        offset + pos,
        pos === 0 && dst.length <= step ? dst : dst.subarray(pos, Math.min(dst.length, pos + step)),
      );
  }

  /** REGION_READ built in the link's request buffer and read straight out of the reply. */
  private readChunk(index: number, offset: number, dst: Uint8Array): void {
    const count = dst.length;
    this.exchangeRead(index, offset, count);
    const reply = this.link.reply;
    if (count <= SMALL_COPY) for (let i = 0; i < count; i++) dst[i] = reply[RW_SIZE + i];
    else dst.set(reply.subarray(RW_SIZE, RW_SIZE + count));
  }

  /** Send a REGION_READ of `count` bytes and check its reply: the data is at RW_SIZE of link.reply. */
  private exchangeRead(index: number, offset: number, count: number): void {
    const link = this.link;
    // The held writes go first, in the read's sendmsg.
    const before = this.heldCount > 0 ? this.takeHeld() : undefined;
    const message = link.outMessage(RW_SIZE);
    putRegionRequest(
      link.outView,
      RW_SIZE,
      link.msgId(),
      VFIO_USER_REGION_READ,
      VFIO_USER_F_TYPE_COMMAND,
      index,
      offset,
      count,
    );
    link.exchange(message, NO_FDS, false, 'VFIO_USER_REGION_READ', before);
    const problem = this.replyProblem('REGION_READ', index, offset, RW_SIZE + count);
    if (problem) throw problem;
  }

  /**
   * read() of `size` (1, 2 or 4) bytes as their little-endian value, taken from the reply
   * itself (VfioDevice.readValue: a VMM's trapped MMIO read, no bytes in between).
   */
  readValue(index: number, offset: number, size: ValueSize): number {
    if (!(size === 4 || size === 2 || size === 1)) throw this.badValueSize(index, offset, size);
    this.exchangeRead(index, offset, size);
    const dv = this.link.replyView;
    return size === 4
      ? dv.getUint32(RW_SIZE, true)
      : size === 2
        ? dv.getUint16(RW_SIZE, true)
        : dv.getUint8(RW_SIZE);
  }

  /**
   * write() of the low `size` (1, 2 or 4) bytes of `value` (VfioDevice.writeValue). A posted
   * write held for REGION_WRITE_MULTI has the value written into its entry, in a body small
   * enough to inline into the caller's loop; any other goes as write() of those bytes.
   */
  writeValue(index: number, offset: number, size: ValueSize, value: number): void {
    if (this.multi && (size === 4 || size === 2 || size === 1)) this.holdValue(index, offset, size, value);
    else this.writeValueOther(index, offset, size, value);
  }

  private writeValueOther(index: number, offset: number, size: ValueSize, value: number): void {
    if (!(size === 4 || size === 2 || size === 1)) throw this.badValueSize(index, offset, size);
    // core's value bytes (one buffer per nesting depth), as every other value carried through bytes
    const bytes = takeValueBytes();
    this.writeOther(index, offset, bytes.set(size, value));
    giveValueBytes(bytes);
  }

  private badValueSize(index: number, offset: number, size: number): VfioError {
    return new VfioError('EINVAL', `a value access of ${String(size)} bytes; one is 1, 2 or 4 bytes.`, {
      device: this.link.name,
      region: index,
      offset,
      hint: 'Make a wider or odd-sized access with read() or write().',
    });
  }

  /**
   * What is wrong with the reply to a REGION_READ/REGION_WRITE just exchanged (fds that came
   * with it are closed): undefined when it is a reply of `size` bytes carrying the count asked.
   */
  private replyProblem(what: string, index: number, offset: number, size: number): VfioError | undefined {
    const link = this.link;
    if (link.replyFds.length > 0) closeFds(link.replyFds);
    const len = link.reply.length;
    const dv = link.replyView;
    const flags = len >= VFIO_USER_HEADER_SIZE ? dv.getUint32(8, true) : 0;
    if (len < VFIO_USER_HEADER_SIZE || (flags & VFIO_USER_F_TYPE_MASK) !== VFIO_USER_F_TYPE_REPLY)
      return new VfioError('EPROTO', `the ${what} reply is malformed.`, { device: link.name });
    if (flags & VFIO_USER_F_ERROR) {
      const errno = dv.getUint32(12, true) || ERRNO.EINVAL;
      return new VfioError(errnoName(errno) ?? 'EIO', `the server refused ${what} (errno ${errno}).`, {
        device: link.name,
        region: index,
        offset,
      });
    }
    const count = size - RW_SIZE;
    const expected = what === 'REGION_READ' ? size : RW_SIZE;
    if (len !== expected || dv.getUint32(28, true) !== count)
      return new VfioError(
        'EPROTO',
        what === 'REGION_READ'
          ? `the REGION_READ reply carries ${len - RW_SIZE} bytes; ${count} were asked.`
          : `the REGION_WRITE reply is ${len} bytes with count ${len >= RW_SIZE ? dv.getUint32(28, true) : '?'}; 32 bytes with count ${count} were expected.`,
        { device: link.name, region: index, offset },
      );
    return undefined;
  }

  write(index: number, offset: number, src: Uint8Array): void {
    // The posted register write held for a REGION_WRITE_MULTI, in a body small enough to inline
    // into the caller's loop whole (with the rest here, the entry's encoder fell out of V8's
    // inlining budget: a call per write, ~13 ns of a ~16 ns write).
    if (this.multi && src.length <= VFIO_USER_MULTI_DATA) this.hold(index, offset, src);
    else this.writeOther(index, offset, src);
  }

  /** Every write but a held one: posted one by one, or sent and its reply waited for. */
  private writeOther(index: number, offset: number, src: Uint8Array): void {
    const link = this.link;
    const step = link.limits.maxDataXferSize;
    if (this.posting) {
      this.post(index, offset, src, step);
      return;
    }
    for (let pos = 0; pos < src.length; pos += step) {
      const data =
        pos === 0 && src.length <= step ? src : src.subarray(pos, Math.min(src.length, pos + step));
      if (RW_SIZE + data.length <= OUT_SIZE) {
        this.writeInPlace(index, offset + pos, data, VFIO_USER_F_TYPE_COMMAND);
        link.exchange(link.outMessage(RW_SIZE + data.length), NO_FDS, false, 'VFIO_USER_REGION_WRITE');
        const problem = this.replyProblem('REGION_WRITE', index, offset + pos, RW_SIZE + data.length);
        if (problem) throw problem;
        continue;
      }
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

  /** A REGION_WRITE of `data` (at most OUT_SIZE - 32 bytes) built in the link's request buffer. */
  private writeInPlace(index: number, offset: number, data: Uint8Array, flags: number): void {
    const link = this.link;
    const count = data.length;
    const message = link.outMessage(RW_SIZE + count);
    putRegionRequest(
      link.outView,
      RW_SIZE + count,
      link.msgId(),
      VFIO_USER_REGION_WRITE,
      flags,
      index,
      offset,
      count,
    );
    if (count <= VFIO_USER_MULTI_DATA) putSmallData(link.outView, RW_SIZE, data, false);
    else message.set(data, RW_SIZE);
  }

  /** A posted write of at most 8 bytes, held in the batch buffer itself (the caller may reuse `src` at once). */
  private hold(index: number, offset: number, src: Uint8Array): void {
    const n = this.heldCount < VFIO_USER_MULTI_MAX ? this.heldCount : this.sendFull();
    putWriteMultiEntry(
      this.batchView,
      MULTI_ENTRIES + n * VFIO_USER_WRITE_MULTI_ENTRY_SIZE,
      index,
      offset,
      src,
    );
    this.held(n);
  }

  /** hold() of a value: its low `size` bytes are the entry's data. */
  private holdValue(index: number, offset: number, size: ValueSize, value: number): void {
    const n = this.heldCount < VFIO_USER_MULTI_MAX ? this.heldCount : this.sendFull();
    putWriteMultiValue(
      this.batchView,
      MULTI_ENTRIES + n * VFIO_USER_WRITE_MULTI_ENTRY_SIZE,
      index,
      offset,
      size,
      value,
    );
    this.held(n);
  }

  /**
   * Entry `n` was just written: count it. A full batch (VFIO_USER_MULTI_MAX) waits too, for the
   * next message (a read goes out in the same sendmsg) or the next write (sendFull), or the end
   * of the task.
   */
  private held(n: number): void {
    this.heldCount = n + 1;
    if (n === 0 && !this.flushQueued) {
      // The first held write queues the task (a later one finds it queued, or the batch was sent).
      this.flushQueued = true;
      queueMicrotask(this.flushTask);
    }
  }

  private post(index: number, offset: number, src: Uint8Array, step: number): void {
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

  /** A write comes to a full batch: send the batch; the write is entry 0 of the next. */
  private sendFull(): number {
    this.flush();
    return 0;
  }

  /** The held writes before a request, as the message for the link to send with it. */
  private takeHeld(): Uint8Array {
    const n = this.heldCount;
    this.heldCount = 0;
    return this.sealBatch(n);
  }

  /** Send the held posted writes: one REGION_WRITE for one, REGION_WRITE_MULTI for more. */
  flush(): void {
    const n = this.heldCount;
    if (n === 0) return;
    this.heldCount = 0;
    this.link.post(this.sealBatch(n));
  }

  /**
   * The message of the `n` held entries, in the batch buffer from its first byte: their
   * REGION_WRITE_MULTI, or for one entry a plain REGION_WRITE built over it (its fields read
   * first; its data moves down from the entry's 40th byte to the REGION_WRITE's 32nd, ranges
   * that do not overlap for 8 bytes or fewer). Views made once per length.
   */
  private sealBatch(n: number): Uint8Array {
    const dv = this.batchView;
    let length: number;
    if (n === 1) {
      const at = MULTI_ENTRIES;
      const offset = dv.getUint32(at, true) + dv.getUint32(at + 4, true) * TWO_32;
      const region = dv.getUint32(at + 8, true);
      const count = dv.getUint32(at + 12, true);
      const batch = this.batch;
      for (let i = 0; i < count; i++) batch[RW_SIZE + i] = batch[at + 16 + i];
      length = RW_SIZE + count;
      putRegionRequest(dv, length, this.link.msgId(), VFIO_USER_REGION_WRITE, POSTED, region, offset, count);
    } else {
      length = MULTI_ENTRIES + n * VFIO_USER_WRITE_MULTI_ENTRY_SIZE;
      putHeaderAt(dv, length, this.link.msgId(), VFIO_USER_REGION_WRITE_MULTI, POSTED);
      dv.setUint32(VFIO_USER_HEADER_SIZE, n, true);
      dv.setUint32(VFIO_USER_HEADER_SIZE + 4, 0, true);
    }
    let message = this.batchViews[length];
    if (message === undefined) {
      message = this.batch.subarray(0, length);
      this.batchViews[length] = message;
    }
    return message;
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
