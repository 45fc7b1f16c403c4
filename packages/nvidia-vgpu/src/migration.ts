/**
 * VFIO migration v2 for a vGPU: STOP_COPY | P2P | PRE_COPY.
 *
 * The stream is a header and a run of records, each record header carrying a sequence number and
 * its own CRC32, so a cut, reordered, duplicated or altered stream is refused:
 *
 *   stream header (32): u32 magic "NVMS", u32 version, u32 vGPU type id, u32 flags,
 *                       f64 framebuffer bytes, u32 page size, u32 CRC32 of bytes 0..27
 *   record header (24): u32 tag, u32 sequence, u32 a, u32 b, u32 payload CRC32, u32 CRC32 of bytes 0..19
 *     FB    (1): a = first page, b = pages (1..256), payload = the pages
 *     STATE (2): a = payload bytes, payload = config space, registers, mailbox, allocations, channels
 *     END   (3): a = records before it
 *     BAR3  (4): a = first page of BAR3, b = pages (1..256), payload = the pages; only in the final
 *                pass, only pages that are not all zeros, before STATE
 *
 * Framebuffer payloads carry a CRC32 when the stream's flag PAYLOAD_CRC is set (the default); the
 * device state always does. PRE_COPY sends every page once while the vGPU runs, then the pages
 * dirtied since (engine writes and trapped BAR1 writes are tracked per page; writes through a
 * CPU mapping of BAR1 are found by comparing with what was sent); STOP_COPY sends what is still
 * dirty, then BAR3's non-zero pages (the guest writes BAR3 through its mapping only, so it cannot
 * be tracked while the vGPU runs; a BAR3 never mapped nor written is all zeros and costs nothing),
 * the device state and END. The source is never changed by saving, so it can always go
 * back to RUNNING. A resuming device writes pages into its own framebuffer only, and loads the
 * device state at RESUMING → STOP after END arrived; anything wrong is a VfioError (the core then
 * puts the device in ERROR).
 *
 * Why one file past 600 lines: the stream format, SaveStream, ResumeStream and VgpuMigration
 * share the record layout and its CRC rules above; the seams for a split are the three classes
 * (save, resume, the migration ops), to be taken when the stop-copy work here is done.
 */
import {
  type ConfigSpace,
  copyWithChecksum,
  type MigrationCaps,
  type MigrationOps,
  type MigrationStream,
  type MigState,
  migrationChecksum,
  type PrecopyInfo,
  type RegisterBank,
  type ResumingStream,
  type SavingStream,
  StreamArcs,
  StreamQueue,
  StreamRefusal,
} from '@vfiokit/core';
import { BAR3_SIZE, MAILBOX_SIZE } from './abi.js';
import type { VgpuProfile } from './boards.js';
import { type Channel, ENGINE_STATE_SIZE, FbAllocator, VgpuEngine } from './engine.js';

/** "NVMS" little-endian. */
export const MIG_MAGIC = 0x534d564e;
/** 2: BAR3 records. */
export const MIG_VERSION = 2;
export const MIG_PAGE_SIZE = 4096;
export const STREAM_HEADER_SIZE = 32;
export const RECORD_HEADER_SIZE = 24;
export const TAG_FB = 1;
export const TAG_STATE = 2;
export const TAG_END = 3;
export const TAG_BAR3 = 4;
export const MIG_FLAG_PAYLOAD_CRC = 1;
/** Pages per FB record (1 MiB). */
export const MAX_RUN_PAGES = 256;
const STATE_VERSION = 1;
const BAR3_PAGES = BAR3_SIZE / MIG_PAGE_SIZE;
const ZERO_PAGE = Buffer.alloc(MIG_PAGE_SIZE);

/** Page `page` of BAR3 holds only zeros. */
function zeroPage(bar3: Uint8Array, page: number): boolean {
  const o = page * MIG_PAGE_SIZE;
  return ZERO_PAGE.equals(bar3.subarray(o, o + MIG_PAGE_SIZE));
}

