/**
 * A machine resets each device as it plugs it, as QEMU resets every vfio device at system reset
 * (the one that starts the machine included) and a hot-plugged one as it is realized: a device
 * model used by an earlier machine (an mdev keeps its state from close to open) reaches the new
 * guest clean, a device without a reset is left as QEMU's vfio_pci_reset leaves it, and no other
 * device is touched.
 */
import { VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX } from '@vfiokit/core';
import { PCI_BASE_ADDRESS_0, PCI_COMMAND, PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE } from '@vfiokit/core/abi';
import { afterEach, describe, expect, it } from 'vitest';
import { Machine } from '../src/machine/index.js';
import { REG_STATUS, TestDevice } from './machine-fixtures.js';

const slot = (device: number) => ({ bus: 0, device, function: 0 });
let machines: Machine[] = [];
afterEach(() => {
  for (const m of machines) m.close();
  machines = [];
});

function newMachine(lines?: string[]): Machine {
  const log = lines
    ? {
        debug() {},
        info() {},
        warn: (m: string) => lines.push(m),
        error: (m: string) => lines.push(m),
      }
    : undefined;
  const m = new Machine({ ramSize: 16 * 1024 * 1024, ...(log ? { log } : {}) });
  machines.push(m);
  return m;
}

/** Boot a machine with `dev` at 00:03.0, let the guest use it, shut the machine down. */
async function firstUser(dev: TestDevice): Promise<void> {
  const m = newMachine();
  m.attach({ device: dev, slot: slot(3), label: 'dev' });
  const [, d] = await m.probe();
  const bar0 = d.bars[0].address;
  m.guest.mmioWrite(bar0 + REG_STATUS, 4, 0x77);
  expect(m.guest.configRead(slot(3), PCI_COMMAND, 2) & 0x6).toBe(0x6);
  expect(m.functionAt(slot(3))?.interruptMode).toBe('msix');
  m.close();
}

describe('machine power-on', () => {
  it('gives the second machine a device as clean as the first: COMMAND, BARs, MSI-X, triggers, registers', async () => {
    const dev = new TestDevice({ name: 'reused', msix: { tableSize: 2 } });
    await firstUser(dev);
    // The model kept what the first guest left (an mdev does, from close to open).
    expect(dev.config.command & 0x6).toBe(0x6);
    expect(dev.regs.values.get(REG_STATUS)).toBe(0x77);

    const m = newMachine();
    const attached = m.attach({ device: dev, slot: slot(3), label: 'dev' });
    const g = m.guest;
    expect(g.configRead(slot(3), PCI_COMMAND, 2)).toBe(0);
    for (let i = 0; i < 6; i++) expect(g.configRead(slot(3), PCI_BASE_ADDRESS_0 + 4 * i, 4) & ~0xf).toBe(0);
    const msix = dev.config.capabilities().find((c) => c.id === 0x11)?.offset ?? -1;
    expect(g.configRead(slot(3), msix + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_ENABLE).toBe(0);
    expect(attached.file.irqEnabled(VFIO_PCI_MSIX_IRQ_INDEX)).toBe(false);
    expect(attached.file.irqEnabled(VFIO_PCI_INTX_IRQ_INDEX)).toBe(true);
    expect(m.functionAt(slot(3))?.interruptMode).toBe('intx');
    expect(dev.regs.values.get(REG_STATUS)).toBeUndefined();
    expect(dev.resets).toBe(2);

    // The probe then sizes the BARs of a device with decode off and sets it up as the first time.
    const [, d] = await m.probe();
    expect(d.bars[0].address).toBeGreaterThan(0);
    expect(m.functionAt(slot(3))?.interruptMode).toBe('msix');
    expect(m.report().errors).toEqual([]);
  });

  it('leaves a device without a reset as QEMU does: decode, BARs and MSI-X off, its registers kept, a warning', async () => {
    const dev = new TestDevice({ name: 'stuck', msix: { tableSize: 2 }, resettable: false });
    await firstUser(dev);
    const lines: string[] = [];
    const m = newMachine(lines);
    const attached = m.attach({ device: dev, slot: slot(3), label: 'stuck' });
    const g = m.guest;
    expect(g.configRead(slot(3), PCI_COMMAND, 2)).toBe(0);
    expect(g.configRead(slot(3), PCI_BASE_ADDRESS_0, 4) & ~0xf).toBe(0);
    const msix = dev.config.capabilities().find((c) => c.id === 0x11)?.offset ?? -1;
    expect(g.configRead(slot(3), msix + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_ENABLE).toBe(0);
    expect(attached.file.irqEnabled(VFIO_PCI_MSIX_IRQ_INDEX)).toBe(false);
    expect(dev.resets).toBe(0);
    expect(dev.regs.values.get(REG_STATUS)).toBe(0x77);
    expect(lines.some((l) => /00:03\.0 stuck: the device offers no VFIO_DEVICE_RESET/.test(l))).toBe(true);
    const [, d] = await m.probe();
    expect(m.functionAt(slot(3))?.interruptMode).toBe('msix');
    expect(g.mmioRead(d.bars[0].address + REG_STATUS, 4)).toBe(0x77);
  });

  it('touches no other device: not one left out of the new machine, not one already running at a hot-add', async () => {
    const kept = new TestDevice({ name: 'kept', msix: { tableSize: 2 } });
    const first = newMachine();
    first.attach({ device: kept, slot: slot(4), label: 'kept' });
    const [, k] = await first.probe();
    first.guest.mmioWrite(k.bars[0].address + REG_STATUS, 4, 0x42);
    const keptCommand = kept.config.command;
    const keptResets = kept.resets;

    // A second machine that does not plug `kept` leaves it as it is.
    const running = new TestDevice({ name: 'running', msix: { tableSize: 2 } });
    const m = newMachine();
    m.attach({ device: running, slot: slot(3), label: 'running' });
    const [, r] = await m.probe();
    m.guest.mmioWrite(r.bars[0].address + REG_STATUS, 4, 0x99);
    expect(kept.config.command).toBe(keptCommand);
    expect(kept.resets).toBe(keptResets);
    expect(first.guest.mmioRead(k.bars[0].address + REG_STATUS, 4)).toBe(0x42);

    // A hot-add resets the new device only.
    const runningFn = m.functionAt(slot(3));
    const before = {
      command: m.guest.configRead(slot(3), PCI_COMMAND, 2),
      bar0: m.guest.configRead(slot(3), PCI_BASE_ADDRESS_0, 4),
      mode: runningFn?.interruptMode,
      triggers: runningFn?.file.irqEnabled(VFIO_PCI_MSIX_IRQ_INDEX),
      resets: running.resets,
    };
    const late = new TestDevice({ name: 'late' });
    m.attach({ device: late, slot: slot(5), label: 'late' });
    expect(late.resets).toBe(1);
    expect({
      command: m.guest.configRead(slot(3), PCI_COMMAND, 2),
      bar0: m.guest.configRead(slot(3), PCI_BASE_ADDRESS_0, 4),
      mode: runningFn?.interruptMode,
      triggers: runningFn?.file.irqEnabled(VFIO_PCI_MSIX_IRQ_INDEX),
      resets: running.resets,
    }).toEqual(before);
    expect(m.guest.mmioRead(r.bars[0].address + REG_STATUS, 4)).toBe(0x99);
  });
});
