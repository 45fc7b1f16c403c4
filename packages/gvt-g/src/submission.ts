/**
 * A vGPU's command submission, the scheduler-facing part of GvtgVgpu: the command streamer and
 * execlist of every engine, and the queue of audited workloads the time-slice scheduler runs
 * (gvt's scheduler.c / execlist.c side). Ring-buffer mode audits the render ring between HEAD and
 * TAIL when TAIL is written; execlist mode queues each submitted element, audits it when its
 * slice comes, and reports it complete in the CSB (or leaves the context hung when its scan fails).
 */
import type { DeviceContext, Logger } from '@vfiokit/core';
import type { CommandScanner, ScanResult } from './cmd-parser.js';
import {
  GT_RENDER_USER_INTERRUPT,
  GTT_PAGE_SIZE,
  HEAD_ADDR,
  RING_CTL,
  RING_HEAD,
  RING_NR_PAGES,
  RING_START,
  RING_TAIL,
  RING_VALID,
  TAIL_ADDR,
} from './constants.js';
import { CommandStreamer } from './engine.js';
import { type ContextElement, EngineExeclist } from './execlist.js';
import type { GmAccess } from './ggtt.js';
import type { VgpuInterrupts } from './interrupt.js';
import type { Vreg } from './mmio/index.js';
import { ENGINES, type EngineDesc, GT_CONTEXT_SWITCH_INTERRUPT, RCS0, RING } from './mmio/regs.js';
import type { VgpuStats } from './vgpu.js';
import { runContextWorkload } from './workload.js';

/** Queued work: a ring-buffer-mode submission of the render ring, or one execlist element. */
type Workload =
  | { readonly kind: 'ring'; readonly trace: Uint32Array; readonly tail: number }
  | { readonly kind: 'context'; readonly engine: EngineDesc; readonly element: ContextElement };

export interface SubmissionDeps {
  /** The vGPU's name, for log lines. */
  readonly name: string;
  readonly regs: Vreg;
  readonly gm: GmAccess;
  readonly scanner: CommandScanner;
  readonly irq: VgpuInterrupts;
  /** Told when work was queued. */
  readonly scheduler: { kick(): void };
  /** Counted into as workloads are submitted, refused and completed. */
  readonly stats: VgpuStats;
  /** The vGPU's logger while it is open. */
  log(): Logger | undefined;
  /** The device context while the vGPU is open (the DMA space and dirty log a workload writes through). */
  context(): DeviceContext | undefined;
}

export class VgpuSubmission {
  /** The render engine's command streamer (ring-buffer mode runs there). */
  readonly render: CommandStreamer;
  private readonly streamers = new Map<number, CommandStreamer>();
  private readonly execlists = new Map<number, EngineExeclist>();
  private readonly queue: Workload[] = [];

  constructor(private readonly deps: SubmissionDeps) {
    const { regs, gm, irq } = deps;
    for (const e of ENGINES) {
      this.streamers.set(
        e.id,
        new CommandStreamer(gm, {
          writeRegister: (offset, value) => regs.writeDword(offset, value),
          readRegister: (offset) => regs.readDword(offset),
          userInterrupt: () => irq.engineEvent(e.id, GT_RENDER_USER_INTERRUPT),
          timestamp: () => BigInt(regs.readDword(e.base + RING.TIMESTAMP)),
        }),
      );
      this.execlists.set(
        e.id,
        new EngineExeclist(e, regs, {
          writeStatusPage: (hwsp, index, values) => {
            const bytes = new Uint8Array(4 * values.length);
            const dv = new DataView(bytes.buffer);
            values.forEach((v, k) => {
              dv.setUint32(4 * k, v >>> 0, true);
            });
            return gm.write(hwsp + 4 * index, bytes);
          },
          contextSwitch: (engine) => irq.engineEvent(engine.id, GT_CONTEXT_SWITCH_INTERRUPT),
          queue: (engine, element) => {
            this.queue.push({ kind: 'context', engine, element });
            deps.scheduler.kick();
          },
          dropQueued: (engine) => this.dropQueued(engine.id),
        }),
      );
    }
    this.render = this.streamers.get(RCS0)!;
  }

  // ---- register hooks ------------------------------------------------------------------------------

  /** RING_TAIL of the render ring was written: ring-buffer mode submits (execlist mode ignores it). */
  ringTailWritten(): void {
    if (!this.execlists.get(RCS0)?.enabled) this.submit();
  }

  /** GDRST reset these engines: their pending work is dropped (intel_gvt_reset_vgpu_locked). */
  resetEngines(mask: number): void {
    for (const [id, el] of this.execlists) if (mask & (1 << id)) el.reset();
    if (mask & (1 << RCS0)) this.dropQueued(RCS0, true);
  }

