/**
 * The command scanner (gvt/cmd_parser.c's role): before anything of a guest's submission runs,
 * every command reachable from the ring — through first- and second-level batch buffers and
 * chained jumps — is decoded, audited and copied into a shadow trace. Only the trace runs, so
 * the guest cannot change a command after it was checked.
 *
 * Audit rules: only a known subset of i915 commands (MI_NOOP, MI_USER_INTERRUPT,
 * MI_BATCH_BUFFER_START/END, MI_STORE_DATA_IMM, MI_LOAD_REGISTER_IMM, XY_COLOR_BLT); register
 * writes only to the whitelist; every address (stores, blit rectangles, batch starts) inside the
 * vGPU's graphics memory and through the global GTT (no PPGTT); batch nesting at most two levels
 * deep; at most `maxDwords` dwords scanned per submission (which also ends self-referencing
 * batches).
 */
import {
  BLT_OPCODE_XY_COLOR_BLT,
  GTT_PAGE_SIZE,
  INSTR_BC_CLIENT,
  INSTR_MI_CLIENT,
  MI_BATCH_PPGTT_GEN8,
  MI_BATCH_SECOND_LEVEL,
  MI_OPCODE_BATCH_BUFFER_END,
  MI_OPCODE_BATCH_BUFFER_START,
  MI_OPCODE_LOAD_REGISTER_IMM,
  MI_OPCODE_NOOP,
  MI_OPCODE_STORE_DATA_IMM,
  MI_OPCODE_USER_INTERRUPT,
  MI_USE_GGTT,
  XY_COLOR_BLT_GEN8_DWORDS,
} from './constants.js';
import type { GmAccess } from './ggtt.js';

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

const TWO_32 = 2 ** 32;
const FAULT = -1;

export class CommandScanner {
  /** The shadow trace of the last successful scan: commands to execute, in order. */
  trace: Uint32Array = new Uint32Array(4096);
  traceLength = 0;
  private words: Uint32Array = new Uint32Array(0);
  private idx = 0;
  private pageEnd = 0;
  /** GM address of the next dword to fetch. */
  private addr = 0;
  private scanned = 0;
  private commands = 0;
  private problem = '';
  private problemAt = 0;
  /** Ring wrap: when `addr` reaches ringEnd it continues at ringStart (0 outside the ring). */
  private ringStart = 0;
  private ringEnd = 0;

  constructor(
    private readonly gm: GmAccess,
    private readonly registerAllowed: (offset: number) => boolean,
    readonly limits: ScanLimits = DEFAULT_SCAN_LIMITS,
  ) {}

  /**
   * Scan the ring's commands from `head` to `tail` (byte offsets in a ring of `size` bytes at GM
   * address `start`), following batch buffers.
   */
  scanRing(start: number, size: number, head: number, tail: number): ScanResult {
    this.reset();
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
    this.seek(start + head);
    let consumed = 0;
    while (consumed < total) {
      const before = this.scanned;
      if (!this.command(0)) return this.failure();
      consumed += (this.scanned - before) * 4;
      if (this.followBatch !== 0) {
        const target = this.followBatch;
        this.followBatch = 0;
        const back = this.addr;
        const saveStart = this.ringStart;
        const saveEnd = this.ringEnd;
        this.ringStart = 0;
        this.ringEnd = 0;
        if (!this.batch(target, 1)) return this.failure();
        this.ringStart = saveStart;
        this.ringEnd = saveEnd;
        this.seek(back);
      }
    }
    if (consumed !== total) return this.fail('a command in the ring runs past the tail', this.addr);
    return { ok: true, dwords: this.scanned, traceLength: this.traceLength, commands: this.commands };
  }

  /** Scan a batch buffer at GM `start` as a first-level batch (the engine's MI_BATCH_BUFFER_START). */
  scanBatch(start: number): ScanResult {
    this.reset();
    if (!this.batch(start, 1)) return this.failure();
    return { ok: true, dwords: this.scanned, traceLength: this.traceLength, commands: this.commands };
  }

  /** Set by a ring-level MI_BATCH_BUFFER_START: the batch to scan before the ring goes on. */
  private followBatch = 0;
  /** Set by a batch-level MI_BATCH_BUFFER_START: where to go, and whether it returns. */
  private jumpTarget = 0;
  private jumpSecondLevel = false;
  private ended = false;

