/**
 * The command scanner (gvt/cmd_parser.c's role): before anything of a guest's submission runs,
 * every command reachable from the ring — through first- and second-level batch buffers and
 * chained jumps, in the global GTT or the context's PPGTT — is decoded by the command table
 * (cmd-table.ts), audited and copied into a shadow trace. Only the trace runs, so the guest
 * cannot change a command after it was checked.
 *
 * Audit rules: a command must be one the table knows on the engine it runs on, of a length its
 * opcode allows; register accesses (MI_LOAD_REGISTER_IMM/MEM/REG, MI_STORE_REGISTER_MEM) only
 * to registers the MMIO table flags F_CMD_ACCESS; every address a command writes or jumps to
 * inside the vGPU's graphics memory (GGTT) or mapped in its PPGTT; batch nesting at most two
 * levels deep; at most `maxDwords` dwords per submission (which also ends self-referencing
 * batches). A refusal is the guest's error: the workload does not run and the reason is kept.
 *
 * Trace format: for each command with an effect, a tag word (the kind, bit 8 set when its
 * address is a PPGTT address, and the engine's HWSP-relative flag), its length, then its dwords.
 */
import { TWO_32 } from '@vfiokit/core';
import { type GpuAddressSpace, gpuAddress } from './address-space.js';
import {
  type CmdKind,
  DECODE_KIND_BITS,
  DECODE_MASK_SHIFT,
  decodeCommand,
  decodeTableOf,
  type EngineClass,
  KIND,
  learnDecode,
  REFUSED,
  UNKNOWN,
} from './cmd-table.js';
import { GTT_PAGE_SIZE, MI_BATCH_PPGTT_GEN8, MI_BATCH_SECOND_LEVEL, MI_USE_GGTT } from './constants.js';

export interface ScanLimits {
  /** Dwords scanned per submission, all levels together. */
  readonly maxDwords: number;
  /** Batch nesting below the ring: 2 = first and second level. */
  readonly maxDepth: number;
}

/** 1 MiB of commands per submission; ring → first level → second level. */
export const DEFAULT_SCAN_LIMITS: ScanLimits = Object.freeze({ maxDwords: 256 * 1024, maxDepth: 2 });

export type ScanResult =
  | { readonly ok: true; readonly dwords: number; readonly traceLength: number; readonly commands: number }
  | { readonly ok: false; readonly problem: string; readonly address: number };

/** Bytes per pixel by BR13 colour depth (8bpp, 565, 1555, 32bpp). */
export const BLT_BYTES_PER_PIXEL = [1, 2, 2, 4] as const;
/** Tag bit: the command's memory operand is a PPGTT address. */
export const TRACE_PPGTT = 1 << 8;

/** Where one submission's commands live and what they may reach. */
export interface ScanTarget {
  readonly engine: EngineClass;
  /** The vGPU's GGTT view. */
  readonly ggtt: GpuAddressSpace;
  /** The context's PPGTT; absent in ring-buffer mode (no PPGTT then). */
  readonly ppgtt?: GpuAddressSpace;
}

const FAULT = -1;
const K_NOOP_1 = KIND.NOOP_1;
const K_STATE = KIND.STATE;
/** The 3 dwords of a gen8 MI_BATCH_BUFFER_START. */
const BB_START_DWORDS = 3;

export class CommandScanner {
  /** The shadow trace of the last successful scan: commands to execute, in order. */
  trace: Uint32Array = new Uint32Array(4096);
  traceLength = 0;
  private words: Uint32Array = new Uint32Array(0);
  private idx = 0;
  private pageEnd = 0;
  /** GM address of the next dword to fetch, in `space`. */
  private addr = 0;
  private space: GpuAddressSpace;
  private scanned = 0;
  private commands = 0;
  private problem = '';
  private problemAt = 0;
  /** Ring wrap: when `addr` reaches ringEnd it continues at ringStart (0 outside the ring). */
  private ringStart = 0;
  private ringEnd = 0;
  private target: ScanTarget;
  /** limits.maxDwords, in a field of its own: fetch() reads it on every dword. */
  private readonly maxDwords: number;
  /** The target engine's decode table (decodeTableOf), looked up once per submission (reset()). */
  private decode: Int32Array = decodeTableOf('rcs');

  constructor(
    private readonly gm: GpuAddressSpace,
    private readonly registerAllowed: (offset: number) => boolean,
    readonly limits: ScanLimits = DEFAULT_SCAN_LIMITS,
  ) {
    this.space = gm;
    this.target = { engine: 'rcs', ggtt: gm };
    this.maxDwords = limits.maxDwords;
  }

