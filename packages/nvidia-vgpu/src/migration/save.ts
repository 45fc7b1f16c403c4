/** The saving side of a vGPU migration stream (format.ts has the layout): PRE_COPY passes, then STOP_COPY. */
import { migrationChecksum, type PrecopyInfo, type SavingStream, StreamQueue } from '@vfiokit/core';
import {
  BAR3_PAGES,
  bar3Bytes,
  MAX_RUN_PAGES,
  MIG_FLAG_PAYLOAD_CRC,
  MIG_MAGIC,
  MIG_PAGE_SIZE,
  MIG_VERSION,
  type MigrationHost,
  RECORD_HEADER_SIZE,
  recordHeader,
  STREAM_HEADER_SIZE,
  saveDeviceState,
  TAG_BAR3,
  TAG_END,
  TAG_FB,
  TAG_STATE,
  zeroPage,
} from './format.js';

export class SaveStream implements SavingStream {
  private readonly pages: number;
  private readonly out = new StreamQueue();
  private seq = 0;
  private scan = 0;
  /** The first pass over every page is running. */
  private initial = true;
  /** Dirty pages at or after `scan` during the first pass. */
  private ahead: number;
  private final: boolean;
  private stateSent = false;
  /** The next BAR3 page the final pass looks at. */
  private bar3Scan = 0;
  private readonly flags: number;
  /** What was sent of each page, when CPU writes through a BAR1 mapping cannot be tracked. */
  private shadow: Uint8Array | undefined;
  private closed = false;

  constructor(
    private readonly dev: MigrationHost,
    precopy: boolean,
  ) {
    this.pages = dev.fbSize / MIG_PAGE_SIZE;
    const bits = new Uint32Array(Math.ceil(this.pages / 32));
    bits.fill(0xffffffff);
    if (this.pages % 32) bits[bits.length - 1] = (2 ** (this.pages % 32) - 1) >>> 0;
    dev.dirtyPages = bits;
    dev.dirtyCount = this.pages;
    this.ahead = this.pages;
    dev.onPageDirtied = (page) => {
      if (this.initial && page >= this.scan) this.ahead++;
    };
    this.final = !precopy;
    this.flags = dev.gpu.payloadChecksum ? MIG_FLAG_PAYLOAD_CRC : 0;
    if (precopy && dev.cpuMapped) this.shadow = new Uint8Array(dev.fbSize);
    const h = new Uint8Array(STREAM_HEADER_SIZE);
    const v = new DataView(h.buffer);
    v.setUint32(0, MIG_MAGIC, true);
    v.setUint32(4, MIG_VERSION, true);
    v.setUint32(8, dev.profile.typeId, true);
    v.setUint32(12, this.flags, true);
    v.setFloat64(16, dev.fbSize, true);
    v.setUint32(24, MIG_PAGE_SIZE, true);
    v.setUint32(28, migrationChecksum(h.subarray(0, 28)), true);
    this.out.push(h);
  }

  /** The device stopped (PRE_COPY_P2P → STOP_COPY): one last pass sends what is still dirty. */
  finalize(): void {
    this.final = true;
    this.initial = false;
    this.ahead = 0;
    if (this.shadow) this.sweepShadow();
    this.scan = 0;
  }

