/**
 * One vGPU's channels and the copy engine work they carry. A channel is a ring of push-buffer
 * words in the vGPU's own framebuffer (GET/PUT byte offsets, the guest writes PUT); the engine
 * executes methods in order, each bounds-checked against the vGPU's framebuffer, so nothing a
 * guest writes can reach outside it. Long MEMSET/COPY methods run in pieces, so a slice ends on
 * time. A bad method or address faults the channel (it stops, the error is in CH_ERROR and
 * INTR_CHANNEL_FAULT is raised); other channels keep running.
 */
import {
  CHANNEL_ERROR_BAD_METHOD,
  CHANNEL_ERROR_BAD_PUT,
  CHANNEL_ERROR_NONE,
  CHANNEL_ERROR_OUT_OF_BOUNDS,
  CHANNEL_STATE_BUSY,
  CHANNEL_STATE_FAULTED,
  CHANNEL_STATE_FREE,
  CHANNEL_STATE_IDLE,
  INTR_CHANNEL_FAULT,
  INTR_SEMAPHORE,
  MAX_CHANNELS,
  METHOD_COPY,
  METHOD_FLAG_AWAKEN,
  METHOD_MEMSET,
  METHOD_NOP,
  METHOD_PRESENT,
  METHOD_SEM_RELEASE,
  methodWords,
} from './abi.js';

/** Engine cost of decoding one method. */
export const METHOD_NS = 50;
/** Copy-engine bandwidth of the model: 64 bytes per ns (64 GB/s). */
export const ENGINE_BYTES_PER_NS = 64;
/** Smallest push buffer: room for the longest method. */
export const MIN_PUSHBUFFER = 16;
/** Largest push buffer. */
export const MAX_PUSHBUFFER = 1 << 20;

/** What the engine needs from its vGPU. */
export interface EngineHost {
  readonly fb: Uint8Array;
  /** Frames per second allowed by the frame-rate limiter; 0 = no limit. */
  readonly frlConfig: number;
  markDirty(offset: number, length: number): void;
  raise(bits: number): void;
}

export interface Channel {
  state: number;
  error: number;
  pbOffset: number;
  pbSize: number;
  get: number;
  put: number;
  /** Bytes of the current MEMSET/COPY already done. */
  progress: number;
  /** Frame-rate limiter: not runnable before this engine time. */
  wakeAt: number;
}

const CHANNEL_RECORD = 32;
/** Bytes of an engine snapshot. */
export const ENGINE_STATE_SIZE = 8 + MAX_CHANNELS * CHANNEL_RECORD;

function freshChannel(): Channel {
  return {
    state: CHANNEL_STATE_FREE,
    error: CHANNEL_ERROR_NONE,
    pbOffset: 0,
    pbSize: 0,
    get: 0,
    put: 0,
    progress: 0,
    wakeAt: 0,
  };
}

export class VgpuEngine {
  readonly channels: Channel[] = Array.from({ length: MAX_CHANNELS }, freshChannel);
  /** Frames presented (PRESENT methods completed). */
  frames = 0;
  private lastPresent = Number.NEGATIVE_INFINITY;
  private rr = 0;
  private readonly view: DataView;
  private readonly words: Uint32Array;

  constructor(private readonly host: EngineHost) {
    const fb = host.fb;
    this.view = new DataView(fb.buffer, fb.byteOffset, fb.byteLength);
    this.words = new Uint32Array(fb.buffer, fb.byteOffset, fb.byteLength >>> 2);
  }

  reset(): void {
    for (let i = 0; i < MAX_CHANNELS; i++) this.channels[i] = freshChannel();
    this.frames = 0;
    this.lastPresent = Number.NEGATIVE_INFINITY;
    this.rr = 0;
  }

  /** A free channel id, or -1. */
  freeChannel(): number {
    return this.channels.findIndex((c) => c.state === CHANNEL_STATE_FREE);
  }

  open(id: number, pbOffset: number, pbSize: number): void {
    const c = this.channels[id];
    c.state = CHANNEL_STATE_IDLE;
    c.error = CHANNEL_ERROR_NONE;
    c.pbOffset = pbOffset;
    c.pbSize = pbSize;
    c.get = 0;
    c.put = 0;
    c.progress = 0;
    c.wakeAt = 0;
  }

  close(id: number): void {
    this.channels[id] = freshChannel();
  }

  /** The guest wrote PUT. A PUT outside the ring or unaligned faults the channel. */
  setPut(id: number, put: number): void {
    const c = this.channels[id];
    if (c === undefined || c.state === CHANNEL_STATE_FREE || c.state === CHANNEL_STATE_FAULTED) return;
    if (put % 4 !== 0 || put >= c.pbSize) {
      this.fault(c, CHANNEL_ERROR_BAD_PUT);
      return;
    }
    c.put = put;
    if (c.put !== c.get) c.state = CHANNEL_STATE_BUSY;
  }

