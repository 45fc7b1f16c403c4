/**
 * GVT-g's time-based scheduler (gvt/sched_policy.c), one per physical GPU.
 *
 * Every 1 ms slice the engine goes to one vGPU. Every 100 ms (a balance period) each active vGPU
 * is granted 100 ms × weight / Σ weights; what it did not use, or used beyond its grant, carries
 * over to the next periods, for GVT_TS_BALANCE_STAGE_NUM (10) periods, after which the books are
 * reset. A vGPU with work and time left runs, in least-recently-run order.
 *
 * One deliberate difference: when every vGPU with work has used up its time, GVT idles the
 * engine until the next period; here the engine goes to the one with the least debt per unit of
 * weight (debt carries over like unused time), so an idle vGPU's time goes to the busy ones in
 * proportion to their weights.
 * GVT's start-up priority window for a new vGPU (GVT_SCHED_VGPU_PRI_TIME) is not modelled.
 */
import type { Clock } from '@vfiokit/core';

/** GVT_DEFAULT_TIME_SLICE: 1 ms. */
export const GVT_TIME_SLICE_NS = 1_000_000;
/** GVT_TS_BALANCE_PERIOD_MS: 100 ms. */
export const GVT_TS_BALANCE_PERIOD_NS = 100_000_000;
/** GVT_TS_BALANCE_STAGE_NUM. */
export const GVT_TS_BALANCE_STAGE_NUM = 10;

/** What the scheduler needs of a vGPU. */
export interface SchedulableVgpu {
  readonly weight: number;
  /** Whether it has submitted work waiting for the engine. */
  hasPendingWork(): boolean;
  /** It owns the engine for one slice. */
  runSlice(): void;
}

interface Entry {
  readonly vgpu: SchedulableVgpu;
  allocatedNs: number;
  leftNs: number;
  /** Total engine time given, for statistics. */
  usedNs: number;
}

export class TimeSliceScheduler {
  private readonly entries: Entry[] = [];
  private ticks = 0;
  private stage = 0;
  private cancel: (() => void) | undefined;

  constructor(private readonly clock?: Clock) {}

  /** Activate a vGPU (it opened). */
  add(vgpu: SchedulableVgpu): void {
    if (this.entries.some((e) => e.vgpu === vgpu)) return;
    this.entries.push({ vgpu, allocatedNs: 0, leftNs: 0, usedNs: 0 });
    this.restartBooks();
  }

  /** Deactivate a vGPU (it closed or was removed). */
  remove(vgpu: SchedulableVgpu): void {
    const i = this.entries.findIndex((e) => e.vgpu === vgpu);
    if (i >= 0) this.entries.splice(i, 1);
    this.restartBooks();
    if (this.entries.length === 0) this.stop();
  }

  /** The set of active vGPUs changed: the next slice starts a new stage-0 balance. */
  private restartBooks(): void {
    this.ticks = 0;
    this.stage = 0;
  }

  get active(): number {
    return this.entries.length;
  }

  /** Engine time given to `vgpu` so far. */
  usedNs(vgpu: SchedulableVgpu): number {
    return this.entries.find((e) => e.vgpu === vgpu)?.usedNs ?? 0;
  }

  /** Time `vgpu` still has in this balance period (negative: debt). */
  leftNs(vgpu: SchedulableVgpu): number {
    return this.entries.find((e) => e.vgpu === vgpu)?.leftNs ?? 0;
  }

  /** Work was submitted: make sure slices are being handed out on the clock. */
  kick(): void {
    if (this.cancel !== undefined || this.clock === undefined) return;
    this.cancel = this.clock.schedule(GVT_TIME_SLICE_NS, () => {
      this.cancel = undefined;
      this.tick();
      if (this.entries.some((e) => e.vgpu.hasPendingWork())) this.kick();
    });
  }

  stop(): void {
    this.cancel?.();
    this.cancel = undefined;
  }

  /** One slice: rebalance when a period starts, pick a vGPU, let it run. Returns who ran. */
  tick(): SchedulableVgpu | undefined {
    if (this.ticks % (GVT_TS_BALANCE_PERIOD_NS / GVT_TIME_SLICE_NS) === 0) this.balance();
    this.ticks++;
    const next = this.pick();
    if (next === undefined) return undefined;
    // Least recently run goes first next time: move the chosen one to the tail.
    this.entries.splice(this.entries.indexOf(next), 1);
    this.entries.push(next);
    next.leftNs -= GVT_TIME_SLICE_NS;
    next.usedNs += GVT_TIME_SLICE_NS;
    next.vgpu.runSlice();
    return next.vgpu;
  }

  private pick(): Entry | undefined {
    let fallback: Entry | undefined;
    for (const e of this.entries) {
      if (!e.vgpu.hasPendingWork()) continue;
      if (e.leftNs > 0) return e;
      if (fallback === undefined || e.leftNs / e.vgpu.weight > fallback.leftNs / fallback.vgpu.weight)
        fallback = e;
    }
    return fallback;
  }

  /** gvt_balance_timeslice. */
  private balance(): void {
    const stage = this.stage++ % GVT_TS_BALANCE_STAGE_NUM;
    if (stage === 0) {
      let total = 0;
      for (const e of this.entries) total += e.vgpu.weight;
      for (const e of this.entries) {
        e.allocatedNs = total > 0 ? (GVT_TS_BALANCE_PERIOD_NS * e.vgpu.weight) / total : 0;
        e.leftNs = e.allocatedNs;
      }
    } else {
      for (const e of this.entries) e.leftNs += e.allocatedNs;
    }
  }
}
