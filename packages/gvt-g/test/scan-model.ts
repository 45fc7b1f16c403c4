/**
 * The command scanner's rules written out plainly, for property tests to hold the scanner to:
 * every dword is read through its space's pageWords on its own, every command is decoded by
 * decodeCommand into a fresh object and copied into a fresh array before it is audited. The
 * scanner's fast paths must give the same verdict, the same reason at the same address, the same
 * counts and the same trace (whole on success, the accepted prefix on a refusal).
 */
import { type GpuAddressSpace, gpuAddress } from '../src/address-space.js';
import {
  BLT_BYTES_PER_PIXEL,
  FLUSH_DW_STORE_INDEX,
  FLUSH_DW_USE_GTT,
  PC_GLOBAL_GTT,
  PC_STORE_DATA_INDEX,
  type ScanLimits,
  type ScanResult,
  type ScanTarget,
  TRACE_PPGTT,
} from '../src/cmd-parser.js';
import { type CmdKind, decodeCommand, KIND } from '../src/cmd-table.js';
import { GTT_PAGE_SIZE, MI_BATCH_PPGTT_GEN8, MI_BATCH_SECOND_LEVEL, MI_USE_GGTT } from '../src/constants.js';

class Refused {
  constructor(
    readonly problem: string,
    readonly address: number,
  ) {}
}

type Next =
  | { readonly to: 'next' }
  | { readonly to: 'end' }
  | { readonly to: 'batch'; readonly space: GpuAddressSpace; readonly at: number; readonly second: boolean };

const NEXT: Next = { to: 'next' };

export interface ModelOutcome {
  readonly result: ScanResult;
  /** The trace's first `traceLength` dwords (what the scanner's `trace` must start with). */
  readonly trace: readonly number[];
}

export class ScanModel {
  private trace: number[] = [];
  private scanned = 0;
  private commands = 0;
  private space: GpuAddressSpace;
  private addr = 0;
  private ringStart = 0;
  private ringEnd = 0;
  private target: ScanTarget;

  constructor(
    private readonly gm: GpuAddressSpace,
    private readonly allowed: (offset: number) => boolean,
    private readonly limits: ScanLimits,
  ) {
    this.space = gm;
    this.target = { engine: 'rcs', ggtt: gm };
  }

  scanRing(start: number, size: number, head: number, tail: number, target?: ScanTarget): ModelOutcome {
    this.reset(target);
    if (!this.gm.inside(start, size) || start % GTT_PAGE_SIZE !== 0) {
      return this.out(
        new Refused(
          `the ring at GM 0x${start.toString(16)} (${size} bytes) is not inside this vGPU's graphics memory`,
          start,
        ),
      );
    }
    if (head >= size || tail >= size || head % 4 !== 0 || tail % 8 !== 0) {
      return this.out(
        new Refused(
          `ring head 0x${head.toString(16)} or tail 0x${tail.toString(16)} is outside the ${size}-byte ring`,
          start,
        ),
      );
    }
    try {
      this.ringStart = start;
      this.ringEnd = start + size;
      const total = (tail - head + size) % size;
      this.space = this.gm;
      this.addr = start + head;
      let consumed = 0;
      while (consumed < total) {
        const before = this.scanned;
        const next = this.command(0);
        consumed += (this.scanned - before) * 4;
        if (next.to === 'batch') {
          const back = this.addr;
          this.ringStart = 0;
          this.ringEnd = 0;
          this.batch(next.space, next.at, 1);
          this.ringStart = start;
          this.ringEnd = start + size;
          this.space = this.gm;
          this.addr = back;
        }
      }
      if (consumed !== total) throw new Refused('a command in the ring runs past the tail', this.addr);
      return this.out();
    } catch (e) {
      if (e instanceof Refused) return this.out(e);
      throw e;
    }
  }

  scanBatch(start: number, target?: ScanTarget): ModelOutcome {
    this.reset(target);
    try {
      this.batch(this.gm, start, 1);
      return this.out();
    } catch (e) {
      if (e instanceof Refused) return this.out(e);
      throw e;
    }
  }

  private reset(target: ScanTarget | undefined): void {
    this.target = target ?? { engine: 'rcs', ggtt: this.gm };
    this.trace = [];
    this.scanned = 0;
    this.commands = 0;
    this.ringStart = 0;
    this.ringEnd = 0;
  }

  private out(refused?: Refused): ModelOutcome {
    const result: ScanResult =
      refused === undefined
        ? { ok: true, dwords: this.scanned, traceLength: this.trace.length, commands: this.commands }
        : { ok: false, problem: refused.problem, address: refused.address };
    return { result, trace: this.trace };
  }