  elspWritten(engine: number, value: number): void {
    const el = this.execlists.get(engine);
    if (el === undefined) return;
    if (!el.enabled) {
      this.deps
        .log()
        ?.warn(
          `${this.deps.name}: ELSP of ${el.engine.name} written while execlists are off in RING_MODE; ignored.`,
        );
      return;
    }
    el.write(value);
  }

  execlistsEnabled(engine: number, on: boolean): void {
    const el = this.execlists.get(engine);
    if (el) el.enabled = on;
  }

  /** HWS_PGA of an engine was written: its execlist's status page moves to `gm`. */
  hwsWritten(engine: number, gm: number): void {
    const el = this.execlists.get(engine);
    if (el) el.hwsp = gm;
  }

  /** The execlist of an engine, for tests and statistics. */
  execlist(engine: number): EngineExeclist | undefined {
    return this.execlists.get(engine);
  }

  // ---- command submission ---------------------------------------------------------------------------

  /** RING_TAIL was written: audit what lies between HEAD and TAIL, queue it for the scheduler. */
  submit(): ScanResult | undefined {
    const { regs, scanner, stats } = this.deps;
    const ctl = regs.get(RING_CTL);
    const head = regs.get(RING_HEAD) & HEAD_ADDR;
    const tail = regs.get(RING_TAIL) & TAIL_ADDR;
    if ((ctl & RING_VALID) === 0 || head === tail) return undefined;
    const size = (((ctl & RING_NR_PAGES) >>> 12) + 1) * GTT_PAGE_SIZE;
    const start = regs.get(RING_START) & ~(GTT_PAGE_SIZE - 1);
    const result = scanner.scanRing(start >>> 0, size, head, tail);
    stats.workloadsSubmitted++;
    if (!result.ok) {
      stats.workloadsRefused++;
      stats.lastRefusal = result.problem;
      this.deps
        .log()
        ?.warn(
          `${this.deps.name}: submission refused by the command scanner: ${result.problem} (GM 0x${result.address.toString(16)}).`,
        );
      // The refused commands are consumed and never run.
      this.setHead(tail);
      return result;
    }
    this.queue.push({ kind: 'ring', trace: scanner.trace.slice(0, scanner.traceLength), tail });
    this.deps.scheduler.kick();
    return result;
  }

  hasPendingWork(): boolean {
    return this.queue.length > 0;
  }

  /** The vGPU owns the engine for a slice: its queued workloads run in order. */
  runSlice(): void {
    while (this.queue.length > 0) {
      const w = this.queue.shift()!;
      if (w.kind === 'ring') {
        this.render.execute(w.trace, w.trace.length);
        this.setHead(w.tail);
        this.deps.stats.workloadsCompleted++;
        continue;
      }
      this.runContext(w.engine, w.element);
    }
  }

  // ---- life cycle -----------------------------------------------------------------------------------

  /** The vGPU closed: queued work is dropped. */
  clear(): void {
    this.queue.length = 0;
  }

  /** Device reset: no queued work, every execlist off with no status page. */
  reset(): void {
    this.queue.length = 0;
    for (const el of this.execlists.values()) {
      el.reset();
      el.enabled = false;
      el.hwsp = 0;
    }
  }

  // ---- internals ------------------------------------------------------------------------------------

  /** Forget queued work of an engine (its execlist was preempted or reset). */
  private dropQueued(engine: number, ringToo = false): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const w = this.queue[i];
      if ((w.kind === 'context' && w.engine.id === engine) || (ringToo && w.kind === 'ring'))
        this.queue.splice(i, 1);
    }
  }

  /** One execlist element: audited, run, and reported complete in the CSB. */
  private runContext(engine: EngineDesc, element: ContextElement): void {
    const { stats } = this.deps;
    const el = this.execlists.get(engine.id)!;
    stats.workloadsSubmitted++;
    const ctx = this.deps.context();
    const r = runContextWorkload(
      {
        gm: this.deps.gm,
        scanner: this.deps.scanner,
        streamer: this.streamers.get(engine.id)!,
        dma: ctx?.dma,
        dirty: ctx?.dirty,
      },
      engine,
      element,
      el.hwsp,
    );
    if (!r.ok) {
      // scheduler.c: a workload that fails its scan is the guest's error; the context does not
      // complete (what ran is the audited part before the refused command, workload.ts), and
      // the guest's hang detection resets the engine.
      stats.workloadsRefused++;
      stats.engines[engine.name].refused++;
      stats.lastRefusal = r.problem;
      this.deps.log()?.warn(`${this.deps.name}: ${engine.name}: scan workload error: ${r.problem}`);
      el.hang();
      return;
    }
    stats.workloadsCompleted++;
    stats.engines[engine.name].completed++;
    stats.engines[engine.name].commands += r.run.commands;
    el.completed(element);
  }

  private setHead(offset: number): void {
    const regs = this.deps.regs;
    const head = regs.get(RING_HEAD);
    regs.set(RING_HEAD, ((head & ~HEAD_ADDR) | (offset & HEAD_ADDR)) >>> 0);
  }
}
