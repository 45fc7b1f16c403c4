import { PCI_COMMAND, PCI_COMMAND_IO, PCI_COMMAND_MASTER } from '@vfiokit/core/abi';
import mttyPlugin, {
  MTTY_CLASS_CODE,
  MTTY_DEVICE_ID,
  MTTY_VENDOR_ID,
  mttyGuestDriver,
} from '@vfiokit/sample-mtty';
import { afterEach, describe, expect, it } from 'vitest';
import { IO_WINDOW, Machine } from '../src/machine/index.js';
import { slot } from './machine-fixtures.js';

let machine: Machine | undefined;
afterEach(() => {
  machine?.close();
  machine = undefined;
});

function mttyDevice(typeId: 'mtty-1' | 'mtty-2', uuid: string) {
  const host = {
    clock: { now: () => 0, schedule: () => () => {} },
    log: { debug() {}, info() {}, warn() {}, error() {} },
    options: {},
  };
  const [parent] = mttyPlugin.probe(host);
  return parent.create(typeId, uuid).device;
}

describe('the sample mtty device on the machine', () => {
  it('is probed with its CH352 IDs, both I/O BARs sized and assigned, decode and bus mastering on', async () => {
    machine = new Machine({ ramSize: 16 * 1024 * 1024 });
    machine.attach({
      device: mttyDevice('mtty-2', '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001'),
      slot: slot(3),
      label: 'mtty0',
      plugin: '@vfiokit/sample-mtty',
      typeId: 'mtty-2',
    });
    const found = await machine.probe();
    const mtty = found.find((d) => d.address.device === 3);
    expect(mtty).toMatchObject({
      vendorId: MTTY_VENDOR_ID,
      deviceId: MTTY_DEVICE_ID,
      classCode: MTTY_CLASS_CODE,
      interruptPin: 1,
    });
    expect(mtty?.bars.map((b) => [b.index, b.kind, b.size])).toEqual([
      [0, 'io', 8],
      [1, 'io', 8],
    ]);
    for (const b of mtty?.bars ?? []) expect(b.address).toBeGreaterThanOrEqual(IO_WINDOW.base);
    const command = machine.guest.configRead(slot(3), PCI_COMMAND, 2);
    expect(command & (PCI_COMMAND_IO | PCI_COMMAND_MASTER)).toBe(PCI_COMMAND_IO | PCI_COMMAND_MASTER);
    expect(mtty?.interrupts.kind).toBe('intx');
    const report = machine.report().devices[1];
    expect(report).toMatchObject({ label: 'mtty0', plugin: '@vfiokit/sample-mtty', typeId: 'mtty-2' });
    expect(report.regions.filter((r) => r.index < 6).map((r) => r.mapping)).toEqual(['trapped', 'trapped']);
  });

  it('runs the plugin guest driver: port I/O reaches the UARTs and the INTx interrupt arrives', async () => {
    machine = new Machine({ ramSize: 16 * 1024 * 1024 });
    machine.attach({
      device: mttyDevice('mtty-1', '83b8f4f2-509f-382f-3c1e-e6bfe0fa1002'),
      slot: slot(3),
      label: 'mtty0',
    });
    await machine.probe();
    const runs = await machine.runDrivers([mttyGuestDriver]);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ driver: mttyGuestDriver.name, ok: true });
    const dev = machine.report().devices[1];
    expect(dev.interrupts.total).toBeGreaterThan(0);
    expect(dev.access.find((a) => a.region === 0)?.writes).toBeGreaterThan(0);
  });
});