  /**
   * Scan the ring's commands from `head` to `tail` (byte offsets in a ring of `size` bytes at GGTT
   * address `start`), following batch buffers. Without a target the ring is the render engine's
   * in ring-buffer mode, with no PPGTT.
   */
  scanRing(start: number, size: number, head: number, tail: number, target?: ScanTarget): ScanResult {
    this.reset(target);
    if (!this.gm.inside(start, size) || start % GTT_PAGE_SIZE !== 0) {
      return this.fail(
        `the ring at GM 0x${start.toString(16)} (${size} bytes) is not inside this vGPU's graphics memory`,
        start,
      );
    }
    if (head >= size || tail >= size || head % 4 !== 0 || tail % 8 !== 0) {
      return this.fail(
        `ring head 0x${head.toString(16)} or tail 0x${tail.toString(16)} is outside the ${size}-byte ring`,
        start,
      );
    }
    this.ringStart = start;
    this.ringEnd = start + size;
    const total = (tail - head + size) % size;
    this.seek(this.gm, start + head);
    let consumed = 0;
    while (consumed < total) {
      const before = this.scanned;
      if (!this.command(0)) return this.failure();
      consumed += (this.scanned - before) * 4;
      if (this.followBatch !== undefined) {
        const { space, at } = this.followBatch;
        this.followBatch = undefined;
        const back = this.addr;
        const saveStart = this.ringStart;
        const saveEnd = this.ringEnd;
        this.ringStart = 0;
        this.ringEnd = 0;
        if (!this.batch(space, at, 1)) return this.failure();
        this.ringStart = saveStart;
        this.ringEnd = saveEnd;
        this.seek(this.gm, back);
      }
    }
    if (consumed !== total) return this.fail('a command in the ring runs past the tail', this.addr);
    return { ok: true, dwords: this.scanned, traceLength: this.traceLength, commands: this.commands };
  }

  /** Scan a batch buffer at GGTT `start` as a first-level batch. */
  scanBatch(start: number, target?: ScanTarget): ScanResult {
    this.reset(target);
    if (!this.batch(this.gm, start, 1)) return this.failure();
    return { ok: true, dwords: this.scanned, traceLength: this.traceLength, commands: this.commands };
  }

  /** Set by a ring-level MI_BATCH_BUFFER_START: the batch to scan before the ring goes on. */
  private followBatch: { space: GpuAddressSpace; at: number } | undefined;
  /** Set by a batch-level MI_BATCH_BUFFER_START: where to go, and whether it returns. */
  private jump: { space: GpuAddressSpace; at: number } | undefined;
  private jumpSecondLevel = false;
  private ended = false;

  private batch(space: GpuAddressSpace, start: number, depth: number): boolean {
    if (depth > this.limits.maxDepth) {
      this.problem = `batch buffers nest deeper than ${this.limits.maxDepth} levels`;
      this.problemAt = start;
      return false;
    }
    this.seek(space, start);
    for (;;) {
      if (!this.command(depth)) return false;
      if (this.ended) {
        this.ended = false;
        return true;
      }
      if (this.jump !== undefined) {
        const { space: to, at } = this.jump;
        this.jump = undefined;
        if (this.jumpSecondLevel) {
          const back = this.addr;
          const from = this.space;
          if (!this.batch(to, at, depth + 1)) return false;
          this.seek(from, back);
        } else {
          // A chained batch: the jump never returns here.
          this.seek(to, at);
        }
      }
    }
  }

