import { VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX } from '@vfiokit/core';
import { PCI_BASE_ADDRESS_0, PCI_COMMAND } from '@vfiokit/core/abi';
import { afterEach, describe, expect, it } from 'vitest';
import { Machine } from '../src/machine/index.js';
import {
  BrokenDevice,
  DMA_PATTERN,
  REG_DMA_ADDR,
  REG_DOORBELL,
  REG_STATUS,
  slot,
  TestDevice,
  uartDevice,
} from './machine-fixtures.js';

let machine: Machine | undefined;
afterEach(() => {
  machine?.close();
  machine = undefined;
});

function recordingLog() {
  const lines: string[] = [];
  const at = (level: string) => (m: string) => lines.push(`${level}: ${m}`);
  return { lines, log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

describe('IOMMU', () => {
  it('lets device DMA write guest RAM inside the identity map', async () => {
    machine = new Machine({ ramSize: 16 * 1024 * 1024 });
    const dev = new TestDevice();
    machine.attach({ device: dev, slot: slot(4), label: 'dev' });
    const [, d] = await machine.probe();
    const bar0 = d.bars[0].address;
    const buffer = machine.guest.ram.alloc(4096);
    machine.guest.mmioWrite(bar0 + REG_DMA_ADDR, 4, buffer);
    machine.guest.mmioWrite(bar0 + REG_DOORBELL, 4, 1);
    expect(machine.guest.mmioRead(bar0 + REG_STATUS, 4)).toBe(1);
    const got = new Uint8Array(4);
    machine.guest.ram.read(buffer, got);
    expect([...got]).toEqual(DMA_PATTERN);
    expect(machine.report().iommu).toEqual([{ iova: 0, size: 16 * 1024 * 1024, read: true, write: true }]);
  });

  it('faults device DMA outside guest RAM with EFAULT and writes nothing', async () => {
    machine = new Machine({ ramSize: 16 * 1024 * 1024 });
    const dev = new TestDevice();
    machine.attach({ device: dev, slot: slot(4), label: 'dev' });
    const [, d] = await machine.probe();
    const bar0 = d.bars[0].address;
    const last = 16 * 1024 * 1024 - 2;
    machine.guest.mmioWrite(bar0 + REG_DMA_ADDR, 4, last);
    machine.guest.mmioWrite(bar0 + REG_DOORBELL, 4, 1);
    expect(machine.guest.mmioRead(bar0 + REG_STATUS, 4)).toBe(14);
    expect(dev.lastDmaError?.code).toBe('EFAULT');
    expect([...machine.ram.bytes.subarray(last)]).toEqual([0, 0]);
    machine.guest.mmioWrite(bar0 + REG_DMA_ADDR, 4, 0xc000_0000);
    machine.guest.mmioWrite(bar0 + REG_DOORBELL, 4, 1);
    expect(dev.lastDmaError?.code).toBe('EFAULT');
  });
});

describe('fault isolation', () => {
  it('turns a throwing plugin handler into one failed access: all-ones, logged with device, region and offset', async () => {
    const { lines, log } = recordingLog();
    machine = new Machine({ ramSize: 16 * 1024 * 1024, log });
    const broken = new BrokenDevice();
    const good = new TestDevice({ name: 'good' });
    machine.attach({ device: broken, slot: slot(2), label: 'broken' });
    machine.attach({ device: good, slot: slot(3), label: 'good' });
    const found = await machine.probe();
    const bad = found.find((d) => d.address.device === 2)?.bars[0].address ?? 0;
    const fine = found.find((d) => d.address.device === 3)?.bars[0].address ?? 0;
    machine.guest.mmioWrite(bad + 0x20, 4, 0x55);
    expect(machine.guest.mmioRead(bad + 0x10, 4)).toBe(0xffffffff);
    expect(machine.guest.mmioRead(bad + 0x10, 2)).toBe(0xffff);
    machine.guest.mmioWrite(bad + 0x10, 4, 1);
    expect(machine.guest.mmioRead(bad + 0x20, 4)).toBe(0x55);
    const errors = machine.report().errors;
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatchObject({
      device: 'broken',
      slot: '0000:00:02.0',
      region: 0,
      offset: 0x10,
      operation: 'read',
      code: 'EIO',
    });
    expect(errors[0].message).toMatch(/reading "status"/);
    expect(errors[2]).toMatchObject({ operation: 'write', offset: 0x10 });
    expect(
      lines.some(
        (l) =>
          l.startsWith('error: 0000:00:02.0 broken: read failed') &&
          l.includes('region 0') &&
          l.includes('offset 0x10'),
      ),
    ).toBe(true);
    // The other device is untouched and still works.
    machine.guest.mmioWrite(fine, 4, 0x1234);
    expect(machine.guest.mmioRead(fine, 4)).toBe(0x1234);
    expect(
      machine
        .report()
        .devices.find((d) => d.label === 'good')
        ?.access.every((a) => a.errors === 0),
    ).toBe(true);
    // The broken device can be reset afterwards and still answers its working registers.
    machine.reset();
    // Once when it was plugged (power-on), once now.
    expect(broken.resets).toBe(2);
    await machine.probe();
    const again = machine.functionAt(slot(2))?.bars[0].address ?? 0;
    expect(machine.guest.mmioRead(again + 0x20, 4)).toBe(0x55);
  });
});

describe('hot-add and hot-remove', () => {
  it('adds a device while running; a re-probe finds it and keeps the vectors of the others', async () => {
    machine = new Machine({ ramSize: 16 * 1024 * 1024 });
    machine.attach({
      device: new TestDevice({ name: 'a', msix: { tableSize: 2 } }),
      slot: slot(3),
      label: 'a',
    });
    const first = await machine.probe();
    expect(first).toHaveLength(2);
    const vectorsA = first[1].interrupts.vectors;
    machine.attach({ device: uartDevice('late').model, slot: slot(9), label: 'late' });
    const second = await machine.probe();
    expect(second.map((d) => d.address.device)).toEqual([0, 3, 9]);
    expect(second[1].interrupts.vectors).toEqual(vectorsA);
    const port = second[2].bars[0].address;
    expect(machine.guest.ioRead(port + 1, 1)).toBe(0);
    expect(machine.guest.devices()).toBe(second);
  });

  it('removes a device while running: its BARs vanish, its interrupts are off and its file is closed', async () => {
    machine = new Machine({ ramSize: 16 * 1024 * 1024 });
    const dev = new TestDevice({ msix: { tableSize: 2 } });
    const attached = machine.attach({ device: dev, slot: slot(3), label: 'a' });
    const [, d] = await machine.probe();
    const bar0 = d.bars[0].address;
    machine.guest.mmioWrite(bar0, 4, 5);
    expect(attached.file.irqEnabled(VFIO_PCI_MSIX_IRQ_INDEX)).toBe(true);
    machine.detach(slot(3));
    expect(attached.file.opened).toBe(false);
    expect(attached.file.irqEnabled(VFIO_PCI_MSIX_IRQ_INDEX)).toBe(false);
    expect(dev.isOpen).toBe(false);
    expect(machine.guest.mmioRead(bar0, 4)).toBe(0xffffffff);
    expect(machine.devices()).toHaveLength(0);
    const after = await machine.probe();
    expect(after.map((x) => x.address.device)).toEqual([0]);
    expect(() => machine?.detach(slot(3))).toThrow(/ENODEV/);
    // The same device can be attached again (its file was closed).
    machine.attach({ device: dev, slot: slot(4), label: 'again' });
    expect((await machine.probe()).map((x) => x.address.device)).toEqual([0, 4]);
  });
});

describe('VMM reset', () => {
  it('resets every device, unmaps BARs, clears interrupt routes and lets the guest probe again', async () => {
    machine = new Machine({ ramSize: 16 * 1024 * 1024 });
    const a = new TestDevice({ name: 'a', msix: { tableSize: 2 } });
    const b = new TestDevice({ name: 'b', resettable: false });
    machine.attach({ device: a, slot: slot(3), label: 'a' });
    machine.attach({ device: b, slot: slot(4), label: 'b' });
    const found = await machine.probe();
    const bar0 = found[1].bars[0].address;
    machine.guest.mmioWrite(found[2].bars[0].address + REG_STATUS, 4, 7);
    machine.reset();
    // Once when it was plugged (power-on), once now.
    expect(a.resets).toBe(2);
    expect(b.resets).toBe(0);
    // b cannot be reset: as QEMU's vfio_pci_reset leaves it, decode off and BARs 0, registers kept.
    expect(machine.guest.configRead(slot(4), PCI_COMMAND, 2)).toBe(0);
    expect(machine.guest.configRead(slot(4), PCI_BASE_ADDRESS_0, 4)).toBe(0);
    expect(b.regs.values.get(REG_STATUS)).toBe(7);
    expect(machine.guest.mmioRead(bar0, 4)).toBe(0xffffffff);
    expect(machine.guest.configRead(slot(3), PCI_COMMAND, 2)).toBe(0);
    const fa = machine.functionAt(slot(3));
    expect(fa?.file.irqEnabled(VFIO_PCI_MSIX_IRQ_INDEX)).toBe(false);
    expect(fa?.file.irqEnabled(VFIO_PCI_INTX_IRQ_INDEX)).toBe(true);
    expect(fa?.interruptMode).toBe('intx');
    expect(machine.report().devices[1].interrupts.msix?.entries.every((e) => e.masked)).toBe(true);
    expect(machine.guest.devices()).toEqual([]);
    const again = await machine.probe();
    expect(again[1].interrupts.kind).toBe('msix');
    expect(again[1].interrupts.vectors[0]).toBe(found[1].interrupts.vectors[0]);
  });

  it('refuses work after close', () => {
    machine = new Machine({ ramSize: 16 * 1024 * 1024 });
    machine.close();
    expect(() => machine?.attach({ device: uartDevice().model, slot: slot(3), label: 'x' })).toThrow(/EBADF/);
  });
});

describe('drivers', () => {
  it('runs each matching driver and reports a throwing driver as a failed run', async () => {
    machine = new Machine({ ramSize: 16 * 1024 * 1024 });
    machine.attach({ device: uartDevice().model, slot: slot(3), label: 'uart' });
    await machine.probe();
    const runs = await machine.runDrivers([
      {
        name: 'uart-echo',
        matches: (d) => d.vendorId === 0x4348,
        run: async (guest, d) => {
          guest.ioWrite(d.bars[0].address, 1, 0x5a);
          return {
            ok: guest.ioRead(d.bars[0].address, 1) === 0x5a,
            summary: 'echo',
            facts: { port: d.bars[0].address },
          };
        },
      },
      {
        name: 'bad',
        matches: (d) => d.vendorId === 0x4348,
        run: async () => {
          throw new Error('driver bug');
        },
      },
    ]);
    expect(runs).toHaveLength(2);
    expect(runs[0]).toMatchObject({ slot: slot(3), driver: 'uart-echo', ok: true, summary: 'echo' });
    expect(runs[1]).toMatchObject({ driver: 'bad', ok: false, error: 'driver bug' });
  });
});
