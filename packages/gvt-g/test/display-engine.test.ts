import { describe, expect, it } from 'vitest';
import { EDID_HEADER } from '../src/index.js';
import { newParent, type OpenVgpu, openVgpu } from './helpers.js';

const AUX_D = 0x64310;
const AUX_B = 0x64110;
const SEND = (1 << 31) | (1 << 29);

/** One AUX transaction as intel_dp_aux_xfer makes it: header and data big-endian in DATA1-5. */
function aux(
  d: OpenVgpu,
  ctl: number,
  request: number,
  addr: number,
  data: readonly number[],
  len: number,
  sent: number,
) {
  const bytes = [(request << 4) | ((addr >> 16) & 0xf), (addr >> 8) & 0xff, addr & 0xff, len - 1, ...data];
  for (let k = 0; k < 5; k++) {
    const b = (i: number) => bytes[4 * k + i] ?? 0;
    d.setReg(ctl + 4 + 4 * k, ((b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3)) >>> 0);
  }
  d.setReg(ctl, (SEND | (sent << 20)) >>> 0);
  const status = d.reg(ctl) >>> 0;
  const size = (status >>> 20) & 0x1f;
  const out: number[] = [];
  for (let i = 0; i < size; i++) out.push((d.reg(ctl + 4 + 4 * (i >> 2)) >>> (24 - 8 * (i & 3))) & 0xff);
  return { status, out };
}

describe('the virtual DP monitor on port D', () => {
  it('answers DPCD reads over AUX D: DPCD 1.2, HBR2, four lanes, one sink', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_4');
    const r = aux(d, AUX_D, 0x9, 0x0, [], 16, 4);
    expect(r.status & (1 << 30)).toBeTruthy();
    expect(r.status & ((1 << 28) | (1 << 25))).toBe(0);
    expect(r.out.slice(0, 4)).toEqual([0x00, 0x12, 0x14, 0x84]);
    expect(aux(d, AUX_D, 0x9, 0x200, [], 1, 4).out).toEqual([0, 1]);
    // Past the DPCD: an ACK with zeros, as the DP spec has a sink answer.
    expect(aux(d, AUX_D, 0x9, 0xf0000, [], 8, 4).out).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('trains the link: pattern 1 gives clock recovery, pattern 2 equalisation and alignment', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_4');
    expect(aux(d, AUX_D, 0x8, 0x102, [0x21], 1, 5).out).toEqual([0]);
    expect(aux(d, AUX_D, 0x9, 0x202, [], 3, 4).out).toEqual([0, 0x11, 0x11, 0]);
    aux(d, AUX_D, 0x8, 0x102, [0x22], 1, 5);
    expect(aux(d, AUX_D, 0x9, 0x202, [], 3, 4).out).toEqual([0, 0x77, 0x77, 0x01]);
    aux(d, AUX_D, 0x8, 0x102, [0x00], 1, 5);
    expect(aux(d, AUX_D, 0x9, 0x205, [], 1, 4).out).toEqual([0, 0x03]);
  });

  it('serves the EDID over I2C-over-AUX at DDC address 0x50 and raises the AUX D interrupt', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_4');
    d.setReg(0x44444, 0); // DE port IMR: unmasked
    aux(d, AUX_D, 0x4, 0x50, [], 1, 3); // address-only start (MOT)
    aux(d, AUX_D, 0x4, 0x50, [0x00], 1, 5); // offset 0
    const edid: number[] = [];
    for (let i = 0; i < 8; i++) edid.push(...aux(d, AUX_D, 0x5, 0x50, [], 16, 4).out.slice(1));
    aux(d, AUX_D, 0x1, 0x50, [], 1, 3); // stop
    expect(edid.slice(0, 8)).toEqual([...EDID_HEADER]);
    expect(edid).toEqual([...d.vgpu.edid.current]);
    expect(d.reg(0x44448) & (1 << 27)).toBeTruthy();
  });

  it('times out on the ports with nothing plugged in, with no receive error', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_4');
    const r = aux(d, AUX_B, 0x9, 0x0, [], 16, 4);
    expect(r.status & (1 << 28)).toBeTruthy();
    expect(r.status & (1 << 25)).toBe(0);
    expect(r.status & (1 << 31)).toBe(0);
  });
});

describe('pipes, DDI and vblank', () => {
  it('follows TRANSCONF enable with its state, and DDI_BUF_CTL enable with idle', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_4');
    expect(d.reg(0x64300) & (1 << 7)).toBeTruthy();
    d.setReg(0x64300, 1 << 31);
    expect(d.reg(0x64300) & (1 << 7)).toBe(0);
    d.setReg(0x64340, 2 << 8); // DP_TP_CTL: idle pattern
    expect(d.reg(0x64344) & (1 << 25)).toBeTruthy();
    d.setReg(0x70008, 1 << 31);
    expect(d.reg(0x70008) >>> 0).toBe(0xc0000000);
    d.setReg(0x70008, 0);
    expect(d.reg(0x70008)).toBe(0);
  });

  it('counts a frame and raises GEN8_PIPE_VBLANK every 1/60 s while the pipe runs', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_4');
    const clock = d.host.clock;
    d.setReg(0x4440c, 1); // DE pipe A IER: vblank
    d.setReg(0x44404, ~1 >>> 0);
    d.setReg(0x44200, 1 << 31);
    d.setReg(0x6000c, (1234 << 16) | 1199); // TRANS_VTOTAL A: 1235 lines
    d.setReg(0x70008, 1 << 31);
    clock.advance(16_666_667 * 3 + 1000);
    expect(d.reg(0x70040)).toBe(3);
    expect(d.reg(0x44408) & 1).toBe(1);
    expect(d.reg(0x44200) & (1 << 16)).toBeTruthy();
    expect(d.msiCount()).toBeGreaterThan(0);
    clock.advance(16_666_667 / 2);
    expect(Math.abs(d.reg(0x70000) - 617)).toBeLessThan(3);
    d.setReg(0x70008, 0);
    clock.advance(16_666_667 * 2);
    expect(d.reg(0x70040)).toBe(3);
  });
});