  private batch(start: number, depth: number): boolean {
    if (depth > this.limits.maxDepth) {
      this.problem = `batch buffers nest deeper than ${this.limits.maxDepth} levels`;
      this.problemAt = start;
      return false;
    }
    this.seek(start);
    for (;;) {
      if (!this.command(depth)) return false;
      if (this.ended) {
        this.ended = false;
        return true;
      }
      if (this.jumpTarget !== 0) {
        const target = this.jumpTarget;
        this.jumpTarget = 0;
        if (this.jumpSecondLevel) {
          const back = this.addr;
          if (!this.batch(target, depth + 1)) return false;
          this.seek(back);
        } else {
          // A chained batch: the jump never returns here.
          this.seek(target);
        }
      }
    }
  }

  /** Decode, audit and copy one command. `depth` 0 is the ring. */
  private command(depth: number): boolean {
    const dw0 = this.fetch();
    if (dw0 === FAULT) return false;
    const client = dw0 >>> 29;
    if (client === INSTR_MI_CLIENT) {
      const op = (dw0 >>> 23) & 0x3f;
      switch (op) {
        case MI_OPCODE_NOOP:
          return true;
        case MI_OPCODE_USER_INTERRUPT:
          this.commands++;
          this.emit(dw0);
          return true;
        case MI_OPCODE_BATCH_BUFFER_END:
          if (depth === 0) return this.refuse('MI_BATCH_BUFFER_END in the ring');
          this.ended = true;
          return true;
        case MI_OPCODE_STORE_DATA_IMM:
          return this.storeDataImm(dw0);
        case MI_OPCODE_LOAD_REGISTER_IMM:
          return this.loadRegisterImm(dw0);
        case MI_OPCODE_BATCH_BUFFER_START:
          return this.batchBufferStart(dw0, depth);
        default:
          return this.refuse(`MI command opcode 0x${op.toString(16)} is not allowed`);
      }
    }
    if (client === INSTR_BC_CLIENT && ((dw0 >>> 22) & 0x7f) === BLT_OPCODE_XY_COLOR_BLT)
      return this.colorBlt(dw0);
    return this.refuse(`command 0x${(dw0 >>> 0).toString(16).padStart(8, '0')} is not in the allowed subset`);
  }

  private storeDataImm(dw0: number): boolean {
    const len = (dw0 & 0x3ff) + 2;
    if (len !== 4 && len !== 5) return this.refuse(`MI_STORE_DATA_IMM of ${len} dwords (4 or 5 expected)`);
    if ((dw0 & MI_USE_GGTT) === 0) return this.refuse('MI_STORE_DATA_IMM through the PPGTT');
    const lo = this.fetch();
    const hi = this.fetch();
    const v0 = this.fetch();
    const v1 = len === 5 ? this.fetch() : 0;
    if (lo === FAULT || hi === FAULT || v0 === FAULT || v1 === FAULT) return false;
    const address = (lo & ~3) + (hi & 0xffff) * TWO_32;
    if (!this.gm.inside(address, 4 * (len - 3))) {
      return this.refuse(`MI_STORE_DATA_IMM to GM 0x${address.toString(16)}, outside this vGPU`);
    }
    this.commands++;
    this.emit(dw0);
    this.emit(lo);
    this.emit(hi);
    this.emit(v0);
    if (len === 5) this.emit(v1);
    return true;
  }

  private loadRegisterImm(dw0: number): boolean {
    const len = (dw0 & 0xff) + 2;
    if ((len - 1) % 2 !== 0)
      return this.refuse(`MI_LOAD_REGISTER_IMM of ${len} dwords is not offset/value pairs`);
    this.emit(dw0);
    for (let k = 1; k < len; k += 2) {
      const reg = this.fetch();
      const value = this.fetch();
      if (reg === FAULT || value === FAULT) return false;
      const offset = reg & 0x7ffffc;
      if (!this.registerAllowed(offset)) {
        return this.refuse(
          `MI_LOAD_REGISTER_IMM to register 0x${offset.toString(16)}, which is not whitelisted`,
        );
      }
      this.emit(offset);
      this.emit(value);
    }
    this.commands++;
    return true;
  }

