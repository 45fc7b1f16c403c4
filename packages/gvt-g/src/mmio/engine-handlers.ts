/**
 * Per-engine registers (handlers.c MMIO_RING_*): the ring registers, the execlist submit port
 * and context status buffer, the status page address, and the handshakes i915 waits on —
 * RESET_CTL's ready-to-reset, MI_MODE's idle bit once the ring is stopped, RING_MODE turning
 * execlists on.
 */
import {
  CSB_ENTRIES,
  ENGINES,
  type EngineDesc,
  GFX_RUN_LIST_ENABLE,
  MODE_IDLE,
  RESET_CTL_READY_TO_RESET,
  RESET_CTL_REQUEST_RESET,
  RING,
  STOP_RING,
} from './regs.js';
import {
  F_CMD_ACCESS,
  F_GMADR,
  F_MODE_MASK,
  type MmioTable,
  maskedDisabled,
  maskedEnabled,
  maskedWrite,
} from './table.js';
import type { Vreg } from './vreg.js';

function ringResetCtlWrite(ctx: Vreg, offset: number, value: number, old: number): void {
  let v = maskedWrite(old, value);
  // ring_reset_ctl_write: a request is granted at once (nothing runs while the guest waits).
  if (maskedEnabled(value, RESET_CTL_REQUEST_RESET)) v |= RESET_CTL_READY_TO_RESET;
  else if (maskedDisabled(value, RESET_CTL_REQUEST_RESET)) v &= ~RESET_CTL_READY_TO_RESET;
  ctx.set(offset, v);
}

function miModeWrite(ctx: Vreg, offset: number, value: number, old: number): void {
  let v = maskedWrite(old, value);
  // A stopped ring of an idle engine reports MODE_IDLE (intel_engine_stop_cs waits for it).
  if (v & STOP_RING) v |= MODE_IDLE;
  else v &= ~MODE_IDLE;
  ctx.set(offset, v);
}

function ringModeWrite(engine: EngineDesc) {
  return (ctx: Vreg, offset: number, value: number, old: number) => {
    ctx.set(offset, maskedWrite(old, value));
    if (maskedEnabled(value, GFX_RUN_LIST_ENABLE)) ctx.hooks.execlistsEnabled(engine.id, true);
    else if (maskedDisabled(value, GFX_RUN_LIST_ENABLE)) ctx.hooks.execlistsEnabled(engine.id, false);
  };
}

/** The command streamer's timestamp: 12 MHz on gen9 (intel_gt_clock_utils.c, the crystal clock). */
const CS_TIMESTAMP_HZ = 12_000_000;
function timestampTicks(): bigint {
  return (process.hrtime.bigint() * BigInt(CS_TIMESTAMP_HZ)) / 1_000_000_000n;
}

