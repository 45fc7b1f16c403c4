import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BLT_WRITE_ALPHA,
  BLT_WRITE_RGB,
  GEN8_GT_IER0,
  GEN8_GT_IIR0,
  GEN8_GT_IMR0,
  GEN8_MASTER_IRQ,
  GEN8_MASTER_IRQ_CONTROL,
  GT_RENDER_USER_INTERRUPT,
  GTT_PAGE_SIZE,
  MI_BATCH_BUFFER_END,
  MI_BATCH_BUFFER_START_GEN8,
  MI_BATCH_PPGTT_GEN8,
  MI_BATCH_SECOND_LEVEL,
  MI_NOOP,
  MI_STORE_DATA_IMM,
  MI_USE_GGTT,
  MI_USER_INTERRUPT,
  miInstr,
  miLoadRegisterImm,
  RCS_GPR_BASE,
  RING_CTL,
  RING_HEAD,
  RING_START,
  RING_TAIL,
  RING_VALID,
  XY_COLOR_BLT_CMD,
} from '../src/index.js';
import { firstDifference, mapGm, newParent, type OpenVgpu, openVgpu } from './helpers.js';

/** Ring, then batch pages, in high GM backed by guest memory at 1 MiB. */
const RAM = 0x100000;
const PAGES = 8;

function setup(d: OpenVgpu) {
  const hi = d.vgpu.resources.high.base;
  mapGm(d, hi, RAM, PAGES);
  d.setReg(GEN8_GT_IMR0, ~GT_RENDER_USER_INTERRUPT);
  d.setReg(GEN8_GT_IER0, GT_RENDER_USER_INTERRUPT);
  d.setReg(GEN8_MASTER_IRQ, GEN8_MASTER_IRQ_CONTROL);
  const mem = new DataView(d.host.memory.bytes.buffer);
  return {
    ringGm: hi,
    batchGm: (k: number) => hi + (1 + k) * GTT_PAGE_SIZE,
    ram: (gm: number) => RAM + (gm - hi),
    put(gm: number, words: readonly number[]) {
      words.forEach((w, i) => {
        mem.setUint32(RAM + (gm - hi) + 4 * i, w >>> 0, true);
      });
    },
    u32(gm: number) {
      return mem.getUint32(RAM + (gm - hi), true);
    },
    submit(words: readonly number[]) {
      const padded = words.length % 2 ? [...words, MI_NOOP] : [...words];
      this.put(hi, padded);
      d.setReg(RING_CTL, 0);
      d.setReg(RING_HEAD, 0);
      d.setReg(RING_START, hi);
      d.setReg(RING_CTL, RING_VALID);
      d.vgpu.regs.set(RING_TAIL, padded.length * 4);
      return d.vgpu.submit();
    },
    kick(words: readonly number[]) {
      const padded = words.length % 2 ? [...words, MI_NOOP] : [...words];
      this.put(hi, padded);
      d.setReg(RING_CTL, 0);
      d.setReg(RING_HEAD, 0);
      d.setReg(RING_START, hi);
      d.setReg(RING_CTL, RING_VALID);
      d.setReg(RING_TAIL, padded.length * 4);
    },
  };
}

const bbStart = (gm: number, flags = 0) => [
  MI_BATCH_BUFFER_START_GEN8 | flags,
  gm % 2 ** 32,
  Math.floor(gm / 2 ** 32),
];
const sdi = (gm: number, v: number) => [
  MI_STORE_DATA_IMM | MI_USE_GGTT | 2,
  gm % 2 ** 32,
  Math.floor(gm / 2 ** 32),
  v,
];