  private batch(space: GpuAddressSpace, start: number, depth: number): void {
    if (depth > this.limits.maxDepth)
      throw new Refused(`batch buffers nest deeper than ${this.limits.maxDepth} levels`, start);
    this.space = space;
    this.addr = start;
    for (;;) {
      const next = this.command(depth);
      if (next.to === 'end') return;
      if (next.to === 'batch') {
        if (next.second) {
          const from = this.space;
          const back = this.addr;
          this.batch(next.space, next.at, depth + 1);
          this.space = from;
          this.addr = back;
        } else {
          this.space = next.space;
          this.addr = next.at;
        }
      }
    }
  }

  private fetch(): number {
    if (this.scanned >= this.limits.maxDwords) {
      throw new Refused(
        `the submission has more than ${this.limits.maxDwords} dwords of commands (a batch that loops?)`,
        this.addr,
      );
    }
    if (this.ringEnd !== 0 && this.addr >= this.ringEnd) this.addr = this.ringStart;
    const page = this.space.pageWords(this.addr);
    if (page === undefined || this.addr % 4 !== 0) {
      const where = this.space === this.gm ? 'GM' : 'PPGTT address';
      throw new Refused(
        `commands at ${where} 0x${this.addr.toString(16)} are not in mapped graphics memory of this vGPU`,
        this.addr,
      );
    }
    const word = page.words[page.base + ((this.addr % GTT_PAGE_SIZE) >>> 2)];
    this.scanned++;
    this.addr += 4;
    return word;
  }

  private refuse(problem: string): never {
    throw new Refused(problem, this.addr);
  }

  private command(depth: number): Next {
    const dw0 = this.fetch();
    if (dw0 === 0) return NEXT;
    const decoded = decodeCommand(dw0, this.target.engine);
    if (typeof decoded === 'string') this.refuse(decoded);
    if (decoded.kind === KIND.NOOP_1) return NEXT;
    const c = [dw0];
    while (c.length < decoded.length) c.push(this.fetch());
    this.commands++;
    return this.audit(decoded.name, decoded.kind, c, depth);
  }

  private emit(kind: CmdKind, flags: number, c: readonly number[]): Next {
    this.trace.push(kind | flags, c.length, ...c);
    return NEXT;
  }

  private spaceFor(name: string, ggtt: boolean): GpuAddressSpace {
    if (ggtt) return this.gm;
    if (this.target.ppgtt === undefined)
      this.refuse(`${name} through the PPGTT, which ring-buffer mode does not have`);
    return this.target.ppgtt;
  }

  private memory(name: string, kind: CmdKind, c: number[], ggtt: boolean, at: number, bytes: number): Next {
    const space = this.spaceFor(name, ggtt);
    if (!space.inside(at, bytes))
      this.refuse(`${name} to ${ggtt ? 'GM' : 'PPGTT address'} 0x${at.toString(16)}, outside this vGPU`);
    return this.emit(kind, ggtt ? 0 : TRACE_PPGTT, c);
  }

  /** A register operand: refused unless whitelisted, else rewritten to its offset. */
  private register(name: string, c: number[], k: number, verb: string): void {
    const offset = c[k] & 0x7ffffc;
    if (!this.allowed(offset))
      this.refuse(`${name} ${verb} register 0x${offset.toString(16)}, which is not whitelisted`);
    c[k] = offset;
  }