  private available(c: Channel): number {
    return (c.put - c.get + c.pbSize) % c.pbSize;
  }

  private word(c: Channel, index: number): number {
    return this.view.getUint32(c.pbOffset + ((c.get + 4 * index) % c.pbSize), true);
  }

  /** Whether a channel can make progress at engine time `now`. */
  private channelRunnable(c: Channel, now: number): boolean {
    if (c.state !== CHANNEL_STATE_BUSY) return false;
    if (c.wakeAt > now) return false;
    const avail = this.available(c);
    if (avail === 0) return false;
    const words = methodWords(this.word(c, 0) >>> 24);
    // An unknown opcode is runnable: executing it faults the channel.
    return words === 0 || avail >= words * 4;
  }

  runnable(now: number): boolean {
    for (let i = 0; i < MAX_CHANNELS; i++) if (this.channelRunnable(this.channels[i], now)) return true;
    return false;
  }

  /** The earliest frame-limiter wake-up after `now` of a channel with work. */
  nextWake(now: number): number {
    let wake = Number.POSITIVE_INFINITY;
    for (const c of this.channels)
      if (c.state === CHANNEL_STATE_BUSY && c.wakeAt > now) wake = Math.min(wake, c.wakeAt);
    return wake;
  }

  /** Run channels round robin for at most `budget` ns of engine time from `now`; returns time used. */
  run(budget: number, now: number): number {
    let used = 0;
    let idleRounds = 0;
    while (used < budget && idleRounds < MAX_CHANNELS) {
      const c = this.channels[this.rr];
      this.rr = (this.rr + 1) % MAX_CHANNELS;
      if (!this.channelRunnable(c, now + used)) {
        idleRounds++;
        continue;
      }
      idleRounds = 0;
      // One channel runs until its work is done or the budget ends (a method is the unit).
      while (used < budget && this.channelRunnable(c, now + used))
        used += this.execute(c, budget - used, now + used);
    }
    return Math.min(used, budget);
  }

  private fault(c: Channel, error: number): void {
    c.state = CHANNEL_STATE_FAULTED;
    c.error = error;
    c.progress = 0;
    this.host.raise(INTR_CHANNEL_FAULT);
  }

  private advance(c: Channel, words: number): void {
    c.get = (c.get + words * 4) % c.pbSize;
    c.progress = 0;
    if (c.get === c.put) c.state = CHANNEL_STATE_IDLE;
  }

  private inFb(offset: number, length: number): boolean {
    return offset + length <= this.host.fb.length;
  }

  /** Execute (part of) the method at GET; returns engine ns used (at least 1). */
  private execute(c: Channel, budget: number, now: number): number {
    const header = this.word(c, 0);
    const opcode = header >>> 24;
    const words = methodWords(opcode);
    if (words === 0) {
      this.fault(c, CHANNEL_ERROR_BAD_METHOD);
      return METHOD_NS;
    }
    switch (opcode) {
      case METHOD_NOP:
        this.advance(c, words);
        return METHOD_NS;
      case METHOD_SEM_RELEASE: {
        const offset = this.word(c, 1);
        if (offset % 4 !== 0 || !this.inFb(offset, 4)) {
          this.fault(c, CHANNEL_ERROR_OUT_OF_BOUNDS);
          return METHOD_NS;
        }
        this.view.setUint32(offset, this.word(c, 2), true);
        this.host.markDirty(offset, 4);
        this.advance(c, words);
        if (header & METHOD_FLAG_AWAKEN) this.host.raise(INTR_SEMAPHORE);
        return METHOD_NS;
      }
      case METHOD_MEMSET: {
        const dst = this.word(c, 1);
        const length = this.word(c, 2);
        if (dst % 4 !== 0 || length % 4 !== 0 || !this.inFb(dst, length)) {
          this.fault(c, CHANNEL_ERROR_OUT_OF_BOUNDS);
          return METHOD_NS;
        }
        const chunk = this.chunk(length - c.progress, budget);
        const at = dst + c.progress;
        this.words.fill(this.word(c, 3), at >>> 2, (at + chunk) >>> 2);
        this.host.markDirty(at, chunk);
        return this.progressed(c, words, length, chunk);
      }
      case METHOD_COPY: {
        const dst = this.word(c, 1);
        const src = this.word(c, 2);
        const length = this.word(c, 3);
        if (!this.inFb(dst, length) || !this.inFb(src, length)) {
          this.fault(c, CHANNEL_ERROR_OUT_OF_BOUNDS);
          return METHOD_NS;
        }
        const chunk = this.chunk(length - c.progress, budget);
        const fb = this.host.fb;
        if (dst > src) {
          // Overlapping forward copy: walk from the end so the source is read before it is overwritten.
          const end = length - c.progress;
          fb.copyWithin(dst + end - chunk, src + end - chunk, src + end);
          this.host.markDirty(dst + end - chunk, chunk);
        } else {
          fb.copyWithin(dst + c.progress, src + c.progress, src + c.progress + chunk);
          this.host.markDirty(dst + c.progress, chunk);
        }
        return this.progressed(c, words, length, chunk);
      }
      case METHOD_PRESENT: {
        const surface = this.word(c, 1);
        if (!this.inFb(surface, 1)) {
          this.fault(c, CHANNEL_ERROR_OUT_OF_BOUNDS);
          return METHOD_NS;
        }
        const frl = this.host.frlConfig;
        if (frl > 0) {
          const next = this.lastPresent + 1e9 / frl;
          if (now < next) {
            c.wakeAt = Math.ceil(next);
            return 1;
          }
        }
        this.lastPresent = now;
        this.frames++;
        this.advance(c, words);
        return METHOD_NS;
      }
      default:
        this.fault(c, CHANNEL_ERROR_BAD_METHOD);
        return METHOD_NS;
    }
  }

