/**
 * The time-sliced scheduler of one physical GPU's engine, with NVML's policies:
 *
 * - BEST_EFFORT (1): round robin over vGPUs that have work; a vGPU without work is skipped and one
 *   that finishes early yields the rest of its slice, so idle time goes to whoever is busy.
 * - EQUAL_SHARE (2): round robin over every running vGPU (open and not stopped for migration),
 *   busy or not: each gets one slice per turn, so N running vGPUs get 1/N each.
 * - FIXED_SHARE (3): one slice per placement slot of the GPU's type (max instances), whether a
 *   vGPU sits there or not: each vGPU gets 1 / max-instances even while others idle.
 *
 * Time slices are in nanoseconds (NVML reports and sets `timeslice` in ns). Adaptive round robin
 * (ARR, best effort only) compensates a vGPU's slice by the running average of the slice time it
 * left unused: the average moves towards each new sample by 1/avgFactor, and the compensation is
 * refreshed every `frequency` turns of that vGPU (NVML names the two parameters; the exact rule is
 * this model's).
 *
 * The scheduler runs simulated engine time: `runUntil(t)` hands out slices until time t. A
 * decision allocates nothing.
 */
import { VfioError } from '@vfiokit/core';

// nvml.h: NVML_VGPU_SCHEDULER_POLICY_*
export const VGPU_SCHEDULER_POLICY_UNKNOWN = 0;
export const VGPU_SCHEDULER_POLICY_BEST_EFFORT = 1;
export const VGPU_SCHEDULER_POLICY_EQUAL_SHARE = 2;
export const VGPU_SCHEDULER_POLICY_FIXED_SHARE = 3;
// nvml.h: NVML_VGPU_SCHEDULER_ARR_*
export const VGPU_SCHEDULER_ARR_DEFAULT = 0;
export const VGPU_SCHEDULER_ARR_DISABLE = 1;
export const VGPU_SCHEDULER_ARR_ENABLE = 2;

export type SchedulerPolicy =
  | typeof VGPU_SCHEDULER_POLICY_BEST_EFFORT
  | typeof VGPU_SCHEDULER_POLICY_EQUAL_SHARE
  | typeof VGPU_SCHEDULER_POLICY_FIXED_SHARE;

/** Limits of this model (NVML reports them per GPU in nvmlVgpuSchedulerCapabilities_t). */
export const SCHEDULER_CAPS = Object.freeze({
  minTimesliceNs: 100_000,
  maxTimesliceNs: 30_000_000,
  minAvgFactor: 1,
  maxAvgFactor: 64,
  minFrequency: 1,
  maxFrequency: 1000,
});

/** Default slice: 2 ms. */
export const DEFAULT_TIMESLICE_NS = 2_000_000;

export interface SchedulerSettings {
  readonly policy: SchedulerPolicy;
  readonly timesliceNs: number;
  readonly arrMode: number;
  readonly avgFactor: number;
  readonly frequency: number;
}

/** What the scheduler runs: one vGPU's work. */
export interface EngineClient {
  /** Placement slot (FIXED_SHARE turns are bound to slots). */
  readonly slot: number;
  /** Open and not stopped: it counts for EQUAL_SHARE. */
  running(): boolean;
  /** Has work that can run at `now`. */
  runnable(now: number): boolean;
  /** Run for at most `budgetNs` engine time starting at `now`; returns the time used (<= budget). */
  run(budgetNs: number, now: number): number;
  /** The earliest engine time after `now` at which blocked work (a frame-rate limit) can run; Infinity if none. */
  nextWake?(now: number): number;
}

interface Entry {
  client: EngineClient;
  busyNs: number;
  avgUnused: number;
  compensation: number;
  turns: number;
}

export class GpuScheduler {
  #settings: SchedulerSettings;
  #entries: Entry[] = [];
  /** Placement slots for FIXED_SHARE turns. */
  #slots: number;
  #next = 0;
  #now = 0;
  #idleNs = 0;
  #decisions = 0;

