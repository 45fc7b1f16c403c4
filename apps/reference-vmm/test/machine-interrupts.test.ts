import { VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX } from '@vfiokit/core';
import {
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_MASKALL,
} from '@vfiokit/core/abi';
import { afterEach, describe, expect, it } from 'vitest';
import { InterruptController, Machine, MSI_WINDOW_BASE } from '../src/machine/index.js';
import { slot, TestDevice } from './machine-fixtures.js';

let machine: Machine | undefined;
afterEach(() => {
  machine?.close();
  machine = undefined;
});

async function boot(opts: ConstructorParameters<typeof TestDevice>[0]) {
  machine = new Machine({ ramSize: 16 * 1024 * 1024 });
  const dev = new TestDevice(opts);
  machine.attach({ device: dev, slot: slot(5), label: 'dev' });
  const found = await machine.probe();
  const probed = found.find((d) => d.address.device === 5);
  if (!probed) throw new Error('not probed');
  return { m: machine, dev, probed };
}

describe('MSI', () => {
  it('enables every capable vector as an aligned block and delivers each to its vector', async () => {
    const { m, dev, probed } = await boot({ msi: { vectors: 4 } });
    expect(probed.interrupts.kind).toBe('msi');
    const vectors = probed.interrupts.vectors;
    expect(vectors).toHaveLength(4);
    expect(vectors[0] % 4).toBe(0);
    expect(m.functionAt(slot(5))?.file.irqEnabled(VFIO_PCI_MSI_IRQ_INDEX)).toBe(true);
    expect(m.functionAt(slot(5))?.file.irqEnabled(VFIO_PCI_INTX_IRQ_INDEX)).toBe(false);
    expect(dev.raiseInterrupt(0)).toBe('msi');
    dev.raiseInterrupt(3);
    dev.raiseInterrupt(3);
    expect(m.guest.interrupts.count(vectors[0])).toBe(1);
    expect(m.guest.interrupts.count(vectors[3])).toBe(2);
    expect(m.report().devices[1].interrupts).toMatchObject({ mode: 'msi', total: 3 });
    expect(await m.guest.interrupts.waitFor(vectors[3], 2, 10)).toBe(true);
    expect(await m.guest.interrupts.waitFor(vectors[3], 3, 10)).toBe(false);
  });

  it('holds a vector masked by the per-vector mask and delivers it on unmask', async () => {
    const { m, dev, probed } = await boot({ msi: { vectors: 2, perVectorMask: true } });
    const cap = probed.capabilities.find((c) => c.id === 0x05)?.offset ?? 0;
    const maskAt = cap + 0x10; // PCI_MSI_MASK_64
    m.guest.configWrite(slot(5), maskAt, 4, 0b10);
    dev.raiseInterrupt(1);
    expect(m.guest.interrupts.count(probed.interrupts.vectors[1])).toBe(0);
    m.guest.configWrite(slot(5), maskAt, 4, 0);
    expect(m.guest.interrupts.count(probed.interrupts.vectors[1])).toBe(1);
  });

  it('goes back to INTx when the guest disables MSI', async () => {
    const { m, probed } = await boot({ msi: { vectors: 1 } });
    const cap = probed.capabilities.find((c) => c.id === 0x05)?.offset ?? 0;
    const flags = m.guest.configRead(slot(5), cap + 2, 2);
    m.guest.configWrite(slot(5), cap + 2, 2, flags & ~1);
    const file = m.functionAt(slot(5))?.file;
    expect(file?.irqEnabled(VFIO_PCI_MSI_IRQ_INDEX)).toBe(false);
    expect(file?.irqEnabled(VFIO_PCI_INTX_IRQ_INDEX)).toBe(true);
    expect(m.functionAt(slot(5))?.interruptMode).toBe('intx');
  });
});

