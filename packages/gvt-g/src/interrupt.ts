/**
 * The vGPU's interrupt model (gvt/interrupt.c for gen8+): an event sets its bit in its group's
 * IIR unless IMR masks it; a group with an enabled IIR bit raises its bit in GEN8_MASTER_IRQ;
 * while the master enable is set and any group is raised, the guest gets one MSI — on the rise,
 * and again each time the guest's handler re-enables the master with events still pending (the
 * edge a real GPU gives when its interrupt line stays asserted).
 */

import { IIR, IMR, masterValue } from './mmio/irq-handlers.js';
import {
  ENGINES,
  GEN8_DE_PIPE_ISR,
  GEN8_DE_PORT_ISR,
  GEN8_GT_ISR,
  GEN8_MASTER_IRQ_CONTROL,
  SDEISR,
} from './mmio/regs.js';
import type { Vreg } from './mmio/vreg.js';

export class VgpuInterrupts {
  private raised = false;
  /** Events that found their bit masked, and MSIs sent, for statistics. */
  masked = 0;
  delivered = 0;

  constructor(
    private readonly regs: Vreg,
    private readonly deliver: () => void,
  ) {}

  /** An engine event (GT_RENDER_USER_INTERRUPT, GT_CONTEXT_SWITCH_INTERRUPT...) of engine `id`. */
  engineEvent(id: number, bit: number): void {
    const e = ENGINES.find((x) => x.id === id);
    if (e === undefined) return;
    this.event(GEN8_GT_ISR(e.bank), (bit << e.shift) >>> 0);
  }

  /** A display pipe event (GEN8_PIPE_VBLANK...). */
  pipeEvent(pipe: number, bit: number): void {
    this.event(GEN8_DE_PIPE_ISR(pipe), bit);
  }

  /** A display port event (an AUX channel done...). */
  portEvent(bit: number): void {
    this.event(GEN8_DE_PORT_ISR, bit);
  }

  /** A south display (PCH) event (hotplug...). */
  sdeEvent(bit: number): void {
    this.event(SDEISR, bit);
  }

  private event(isr: number, bit: number): void {
    if (this.regs.get(isr + IMR) & bit) {
      this.masked++;
      return;
    }
    this.regs.set(isr + IIR, (this.regs.get(isr + IIR) | bit) >>> 0);
    this.update();
  }

  /** Whether an MSI is due: the master is enabled and some group is raised. */
  pending(): boolean {
    const m = masterValue(this.regs);
    return (m & GEN8_MASTER_IRQ_CONTROL) !== 0 && (m & ~GEN8_MASTER_IRQ_CONTROL) !== 0;
  }

  /** Registers changed: send the MSI on a rise. */
  update(): void {
    const now = this.pending();
    if (now && !this.raised) {
      this.delivered++;
      this.deliver();
    }
    this.raised = now;
  }

  reset(): void {
    this.raised = false;
  }
}