  /** Bytes a piece of MEMSET/COPY may move within `budget` ns (whole words, at least one). */
  private chunk(remaining: number, budget: number): number {
    const fit = Math.floor(Math.max(0, budget - METHOD_NS) * ENGINE_BYTES_PER_NS) & ~3;
    return Math.min(remaining, Math.max(4, fit));
  }

  private progressed(c: Channel, words: number, length: number, chunk: number): number {
    const first = c.progress === 0;
    c.progress += chunk;
    if (c.progress >= length) this.advance(c, words);
    return (first ? METHOD_NS : 0) + Math.max(1, Math.ceil(chunk / ENGINE_BYTES_PER_NS));
  }

  // ---- migration ------------------------------------------------------------------------------

  /** Channel state for migration (frame-limiter timing is not carried: it restarts on the destination). */
  snapshot(): Uint8Array {
    const out = new Uint8Array(ENGINE_STATE_SIZE);
    const v = new DataView(out.buffer);
    v.setUint32(0, this.frames >>> 0, true);
    v.setUint32(4, this.rr, true);
    for (let i = 0; i < MAX_CHANNELS; i++) {
      const c = this.channels[i];
      const o = 8 + i * CHANNEL_RECORD;
      v.setUint32(o, c.state, true);
      v.setUint32(o + 4, c.error, true);
      v.setFloat64(o + 8, c.pbOffset, true);
      v.setUint32(o + 16, c.pbSize, true);
      v.setUint32(o + 20, c.get, true);
      v.setUint32(o + 24, c.put, true);
      v.setUint32(o + 28, c.progress, true);
    }
    return out;
  }

  /** Check a snapshot against this vGPU's framebuffer; returns the problem or the parsed channels. */
  static parse(
    bytes: Uint8Array,
    fbSize: number,
  ): { frames: number; rr: number; channels: Channel[] } | string {
    if (bytes.length !== ENGINE_STATE_SIZE)
      return `the channel state is ${bytes.length} bytes, not ${ENGINE_STATE_SIZE}`;
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const rr = v.getUint32(4, true);
    if (rr >= MAX_CHANNELS) return `the channel round-robin position ${rr} is not a channel`;
    const channels: Channel[] = [];
    for (let i = 0; i < MAX_CHANNELS; i++) {
      const o = 8 + i * CHANNEL_RECORD;
      const c: Channel = {
        state: v.getUint32(o, true),
        error: v.getUint32(o + 4, true),
        pbOffset: v.getFloat64(o + 8, true),
        pbSize: v.getUint32(o + 16, true),
        get: v.getUint32(o + 20, true),
        put: v.getUint32(o + 24, true),
        progress: v.getUint32(o + 28, true),
        wakeAt: 0,
      };
      if (c.state > CHANNEL_STATE_FAULTED) return `channel ${i} has state ${c.state}`;
      if (c.error > CHANNEL_ERROR_BAD_PUT) return `channel ${i} has error ${c.error}`;
      if (c.state === CHANNEL_STATE_FREE) {
        channels.push(freshChannel());
        continue;
      }
      const ok =
        Number.isSafeInteger(c.pbOffset) &&
        c.pbOffset >= 0 &&
        c.pbOffset % 4 === 0 &&
        c.pbSize >= MIN_PUSHBUFFER &&
        c.pbSize <= MAX_PUSHBUFFER &&
        c.pbSize % 4 === 0 &&
        c.pbOffset + c.pbSize <= fbSize &&
        c.get < c.pbSize &&
        c.put < c.pbSize &&
        c.get % 4 === 0 &&
        c.put % 4 === 0 &&
        c.progress % 4 === 0 &&
        c.progress <= fbSize;
      if (!ok) return `channel ${i} has a push buffer or ring position outside the framebuffer`;
      channels.push(c);
    }
    return { frames: v.getUint32(0, true), rr, channels };
  }