describe('MSI-X', () => {
  it('programs the VMM-kept table and delivers each vector to the vector the probe allocated', async () => {
    const { m, dev, probed } = await boot({ msix: { tableSize: 4 }, msi: { vectors: 1 } });
    expect(probed.interrupts.kind).toBe('msix');
    const vectors = probed.interrupts.vectors;
    expect(vectors).toHaveLength(4);
    const file = m.functionAt(slot(5))?.file;
    expect(file?.irqEnabled(VFIO_PCI_MSIX_IRQ_INDEX)).toBe(true);
    expect(file?.irqEnabled(VFIO_PCI_MSI_IRQ_INDEX)).toBe(false);
    expect(file?.irqEnabled(VFIO_PCI_INTX_IRQ_INDEX)).toBe(false);
    expect(dev.raiseInterrupt(2)).toBe('msix');
    expect(m.guest.interrupts.count(vectors[2])).toBe(1);
    const table = m.report().devices[1].interrupts.msix;
    expect(table?.emulated).toBe(true);
    expect(table?.entries[2]).toEqual({
      address: MSI_WINDOW_BASE,
      data: vectors[2],
      masked: false,
      pending: false,
    });
    // The table page is the VMM's: the device's BAR2 handler never sees the table writes.
    expect(m.report().devices[1].regions.find((r) => r.index === 2)?.parts[0]).toMatchObject({
      how: 'msix-table',
      offset: 0,
    });
    expect(m.guest.configRead(slot(5), PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE).toBeTruthy();
  });

  it('sets the PBA bit of a masked vector instead of delivering, and delivers it on unmask', async () => {
    const { m, dev, probed } = await boot({ msix: { tableSize: 4 } });
    const bar2 = probed.bars.find((b) => b.index === 2)?.address ?? 0;
    const vectors = probed.interrupts.vectors;
    const ctrl = bar2 + 1 * 16 + PCI_MSIX_ENTRY_VECTOR_CTRL;
    m.guest.mmioWrite(ctrl, 4, 1);
    dev.raiseInterrupt(1);
    expect(m.guest.interrupts.count(vectors[1])).toBe(0);
    expect(m.guest.mmioRead(bar2 + 0x800, 4)).toBe(0b10);
    m.guest.mmioWrite(ctrl, 4, 0);
    expect(m.guest.interrupts.count(vectors[1])).toBe(1);
    expect(m.guest.mmioRead(bar2 + 0x800, 4)).toBe(0);
  });

  it('holds every vector under the function mask and releases pending ones when it clears', async () => {
    const { m, dev, probed } = await boot({ msix: { tableSize: 2 } });
    const cap = probed.capabilities.find((c) => c.id === 0x11)?.offset ?? 0;
    const flags = m.guest.configRead(slot(5), cap + PCI_MSIX_FLAGS, 2);
    m.guest.configWrite(slot(5), cap + PCI_MSIX_FLAGS, 2, flags | PCI_MSIX_FLAGS_MASKALL);
    dev.raiseInterrupt(0);
    expect(m.guest.interrupts.count(probed.interrupts.vectors[0])).toBe(0);
    m.guest.configWrite(slot(5), cap + PCI_MSIX_FLAGS, 2, flags);
    expect(m.guest.interrupts.count(probed.interrupts.vectors[0])).toBe(1);
  });

  it('ignores writes to the PBA, which is read-only', async () => {
    const { m, probed } = await boot({ msix: { tableSize: 2 } });
    const bar2 = probed.bars.find((b) => b.index === 2)?.address ?? 0;
    m.guest.mmioWrite(bar2 + 0x800, 4, 0xffffffff);
    expect(m.guest.mmioRead(bar2 + 0x800, 4)).toBe(0);
  });
});

describe('INTx', () => {
  it('delivers the level-triggered line once, holds it until EOI, and unmasks on EOI', async () => {
    const { m, dev, probed } = await boot({});
    expect(probed.interrupts.kind).toBe('intx');
    const [vector] = probed.interrupts.vectors;
    expect(vector).toBe(m.guest.interrupts.intxVector(slot(5)));
    expect(dev.raiseInterrupt()).toBe('intx');
    expect(m.guest.interrupts.count(vector)).toBe(1);
    dev.raiseInterrupt();
    expect(m.guest.interrupts.count(vector)).toBe(1);
    m.guest.interrupts.eoi(vector);
    expect(m.guest.interrupts.count(vector)).toBe(2);
    m.guest.interrupts.eoi(vector);
    dev.raiseInterrupt();
    expect(m.guest.interrupts.count(vector)).toBe(3);
    expect(m.functionAt(slot(5))?.file.irqCounters(VFIO_PCI_INTX_IRQ_INDEX)?.held).toBe(1);
  });

  it('routes pins by the swizzle onto the four INTx vectors', () => {
    const ic = new InterruptController({ pinOf: () => 2, onEoi: () => {} });
    expect(ic.intxVector(slot(0))).toBe(0x21);
    expect(ic.intxVector(slot(3))).toBe(0x20);
    expect(ic.intxVector(slot(6))).toBe(0x23);
  });
});

describe('interrupt controller', () => {
  it('hands out vectors from 0x24 to 0xfe and then refuses with ENOSPC', () => {
    const ic = new InterruptController({ pinOf: () => 0, onEoi: () => {} });
    const first = ic.allocateVector();
    expect(first).toEqual({ vector: 0x24, address: MSI_WINDOW_BASE, data: 0x24 });
    expect(ic.allocateVectors(8, 8)).toBe(0x28);
    while (ic.freeVectors > 0) ic.allocateVector();
    expect(() => ic.allocateVector()).toThrow(/ENOSPC/);
  });

  it('counts a write to the MSI window as a delivery and drops vectors outside 0x20-0xfe', () => {
    machine = new Machine({ ramSize: 16 * 1024 * 1024 });
    machine.guest.mmioWrite(MSI_WINDOW_BASE, 4, 0x41);
    machine.guest.mmioWrite(MSI_WINDOW_BASE, 4, 0x05);
    expect(machine.guest.interrupts.count(0x41)).toBe(1);
    expect(machine.report().interrupts).toMatchObject({ total: 1, spurious: 1, perVector: { '0x41': 1 } });
  });
});
