/** The saving side of a vGPU migration stream (format.ts has the layout): PRE_COPY passes, then STOP_COPY. */
import {
  type ChecksumAhead,
  copyWithChecksum,
  migrationChecksum,
  migrationChecksumAhead,
  type PrecopyInfo,
  type SavingStream,
  StreamQueue,
} from '@vfiokit/core';
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

/**
 * How far ahead of the transport the final pass checks its runs. A stopped vGPU's pages are
 * checked on a background thread (migrationChecksumAhead) while the transport moves the run
 * before: the check only reads memory and the transport writes it, so on two CPUs the two
 * overlap instead of adding up. Eight 1 MiB runs keep the checker busy while the transport
 * takes one.
 */
const CHECK_AHEAD_BYTES = 8 << 20;

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
  /** The run findRun() found last: its first page and its pages. */
  private runFirst = 0;
  private runCount = 0;
  /**
   * The final pass's checker of runs ahead, with payload checks on. Made with the stream (after
   * pre-copy, starting its thread is then no part of the downtime); closed with the stream.
   */
  private checker: ChecksumAhead | undefined;
  /** Runs found and submitted to the checker, no record made yet: first page, pages; oldest first. */
  private readonly planned: number[] = [];
  private plannedPages = 0;

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
    if (this.flags & MIG_FLAG_PAYLOAD_CRC) this.checker = migrationChecksumAhead(dev.fb);
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
    // the last sweep: what the final pass sends need not be remembered
    this.shadow = undefined;
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
    // the device may run again after this: the checker must not read its pages any more
    this.closeChecker();
  }

  private closeChecker(): void {
    this.checker?.close();
    this.checker = undefined;
    this.planned.length = 0;
    this.plannedPages = 0;
  }

  /** The next FB record, if there are dirty pages left to send. */
  private nextRun(): boolean {
    if (this.final && this.flags & MIG_FLAG_PAYLOAD_CRC) return this.nextCheckedRun();
    if (!this.findRun()) return false;
    const start = this.runFirst * MIG_PAGE_SIZE;
    const end = start + this.runCount * MIG_PAGE_SIZE;
    let payload: Uint8Array;
    let crc = 0;
    if (this.final) {
      // A stopped device cannot change its framebuffer: the final pass hands out views.
      payload = this.dev.fb.subarray(start, end);
    } else if (this.flags & MIG_FLAG_PAYLOAD_CRC) {
      // While the vGPU runs the pages are copied at read time, checked in the same pass.
      payload = new Uint8Array(end - start);
      crc = copyWithChecksum(payload, 0, this.dev.fb.subarray(start, end));
    } else {
      payload = this.dev.fb.slice(start, end);
    }
    if (this.shadow) this.shadow.set(payload, start);
    this.emitPages(this.runFirst, this.runCount, payload, crc);
    return true;
  }

  /**
   * The final pass with payload checks: runs are found up to CHECK_AHEAD_BYTES ahead of the
   * one handed out (their dirty bits cleared; remaining() and precopyInfo() count them as
   * dirty still) and checked on the checker's thread meanwhile; a run's record takes its CRC.
   */
  private nextCheckedRun(): boolean {
    const checker = this.checker;
    if (checker === undefined) return false; // closed
    while (this.plannedPages * MIG_PAGE_SIZE < CHECK_AHEAD_BYTES && this.findRun()) {
      checker.submit(this.runFirst * MIG_PAGE_SIZE, this.runCount * MIG_PAGE_SIZE);
      this.planned.push(this.runFirst, this.runCount);
      this.plannedPages += this.runCount;
    }
    if (this.planned.length === 0) return false;
    const first = this.planned.shift() as number;
    const count = this.planned.shift() as number;
    this.plannedPages -= count;
    const crc = checker.next();
    const start = first * MIG_PAGE_SIZE;
    this.emitPages(first, count, this.dev.fb.subarray(start, start + count * MIG_PAGE_SIZE), crc);
    return true;
  }

  /**
   * Find the next run of dirty pages from `scan` and clear its bits (runFirst, runCount); in
   * pre-copy the search wraps around once.
   */
  private findRun(): boolean {
    const bits = this.dev.dirtyPages;
    if (!bits || this.dev.dirtyCount === 0) {
      // the first pass ends when its last run was handed out, not when it was found
      if (this.initial && this.scan >= this.pages && this.planned.length === 0) this.endInitial();
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
      this.runFirst = p;
      this.runCount = n;
      return true;
    }
    return false;
  }

  private endInitial(): void {
    if (!this.initial) return;
    this.initial = false;
    this.ahead = 0;
  }

  private emitPages(first: number, count: number, payload: Uint8Array, crc: number): void {
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
    // planned runs are dirty pages not sent yet; found in the first pass, they left `ahead` too
    const dirty = this.dev.dirtyCount + this.plannedPages;
    if (this.initial) {
      const ahead = this.ahead + this.plannedPages;
      return {
        initialBytes: this.out.queued + ahead * MIG_PAGE_SIZE,
        dirtyBytes: (dirty - ahead) * MIG_PAGE_SIZE,
      };
    }
    return { initialBytes: 0, dirtyBytes: this.out.queued + dirty * MIG_PAGE_SIZE };
  }

  /** Bytes STOP_COPY would still send. */
  remaining(): number {
    const dirty = this.dev.dirtyCount + this.plannedPages;
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