/** BAR3 pages from `from` on that the final pass will send, and their record headers' bytes. */
function bar3Bytes(dev: MigrationHost, from: number): number {
  if (!dev.bar3Touched) return 0;
  let pages = 0;
  let runs = 0;
  let inRun = 0;
  for (let p = from; p < BAR3_PAGES; p++) {
    if (zeroPage(dev.bar3, p)) {
      inRun = 0;
      continue;
    }
    if (inRun === 0 || inRun === MAX_RUN_PAGES) {
      runs++;
      inRun = 0;
    }
    inRun++;
    pages++;
  }
  return pages * MIG_PAGE_SIZE + runs * RECORD_HEADER_SIZE;
}
const MAX_STATE_BYTES = 1 << 20;

/**
 * What migration reads and changes of a vGPU (VgpuDevice implements it): the state it saves
 * and loads, the framebuffer it streams, and the dirty-page log the device keeps while a
 * saving stream tracks changes.
 */
export interface MigrationHost {
  readonly name: string;
  readonly profile: VgpuProfile;
  readonly gpu: { kick(): void; readonly payloadChecksum: boolean };
  readonly config: ConfigSpace;
  readonly bank: RegisterBank;
  readonly allocator: FbAllocator;
  readonly engine: VgpuEngine;
  readonly mailbox: Uint8Array;
  readonly fb: Uint8Array;
  readonly fbSize: number;
  /** BAR3, BAR3_SIZE bytes. */
  readonly bar3: Uint8Array;
  /** BAR3 may hold something other than zeros (it was mapped, written or loaded). */
  bar3Touched: boolean;
  handshaken: boolean;
  /** The migration state as the core last set it. */
  migState: MigState;
  /** BAR1 was handed out as a CPU mapping: writes through it bypass the device. */
  readonly cpuMapped: boolean;
  /** Page-granular dirty bitmap while a saving stream tracks changes; undefined otherwise. */
  dirtyPages: Uint32Array | undefined;
  dirtyCount: number;
  /** Called when a page becomes dirty (the save stream's accounting). */
  onPageDirtied: ((page: number) => void) | undefined;
  markDirty(offset: number, length: number): void;
  running(): boolean;
  hasPendingWork(): boolean;
}

function recordHeader(tag: number, seq: number, a: number, b: number, payloadCrc: number): Uint8Array {
  const h = new Uint8Array(RECORD_HEADER_SIZE);
  const v = new DataView(h.buffer);
  v.setUint32(0, tag, true);
  v.setUint32(4, seq, true);
  v.setUint32(8, a, true);
  v.setUint32(12, b, true);
  v.setUint32(16, payloadCrc >>> 0, true);
  v.setUint32(20, migrationChecksum(h.subarray(0, 20)), true);
  return h;
}

// ---- device state --------------------------------------------------------------------------------

export function saveDeviceState(dev: MigrationHost): Uint8Array {
  const config = dev.config.snapshot();
  const bank = dev.bank.snapshot();
  const allocs = dev.allocator.snapshot();
  const engine = dev.engine.snapshot();
  const size = 8 + 4 + config.length + 4 + bank.length + MAILBOX_SIZE + allocs.length + engine.length;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let at = 0;
  v.setUint32(at, STATE_VERSION, true);
  v.setUint32(at + 4, dev.handshaken ? 1 : 0, true);
  at += 8;
  v.setUint32(at, config.length, true);
  out.set(config, at + 4);
  at += 4 + config.length;
  v.setUint32(at, bank.length, true);
  out.set(bank, at + 4);
  at += 4 + bank.length;
  out.set(dev.mailbox, at);
  at += MAILBOX_SIZE;
  out.set(allocs, at);
  at += allocs.length;
  out.set(engine, at);
  return out;
}

interface ParsedState {
  handshaken: boolean;
  config: Uint8Array;
  bank: Uint8Array;
  mailbox: Uint8Array;
  allocs: { offset: number; size: number }[];
  engine: { frames: number; rr: number; channels: Channel[] };
}

