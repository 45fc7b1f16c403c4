import { createRecordingLogger } from '@vfiokit/conformance';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ENGINES, F_MODE_MASK, GvtMmioModel, MmioTable, maskedWrite, Vreg } from '../src/index.js';
import { newParent, openVgpu } from './helpers.js';

const masked = (bits: number, on: boolean) => ((bits << 16) | (on ? bits : 0)) >>> 0;
const RESOURCES = Object.freeze({
  low: { base: 0x8000000, size: 0x8000000 },
  high: { base: 0x58000000, size: 0x20000000 },
  fences: [4, 5, 6, 7],
});

describe('the MMIO tracking table', () => {
  it('refuses an offset tracked twice and a range outside the register file', () => {
    const t = new MmioTable<Vreg>();
    t.define(0x2000, { name: 'A', size: 8 });
    expect(() => t.define(0x2004, { name: 'B' })).toThrow(/tracked twice: A\+0x4 and B/);
    expect(() => t.define(0x1ffffc, { name: 'C', size: 8 })).toThrow(/not a dword range/);
    expect(() => t.define(0x2002, { name: 'D' })).toThrow(/not a dword range/);
  });

  it('tracks every register of the parent model once, with command access only where flagged', () => {
    const m = new GvtMmioModel();
    expect(m.table.size).toBeGreaterThan(1000);
    // MI_LOAD_REGISTER_IMM may reach a workaround register and the MOCS tables, not GDRST or PVINFO.
    expect(m.table.commandAccess(0x4090)).toBe(true);
    expect(m.table.commandAccess(0xc800 + 4 * 63)).toBe(true);
    expect(m.table.commandAccess(0x941c)).toBe(false);
    expect(m.table.commandAccess(0x78000)).toBe(false);
  });

  it('merges masked-register writes bit by bit (the high half selects the low half)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffffffff }), (old, v) => {
        const out = maskedWrite(old, v);
        const mask = v >>> 16;
        for (let b = 0; b < 16; b++) {
          const bit = 1 << b;
          expect(out & bit).toBe(mask & bit ? v & bit : old & bit);
        }
        expect(out >>> 16).toBe(0);
      }),
    );
  });
});

describe('the vreg', () => {
  it('starts from the host snapshot with the vGPU values on top, and serves narrow accesses', () => {
    const v = new GvtMmioModel().createVreg('t', 3, RESOURCES);
    expect(v.get(0x42000) >>> 0).toBe(0x8e000000); // fuses downloaded, PG0-2 distributed
    expect(v.readDword(0x7800c)).toBe(3); // vgt_id
    const b = new Uint8Array(2);
    v.read(0x78002, b); // the upper half of the magic's low dword
    expect([...b]).toEqual([0x54, 0x76]);
    v.write(0x4090 + 1, Uint8Array.of(0xab));
    expect(v.get(0x4090)).toBe(0xab00);
  });

  it('keeps the PVINFO fields read-only and fences beyond the vGPU at 0', () => {
    const v = new GvtMmioModel().createVreg('t', 1, RESOURCES);
    v.writeDword(0x7800c, 7);
    expect(v.readDword(0x7800c)).toBe(1);
    v.writeDword(0x100000 + 8 * 4, 0x1234); // fence 4: the vGPU has 4 (0..3)
    expect(v.readDword(0x100000 + 8 * 4)).toBe(0);
    v.writeDword(0x100000 + 8 * 3, 0x1234);
    expect(v.readDword(0x100000 + 8 * 3)).toBe(0x1234);
  });

  it('records each untracked offset with its reads and writes, and logs it once', () => {
    const log = createRecordingLogger();
    const v = new GvtMmioModel().createVreg('vgpu', 1, RESOURCES);
    v.setLogger(log);
    v.writeDword(0x1f000, 5);
    v.writeDword(0x1f000, 6);
    expect(v.readDword(0x1f000)).toBe(6); // GVT's default_rw: the vreg still answers
    expect(v.unknown.get(0x1f000)).toEqual({ reads: 1, writes: 2, last: 6 });
    expect(v.unknownReport()).toEqual(['0x1f000 r1 w2 last=0x6']);
    expect(log.entries.filter((e) => e.message.includes('untracked register 0x1f000'))).toHaveLength(1);
    v.readDword(0x4090);
    expect(v.unknown.size).toBe(1);
  });

  it('applies the read-only mask and masked-register semantics of a plain tracked register', () => {
    const t = new MmioTable<Vreg>();
    t.define(0x2000, { name: 'RO_LOW', roMask: 0xff });
    t.define(0x2004, { name: 'MASKED', flags: F_MODE_MASK });
    const v = new Vreg('x', t, new Uint32Array(0x80000), 0);
    v.set(0x2000, 0x12);
    v.writeDword(0x2000, 0xffffffff);
    expect(v.get(0x2000)).toBe(0xffffff12);
    v.writeDword(0x2004, masked(0x5, true));
    v.writeDword(0x2004, masked(0x1, false));
    expect(v.get(0x2004)).toBe(0x4);
  });
});