export function defineEngineRegisters(t: MmioTable<Vreg>): void {
  for (const e of ENGINES) {
    const b = e.base;
    const n = (reg: string) => `${reg}(${e.name})`;
    const def = (off: number, reg: string, flags = 0, extra: Partial<Parameters<typeof t.define>[1]> = {}) =>
      t.define(b + off, { name: n(reg), flags, ...extra });
    def(RING.TAIL, 'RING_TAIL', 0, {
      write: (ctx, o, v) => {
        ctx.set(o, v);
        if (e.id === 0) ctx.hooks.ringTailWritten();
      },
    });
    def(RING.HEAD, 'RING_HEAD');
    def(RING.START, 'RING_START', F_GMADR);
    def(RING.CTL, 'RING_CTL');
    def(RING.SYNC_0, 'RING_SYNC_0', F_CMD_ACCESS);
    def(RING.SYNC_0 + 4, 'RING_SYNC_1', F_CMD_ACCESS);
    def(0x28, 'RING_EXCC', F_CMD_ACCESS);
    def(0x134, 'RING_REG_0x134', F_CMD_ACCESS);
    def(0x244, 'RING_CONTEXT_CONTROL', F_CMD_ACCESS);
    def(0xd4, 'CSFE_CHICKEN1', F_MODE_MASK | F_CMD_ACCESS);
    def(RING.PSMI_CTL, 'RING_PSMI_CTL', F_MODE_MASK | F_CMD_ACCESS);
    def(RING.MAX_IDLE, 'RING_MAX_IDLE');
    def(RING.ACTHD_UDW, 'RING_ACTHD_UDW');
    def(RING.DMA_FADD_UDW, 'RING_DMA_FADD_UDW');
    def(RING.IPEIR, 'RING_IPEIR');
    def(RING.IPEHR, 'RING_IPEHR');
    def(RING.INSTDONE, 'RING_INSTDONE');
    def(RING.INSTPS, 'RING_INSTPS');
    def(RING.ACTHD, 'RING_ACTHD');
    def(RING.DMA_FADD, 'RING_DMA_FADD');
    def(RING.HWS_PGA, 'RING_HWS_PGA', F_GMADR | F_CMD_ACCESS, {
      write: (ctx, o, v) => {
        ctx.set(o, v);
        ctx.hooks.hwsWritten(e.id, v);
      },
    });
    def(RING.NOPID, 'RING_NOPID');
    def(RING.HWSTAM, 'RING_HWSTAM');
    def(RING.MI_MODE, 'RING_MI_MODE', F_MODE_MASK | F_CMD_ACCESS, { write: miModeWrite });
    def(RING.IMR, 'RING_IMR');
    def(RING.EIR, 'RING_EIR', 0, { write: (ctx, o, v, old) => ctx.set(o, old & ~v) });
    def(RING.EMR, 'RING_EMR');
    def(RING.ESR, 'RING_ESR');
    def(RING.INSTPM, 'RING_INSTPM', F_MODE_MASK | F_CMD_ACCESS);
    def(RING.CMD_CCTL, 'RING_CMD_CCTL');
    def(RING.RESET_CTL, 'RING_RESET_CTL', F_MODE_MASK, { write: ringResetCtlWrite });
    def(RING.BBSTATE, 'RING_BBSTATE');
    def(RING.BBADDR, 'RING_BBADDR');
    def(RING.BBADDR_UDW, 'RING_BBADDR_UDW');
    // GVT-g tracks the render engine's CCID only; i915's error capture reads every engine's.
    def(RING.CCID, 'CCID', e.id === 0 ? F_GMADR | F_CMD_ACCESS : 0);
    def(RING.PP_DIR_DCLV, 'RING_PP_DIR_DCLV', F_CMD_ACCESS);
    def(RING.PP_DIR_BASE, 'RING_PP_DIR_BASE', F_CMD_ACCESS);
    def(RING.ELSP, 'RING_ELSP', 0, {
      read: () => 0,
      write: (ctx, _o, v) => ctx.hooks.elspWritten(e.id, v),
    });
    def(RING.EXECLIST_STATUS_LO, 'RING_EXECLIST_STATUS_LO', 0, { roMask: 0xffffffff });
    def(RING.EXECLIST_STATUS_HI, 'RING_EXECLIST_STATUS_HI', 0, { roMask: 0xffffffff });
    def(RING.SEMA_WAIT_POLL, 'RING_SEMA_WAIT_POLL');
    t.define(b + RING.PDP_BASE, { name: n('GEN8_RING_PDP'), size: 8 * 4, flags: F_CMD_ACCESS });
    def(RING.MODE_GEN7, 'RING_MODE_GEN7', F_MODE_MASK | F_CMD_ACCESS, { write: ringModeWrite(e) });
    def(RING.TIMESTAMP, 'RING_TIMESTAMP', F_CMD_ACCESS, {
      read: () => Number(timestampTicks() & 0xffffffffn),
    });
    def(RING.TIMESTAMP_UDW, 'RING_TIMESTAMP_UDW', F_CMD_ACCESS, {
      read: () => Number((timestampTicks() >> 32n) & 0xffffffffn),
    });
    t.define(b + RING.CONTEXT_STATUS_BUF, {
      name: n('RING_CONTEXT_STATUS_BUF'),
      size: CSB_ENTRIES * 8,
      roMask: 0xffffffff,
    });
    def(RING.CONTEXT_STATUS_PTR, 'RING_CONTEXT_STATUS_PTR', F_MODE_MASK);
    def(RING.CTX_TIMESTAMP, 'RING_CTX_TIMESTAMP', F_CMD_ACCESS);
    t.define(b + RING.FORCE_TO_NONPRIV, {
      name: n('RING_FORCE_TO_NONPRIV'),
      size: 12 * 4,
      flags: F_CMD_ACCESS,
    });
    t.define(b + RING.CS_GPR, { name: n('CS_GPR'), size: 16 * 8, flags: F_CMD_ACCESS });
  }
}