  /**
   * Decode, audit and copy one command. `depth` 0 is the ring. A command with an effect is copied
   * once, straight into its trace slot (behind room for its tag and length), and audited and
   * rewritten there; the slot is kept only when emit() takes it. Pipeline state is checked for
   * length and skipped, never copied.
   */
  private command(depth: number): boolean {
    const dw0 = this.fetch();
    if (dw0 === FAULT) return false;
    if (dw0 === 0) return true; // MI_NOOP
    let entry = this.decode[dw0 >>> 16];
    if (entry < 0) {
      if (entry === UNKNOWN) entry = learnDecode(this.target.engine, dw0);
      if (entry === REFUSED) return this.refuse(decodeCommand(dw0, this.target.engine) as string);
    }
    const kind = (entry & DECODE_KIND_BITS) as CmdKind;
    if (kind === K_NOOP_1) return true;
    const mask = entry >>> DECODE_MASK_SHIFT;
    const len = mask === 0 ? 1 : (dw0 & mask) + 2;
    const rest = len - 1;
    const whole = this.pageEnd - this.idx >= rest && this.scanned + rest <= this.maxDwords;
    if (kind === K_STATE) {
      if (whole) this.skip(rest);
      else for (let k = 1; k < len; k++) if (this.fetch() === FAULT) return false;
      this.commands++;
      return true;
    }
    const o = this.traceLength + 2;
    if (o + len > this.trace.length) this.grow(o + len);
    const t = this.trace;
    t[o] = dw0;
    if (whole) {
      // The whole command lies in the page being read: what fetch() would do, dword by dword.
      const words = this.words;
      const from = this.idx - 1;
      for (let k = 1; k < len; k++) t[o + k] = words[from + k];
      this.skip(rest);
    } else {
      for (let k = 1; k < len; k++) {
        const w = this.fetch();
        if (w === FAULT) return false;
        t[o + k] = w;
      }
    }
    this.commands++;
    return this.audit(kind, len, depth, o);
  }

  /** Pass `n` dwords of the current page, all within the scan limit (fetch() without the checks). */
  private skip(n: number): void {
    this.idx += n;
    this.scanned += n;
    this.addr += 4 * n;
  }

  /** Audit the command at trace[o] (rewriting its register offsets there); emit() keeps it. */
  private audit(kind: CmdKind, len: number, depth: number, o: number): boolean {
    const t = this.trace;
    switch (kind) {
      case KIND.STATE:
        return true;
      case KIND.BB_END:
        if (depth === 0) return this.refuse('MI_BATCH_BUFFER_END in the ring');
        this.ended = true;
        return true;
      case KIND.BB_START:
        return this.batchBufferStart(len, depth, o);
      case KIND.USER_INTERRUPT:
        return this.emit(kind, 0, len);
      case KIND.STORE_DWORD: {
        if (len < 4) return this.refuse(`${this.nameAt(o)} of ${len} dwords (4 or more expected)`);
        const ggtt = (t[o] & MI_USE_GGTT) !== 0;
        return this.memory(o, kind, len, ggtt, gpuAddress(t[o + 1], t[o + 2], 3), 4 * (len - 3));
      }
      case KIND.STORE_INDEX:
        // MI_STORE_DATA_INDEX: an offset into the engine's status page (audited at execution).
        return this.emit(kind, 0, len);
      case KIND.LRI: {
        if ((len - 1) % 2 !== 0)
          return this.refuse(`${this.nameAt(o)} of ${len} dwords is not offset/value pairs`);
        for (let k = 1; k < len; k += 2) {
          const offset = t[o + k] & 0x7ffffc;
          if (!this.registerAllowed(offset)) {
            return this.refuse(
              `${this.nameAt(o)} to register 0x${offset.toString(16)}, which is not whitelisted`,
            );
          }
          t[o + k] = offset;
        }
        return this.emit(kind, 0, len);
      }
      case KIND.SRM:
      case KIND.LRM: {
        if (len < 4) return this.refuse(`${this.nameAt(o)} of ${len} dwords (4 expected)`);
        const offset = t[o + 1] & 0x7ffffc;
        if (!this.registerAllowed(offset))
          return this.refuse(
            `${this.nameAt(o)} of register 0x${offset.toString(16)}, which is not whitelisted`,
          );
        t[o + 1] = offset;
        return this.memory(o, kind, len, (t[o] & MI_USE_GGTT) !== 0, gpuAddress(t[o + 2], t[o + 3], 3), 4);
      }
      case KIND.LRR: {
        // Two register operands: a shorter command would take its destination from whatever follows it.
        if (len < 3) return this.refuse(`${this.nameAt(o)} of ${len} dwords (3 expected)`);
        for (let k = 1; k <= 2; k++) {
          const offset = t[o + k] & 0x7ffffc;
          if (!this.registerAllowed(offset))
            return this.refuse(
              `${this.nameAt(o)} of register 0x${offset.toString(16)}, which is not whitelisted`,
            );
          t[o + k] = offset;
        }
        return this.emit(kind, 0, len);
      }
      case KIND.PIPE_CONTROL: {
        if (len < 5) return this.refuse(`${this.nameAt(o)} of ${len} dwords (6 expected on gen8)`);
        const op = (t[o + 1] >>> 14) & 3;
        if (op === 0 || t[o + 1] & PC_STORE_DATA_INDEX) return this.emit(kind, 0, len);
        const ggtt = (t[o + 1] & PC_GLOBAL_GTT) !== 0;
        return this.memory(o, kind, len, ggtt, gpuAddress(t[o + 2], t[o + 3], 7), 8);
      }
      case KIND.FLUSH_DW: {
        const op = (t[o] >>> 14) & 3;
        if (op === 0 || t[o] & FLUSH_DW_STORE_INDEX) return this.emit(kind, 0, len);
        if (len < 4)
          return this.refuse(`${this.nameAt(o)} with a post-sync write of ${len} dwords (4 or 5 expected)`);
        const ggtt = (t[o + 1] & FLUSH_DW_USE_GTT) !== 0;
        const at = gpuAddress(t[o + 1], t[o + 2], 7);
        return this.memory(o, kind, len, ggtt, at, op === 1 ? 4 * (len - 3) : 8);
      }
      case KIND.SEMAPHORE_WAIT: {
        if (len < 4) return this.refuse(`${this.nameAt(o)} of ${len} dwords (4 expected)`);
        const ggtt = (t[o] & MI_USE_GGTT) !== 0;
        const space = this.spaceFor(o, ggtt);
        if (space === undefined) return false;
        const at = gpuAddress(t[o + 2], t[o + 3], 3);
        if (!space.inside(at, 4))
          return this.refuse(`${this.nameAt(o)} on memory at 0x${at.toString(16)}, outside this vGPU`);
        return this.emit(kind, ggtt ? 0 : TRACE_PPGTT, len);
      }
      case KIND.COLOR_BLT:
        return this.colorBlt(len, o);
      default:
        return this.refuse(`${this.nameAt(o)} has no execution`);
    }
  }