  load(parsed: { frames: number; rr: number; channels: Channel[] }): void {
    for (let i = 0; i < MAX_CHANNELS; i++) this.channels[i] = { ...parsed.channels[i] };
    this.frames = parsed.frames;
    this.rr = parsed.rr;
    this.lastPresent = Number.NEGATIVE_INFINITY;
  }
}

/** Framebuffer allocations of one vGPU (first fit, page aligned), as the RPC's ALLOC_FB/FREE_FB see them. */
export class FbAllocator {
  /** Sorted, non-overlapping [offset, size] pairs. */
  private allocs: { offset: number; size: number }[] = [];
  static readonly MAX_ALLOCATIONS = 1024;

  constructor(readonly capacity: number) {}

  get count(): number {
    return this.allocs.length;
  }

  get used(): number {
    let n = 0;
    for (const a of this.allocs) n += a.size;
    return n;
  }

  reset(): void {
    this.allocs = [];
  }

  /** An offset, or -1 when no room is left (the quota is the vGPU's framebuffer). */
  alloc(size: number, align: number): number {
    if (this.allocs.length >= FbAllocator.MAX_ALLOCATIONS) return -1;
    let at = 0;
    for (let i = 0; i <= this.allocs.length; i++) {
      const start = Math.ceil(at / align) * align;
      const end = i < this.allocs.length ? this.allocs[i].offset : this.capacity;
      if (start + size <= end) {
        this.allocs.splice(i, 0, { offset: start, size });
        return start;
      }
      if (i < this.allocs.length) at = this.allocs[i].offset + this.allocs[i].size;
    }
    return -1;
  }

  free(offset: number): boolean {
    const i = this.allocs.findIndex((a) => a.offset === offset);
    if (i < 0) return false;
    this.allocs.splice(i, 1);
    return true;
  }

  /** Whether [offset, offset + size) lies inside one allocation. */
  contains(offset: number, size: number): boolean {
    return this.allocs.some((a) => offset >= a.offset && offset + size <= a.offset + a.size);
  }

  snapshot(): Uint8Array {
    const out = new Uint8Array(4 + this.allocs.length * 16);
    const v = new DataView(out.buffer);
    v.setUint32(0, this.allocs.length, true);
    this.allocs.forEach((a, i) => {
      v.setFloat64(4 + i * 16, a.offset, true);
      v.setFloat64(12 + i * 16, a.size, true);
    });
    return out;
  }

  /** Parse a snapshot; returns the problem, or the allocations and the bytes consumed. */
  static parse(
    bytes: Uint8Array,
    capacity: number,
  ): { allocs: { offset: number; size: number }[]; length: number } | string {
    if (bytes.length < 4) return 'the allocation table is cut short';
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = v.getUint32(0, true);
    if (n > FbAllocator.MAX_ALLOCATIONS)
      return `the allocation table has ${n} entries (at most ${FbAllocator.MAX_ALLOCATIONS})`;
    if (bytes.length < 4 + n * 16) return 'the allocation table is cut short';
    const allocs: { offset: number; size: number }[] = [];
    let end = 0;
    for (let i = 0; i < n; i++) {
      const offset = v.getFloat64(4 + i * 16, true);
      const size = v.getFloat64(12 + i * 16, true);
      if (
        !Number.isSafeInteger(offset) ||
        !Number.isSafeInteger(size) ||
        size <= 0 ||
        offset < end ||
        offset + size > capacity
      ) {
        return `allocation ${i} (${offset}, ${size}) is outside the framebuffer or overlaps the one before`;
      }
      end = offset + size;
      allocs.push({ offset, size });
    }
    return { allocs, length: 4 + n * 16 };
  }

  load(allocs: { offset: number; size: number }[]): void {
    this.allocs = allocs.map((a) => ({ ...a }));
  }
}

/** Reject a channel geometry before it is opened. */
export function checkPushBuffer(pbOffset: number, pbSize: number, fbSize: number): string | undefined {
  if (pbOffset % 4 !== 0 || pbSize % 4 !== 0) return 'the push buffer is not 4-byte aligned';
  if (pbSize < MIN_PUSHBUFFER || pbSize > MAX_PUSHBUFFER)
    return `the push buffer size ${pbSize} is outside ${MIN_PUSHBUFFER}..${MAX_PUSHBUFFER}`;
  if (pbOffset + pbSize > fbSize) return 'the push buffer lies outside the framebuffer';
  return undefined;
}
