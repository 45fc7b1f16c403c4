/**
 * INTx of an assigned function, as QEMU's vfio_intx_enable and vfio_intx_eoi: one eventfd on
 * INTx vector 0, a level-triggered line that VFIO automasks when it fires and the VMM unmasks
 * when the guest ends the interrupt.
 */
import { VFIO_PCI_INTX_IRQ_INDEX } from '@vfiokit/core';
import type { IrqSetRequest, IrqTrigger } from '@vfiokit/core/host';
import { intxVectorFor } from '../interrupt-controller.js';
import type { DeviceLink } from './device-link.js';

// SET_IRQS requests that carry no per-device data, shared by every function.
const DISABLE_INTX: IrqSetRequest = Object.freeze({
  action: 'trigger',
  index: VFIO_PCI_INTX_IRQ_INDEX,
  start: 0,
  count: 0,
  data: 'none',
});
const UNMASK_INTX: IrqSetRequest = Object.freeze({
  action: 'unmask',
  index: VFIO_PCI_INTX_IRQ_INDEX,
  start: 0,
  count: 1,
  data: 'none',
});

/** INTx's eventfd: the line's vector at the interrupt controller. */
class IntxTrigger implements IrqTrigger {
  constructor(private readonly intx: Intx) {}
  signal(): void {
    this.intx.signal();
  }
}

export class Intx {
  /** The line's vector at the interrupt controller (pin 0 is taken as INTA, for the report). */
  readonly vector: number;
  /** SET_IRQS that gives INTx its eventfd (made once; the core copies the trigger). */
  private readonly enableRequest: IrqSetRequest;
  private readonly count: number;
  on = false;

  constructor(
    private readonly link: DeviceLink,
    /** PCI_INTERRUPT_PIN: 0 for none, 1–4 for INTA–INTD. */
    readonly pin: number,
    slotDevice: number,
  ) {
    this.vector = intxVectorFor(slotDevice, pin === 0 ? 1 : pin);
    this.count = link.irqCount(VFIO_PCI_INTX_IRQ_INDEX);
    this.enableRequest = {
      action: 'trigger',
      index: VFIO_PCI_INTX_IRQ_INDEX,
      start: 0,
      count: 1,
      data: 'eventfd',
      triggers: [new IntxTrigger(this)],
    };
  }

  /** INTx fired (its trigger's signal). */
  signal(): void {
    this.link.deliver(this.vector);
  }

  /** vfio_intx_enable: one eventfd on INTx vector 0, when the device has a pin. */
  enable(): void {
    if (this.on || this.pin === 0 || this.count === 0) return;
    this.on = this.link.setIrqs('enable INTx', this.enableRequest);
  }

  disable(): void {
    if (!this.on) return;
    this.on = false;
    this.link.setIrqs('disable INTx', DISABLE_INTX);
  }

  /** vfio_intx_eoi: the guest ended the interrupt, so unmask the automasked line. */
  eoi(vector: number): void {
    if (!this.on || vector !== this.vector) return;
    this.link.setIrqs('unmask INTx', UNMASK_INTX);
  }
}