  /** The space a command's address lives in; a refusal when it names a PPGTT the context lacks. */
  private spaceFor(o: number, ggtt: boolean): GpuAddressSpace | undefined {
    if (ggtt) return this.gm;
    if (this.target.ppgtt === undefined) {
      this.refuse(`${this.nameAt(o)} through the PPGTT, which ring-buffer mode does not have`);
      return undefined;
    }
    return this.target.ppgtt;
  }

  private memory(o: number, kind: CmdKind, len: number, ggtt: boolean, at: number, bytes: number): boolean {
    const space = this.spaceFor(o, ggtt);
    if (space === undefined) return false;
    if (!space.inside(at, bytes)) {
      return this.refuse(
        `${this.nameAt(o)} to ${ggtt ? 'GM' : 'PPGTT address'} 0x${at.toString(16)}, outside this vGPU`,
      );
    }
    return this.emit(kind, ggtt ? 0 : TRACE_PPGTT, len);
  }

  private batchBufferStart(len: number, depth: number, o: number): boolean {
    const t = this.trace;
    if (len !== BB_START_DWORDS)
      return this.refuse(`MI_BATCH_BUFFER_START of ${len} dwords (3 expected on gen8)`);
    const ppgtt = (t[o] & MI_BATCH_PPGTT_GEN8) !== 0;
    const space = this.spaceFor(o, !ppgtt);
    if (space === undefined) return false;
    const target = gpuAddress(t[o + 1], t[o + 2], 3);
    if (!space.inside(target, 4)) {
      return this.refuse(
        `MI_BATCH_BUFFER_START to ${ppgtt ? 'PPGTT address' : 'GM'} 0x${target.toString(16)}, outside this vGPU`,
      );
    }
    if (depth === 0) {
      if (t[o] & MI_BATCH_SECOND_LEVEL) return this.refuse('a second-level batch started from the ring');
      this.followBatch = { space, at: target };
      return true;
    }
    this.jump = { space, at: target };
    this.jumpSecondLevel = (t[o] & MI_BATCH_SECOND_LEVEL) !== 0;
    if (this.jumpSecondLevel && depth + 1 > this.limits.maxDepth) {
      return this.refuse(`batch buffers nest deeper than ${this.limits.maxDepth} levels`);
    }
    return true;
  }

