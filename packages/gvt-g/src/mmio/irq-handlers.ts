/**
 * The interrupt registers (gvt/interrupt.c, gen8 layout): the master control, four GT banks, the
 * display pipe, port and misc groups, the PCU and the south display (PCH), each an ISR / IMR /
 * IIR / IER quartet. IIR is write-1-to-clear; every change re-evaluates what is pending
 * (interrupt.ts). GEN8_MASTER_IRQ reads the enable bit with one bit per group whose IIR has an
 * enabled bit set, as update_upstream_irq keeps it.
 */
import {
  EDP_PSR_IIR,
  EDP_PSR_IMR,
  GEN8_DE_MISC_ISR,
  GEN8_DE_PIPE_ISR,
  GEN8_DE_PORT_ISR,
  GEN8_GT_ISR,
  GEN8_MASTER_IRQ,
  GEN8_MASTER_IRQ_CONTROL,
  GEN8_PCU_ISR,
  SDEISR,
} from './regs.js';
import type { MmioTable } from './table.js';
import type { Vreg } from './vreg.js';

/** One ISR/IMR/IIR/IER group and the bit it raises in the master register. */
export interface IrqGroup {
  readonly name: string;
  readonly isr: number;
  readonly masterBit: number;
}

const ENGINE_BANK_BITS = [(1 << 0) | (1 << 1), (1 << 2) | (1 << 3), 1 << 4, 1 << 6] as const;

export const IRQ_GROUPS: readonly IrqGroup[] = Object.freeze([
  ...[0, 1, 2, 3].map((k) => ({ name: `GEN8_GT_${k}`, isr: GEN8_GT_ISR(k), masterBit: ENGINE_BANK_BITS[k] })),
  ...[0, 1, 2].map((p) => ({
    name: `GEN8_DE_PIPE_${'ABC'[p]}`,
    isr: GEN8_DE_PIPE_ISR(p),
    masterBit: 1 << (16 + p),
  })),
  { name: 'GEN8_DE_PORT', isr: GEN8_DE_PORT_ISR, masterBit: 1 << 20 },
  { name: 'GEN8_DE_MISC', isr: GEN8_DE_MISC_ISR, masterBit: 1 << 22 },
  { name: 'SDE', isr: SDEISR, masterBit: 1 << 23 },
  { name: 'GEN8_PCU', isr: GEN8_PCU_ISR, masterBit: 1 << 30 },
]);

export const IMR = 4;
export const IIR = 8;
export const IER = 12;

/**
 * The GT bank bits in the master register are per engine pair: bank 0 raises RCS (bit 0) for
 * its low half and BCS (bit 1) for its high half, bank 1 VCS0 (2) and VCS1 (3).
 */
export function masterBitsOf(group: IrqGroup, pending: number): number {
  if (group.isr === GEN8_GT_ISR(0) || group.isr === GEN8_GT_ISR(1)) {
    const lowBit = group.isr === GEN8_GT_ISR(0) ? 1 << 0 : 1 << 2;
    return (pending & 0xffff ? lowBit : 0) | (pending >>> 16 ? lowBit << 1 : 0);
  }
  return pending !== 0 ? group.masterBit : 0;
}

/** GEN8_MASTER_IRQ as the guest reads it. */
export function masterValue(ctx: Vreg): number {
  let v = ctx.get(GEN8_MASTER_IRQ) & GEN8_MASTER_IRQ_CONTROL;
  for (const g of IRQ_GROUPS) v |= masterBitsOf(g, ctx.get(g.isr + IIR) & ctx.get(g.isr + IER));
  return v >>> 0;
}

export function defineIrqRegisters(t: MmioTable<Vreg>): void {
  const changed = (ctx: Vreg, offset: number, value: number) => {
    ctx.set(offset, value);
    ctx.hooks.interruptsChanged();
  };
  t.define(GEN8_MASTER_IRQ, {
    name: 'GEN8_MASTER_IRQ',
    read: masterValue,
    write: (ctx, offset, value) => changed(ctx, offset, value & GEN8_MASTER_IRQ_CONTROL),
  });
  for (const g of IRQ_GROUPS) {
    t.define(g.isr, { name: `${g.name}_ISR`, roMask: 0xffffffff });
    t.define(g.isr + IMR, { name: `${g.name}_IMR`, write: changed });
    t.define(g.isr + IIR, {
      name: `${g.name}_IIR`,
      write: (ctx, offset, value, old) => changed(ctx, offset, old & ~value),
    });
    t.define(g.isr + IER, { name: `${g.name}_IER`, write: changed });
  }
  // edp_psr_imr_iir_write: PSR interrupts never happen on a vGPU; both read 0.
  t.define(EDP_PSR_IMR, { name: 'EDP_PSR_IMR', write: (ctx, o) => ctx.set(o, 0) });
  t.define(EDP_PSR_IIR, { name: 'EDP_PSR_IIR', write: (ctx, o) => ctx.set(o, 0) });
}