describe('command submission', () => {
  it('runs an audited batch on the scheduler: stores, loads a whitelisted register, interrupts through MSI', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const s = setup(d);
    const status = s.batchGm(2);
    s.put(s.batchGm(0), [
      ...sdi(status, 0xfeed),
      miLoadRegisterImm(1),
      RCS_GPR_BASE,
      0x1234,
      MI_USER_INTERRUPT,
      MI_BATCH_BUFFER_END,
    ]);
    s.kick([...bbStart(s.batchGm(0)), MI_NOOP]);
    expect(d.vgpu.hasPendingWork()).toBe(true);
    expect(s.u32(status)).toBe(0);
    d.parent.scheduler.tick();
    expect(s.u32(status)).toBe(0xfeed);
    expect(d.reg(RCS_GPR_BASE)).toBe(0x1234);
    expect(d.reg(GEN8_GT_IIR0) & GT_RENDER_USER_INTERRUPT).toBe(GT_RENDER_USER_INTERRUPT);
    expect(d.reg(GEN8_MASTER_IRQ) & 1).toBe(1);
    expect(d.msiCount()).toBe(1);
    expect(d.reg(RING_HEAD)).toBe(16);
    d.setReg(GEN8_GT_IIR0, GT_RENDER_USER_INTERRUPT);
    expect(d.reg(GEN8_GT_IIR0)).toBe(0);
  });

  it('executes the shadow copy: changing the batch after submission changes nothing', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const s = setup(d);
    const status = s.batchGm(2);
    s.put(s.batchGm(0), [...sdi(status, 1), MI_BATCH_BUFFER_END]);
    s.kick(bbStart(s.batchGm(0)));
    s.put(s.batchGm(0), [...sdi(status, 2), MI_BATCH_BUFFER_END]);
    d.parent.scheduler.tick();
    expect(s.u32(status)).toBe(1);
  });

  it('does not deliver an interrupt the guest masked in IMR, or with the master control off', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const s = setup(d);
    d.setReg(GEN8_GT_IMR0, 0xffffffff);
    s.put(s.batchGm(0), [MI_USER_INTERRUPT, MI_BATCH_BUFFER_END]);
    s.kick(bbStart(s.batchGm(0)));
    d.parent.scheduler.tick();
    expect(d.reg(GEN8_GT_IIR0)).toBe(0);
    d.setReg(GEN8_GT_IMR0, 0);
    d.setReg(GEN8_MASTER_IRQ, 0);
    s.kick(bbStart(s.batchGm(0)));
    d.parent.scheduler.tick();
    expect(d.reg(GEN8_GT_IIR0)).toBe(1);
    expect(d.msiCount()).toBe(0);
    d.setReg(GEN8_MASTER_IRQ, GEN8_MASTER_IRQ_CONTROL);
    expect(d.msiCount()).toBe(1);
  });

  it('blits a rectangle with XY_COLOR_BLT into mapped graphics memory', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const s = setup(d);
    const fb = s.batchGm(3);
    const pitch = 64;
    s.put(s.batchGm(0), [
      XY_COLOR_BLT_CMD | BLT_WRITE_ALPHA | BLT_WRITE_RGB | 5,
      (3 << 24) | (0xf0 << 16) | pitch,
      (1 << 16) | 2,
      (3 << 16) | 5,
      fb % 2 ** 32,
      0,
      0xaabbccdd,
      MI_BATCH_BUFFER_END,
    ]);
    s.kick(bbStart(s.batchGm(0)));
    d.parent.scheduler.tick();
    expect(s.u32(fb + 1 * pitch + 2 * 4)).toBe(0xaabbccdd);
    expect(s.u32(fb + 2 * pitch + 4 * 4)).toBe(0xaabbccdd);
    expect(s.u32(fb + 1 * pitch + 5 * 4)).toBe(0);
    expect(s.u32(fb + 3 * pitch + 2 * 4)).toBe(0);
  });

  it.each([
    ['a command of no client', [0xe0000000], 'not in the allowed subset'],
    ['an unknown MI command', [miInstr(0x3e, 2), 0, 0, 0], 'not allowed'],
    ['a command of another engine', [miInstr(0x26, 2), 0, 0, 0], 'not a command of the rcs engine'],
    [
      'a post-sync write outside the vGPU',
      [0x7a000004, (1 << 24) | (1 << 14), 0x1000, 0, 0, 0],
      'outside this vGPU',
    ],
    ['a register write off the whitelist', [miLoadRegisterImm(1), 0x2030, 0], 'not whitelisted'],
    [
      'a register copy one operand short (its destination would be what follows)',
      [miLoadRegisterImm(1), RCS_GPR_BASE, RCS_GPR_BASE + 8, miInstr(0x2a, 0), RCS_GPR_BASE],
      'MI_LOAD_REGISTER_REG of 2 dwords (3 expected)',
    ],
    ['a store outside the vGPU', [...sdi(0x1000, 1)], 'outside this vGPU'],
    ['a store through the PPGTT', [MI_STORE_DATA_IMM | 2, 0x1000, 0, 1], 'PPGTT'],
    ['a batch through the PPGTT', [...bbStart(0x1000, MI_BATCH_PPGTT_GEN8)], 'PPGTT'],
    [
      'a blit rectangle outside the vGPU',
      [XY_COLOR_BLT_CMD | 5, (3 << 24) | 64, 0, (1 << 16) | 1, 0x1000, 0, 0],
      'outside this vGPU',
    ],
  ] as const)('refuses %s before anything runs', (_what, batch, problem) => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const s = setup(d);
    const status = s.batchGm(2);
    s.put(s.batchGm(0), [...sdi(status, 7), ...batch, MI_BATCH_BUFFER_END]);
    const r = s.submit(bbStart(s.batchGm(0)));
    expect(r?.ok).toBe(false);
    expect(r && !r.ok && r.problem).toContain(problem);
    expect(d.vgpu.hasPendingWork()).toBe(false);
    d.parent.scheduler.tick();
    expect(s.u32(status)).toBe(0);
    expect(d.vgpu.stats.workloadsRefused).toBe(1);
  });

  it('ends a self-referencing batch at the scan limit and refuses it', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const s = setup(d);
    s.put(s.batchGm(0), [MI_NOOP, ...bbStart(s.batchGm(0))]);
    const r = s.submit(bbStart(s.batchGm(0)));
    expect(r && !r.ok && r.problem).toMatch(/more than \d+ dwords/);
  });

  it('allows second-level batches but not a third level', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const s = setup(d);
    const status = s.batchGm(4);
    s.put(s.batchGm(0), [...bbStart(s.batchGm(1), MI_BATCH_SECOND_LEVEL), MI_BATCH_BUFFER_END]);
    s.put(s.batchGm(1), [...sdi(status, 3), MI_BATCH_BUFFER_END]);
    expect(s.submit(bbStart(s.batchGm(0)))?.ok).toBe(true);
    s.put(s.batchGm(1), [...bbStart(s.batchGm(2), MI_BATCH_SECOND_LEVEL), MI_BATCH_BUFFER_END]);
    s.put(s.batchGm(2), [MI_BATCH_BUFFER_END]);
    const r = s.submit(bbStart(s.batchGm(0)));
    expect(r && !r.ok && r.problem).toContain('nest deeper');
  });

  it('refuses commands in GM whose GGTT entry is not present', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const s = setup(d);
    const r = s.submit(bbStart(d.vgpu.resources.high.base + 64 * GTT_PAGE_SIZE));
    expect(r && !r.ok && r.problem).toContain('not in mapped graphics memory');
  });

  it('never throws and never writes outside the vGPU for random batch contents (property)', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const s = setup(d);
    const other = d.host.memory.bytes.slice(0, RAM);
    const interesting = fc.oneof(
      fc.constantFrom(
        MI_NOOP,
        MI_USER_INTERRUPT,
        MI_BATCH_BUFFER_END,
        MI_STORE_DATA_IMM | MI_USE_GGTT | 2,
        miLoadRegisterImm(1),
        MI_BATCH_BUFFER_START_GEN8,
        XY_COLOR_BLT_CMD | 5,
      ),
      fc.nat({ max: 0xffffffff }),
      fc.constantFrom(s.batchGm(0), s.batchGm(2), RCS_GPR_BASE, 0),
    );
    fc.assert(
      fc.property(fc.array(interesting, { maxLength: 64 }), (words) => {
        s.put(s.batchGm(0), [...words, MI_BATCH_BUFFER_END]);
        s.kick(bbStart(s.batchGm(0)));
        d.parent.scheduler.tick();
      }),
      { numRuns: 300 },
    );
    // Guest RAM below the vGPU's pages is untouched (-1: no byte differs).
    expect(firstDifference(d.host.memory.bytes.subarray(0, RAM), other)).toBe(-1);
  });
});