  private audit(name: string, kind: CmdKind, c: number[], depth: number): Next {
    const len = c.length;
    switch (kind) {
      case KIND.STATE:
        return NEXT;
      case KIND.BB_END:
        if (depth === 0) this.refuse('MI_BATCH_BUFFER_END in the ring');
        return { to: 'end' };
      case KIND.BB_START: {
        if (len !== 3) this.refuse(`MI_BATCH_BUFFER_START of ${len} dwords (3 expected on gen8)`);
        const ppgtt = (c[0] & MI_BATCH_PPGTT_GEN8) !== 0;
        const space = this.spaceFor('MI_BATCH_BUFFER_START', !ppgtt);
        const at = gpuAddress(c[1], c[2], 3);
        if (!space.inside(at, 4)) {
          this.refuse(
            `MI_BATCH_BUFFER_START to ${ppgtt ? 'PPGTT address' : 'GM'} 0x${at.toString(16)}, outside this vGPU`,
          );
        }
        const second = (c[0] & MI_BATCH_SECOND_LEVEL) !== 0;
        if (depth === 0) {
          if (second) this.refuse('a second-level batch started from the ring');
          return { to: 'batch', space, at, second: true };
        }
        if (second && depth + 1 > this.limits.maxDepth)
          this.refuse(`batch buffers nest deeper than ${this.limits.maxDepth} levels`);
        return { to: 'batch', space, at, second };
      }
      case KIND.USER_INTERRUPT:
      case KIND.STORE_INDEX:
        return this.emit(kind, 0, c);
      case KIND.STORE_DWORD:
        if (len < 4) this.refuse(`${name} of ${len} dwords (4 or more expected)`);
        return this.memory(
          name,
          kind,
          c,
          (c[0] & MI_USE_GGTT) !== 0,
          gpuAddress(c[1], c[2], 3),
          4 * (len - 3),
        );
      case KIND.LRI:
        if ((len - 1) % 2 !== 0) this.refuse(`${name} of ${len} dwords is not offset/value pairs`);
        for (let k = 1; k < len; k += 2) this.register(name, c, k, 'to');
        return this.emit(kind, 0, c);
      case KIND.SRM:
      case KIND.LRM:
        if (len < 4) this.refuse(`${name} of ${len} dwords (4 expected)`);
        this.register(name, c, 1, 'of');
        return this.memory(name, kind, c, (c[0] & MI_USE_GGTT) !== 0, gpuAddress(c[2], c[3], 3), 4);
      case KIND.LRR:
        if (len < 3) this.refuse(`${name} of ${len} dwords (3 expected)`);
        this.register(name, c, 1, 'of');
        this.register(name, c, 2, 'of');
        return this.emit(kind, 0, c);
      case KIND.PIPE_CONTROL: {
        if (len < 5) this.refuse(`${name} of ${len} dwords (6 expected on gen8)`);
        const op = (c[1] >>> 14) & 3;
        if (op === 0 || c[1] & PC_STORE_DATA_INDEX) return this.emit(kind, 0, c);
        return this.memory(name, kind, c, (c[1] & PC_GLOBAL_GTT) !== 0, gpuAddress(c[2], c[3], 7), 8);
      }
      case KIND.FLUSH_DW: {
        const op = (c[0] >>> 14) & 3;
        if (op === 0 || c[0] & FLUSH_DW_STORE_INDEX) return this.emit(kind, 0, c);
        if (len < 4) this.refuse(`${name} with a post-sync write of ${len} dwords (4 or 5 expected)`);
        const ggtt = (c[1] & FLUSH_DW_USE_GTT) !== 0;
        return this.memory(name, kind, c, ggtt, gpuAddress(c[1], c[2], 7), op === 1 ? 4 * (len - 3) : 8);
      }
      case KIND.SEMAPHORE_WAIT: {
        if (len < 4) this.refuse(`${name} of ${len} dwords (4 expected)`);
        const ggtt = (c[0] & MI_USE_GGTT) !== 0;
        const space = this.spaceFor(name, ggtt);
        const at = gpuAddress(c[2], c[3], 3);
        if (!space.inside(at, 4)) this.refuse(`${name} on memory at 0x${at.toString(16)}, outside this vGPU`);
        return this.emit(kind, ggtt ? 0 : TRACE_PPGTT, c);
      }
      case KIND.COLOR_BLT: {
        if (len !== 7) this.refuse(`XY_COLOR_BLT of ${len} dwords (7 expected on gen8)`);
        const bpp = BLT_BYTES_PER_PIXEL[(c[1] >>> 24) & 3];
        const pitch = c[1] & 0xffff;
        const [x1, y1, x2, y2] = [c[2] & 0xffff, c[2] >>> 16, c[3] & 0xffff, c[3] >>> 16];
        const dst = c[4] + (c[5] & 0xffff) * 2 ** 32;
        if (x2 > x1 && y2 > y1) {
          if (x2 * bpp > pitch)
            this.refuse(`XY_COLOR_BLT rows of ${x2 * bpp} bytes exceed the ${pitch}-byte pitch`);
          const first = dst + y1 * pitch + x1 * bpp;
          const end = dst + (y2 - 1) * pitch + x2 * bpp;
          if (!(this.target.ppgtt ?? this.gm).inside(first, end - first)) {
            this.refuse(
              `XY_COLOR_BLT rectangle at GM 0x${first.toString(16)}..0x${end.toString(16)} is outside this vGPU`,
            );
          }
        }
        return this.emit(KIND.COLOR_BLT, this.target.ppgtt ? TRACE_PPGTT : 0, c);
      }
      default:
        return this.refuse(`${name} has no execution`);
    }
  }
}