  private batchBufferStart(dw0: number, depth: number): boolean {
    const len = (dw0 & 0xff) + 2;
    if (len !== 3) return this.refuse(`MI_BATCH_BUFFER_START of ${len} dwords (3 expected on gen8)`);
    if (dw0 & MI_BATCH_PPGTT_GEN8) return this.refuse('MI_BATCH_BUFFER_START through the PPGTT');
    const lo = this.fetch();
    const hi = this.fetch();
    if (lo === FAULT || hi === FAULT) return false;
    const target = (lo & ~3) + (hi & 0xffff) * TWO_32;
    if (!this.gm.inside(target, 4)) {
      return this.refuse(`MI_BATCH_BUFFER_START to GM 0x${target.toString(16)}, outside this vGPU`);
    }
    this.commands++;
    if (depth === 0) {
      if (dw0 & MI_BATCH_SECOND_LEVEL) return this.refuse('a second-level batch started from the ring');
      this.followBatch = target;
      return true;
    }
    this.jumpTarget = target;
    this.jumpSecondLevel = (dw0 & MI_BATCH_SECOND_LEVEL) !== 0;
    if (this.jumpSecondLevel && depth + 1 > this.limits.maxDepth) {
      return this.refuse(`batch buffers nest deeper than ${this.limits.maxDepth} levels`);
    }
    return true;
  }

  private colorBlt(dw0: number): boolean {
    const len = (dw0 & 0xff) + 2;
    if (len !== XY_COLOR_BLT_GEN8_DWORDS)
      return this.refuse(`XY_COLOR_BLT of ${len} dwords (7 expected on gen8)`);
    const br13 = this.fetch();
    const tl = this.fetch();
    const br = this.fetch();
    const lo = this.fetch();
    const hi = this.fetch();
    const color = this.fetch();
    if (br13 === FAULT || tl === FAULT || br === FAULT || lo === FAULT || hi === FAULT || color === FAULT)
      return false;
    const bpp = BLT_BYTES_PER_PIXEL[(br13 >>> 24) & 3];
    const pitch = br13 & 0xffff;
    const x1 = tl & 0xffff;
    const y1 = tl >>> 16;
    const x2 = br & 0xffff;
    const y2 = br >>> 16;
    const dst = lo + (hi & 0xffff) * TWO_32;
    if (x2 > x1 && y2 > y1) {
      if (x2 * bpp > pitch)
        return this.refuse(`XY_COLOR_BLT rows of ${x2 * bpp} bytes exceed the ${pitch}-byte pitch`);
      const first = dst + y1 * pitch + x1 * bpp;
      const end = dst + (y2 - 1) * pitch + x2 * bpp;
      if (!this.gm.inside(first, end - first)) {
        return this.refuse(
          `XY_COLOR_BLT rectangle at GM 0x${first.toString(16)}..0x${end.toString(16)} is outside this vGPU`,
        );
      }
    }
    this.commands++;
    this.emit(dw0);
    this.emit(br13);
    this.emit(tl);
    this.emit(br);
    this.emit(lo);
    this.emit(hi);
    this.emit(color);
    return true;
  }

  // ---- fetching ---------------------------------------------------------------------------------

  private reset(): void {
    this.traceLength = 0;
    this.scanned = 0;
    this.commands = 0;
    this.problem = '';
    this.followBatch = 0;
    this.jumpTarget = 0;
    this.ended = false;
    this.ringStart = 0;
    this.ringEnd = 0;
  }

  private seek(addr: number): void {
    this.addr = addr;
    this.idx = 0;
    this.pageEnd = 0;
  }

  /** The next dword, or FAULT (with `problem` set). */
  private fetch(): number {
    if (this.scanned >= this.limits.maxDwords) {
      this.problem = `the submission has more than ${this.limits.maxDwords} dwords of commands (a batch that loops?)`;
      this.problemAt = this.addr;
      return FAULT;
    }
    if (this.idx === this.pageEnd) {
      if (this.ringEnd !== 0 && this.addr >= this.ringEnd) this.addr = this.ringStart;
      const page = this.gm.pageWords(this.addr);
      if (page === undefined || this.addr % 4 !== 0) {
        this.problem = `commands at GM 0x${this.addr.toString(16)} are not in mapped graphics memory of this vGPU`;
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

  private emit(word: number): void {
    if (this.traceLength === this.trace.length) {
      const bigger = new Uint32Array(this.trace.length * 2);
      bigger.set(this.trace);
      this.trace = bigger;
    }
    this.trace[this.traceLength++] = word;
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