describe('handshakes the guest driver waits on', () => {
  it('acknowledges forcewake requests at once in the ack register', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_8');
    for (const [req, ack] of [
      [0xa278, 0x0d84],
      [0xa270, 0x0d88],
      [0xa188, 0x130044],
    ]) {
      d.setReg(req, masked(1, true));
      expect(d.reg(ack) & 1).toBe(1);
      d.setReg(req, masked(1, false));
      expect(d.reg(ack) & 1).toBe(0);
    }
  });

  it('grants RESET_CTL ready-to-reset on request and withdraws it on release, per engine', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_8');
    for (const e of ENGINES) {
      d.setReg(e.base + 0xd0, masked(1, true));
      expect(d.reg(e.base + 0xd0)).toBe(0x3);
      d.setReg(e.base + 0xd0, masked(1, false));
      expect(d.reg(e.base + 0xd0)).toBe(0);
    }
  });

  it('reports MODE_IDLE once STOP_RING is set, and clears both when the ring restarts', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_8');
    const mi = 0x2000 + 0x9c;
    d.setReg(mi, masked(1 << 8, false));
    expect(d.reg(mi) & (3 << 8)).toBe(0);
    d.setReg(mi, masked(1 << 8, true));
    expect(d.reg(mi) & (3 << 8)).toBe(3 << 8);
  });

  it('completes GDRST at once, and a GuC reset leaves MIA_IN_RESET for exactly one read', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_8');
    d.reg(0xc000); // consume the power-on MIA_IN_RESET
    expect(d.reg(0xc000) & 1).toBe(0);
    d.setReg(0x941c, 1 << 5);
    expect(d.reg(0x941c)).toBe(0);
    expect(d.reg(0xc000) & 1).toBe(1);
    expect(d.reg(0xc000) & 1).toBe(0);
    d.setReg(0x941c, 1 << 0);
    expect(d.reg(0x941c)).toBe(0);
  });

  it('turns power well state on with its request and reports the fuses distributed', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_8');
    d.setReg(0x45404, 1 << 31);
    expect(d.reg(0x45404) >>> 0).toBe(0xc0000000);
    d.setReg(0x45404, (1 << 29) | (1 << 9) | (1 << 0));
    expect(d.reg(0x45404) >>> 0).toBe(0x30000300); // bit 0 is a state bit: the guest cannot set it
    expect(d.reg(0x42000) >>> 0).toBe(0x8e000000);
  });

  it('powers the DBuf with its request and locks a DPLL when enabled, in DPLL_STATUS too', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_8');
    d.setReg(0x45008, 0);
    expect(d.reg(0x45008)).toBe(0);
    d.setReg(0x45008, 1 << 31);
    expect(d.reg(0x45008) >>> 0).toBe(0xc0000000);
    expect(d.reg(0x6c060) & 0xff).toBe(1); // DPLL0 enabled by the host firmware
    d.setReg(0x46040, 1 << 31); // DPLL2
    expect(d.reg(0x46040) >>> 0).toBe(0xc0000000);
    expect(d.reg(0x6c060) >>> 0).toBe((1 << 16) | 1);
    d.setReg(0x46040, 0);
    expect(d.reg(0x6c060) >>> 0).toBe(1);
  });

  it('answers PCODE commands ready and error-free: memory latency, CDCLK, SAGV', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_8');
    const mbox = 0x138124;
    const data = 0x138128;
    const send = (cmd: number, arg: number) => {
      d.setReg(data, arg);
      d.setReg(mbox, (1 << 31) | cmd);
      expect(d.reg(mbox) & ((1 << 31) | 0xff)).toBe(0);
      return d.reg(data) >>> 0;
    };
    expect(send(0x6, 0)).toBe(0x1e1a1100);
    expect(send(0x6, 1)).toBe(0x61514b3d);
    expect(send(0x7, 0)).toBe(0x3);
    expect(send(0x21, 0)).toBe(0x1); // SAGV disable: "is disabled"
  });
});

describe('interrupt registers', () => {
  it('clears IIR bits written as 1 and delivers one MSI per rise of the master line', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_8');
    d.setReg(0x44304, ~0x101 >>> 0); // GT0 IMR: unmask RCS user + context switch
    d.setReg(0x4430c, 0x101);
    d.setReg(0x44200, 1 << 31);
    d.vgpu.irq.engineEvent(0, 1 << 8);
    expect(d.msiCount()).toBe(1);
    expect(d.reg(0x44200) >>> 0).toBe(0x80000001);
    d.vgpu.irq.engineEvent(0, 1 << 0); // still raised: no new edge
    expect(d.msiCount()).toBe(1);
    d.setReg(0x44200, 0);
    d.setReg(0x44308, 1 << 8);
    expect(d.reg(0x44308)).toBe(1);
    d.setReg(0x44200, 1 << 31); // re-enabled with an event pending: a new edge
    expect(d.msiCount()).toBe(2);
    d.setReg(0x44308, 0xffffffff);
    expect(d.reg(0x44308)).toBe(0);
    expect(d.reg(0x44200) >>> 0).toBe(0x80000000);
  });

  it('raises the BCS master bit for the high half of GT bank 0 and drops masked events', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_8');
    d.setReg(0x44304, 0xffffffff);
    d.vgpu.irq.engineEvent(1, 1 << 0);
    expect(d.reg(0x44308)).toBe(0);
    d.setReg(0x44304, 0);
    d.setReg(0x4430c, 0xffffffff);
    d.vgpu.irq.engineEvent(1, 1 << 0);
    expect(d.reg(0x44308) >>> 0).toBe(1 << 16);
    expect(d.reg(0x44200) & 0x3).toBe(0x2);
  });
});
