import { randomUUID } from 'node:crypto';
import { VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type EngineClient,
  GpuScheduler,
  METHOD_MEMSET,
  METHOD_PRESENT,
  methodHeader,
  VGPU_SCHEDULER_ARR_ENABLE,
  VGPU_SCHEDULER_POLICY_BEST_EFFORT,
  VGPU_SCHEDULER_POLICY_EQUAL_SHARE,
  VGPU_SCHEDULER_POLICY_FIXED_SHARE,
} from '../src/index.js';
import { type OpenVgpu, openVgpu, rig } from './helpers.js';

/** A client that always has work and uses every ns it is given. */
function busy(slot: number, isRunning = () => true): EngineClient & { used: number } {
  return {
    slot,
    used: 0,
    running: isRunning,
    runnable: () => true,
    run(budget) {
      this.used += budget;
      return budget;
    },
  };
}

function idle(slot: number): EngineClient {
  return { slot, running: () => true, runnable: () => false, run: () => 0 };
}

const SECOND = 1_000_000_000;

describe('scheduler policies (NVML values)', () => {
  it('equal share gives each busy vGPU 1/N within 2%', () => {
    const s = new GpuScheduler({ policy: VGPU_SCHEDULER_POLICY_EQUAL_SHARE, timesliceNs: 1_000_000 });
    const clients = [busy(0), busy(1), busy(2)];
    for (const c of clients) s.add(c);
    s.runUntil(SECOND);
    for (const c of clients) expect(Math.abs(s.busyNs(c) / SECOND - 1 / 3)).toBeLessThan(0.02);
  });

  it('equal share divides by running vGPUs, so the share grows when one stops', () => {
    let thirdRuns = true;
    const s = new GpuScheduler({ policy: VGPU_SCHEDULER_POLICY_EQUAL_SHARE, timesliceNs: 1_000_000 });
    const a = busy(0);
    const b = busy(1);
    s.add(a);
    s.add(b);
    s.add(busy(2, () => thirdRuns));
    thirdRuns = false;
    s.runUntil(SECOND);
    expect(Math.abs(s.busyNs(a) / SECOND - 0.5)).toBeLessThan(0.02);
  });

  it('fixed share gives 1/max-instances even while the others idle', () => {
    const s = new GpuScheduler({ policy: VGPU_SCHEDULER_POLICY_FIXED_SHARE, timesliceNs: 1_000_000 }, 4);
    const a = busy(0);
    s.add(a);
    s.add(idle(1));
    s.runUntil(SECOND);
    expect(Math.abs(s.busyNs(a) / SECOND - 0.25)).toBeLessThan(0.02);
    expect(s.idleNs).toBeGreaterThan(0.7 * SECOND);
  });

  it('best effort hands idle time to whoever is busy', () => {
    const s = new GpuScheduler({ policy: VGPU_SCHEDULER_POLICY_BEST_EFFORT, timesliceNs: 1_000_000 });
    const a = busy(0);
    s.add(a);
    s.add(idle(1));
    s.add(idle(2));
    s.runUntil(SECOND);
    expect(s.busyNs(a) / SECOND).toBeGreaterThan(0.99);
  });

  it('adaptive round robin compensates a vGPU that leaves part of its slices unused', () => {
    const s = new GpuScheduler({
      policy: VGPU_SCHEDULER_POLICY_BEST_EFFORT,
      timesliceNs: 1_000_000,
      arrMode: VGPU_SCHEDULER_ARR_ENABLE,
      avgFactor: 2,
      frequency: 1,
    });
    const shy: EngineClient & { budgets: number[] } = {
      slot: 0,
      budgets: [],
      running: () => true,
      runnable: () => true,
      run(budget) {
        this.budgets.push(budget);
        return 400_000;
      },
    };
    s.add(shy);
    s.add(busy(1));
    s.runUntil(100_000_000);
    expect(shy.budgets[0]).toBe(1_000_000);
    expect(Math.max(...shy.budgets)).toBeGreaterThan(1_500_000);
    expect(Math.max(...shy.budgets)).toBeLessThanOrEqual(2_000_000);
  });

  it('refuses settings outside the capabilities', () => {
    const s = new GpuScheduler();
    for (const bad of [
      { policy: 7 as never },
      { timesliceNs: 10 },
      { timesliceNs: 1.5e6 + 0.5 },
      { arrMode: 9 },
      { arrMode: VGPU_SCHEDULER_ARR_ENABLE, policy: VGPU_SCHEDULER_POLICY_EQUAL_SHARE as never },
      { avgFactor: 0 },
      { frequency: 100000 },
    ]) {
      expect(() => s.configure(bad)).toThrow(VfioError);
    }
    expect(s.settings.policy).toBe(VGPU_SCHEDULER_POLICY_BEST_EFFORT);
  });

  it('keeps every vGPU within 2% of its equal share for any number of busy vGPUs and any slice', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 32 }),
        fc.integer({ min: 100_000, max: 4_000_000 }),
        (n, slice) => {
          const s = new GpuScheduler({ policy: VGPU_SCHEDULER_POLICY_EQUAL_SHARE, timesliceNs: slice });
          const clients = Array.from({ length: n }, (_, i) => busy(i));
          for (const c of clients) s.add(c);
          const total = slice * n * 50;
          s.runUntil(total);
          for (const c of clients) expect(Math.abs(s.busyNs(c) / total - 1 / n)).toBeLessThan(0.02);
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('vGPU channels under the GPU scheduler', () => {
  function hog(v: OpenVgpu): void {
    // A runaway channel: a ring full of large memsets that the guest keeps re-arming.
    const [ch, pb] = v.channel(4096);
    const target = v.alloc(65536);
    const words: number[] = [];
    for (let i = 0; i < 255; i++) words.push(methodHeader(METHOD_MEMSET), target, 65536, i);
    v.push(ch, pb, words.slice(0, 1020));
  }

  it('shares the engine equally between two runaway vGPUs on one GPU', () => {
    const r = rig({ scheduler: { policy: VGPU_SCHEDULER_POLICY_EQUAL_SHARE, timesliceNs: 1_000_000 } });
    const a = openVgpu(r.t4Parent, 'nvidia-319', randomUUID());
    const b = openVgpu(r.t4Parent, 'nvidia-319', randomUUID());
    hog(a);
    hog(b);
    r.t4.scheduler.resetStats();
    r.t4.advance(20_000_000);
    const sa = r.t4.scheduler.busyNs(a.device);
    const sb = r.t4.scheduler.busyNs(b.device);
    expect(Math.abs(sa - sb) / (sa + sb)).toBeLessThan(0.04);
  });

  it('limits a Q profile’s presents to its frame-rate limit (60 fps)', () => {
    const r = rig({ scheduler: { timesliceNs: 1_000_000 } });
    const v = openVgpu(r.adaParent, 'nvidia-941');
    const [ch, pb] = v.channel(4096);
    const words: number[] = [];
    for (let i = 0; i < 300; i++) words.push(methodHeader(METHOD_PRESENT), 0);
    v.push(ch, pb, words);
    r.ada.advance(SECOND);
    expect(v.device.engine.frames).toBeGreaterThanOrEqual(59);
    expect(v.device.engine.frames).toBeLessThanOrEqual(61);
  });

  it('does not limit a compute (C) profile', () => {
    const r = rig();
    const v = openVgpu(r.t4Parent, 'nvidia-319');
    const [ch, pb] = v.channel(4096);
    const words: number[] = [];
    for (let i = 0; i < 300; i++) words.push(methodHeader(METHOD_PRESENT), 0);
    v.push(ch, pb, words);
    r.t4.advance(SECOND / 10);
    expect(v.device.engine.frames).toBe(300);
  });

  it('runs nothing for a vGPU that is stopped for migration', () => {
    const r = rig();
    const v = openVgpu(r.t4Parent, 'nvidia-319');
    const [ch, pb] = v.channel(4096);
    const t = v.alloc(4096);
    v.file.setMigrationState(2 /* RUNNING */);
    v.file.setMigrationState(1 /* STOP */);
    v.push(ch, pb, [methodHeader(METHOD_MEMSET), t, 4096, 0x01010101]);
    r.t4.advance(10_000_000);
    expect(v.fbRead(t, 1)[0]).toBe(0);
    v.file.setMigrationState(2);
    r.t4.advance(10_000_000);
    expect(v.fbRead(t, 1)[0]).toBe(1);
  });
});