  constructor(settings: Partial<SchedulerSettings> = {}, slots = 1) {
    this.#settings = checkSettings({
      policy: settings.policy ?? VGPU_SCHEDULER_POLICY_BEST_EFFORT,
      timesliceNs: settings.timesliceNs ?? DEFAULT_TIMESLICE_NS,
      arrMode: settings.arrMode ?? VGPU_SCHEDULER_ARR_DEFAULT,
      avgFactor: settings.avgFactor ?? 4,
      frequency: settings.frequency ?? 8,
    });
    this.#slots = Math.max(1, slots);
  }

  get settings(): SchedulerSettings {
    return this.#settings;
  }

  /** Change the policy (the host-wide knob); validated like the NVML setter would. */
  configure(settings: Partial<SchedulerSettings>): void {
    this.#settings = checkSettings({ ...this.#settings, ...settings });
  }

  /** FIXED_SHARE: the number of turns in a round (max instances of the GPU's current type). */
  setSlots(slots: number): void {
    this.#slots = Math.max(1, slots);
  }

  get now(): number {
    return this.#now;
  }

  get idleNs(): number {
    return this.#idleNs;
  }

  get decisions(): number {
    return this.#decisions;
  }

  add(client: EngineClient): void {
    this.#entries.push({ client, busyNs: 0, avgUnused: 0, compensation: 0, turns: 0 });
  }

  remove(client: EngineClient): void {
    const i = this.#entries.findIndex((e) => e.client === client);
    if (i >= 0) this.#entries.splice(i, 1);
    if (this.#next >= this.#entries.length) this.#next = 0;
  }

  /** Engine time a client has used. */
  busyNs(client: EngineClient): number {
    return this.#entries.find((e) => e.client === client)?.busyNs ?? 0;
  }

  resetStats(): void {
    for (const e of this.#entries) e.busyNs = 0;
    this.#idleNs = 0;
  }

  /** Move engine time to `t` without running anything (time passed while nothing was asked). */
  skipTo(t: number): void {
    if (t > this.#now) this.#now = t;
  }

  /** Hand out slices until engine time `t`. */
  runUntil(t: number): void {
    let guard = 0;
    while (this.#now < t) {
      const left = t - this.#now;
      const step = this.step(left);
      if (step <= 0 || ++guard > 10_000_000) {
        // Nothing can run: idle until blocked work wakes up, or until t.
        const wake = Math.min(t, this.#nextWake());
        this.#idleNs += wake - this.#now;
        this.#now = wake;
        if (wake >= t || guard > 10_000_000) return;
      }
    }
  }

  #nextWake(): number {
    let wake = Number.POSITIVE_INFINITY;
    for (const e of this.#entries) {
      if (e.client.running() && e.client.nextWake) wake = Math.min(wake, e.client.nextWake(this.#now));
    }
    return Math.max(wake, this.#now + 1);
  }

  /**
   * One scheduling decision and the slice it grants, bounded by `limit` ns. Returns the engine
   * time that passed (0 when nothing at all could run under best effort).
   */
  step(limit: number): number {
    this.#decisions++;
    const s = this.#settings;
    const entries = this.#entries;
    const n = entries.length;
    if (s.policy === VGPU_SCHEDULER_POLICY_FIXED_SHARE) {
      const slot = this.#next % this.#slots;
      this.#next = (slot + 1) % this.#slots;
      const slice = Math.min(limit, s.timesliceNs);
      let used = 0;
      for (let i = 0; i < n; i++) {
        const e = entries[i];
        if (e.client.slot === slot && e.client.running() && e.client.runnable(this.#now)) {
          used = e.client.run(slice, this.#now);
          e.busyNs += used;
          break;
        }
      }
      this.#idleNs += slice - used;
      this.#now += slice;
      return slice;
    }
    if (n === 0) return 0;
    if (s.policy === VGPU_SCHEDULER_POLICY_EQUAL_SHARE) {
      for (let k = 0; k < n; k++) {
        const i = (this.#next + k) % n;
        const e = entries[i];
        if (!e.client.running()) continue;
        this.#next = (i + 1) % n;
        const slice = Math.min(limit, s.timesliceNs);
        const used = e.client.runnable(this.#now) ? e.client.run(slice, this.#now) : 0;
        e.busyNs += used;
        this.#idleNs += slice - used;
        this.#now += slice;
        return slice;
      }
      return 0;
    }
    // BEST_EFFORT
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n;
      const e = entries[i];
      if (!e.client.running() || !e.client.runnable(this.#now)) continue;
      this.#next = (i + 1) % n;
      const arr = s.arrMode === VGPU_SCHEDULER_ARR_ENABLE;
      const full = s.timesliceNs + (arr ? e.compensation : 0);
      const slice = Math.min(limit, full);
      const used = e.client.run(slice, this.#now);
      e.busyNs += used;
      if (arr) {
        e.avgUnused += (full - used - e.avgUnused) / s.avgFactor;
        if (++e.turns % s.frequency === 0) {
          e.compensation = Math.min(s.timesliceNs, Math.max(0, Math.round(e.avgUnused)));
        }
      }
      // A vGPU that used nothing still costs the engine a context switch's worth of time.
      const passed = Math.max(used, 1);
      this.#now += passed;
      return passed;
    }
    return 0;
  }
}

function checkSettings(s: SchedulerSettings): SchedulerSettings {
  const c = SCHEDULER_CAPS;
  const bad = (what: string, hint: string) => new VfioError('EINVAL', `vGPU scheduler: ${what}.`, { hint });
  if (
    s.policy !== VGPU_SCHEDULER_POLICY_BEST_EFFORT &&
    s.policy !== VGPU_SCHEDULER_POLICY_EQUAL_SHARE &&
    s.policy !== VGPU_SCHEDULER_POLICY_FIXED_SHARE
  ) {
    throw bad(
      `policy ${String(s.policy)} is not a scheduler policy`,
      'Use 1 (best effort), 2 (equal share) or 3 (fixed share).',
    );
  }
  if (
    !Number.isSafeInteger(s.timesliceNs) ||
    s.timesliceNs < c.minTimesliceNs ||
    s.timesliceNs > c.maxTimesliceNs
  ) {
    throw bad(
      `time slice ${String(s.timesliceNs)} ns is outside ${c.minTimesliceNs}..${c.maxTimesliceNs} ns`,
      'Give the slice in nanoseconds within the capability range.',
    );
  }
  if (
    ![VGPU_SCHEDULER_ARR_DEFAULT, VGPU_SCHEDULER_ARR_DISABLE, VGPU_SCHEDULER_ARR_ENABLE].includes(s.arrMode)
  ) {
    throw bad(`ARR mode ${String(s.arrMode)} is unknown`, 'Use 0 (default), 1 (disable) or 2 (enable).');
  }
  if (s.arrMode === VGPU_SCHEDULER_ARR_ENABLE && s.policy !== VGPU_SCHEDULER_POLICY_BEST_EFFORT) {
    throw bad('adaptive round robin works with best effort only', 'Use policy 1 with ARR, or disable ARR.');
  }
  if (!Number.isInteger(s.avgFactor) || s.avgFactor < c.minAvgFactor || s.avgFactor > c.maxAvgFactor) {
    throw bad(
      `ARR averaging factor ${String(s.avgFactor)} is outside ${c.minAvgFactor}..${c.maxAvgFactor}`,
      'Pick a factor within the range.',
    );
  }
  if (!Number.isInteger(s.frequency) || s.frequency < c.minFrequency || s.frequency > c.maxFrequency) {
    throw bad(
      `ARR frequency ${String(s.frequency)} is outside ${c.minFrequency}..${c.maxFrequency}`,
      'Pick a frequency within the range.',
    );
  }
  return Object.freeze({ ...s });
}