/** Parse and check a device state for `dev`; a string is the problem. */
export function parseDeviceState(dev: MigrationHost, bytes: Uint8Array): ParsedState | string {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n: number) => at + n <= bytes.length;
  if (!need(12)) return 'the device state is cut short';
  if (v.getUint32(0, true) !== STATE_VERSION) return `the device state has version ${v.getUint32(0, true)}`;
  const hs = v.getUint32(4, true);
  if (hs > 1) return 'the handshake flag is not 0 or 1';
  at = 8;
  const configLen = v.getUint32(at, true);
  at += 4;
  if (configLen !== dev.config.size || !need(configLen))
    return `the config space is ${configLen} bytes, not ${dev.config.size}`;
  const config = bytes.subarray(at, at + configLen);
  at += configLen;
  if (!need(4)) return 'the device state is cut short';
  const bankLen = v.getUint32(at, true);
  at += 4;
  if (!need(bankLen)) return 'the register snapshot is cut short';
  const bank = bytes.subarray(at, at + bankLen);
  at += bankLen;
  if (!need(MAILBOX_SIZE)) return 'the mailbox page is cut short';
  const mailbox = bytes.subarray(at, at + MAILBOX_SIZE);
  at += MAILBOX_SIZE;
  const allocs = FbAllocator.parse(bytes.subarray(at), dev.fbSize);
  if (typeof allocs === 'string') return allocs;
  at += allocs.length;
  if (bytes.length - at !== ENGINE_STATE_SIZE) return 'the channel state has the wrong length';
  const engine = VgpuEngine.parse(bytes.subarray(at), dev.fbSize);
  if (typeof engine === 'string') return engine;
  return { handshaken: hs === 1, config, bank, mailbox, allocs: allocs.allocs, engine };
}

/** Load a parsed state; config and registers are checked by their own restore before anything changes. */
export function loadDeviceState(dev: MigrationHost, s: ParsedState): void {
  const config = dev.config.snapshot();
  dev.config.restore(s.config);
  try {
    dev.bank.restore(s.bank);
  } catch (err) {
    dev.config.restore(config);
    throw err;
  }
  dev.mailbox.set(s.mailbox);
  dev.allocator.load(s.allocs);
  dev.engine.load(s.engine);
  dev.handshaken = s.handshaken;
}

// ---- the saving side -----------------------------------------------------------------------------

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

// ---- the resuming side ---------------------------------------------------------------------------

enum Phase {
  Header,
  Record,
  Payload,
  Done,
}

export class ResumeStream implements ResumingStream<ParsedState> {
  private phase = Phase.Header;
  private readonly head = new Uint8Array(STREAM_HEADER_SIZE);
  private headFill = 0;
  /** The device state record's bytes while they arrive in pieces. */
  private payload: Uint8Array | undefined;
  /** Where an FB or BAR3 record's pages go (the device's memory), while one arrives. */
  private memory: Uint8Array | undefined;
  private memoryAt = 0;
  /** Whether the record's payload CRC is checked, and the CRC of its bytes so far. */
  private checked = false;
  private crc = 0;
  private payloadFill = 0;
  private payloadLength = 0;
  private payloadCrc = 0;
  private seq = 0;
  private flags = 0;
  private received = 0;
  private readonly refusal: StreamRefusal;
  private state: ParsedState | undefined;
  private readonly pages: number;

  constructor(private readonly dev: MigrationHost) {
    this.pages = dev.fbSize / MIG_PAGE_SIZE;
    // The stream sends BAR3's non-zero pages only: what this device held before is replaced.
    if (dev.bar3Touched) {
      dev.bar3.fill(0);
      dev.bar3Touched = false;
    }
    this.refusal = new StreamRefusal(
      dev.name,
      `Send the complete, unmodified stream saved from a ${dev.profile.profile} vGPU with the same framebuffer size.`,
    );
  }

  private fail(problem: string): never {
    this.refusal.refuse(`${problem} (at stream byte ${this.received})`);
  }

