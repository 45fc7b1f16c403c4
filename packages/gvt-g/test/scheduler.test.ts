import { createFakeClock } from '@vfiokit/conformance';
import { describe, expect, it } from 'vitest';
import { GVT_TIME_SLICE_NS, type SchedulableVgpu, TimeSliceScheduler } from '../src/index.js';

function busy(weight: number): SchedulableVgpu & { slices: number; idle: boolean } {
  return {
    weight,
    slices: 0,
    idle: false,
    hasPendingWork() {
      return !this.idle;
    },
    runSlice() {
      this.slices++;
    },
  };
}

describe('the time-based scheduler', () => {
  it('gives busy vGPUs their weight share within 2% over 10,000 slices', () => {
    const s = new TimeSliceScheduler();
    const vgpus = [busy(2), busy(4), busy(8), busy(16)];
    for (const v of vgpus) s.add(v);
    for (let i = 0; i < 10_000; i++) s.tick();
    const total = vgpus.reduce((n, v) => n + v.weight, 0);
    for (const v of vgpus) {
      const share = v.slices / 10_000;
      expect(Math.abs(share - v.weight / total)).toBeLessThan(0.02);
    }
    expect(s.usedNs(vgpus[3])).toBe(vgpus[3].slices * GVT_TIME_SLICE_NS);
  });

  it('gives an idle vGPU time to the busy ones, still in proportion to their weights', () => {
    const s = new TimeSliceScheduler();
    const [a, b, idle] = [busy(2), busy(4), busy(8)];
    idle.idle = true;
    for (const v of [a, b, idle]) s.add(v);
    for (let i = 0; i < 10_000; i++) s.tick();
    expect(idle.slices).toBe(0);
    expect(a.slices + b.slices).toBe(10_000);
    expect(Math.abs(b.slices / 10_000 - 2 / 3)).toBeLessThan(0.02);
  });

  it('carries a vGPU unused time over within the ten balance stages', () => {
    const s = new TimeSliceScheduler();
    const [a, b] = [busy(4), busy(4)];
    s.add(a);
    s.add(b);
    b.idle = true;
    for (let i = 0; i < 100; i++) s.tick(); // period 1: a alone
    expect(s.leftNs(b)).toBe(50 * GVT_TIME_SLICE_NS);
    b.idle = false;
    for (let i = 0; i < 100; i++) s.tick(); // period 2: b has 100 ms of credit, a has none
    expect(b.slices).toBeGreaterThan(a.slices - 100);
    expect(b.slices).toBeGreaterThanOrEqual(90);
  });

  it('hands out slices on the clock only while there is work', () => {
    const clock = createFakeClock();
    const s = new TimeSliceScheduler(clock);
    const v = busy(2);
    s.add(v);
    s.kick();
    clock.advance(5 * GVT_TIME_SLICE_NS);
    expect(v.slices).toBe(5);
    v.idle = true;
    clock.advance(10 * GVT_TIME_SLICE_NS);
    expect(clock.pending).toBe(0);
    s.remove(v);
    expect(s.active).toBe(0);
  });
});