  private colorBlt(len: number, o: number): boolean {
    const t = this.trace;
    if (len !== 7) return this.refuse(`XY_COLOR_BLT of ${len} dwords (7 expected on gen8)`);
    const br13 = t[o + 1];
    const bpp = BLT_BYTES_PER_PIXEL[(br13 >>> 24) & 3];
    const pitch = br13 & 0xffff;
    const x1 = t[o + 2] & 0xffff;
    const y1 = t[o + 2] >>> 16;
    const x2 = t[o + 3] & 0xffff;
    const y2 = t[o + 3] >>> 16;
    const dst = t[o + 4] + (t[o + 5] & 0xffff) * TWO_32;
    if (x2 > x1 && y2 > y1) {
      if (x2 * bpp > pitch)
        return this.refuse(`XY_COLOR_BLT rows of ${x2 * bpp} bytes exceed the ${pitch}-byte pitch`);
      const first = dst + y1 * pitch + x1 * bpp;
      const end = dst + (y2 - 1) * pitch + x2 * bpp;
      const space = this.target.ppgtt ?? this.gm;
      if (!space.inside(first, end - first)) {
        return this.refuse(
          `XY_COLOR_BLT rectangle at GM 0x${first.toString(16)}..0x${end.toString(16)} is outside this vGPU`,
        );
      }
    }
    return this.emit(KIND.COLOR_BLT, this.target.ppgtt ? TRACE_PPGTT : 0, len);
  }

  // ---- fetching ---------------------------------------------------------------------------------

  private reset(target: ScanTarget | undefined): void {
    this.target = target ?? { engine: 'rcs', ggtt: this.gm };
    this.decode = decodeTableOf(this.target.engine);
    this.traceLength = 0;
    this.scanned = 0;
    this.commands = 0;
    this.problem = '';
    this.followBatch = undefined;
    this.jump = undefined;
    this.ended = false;
    this.ringStart = 0;
    this.ringEnd = 0;
  }

  private seek(space: GpuAddressSpace, addr: number): void {
    this.space = space;
    this.addr = addr;
    this.idx = 0;
    this.pageEnd = 0;
  }

  /** The next dword, or FAULT (with `problem` set). */
  private fetch(): number {
    if (this.scanned >= this.maxDwords) {
      this.problem = `the submission has more than ${this.limits.maxDwords} dwords of commands (a batch that loops?)`;
      this.problemAt = this.addr;
      return FAULT;
    }
    if (this.idx === this.pageEnd) {
      if (this.ringEnd !== 0 && this.addr >= this.ringEnd) this.addr = this.ringStart;
      const page = this.space.pageWords(this.addr);
      if (page === undefined || this.addr % 4 !== 0) {
        const where = this.space === this.gm ? 'GM' : 'PPGTT address';
        this.problem = `commands at ${where} 0x${this.addr.toString(16)} are not in mapped graphics memory of this vGPU`;
        this.problemAt = this.addr;
        return FAULT;
      }
      this.words = page.words;
      this.idx = page.base + ((this.addr % GTT_PAGE_SIZE) >>> 2);
      this.pageEnd = page.base + GTT_PAGE_SIZE / 4;
    }
    this.scanned++;
    this.addr += 4;
    return this.words[this.idx++];
  }

  /** Keep the command audited in the trace slot after the last one: its tag and length go before it. */
  private emit(kind: CmdKind, flags: number, len: number): boolean {
    const at = this.traceLength;
    this.trace[at] = kind | flags;
    this.trace[at + 1] = len;
    this.traceLength = at + 2 + len;
    return true;
  }

  /** Room for `need` dwords of trace: what is kept so far moves to a bigger array. */
  private grow(need: number): void {
    const bigger = new Uint32Array(Math.max(this.trace.length * 2, need));
    bigger.set(this.trace.subarray(0, this.traceLength));
    this.trace = bigger;
  }

  /** The name of the command whose dword 0 is trace[o], for a refusal. */
  private nameAt(o: number): string {
    const decoded = decodeCommand(this.trace[o], this.target.engine);
    return typeof decoded === 'string' ? decoded : decoded.name;
  }

  private refuse(problem: string): boolean {
    this.problem = problem;
    this.problemAt = this.addr;
    return false;
  }

  private fail(problem: string, address: number): ScanResult {
    return { ok: false, problem, address };
  }

  private failure(): ScanResult {
    return { ok: false, problem: this.problem, address: this.problemAt };
  }
}

/** PIPE_CONTROL dword 1: post-sync address in the global GTT, or an index into the status page. */
export const PC_GLOBAL_GTT = 1 << 24;
export const PC_STORE_DATA_INDEX = 1 << 21;
/** MI_FLUSH_DW: dword 0 bit 21 stores to the status page index; dword 1 bit 2 selects the GGTT. */
export const FLUSH_DW_STORE_INDEX = 1 << 21;
export const FLUSH_DW_USE_GTT = 1 << 2;