  write(chunk: Uint8Array): void {
    this.refusal.check();
    let at = 0;
    while (at < chunk.length) {
      if (this.phase === Phase.Done) this.fail('there are bytes after the END record');
      if (this.phase === Phase.Payload) {
        const want = this.payloadLength - this.payloadFill;
        const n = Math.min(want, chunk.length - at);
        const piece = n === chunk.length ? chunk : chunk.subarray(at, at + n);
        at += n;
        this.received += n;
        const memory = this.memory;
        if (memory !== undefined) {
          // Framebuffer and BAR3 pages go straight to where they belong, checked as they pass
          // (a record that fails its check refuses the stream; the device is then never loaded).
          // (one pass over the bytes: the copy and the check are fused)
          if (this.checked)
            this.crc = copyWithChecksum(memory, this.memoryAt + this.payloadFill, piece, this.crc);
          else memory.set(piece, this.memoryAt + this.payloadFill);
          this.payloadFill += n;
          if (this.payloadFill === this.payloadLength) this.finishPages();
          continue;
        }
        if (this.payloadFill === 0 && n === want) {
          this.finishState(piece);
          continue;
        }
        if (this.payload === undefined) this.payload = new Uint8Array(this.payloadLength);
        this.payload.set(piece, this.payloadFill);
        this.payloadFill += n;
        if (this.payloadFill === this.payloadLength) {
          const whole = this.payload;
          this.payload = undefined;
          this.finishState(whole);
        }
        continue;
      }
      const size = this.phase === Phase.Header ? STREAM_HEADER_SIZE : RECORD_HEADER_SIZE;
      const n = Math.min(size - this.headFill, chunk.length - at);
      this.head.set(chunk.subarray(at, at + n), this.headFill);
      this.headFill += n;
      at += n;
      this.received += n;
      if (this.headFill === size) {
        this.headFill = 0;
        if (this.phase === Phase.Header) this.checkStreamHeader();
        else this.checkRecordHeader();
      }
    }
  }

  private checkStreamHeader(): void {
    const v = new DataView(this.head.buffer, 0, STREAM_HEADER_SIZE);
    if (v.getUint32(0, true) !== MIG_MAGIC)
      this.fail(`the magic is 0x${v.getUint32(0, true).toString(16)}, not a vGPU stream`);
    if (v.getUint32(28, true) !== migrationChecksum(this.head.subarray(0, 28)))
      this.fail('the stream header checksum does not match');
    if (v.getUint32(4, true) !== MIG_VERSION)
      this.fail(`the stream is version ${v.getUint32(4, true)}; this device reads ${MIG_VERSION}`);
    const type = v.getUint32(8, true);
    if (type !== this.dev.profile.typeId)
      this.fail(
        `the stream was saved from vGPU type ${type}, this device is type ${this.dev.profile.typeId}`,
      );
    this.flags = v.getUint32(12, true);
    if ((this.flags & ~MIG_FLAG_PAYLOAD_CRC) !== 0)
      this.fail(`the stream flags 0x${this.flags.toString(16)} are unknown`);
    const fb = v.getFloat64(16, true);
    if (fb !== this.dev.fbSize)
      this.fail(`the stream carries a ${fb}-byte framebuffer, this vGPU has ${this.dev.fbSize}`);
    if (v.getUint32(24, true) !== MIG_PAGE_SIZE) this.fail('the stream page size is not 4096');
    this.phase = Phase.Record;
  }

  private checkRecordHeader(): void {
    const v = new DataView(this.head.buffer, 0, RECORD_HEADER_SIZE);
    if (v.getUint32(20, true) !== migrationChecksum(this.head.subarray(0, 20)))
      this.fail(`record ${this.seq} has a bad header checksum`);
    const tag = v.getUint32(0, true);
    const seq = v.getUint32(4, true);
    const a = v.getUint32(8, true);
    const b = v.getUint32(12, true);
    if (seq !== this.seq) this.fail(`record ${seq} arrived where record ${this.seq} was due`);
    this.seq++;
    this.payloadCrc = v.getUint32(16, true);
    if (tag === TAG_FB) {
      if (b < 1 || b > MAX_RUN_PAGES || a + b > this.pages)
        this.fail(`an FB record names pages ${a}..${a + b - 1} of a ${this.pages}-page framebuffer`);
      this.startPages(this.dev.fb, a, b);
    } else if (tag === TAG_BAR3) {
      if (b < 1 || b > MAX_RUN_PAGES || a + b > BAR3_PAGES)
        this.fail(`a BAR3 record names pages ${a}..${a + b - 1} of a ${BAR3_PAGES}-page BAR3`);
      if (this.state) this.fail('a BAR3 record came after the device state');
      this.startPages(this.dev.bar3, a, b);
      this.dev.bar3Touched = true;
    } else if (tag === TAG_STATE) {
      if (a === 0 || a > MAX_STATE_BYTES || b !== 0) this.fail(`the device state record claims ${a} bytes`);
      if (this.state) this.fail('the device state was sent twice');
      this.memory = undefined;
      this.payloadLength = a;
      this.payloadFill = 0;
      this.phase = Phase.Payload;
    } else if (tag === TAG_END) {
      if (a !== seq || b !== 0) this.fail('the END record does not count the records before it');
      if (!this.state) this.fail('the END record came before the device state');
      this.phase = Phase.Done;
    } else {
      this.fail(`record ${seq} has unknown tag ${tag}`);
    }
  }

