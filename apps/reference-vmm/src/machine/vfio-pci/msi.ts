/**
 * MSI of an assigned function, as QEMU's vfio_msi_enable / vfio_update_msi / vfio_msi_disable:
 * the capability stays the device's (config writes go to it), the VMM reads it back after the
 * guest writes it, routes the enabled vectors with SET_IRQS and turns each vector's eventfd into
 * the message the guest programmed; a vector masked by its per-vector mask bit is held pending
 * until it is unmasked.
 */
import { type ConfigReader, TWO_32, VFIO_PCI_MSI_IRQ_INDEX } from '@vfiokit/core';
import {
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
} from '@vfiokit/core/abi';
import { type IrqSetRequest, type IrqTrigger, msiCapabilitySize, msiLayout } from '@vfiokit/core/host';
import type { DeviceLink, InterruptModes } from './device-link.js';

const DISABLE_MSI: IrqSetRequest = Object.freeze({
  action: 'trigger',
  index: VFIO_PCI_MSI_IRQ_INDEX,
  start: 0,
  count: 0,
  data: 'none',
});

/** The eventfd of MSI vector `vector`. */
class MsiTrigger implements IrqTrigger {
  constructor(
    private readonly msi: Msi,
    private readonly vector: number,
  ) {}
  signal(): void {
    this.msi.signal(this.vector);
  }
}

export class Msi {
  /** The capability's length in config space (it depends on 64-bit addressing and masking). */
  readonly length: number;
  private readonly triggers: IrqTrigger[] = [];
  enabled = false;
  private vectors = 0;
  private address = 0;
  private data = 0;
  private mask = 0;
  private pending = 0;

  constructor(
    private readonly link: DeviceLink,
    /** The capability's offset in config space. */
    readonly capOffset: number,
    /** Where the constructor reads the capability (the function's config image). */
    config: ConfigReader = link,
  ) {
    const flags = config.configRead(capOffset + PCI_MSI_FLAGS, 2);
    this.length = msiCapabilitySize(
      (flags & PCI_MSI_FLAGS_64BIT) !== 0,
      (flags & PCI_MSI_FLAGS_MASKBIT) !== 0,
    );
    const capable = 1 << ((flags & PCI_MSI_FLAGS_QMASK) >>> 1);
    for (let i = 0; i < capable; i++) this.triggers.push(new MsiTrigger(this, i));
  }

  /** MSI vector `i` fired (its trigger's signal). */
  signal(i: number): void {
    if (!this.enabled || i >= this.vectors) return;
    if (this.mask & (1 << i)) {
      this.pending |= 1 << i;
      return;
    }
    // PCI Local Bus Specification 3.0 §6.8.1.6: vector i replaces the low log2(n) bits of the data.
    this.link.message(this.address, (this.data & ~(this.vectors - 1)) | i, 'MSI');
  }

  /** The guest wrote the capability: follow its enable bit, vector count, message and masks. */
  configWritten(modes: InterruptModes): void {
    const link = this.link;
    const at = this.capOffset;
    const flags = link.configRead(at + PCI_MSI_FLAGS, 2);
    const addr64 = (flags & PCI_MSI_FLAGS_64BIT) !== 0;
    const enabled = (flags & PCI_MSI_FLAGS_ENABLE) !== 0;
    const capable = 1 << ((flags & PCI_MSI_FLAGS_QMASK) >>> 1);
    const vectors = Math.min(
      1 << ((flags & PCI_MSI_FLAGS_QSIZE) >>> 4),
      capable,
      link.irqCount(VFIO_PCI_MSI_IRQ_INDEX),
    );
    const address =
      link.configRead(at + PCI_MSI_ADDRESS_LO, 4) +
      (addr64 ? link.configRead(at + PCI_MSI_ADDRESS_HI, 4) * TWO_32 : 0);
    const layout = msiLayout(flags);
    const data = link.configRead(at + layout.data, 2);
    const mask = layout.perVectorMask ? link.configRead(at + layout.mask, 4) : 0;
    const unmasked = this.mask & ~mask;
    this.mask = mask;
    if (!enabled) {
      if (this.enabled) {
        this.disable();
        modes.leave();
      }
      return;
    }
    if (vectors < 1) return;
    const changed =
      !this.enabled || vectors !== this.vectors || address !== this.address || data !== this.data;
    if (changed) {
      // vfio_msi_enable starts with vfio_disable_interrupts: INTx, MSI and MSI-X are exclusive.
      if (!this.enabled) modes.enter('msi');
      // MSI is NORESIZE: a new vector count means disable, then set all vectors again.
      else if (vectors !== this.vectors) link.setIrqs('resize MSI', DISABLE_MSI);
      this.vectors = vectors;
      this.address = address;
      this.data = data;
      this.enabled = link.setIrqs('enable MSI', {
        action: 'trigger',
        index: VFIO_PCI_MSI_IRQ_INDEX,
        start: 0,
        count: vectors,
        data: 'eventfd',
        triggers: this.triggers.slice(0, vectors),
      });
      if (!this.enabled) modes.leave();
    }
    const release = unmasked & this.pending;
    if (release) {
      this.pending &= ~release;
      for (let i = 0; i < this.vectors; i++) if (release & (1 << i)) this.signal(i);
    }
  }

  /** vfio_msi_disable: every vector's route off; held messages are dropped. */
  disable(): void {
    this.enabled = false;
    this.pending = 0;
    this.link.setIrqs('disable MSI', DISABLE_MSI);
  }

  /** The power-on state of the VMM's copy (the device's own registers are reset by the device). */
  reset(): void {
    this.mask = 0;
    this.pending = 0;
  }

  /** The device file is closing (its routes go with it): forget them without SET_IRQS. */
  forget(): void {
    this.enabled = false;
    this.pending = 0;
  }
}