  /** Mark pages whose bytes differ from what was sent (CPU writes through a mapping). */
  private sweepShadow(): void {
    const shadow = this.shadow;
    if (!shadow) return;
    const fb = Buffer.from(this.dev.fb.buffer, this.dev.fb.byteOffset, this.dev.fbSize);
    const sent = Buffer.from(shadow.buffer, shadow.byteOffset, shadow.byteLength);
    for (let p = 0; p < this.pages; p++) {
      const o = p * MIG_PAGE_SIZE;
      if (fb.compare(sent, o, o + MIG_PAGE_SIZE, o, o + MIG_PAGE_SIZE) !== 0) this.dev.markDirty(o, 1);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dev.dirtyPages = undefined;
    this.dev.dirtyCount = 0;
    this.dev.onPageDirtied = undefined;
    this.shadow = undefined;
  }

  /** Find the next run of dirty pages from `scan`; in pre-copy the search wraps around once. */
  private nextRun(): boolean {
    const bits = this.dev.dirtyPages;
    if (!bits || this.dev.dirtyCount === 0) {
      if (this.initial && this.scan >= this.pages) this.endInitial();
      return false;
    }
    let searched = 0;
    while (searched < this.pages) {
      if (this.scan >= this.pages) {
        if (this.final) return false;
        this.endInitial();
        this.scan = 0;
        if (this.shadow) this.sweepShadow();
      }
      const p = this.scan;
      const w = bits[p >>> 5];
      if (w === 0 && (p & 31) === 0) {
        this.scan += 32;
        searched += 32;
        continue;
      }
      if ((w & (1 << (p & 31))) === 0) {
        this.scan++;
        searched++;
        continue;
      }
      let n = 0;
      while (n < MAX_RUN_PAGES && p + n < this.pages && (bits[(p + n) >>> 5] & (1 << ((p + n) & 31))) !== 0) {
        bits[(p + n) >>> 5] &= ~(1 << ((p + n) & 31));
        n++;
      }
      this.dev.dirtyCount -= n;
      if (this.initial) this.ahead -= n;
      this.scan = p + n;
      this.emitPages(p, n);
      return true;
    }
    return false;
  }

  private endInitial(): void {
    if (!this.initial) return;
    this.initial = false;
    this.ahead = 0;
  }

  private emitPages(first: number, count: number): void {
    const start = first * MIG_PAGE_SIZE;
    const end = start + count * MIG_PAGE_SIZE;
    // A stopped device cannot change its framebuffer, so the final pass hands out views; while
    // the vGPU runs the pages are copied at read time.
    const payload = this.final ? this.dev.fb.subarray(start, end) : this.dev.fb.slice(start, end);
    if (this.shadow) this.shadow.set(payload, start);
    const crc = this.flags & MIG_FLAG_PAYLOAD_CRC ? migrationChecksum(payload) : 0;
    this.out.push(recordHeader(TAG_FB, this.seq++, first, count, crc));
    this.out.push(payload);
  }

  /** The next run of non-zero BAR3 pages, in the final pass (the vGPU is stopped). */
  private nextBar3Run(): boolean {
    if (!this.dev.bar3Touched) this.bar3Scan = BAR3_PAGES;
    const bar3 = this.dev.bar3;
    while (this.bar3Scan < BAR3_PAGES && zeroPage(bar3, this.bar3Scan)) this.bar3Scan++;
    if (this.bar3Scan >= BAR3_PAGES) return false;
    const first = this.bar3Scan;
    let n = 0;
    while (n < MAX_RUN_PAGES && first + n < BAR3_PAGES && !zeroPage(bar3, first + n)) n++;
    this.bar3Scan = first + n;
    const payload = bar3.subarray(first * MIG_PAGE_SIZE, (first + n) * MIG_PAGE_SIZE);
    const crc = this.flags & MIG_FLAG_PAYLOAD_CRC ? migrationChecksum(payload) : 0;
    this.out.push(recordHeader(TAG_BAR3, this.seq++, first, n, crc));
    this.out.push(payload);
    return true;
  }

  private emitStateAndEnd(): void {
    const state = saveDeviceState(this.dev);
    this.out.push(recordHeader(TAG_STATE, this.seq++, state.length, 0, migrationChecksum(state)));
    this.out.push(state);
    this.out.push(recordHeader(TAG_END, this.seq, this.seq, 0, 0));
    this.seq++;
    this.stateSent = true;
  }

  read(max: number): Uint8Array {
    if (this.out.empty) {
      if (!this.nextRun() && this.final && !this.stateSent && !this.nextBar3Run()) this.emitStateAndEnd();
    }
    return this.out.read(max);
  }

  /** initial_bytes: what is left of the first pass; dirty_bytes: pages dirtied behind it. */
  precopyInfo(): PrecopyInfo {
    const dirty = this.dev.dirtyCount;
    if (this.initial) {
      return {
        initialBytes: this.out.queued + this.ahead * MIG_PAGE_SIZE,
        dirtyBytes: (dirty - this.ahead) * MIG_PAGE_SIZE,
      };
    }
    return { initialBytes: 0, dirtyBytes: this.out.queued + dirty * MIG_PAGE_SIZE };
  }

  /** Bytes STOP_COPY would still send. */
  remaining(): number {
    const dirty = this.dev.dirtyCount;
    return (
      this.out.queued +
      dirty * MIG_PAGE_SIZE +
      Math.ceil(dirty / MAX_RUN_PAGES) * RECORD_HEADER_SIZE +
      (this.stateSent
        ? 0
        : bar3Bytes(this.dev, this.bar3Scan) + 2 * RECORD_HEADER_SIZE + saveDeviceState(this.dev).length)
    );
  }
}
