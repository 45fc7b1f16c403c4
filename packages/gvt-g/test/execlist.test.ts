import { describe, expect, it } from 'vitest';
import {
  engineSummary,
  GTT_PAGE_SIZE,
  MI_BATCH_BUFFER_END,
  MI_BATCH_BUFFER_START_GEN8,
  MI_BATCH_PPGTT_GEN8,
  MI_NOOP,
  MI_STORE_DATA_IMM,
  MI_USE_GGTT,
  MI_USER_INTERRUPT,
  MiB,
  miInstr,
  miLoadRegisterImm,
} from '../src/index.js';
import { mapGm, newParent, type OpenVgpu, openVgpu } from './helpers.js';

const RCS = 0x2000;
const RAM = 0x100000;
const masked = (bits: number) => ((bits << 16) | bits) >>> 0;
const PIPE_CONTROL_QW_GGTT = [0x7a000004, (1 << 24) | (1 << 14)];
const MI_ARB_ON_OFF = miInstr(0x08, 1);

/**
 * A render context in GGTT pages backed by guest RAM, with a 4-level PPGTT in RAM; its status
 * page, context image and ring at GM `hi` (the high range unless told).
 */
function setup(d: OpenVgpu, hi = d.vgpu.resources.high.base) {
  mapGm(d, hi, RAM, 8);
  const mem = new DataView(d.host.memory.bytes.buffer);
  const gmToRam = (gm: number) => RAM + (gm - hi);
  const put = (ram: number, words: readonly number[]) =>
    words.forEach((w, i) => {
      mem.setUint32(ram + 4 * i, w >>> 0, true);
    });
  const u32 = (ram: number) => mem.getUint32(ram, true);
  const hwsp = hi;
  const ctx = hi + GTT_PAGE_SIZE; // PPHWSP, then the register state page
  const ring = hi + 3 * GTT_PAGE_SIZE;
  // PPGTT: PML4, PDP, PD, PT in RAM at 2 MiB; VA 0x10000 → batch page, 0x20000 → target page.
  const pt = 0x200000;
  const [pml4, pdp, pd, ptPage, batchRam, targetRam] = [0, 1, 2, 3, 4, 5].map((k) => pt + k * GTT_PAGE_SIZE);
  const entry = (table: number, index: number, to: number) => put(table + 8 * index, [to | 1, 0]);
  entry(pml4, 0, pdp);
  entry(pdp, 0, pd);
  entry(pd, 0, ptPage);
  entry(ptPage, 0x10, batchRam);
  entry(ptPage, 0x20, targetRam);
  d.setReg(RCS + 0x29c, masked(1 << 15)); // RING_MODE: execlists on
  d.setReg(RCS + 0x80, hwsp); // RING_HWS_PGA
  d.setReg(0x44304, ~0x101 >>> 0);
  d.setReg(0x4430c, 0x101);
  d.setReg(0x44200, 1 << 31);
  const writeContext = (head: number, tail: number) =>
    put(gmToRam(ctx + GTT_PAGE_SIZE), [
      MI_NOOP,
      miLoadRegisterImm(5),
      RCS + 0x244,
      0,
      RCS + 0x34,
      head,
      RCS + 0x30,
      tail,
      RCS + 0x38,
      ring,
      RCS + 0x3c,
      1, // one page, valid
      miLoadRegisterImm(2),
      RCS + 0x274,
      0,
      RCS + 0x270,
      pml4,
      MI_BATCH_BUFFER_END,
    ]);
  const elsp = (contextId: number) => {
    const lo = ctx | 1 | (3 << 3);
    for (const v of [0, 0, contextId, lo]) d.setReg(RCS + 0x230, v);
  };
  return { hi, hwsp, ctx, ring, put, u32, gmToRam, writeContext, elsp, batchRam, targetRam };
}