  /** The payload of an FB or BAR3 record: `count` pages from page `first` of `memory`. */
  private startPages(memory: Uint8Array, first: number, count: number): void {
    this.memory = memory;
    this.memoryAt = first * MIG_PAGE_SIZE;
    this.payloadLength = count * MIG_PAGE_SIZE;
    this.payloadFill = 0;
    this.checked = (this.flags & MIG_FLAG_PAYLOAD_CRC) !== 0;
    this.crc = 0;
    this.phase = Phase.Payload;
  }

  private finishPages(): void {
    this.phase = Phase.Record;
    this.memory = undefined;
    if (this.checked && this.crc !== this.payloadCrc)
      this.fail(`record ${this.seq - 1} has a bad payload checksum`);
  }

  /** The device state record (always checked), whole. */
  private finishState(payload: Uint8Array): void {
    this.phase = Phase.Record;
    if (migrationChecksum(payload) !== this.payloadCrc)
      this.fail(`record ${this.seq - 1} has a bad payload checksum`);
    const parsed = parseDeviceState(this.dev, payload);
    if (typeof parsed === 'string') this.fail(`the device state is wrong: ${parsed}`);
    this.state = parsed;
  }

  /** The state to load, or EINVAL when the stream was refused or ended early. */
  complete(): ParsedState {
    this.refusal.check();
    if (this.phase !== Phase.Done || !this.state) {
      const where = ['in the stream header', 'between records', 'inside a record', ''][this.phase];
      throw this.refusal.error(
        `the stream ended after ${this.received} bytes ${where}, before its END record`,
      );
    }
    return this.state;
  }
}

// ---- the arcs -----------------------------------------------------------------------------------

export class VgpuMigration implements MigrationOps {
  /** VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY. */
  readonly caps: MigrationCaps = { stopCopy: true, p2p: true, preCopy: true };
  private readonly arcs: StreamArcs<SaveStream, ResumeStream, ParsedState>;

  constructor(private readonly dev: MigrationHost) {
    this.arcs = new StreamArcs(dev.name, {
      save: (precopy) => new SaveStream(dev, precopy),
      resume: () => new ResumeStream(dev),
      load: (state) => loadDeviceState(dev, state),
    });
  }

  reset(): void {
    this.arcs.reset();
  }

  stopCopySize(): number {
    const saving = this.arcs.saving;
    if (saving) return saving.remaining();
    const pages = this.dev.fbSize / MIG_PAGE_SIZE;
    return (
      STREAM_HEADER_SIZE +
      this.dev.fbSize +
      Math.ceil(pages / MAX_RUN_PAGES) * RECORD_HEADER_SIZE +
      bar3Bytes(this.dev, 0) +
      2 * RECORD_HEADER_SIZE +
      saveDeviceState(this.dev).length
    );
  }

  step(from: MigState, to: MigState): MigrationStream | undefined {
    const stream = this.arcs.step(from, to);
    this.dev.migState = to;
    // Work queued while the vGPU was stopped (in flight when the source stopped, or loaded from
    // the stream on the destination) runs again once the vGPU runs: nothing else would kick it.
    if (this.dev.running() && this.dev.hasPendingWork()) this.dev.gpu.kick();
    return stream;
  }
}