describe('execlist submission', () => {
  it('runs a context: ring and PPGTT batch, breadcrumbs in the status page, CSB and interrupts', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8', undefined, 8 * MiB);
    const s = setup(d);
    s.put(s.batchRam, [MI_STORE_DATA_IMM | 2, 0x20000, 0, 0x33, MI_BATCH_BUFFER_END]);
    const ring = [
      MI_STORE_DATA_IMM | MI_USE_GGTT | 2,
      s.hwsp + 0x100,
      0,
      0x11,
      ...PIPE_CONTROL_QW_GGTT,
      s.hwsp + 0x108,
      0,
      0x22,
      0,
      MI_BATCH_BUFFER_START_GEN8 | MI_BATCH_PPGTT_GEN8,
      0x10000,
      0,
      MI_USER_INTERRUPT,
      MI_ARB_ON_OFF,
      MI_NOOP,
    ];
    s.put(s.gmToRam(s.ring), ring);
    s.writeContext(0, ring.length * 4);
    s.elsp(0x1234);
    const hws = s.gmToRam(s.hwsp);
    // IDLE_ACTIVE at once, in the status page and the CSB registers, with its interrupt.
    expect(s.u32(hws + 0x10 * 4)).toBe(1);
    expect(s.u32(hws + 0x11 * 4)).toBe(0x1234);
    expect(s.u32(hws + 0x1f * 4)).toBe(0);
    expect(d.reg(RCS + 0x370)).toBe(1);
    expect(d.reg(RCS + 0x3a0) & 7).toBe(0);
    expect(d.msiCount()).toBe(1);
    expect(d.reg(0x44308) & 0x100).toBe(0x100);
    d.setReg(0x44308, 0x100);
    // RING_EXECLIST_STATUS: slot 0 valid and active, the running context's ID above.
    expect(d.reg(RCS + 0x238)).toBe(0x1234);
    expect(d.reg(RCS + 0x234) & ((1 << 18) | (1 << 4) | 3)).toBe((1 << 18) | (1 << 4) | 2);
    d.setReg(RCS + 0x238, 0); // read-only to the guest
    expect(d.reg(RCS + 0x238)).toBe(0x1234);

    d.parent.scheduler.tick();
    expect(s.u32(hws + 0x100)).toBe(0x11);
    expect(s.u32(hws + 0x108)).toBe(0x22);
    expect(s.u32(s.targetRam)).toBe(0x33);
    // ACTIVE_IDLE | COMPLETE for the context, the user interrupt and the context switch.
    expect(s.u32(hws + 0x12 * 4)).toBe((1 << 3) | (1 << 4));
    expect(s.u32(hws + 0x13 * 4)).toBe(0x1234);
    expect(s.u32(hws + 0x1f * 4)).toBe(1);
    expect(d.reg(0x44308) & 0x101).toBe(0x101);
    // Context save: the head reached the tail.
    expect(s.u32(s.gmToRam(s.ctx + GTT_PAGE_SIZE) + 5 * 4)).toBe(ring.length * 4);
    expect(d.vgpu.stats.workloadsCompleted).toBe(1);
    // Idle: no context in RING_EXECLIST_STATUS.
    expect(d.reg(RCS + 0x238)).toBe(0);
    expect(d.reg(RCS + 0x234) & ((1 << 18) | (1 << 17) | (1 << 4) | (1 << 3))).toBe(0);
    // Counted on the render engine alone, with the commands it ran.
    const rcs = d.vgpu.stats.engines.rcs0;
    expect(rcs.completed).toBe(1);
    expect(rcs.refused).toBe(0);
    expect(rcs.commands).toBeGreaterThanOrEqual(3);
    expect(d.vgpu.stats.engines.bcs0).toEqual({ completed: 0, refused: 0, commands: 0 });
    expect(engineSummary(d.vgpu.stats.engines)).toMatch(
      new RegExp(`^rcs0 1 completed \\(${rcs.commands} commands\\), 0 refused; bcs0 0 completed`),
    );
  });

  it('runs a context the guest wrote into its own pages in the mappable range; the aperture shows its writes', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8', undefined, 8 * MiB);
    const low = d.vgpu.resources.low.base;
    const s = setup(d, low);
    // The image, ring and status page are in guest RAM only: the aperture behind them is empty.
    const ring = [MI_STORE_DATA_IMM | MI_USE_GGTT | 2, s.hwsp + 0x100, 0, 0x11, MI_USER_INTERRUPT, MI_NOOP];
    s.put(s.gmToRam(s.ring), ring);
    s.writeContext(0, ring.length * 4);
    s.elsp(0x77);
    d.parent.scheduler.tick();
    expect(d.vgpu.stats.lastRefusal).toBe('');
    expect(d.vgpu.stats.engines.rcs0.completed).toBe(1);
    // The breadcrumb and the CSB went to the guest's status page, and the aperture mirrors them.
    const hws = s.gmToRam(s.hwsp);
    expect(s.u32(hws + 0x100)).toBe(0x11);
    expect(s.u32(hws + 0x12 * 4)).toBe((1 << 3) | (1 << 4));
    const aperture = d.vgpu.resources.aperture.bytes;
    const ap = new DataView(aperture.buffer, aperture.byteOffset);
    expect(ap.getUint32(s.hwsp + 0x100, true)).toBe(0x11);
    // The context save wrote the head into the guest's image.
    expect(s.u32(s.gmToRam(s.ctx + GTT_PAGE_SIZE) + 5 * 4)).toBe(ring.length * 4);
    // The pages the engine touched are the same through BAR2 now: the ring reached the aperture.
    expect(ap.getUint32(s.ring, true)).toBe(ring[0]);
  });

  it('runs a ring the guest wrote through the aperture, and after that follows whichever copy the guest changed', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8', undefined, 8 * MiB);
    const low = d.vgpu.resources.low.base;
    const s = setup(d, low);
    const aperture = d.vgpu.resources.aperture.bytes;
    const ap = new DataView(aperture.buffer, aperture.byteOffset);
    const putAperture = (gm: number, words: readonly number[]) =>
      words.forEach((w, i) => {
        ap.setUint32(gm + 4 * i, w >>> 0, true);
      });
    const store = (at: number, v: number) => [MI_STORE_DATA_IMM | MI_USE_GGTT | 2, s.hwsp + at, 0, v];
    // The ring's guest page is blank; the guest wrote the ring through BAR2.
    putAperture(s.ring, [...store(0x100, 0x11), MI_NOOP, MI_NOOP]);
    s.writeContext(0, 24);
    s.elsp(1);
    d.parent.scheduler.tick();
    expect(s.u32(s.gmToRam(s.hwsp) + 0x100)).toBe(0x11);
    expect(s.u32(s.gmToRam(s.ring))).toBe(store(0, 0)[0]); // the guest page has it now
    // Next the guest writes the ring through its own mapping: the guest page wins.
    s.put(s.gmToRam(s.ring) + 24, [...store(0x104, 0x22), MI_NOOP, MI_NOOP]);
    s.writeContext(24, 48);
    s.elsp(2);
    d.parent.scheduler.tick();
    expect(s.u32(s.gmToRam(s.hwsp) + 0x104)).toBe(0x22);
    // Then through BAR2 again: the aperture wins.
    putAperture(s.ring + 48, [...store(0x108, 0x33), MI_NOOP, MI_NOOP]);
    s.writeContext(48, 72);
    s.elsp(3);
    d.parent.scheduler.tick();
    expect(s.u32(s.gmToRam(s.hwsp) + 0x108)).toBe(0x33);
    expect(d.vgpu.stats.engines.rcs0).toMatchObject({ completed: 3, refused: 0 });
  });

  it('reports a resubmission of the running context as a lite restore', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8', undefined, 8 * MiB);
    const s = setup(d);
    s.put(s.gmToRam(s.ring), [MI_NOOP, MI_NOOP, MI_NOOP, MI_NOOP]);
    s.writeContext(0, 8);
    s.elsp(7);
    s.writeContext(0, 16);
    s.elsp(7);
    const hws = s.gmToRam(s.hwsp);
    expect(s.u32(hws + 0x12 * 4)).toBe((1 << 1) | (1 << 15));
    d.parent.scheduler.tick();
    expect(s.u32(hws + 0x14 * 4)).toBe((1 << 3) | (1 << 4));
    expect(d.vgpu.stats.workloadsCompleted).toBe(1);
    expect(s.u32(s.gmToRam(s.ctx + GTT_PAGE_SIZE) + 5 * 4)).toBe(16);
  });

  it('does not complete a context the audit refuses, and an engine reset clears the execlist', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8', undefined, 8 * MiB);
    const s = setup(d);
    s.put(s.gmToRam(s.ring), [miLoadRegisterImm(1), 0x941c, 1, MI_NOOP]);
    s.writeContext(0, 16);
    s.elsp(9);
    d.parent.scheduler.tick();
    expect(d.vgpu.stats.lastRefusal).toContain('0x941c, which is not whitelisted');
    expect(d.vgpu.stats.workloadsRefused).toBe(1);
    expect(d.vgpu.stats.engines.rcs0).toEqual({ completed: 0, refused: 1, commands: 0 });
    expect(d.reg(RCS + 0x3a0) & 7).toBe(0); // only IDLE_ACTIVE was written
    expect(d.reg(0x941c)).toBe(0);
    expect(d.vgpu.execlist(0)?.busy).toBe(true);
    d.setReg(0x941c, 1 << 1); // GDRST: render
    expect(d.vgpu.execlist(0)?.busy).toBe(false);
    expect(d.reg(RCS + 0x3a0) & 7).toBe(7);
  });

  it('stops a refused context at the refused command: what came before it ran, nothing after it', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8', undefined, 8 * MiB);
    const s = setup(d);
    const store = (at: number, v: number) => [MI_STORE_DATA_IMM | MI_USE_GGTT | 2, s.hwsp + at, 0, v];
    // The start breadcrumb, a refused register write, then what must not run.
    const ring = [...store(0x100, 0x11), miLoadRegisterImm(1), 0x941c, 1, ...store(0x104, 0x22), MI_NOOP];
    s.put(s.gmToRam(s.ring), ring);
    s.writeContext(0, ring.length * 4);
    s.elsp(5);
    d.parent.scheduler.tick();
    const hws = s.gmToRam(s.hwsp);
    expect(d.vgpu.stats.lastRefusal).toContain('0x941c, which is not whitelisted');
    expect(s.u32(hws + 0x100)).toBe(0x11);
    expect(s.u32(hws + 0x104)).toBe(0);
    expect(d.reg(0x941c)).toBe(0);
    // Not completed, not saved: only IDLE_ACTIVE is in the CSB, the image's head is still 0.
    expect(d.reg(RCS + 0x3a0) & 7).toBe(0);
    expect(s.u32(s.gmToRam(s.ctx + GTT_PAGE_SIZE) + 5 * 4)).toBe(0);
    expect(d.vgpu.stats.engines.rcs0).toEqual({ completed: 0, refused: 1, commands: 0 });
    expect(d.vgpu.execlist(0)?.busy).toBe(true);
    // The hung context is what RING_EXECLIST_STATUS names: i915 finds the guilty request by it.
    expect(d.reg(RCS + 0x238)).toBe(5);
    // The engine is hung: a new submission (i915's heartbeat trying to preempt) gets no CSB
    // event and does not run.
    const events = d.vgpu.execlist(0)?.events;
    const interrupts = d.msiCount();
    const fresh = [...store(0x108, 0x33), MI_NOOP, MI_NOOP];
    s.put(s.gmToRam(s.ring), fresh);
    s.writeContext(0, fresh.length * 4);
    s.elsp(6);
    d.parent.scheduler.tick();
    expect(d.vgpu.execlist(0)?.events).toBe(events);
    expect(d.vgpu.execlist(0)?.ignoredWhileHung).toBe(1);
    expect(d.msiCount()).toBe(interrupts);
    expect(s.u32(hws + 0x108)).toBe(0);
    // GDRST of the render engine starts it again: the same submission now runs.
    d.setReg(0x941c, 1 << 1);
    expect(d.vgpu.execlist(0)?.isHung).toBe(false);
    s.elsp(6);
    d.parent.scheduler.tick();
    expect(s.u32(hws + 0x108)).toBe(0x33);
    expect(d.vgpu.stats.engines.rcs0.completed).toBe(1);
  });

  it('runs MI_FLUSH_DW post-sync writes on the blitter and ignores ELSP while execlists are off', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8', undefined, 8 * MiB);
    const s = setup(d);
    const BCS = 0x22000;
    d.setReg(BCS + 0x80, s.hwsp + 0x800);
    for (const v of [0, 0, 1, (s.ctx + 2 * GTT_PAGE_SIZE) | 1]) d.setReg(BCS + 0x230, v);
    expect(d.vgpu.execlist(1)?.busy).toBe(false);
    d.setReg(BCS + 0x29c, masked(1 << 15));
    // A blitter context image one page on, sharing the ring page.
    s.put(s.gmToRam(s.ctx + 3 * GTT_PAGE_SIZE), [
      MI_NOOP,
      miLoadRegisterImm(4),
      BCS + 0x34,
      0,
      BCS + 0x30,
      16,
      BCS + 0x38,
      s.ring,
      BCS + 0x3c,
      1,
      MI_BATCH_BUFFER_END,
    ]);
    // MI_FLUSH_DW | STOREDW to a GGTT address, then a user interrupt.
    s.put(s.gmToRam(s.ring), [miInstr(0x26, 2) | (1 << 14), (s.hwsp + 0x200) | (1 << 2), 0, 0x44]);
    s.put(s.gmToRam(s.ring) + 16, [MI_USER_INTERRUPT, MI_NOOP]);
    for (const v of [0, 0, 1, (s.ctx + 2 * GTT_PAGE_SIZE) | 1]) d.setReg(BCS + 0x230, v);
    d.parent.scheduler.tick();
    expect(s.u32(s.gmToRam(s.hwsp) + 0x200)).toBe(0x44);
    expect(s.u32(s.gmToRam(s.hwsp + 0x800) + 0x12 * 4)).toBe((1 << 3) | (1 << 4));
    expect(d.vgpu.stats.engines.bcs0.completed).toBe(1);
    expect(d.vgpu.stats.engines.bcs0.commands).toBe(1); // the MI_FLUSH_DW (the tail is at 16)
    expect(d.vgpu.stats.engines.rcs0.completed).toBe(0);
  });
});
