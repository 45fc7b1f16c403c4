/**
 * A `vfio:<device>` entry: a device of the host kernel attached to the reference VMM through
 * the Linux backend. Here the kernel is @vfiokit/linux-vfio's FakeKernel over sample-mtty (the
 * real kernel's devices are the guest suites' part): the probe finds it, mtty's 8250 driver
 * passes through the kernel road with guest RAM DMA-mapped at IOVA 0, and the CLI says what is
 * missing on a host without the device.
 */

import { FakeKernel } from '@vfiokit/linux-vfio/testing';
import mttyPlugin, { MTTY_DEVICE_ID, MTTY_VENDOR_ID, mttyGuestDriver } from '@vfiokit/sample-mtty';
import { afterEach, describe, expect, it } from 'vitest';
import { bufferIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { parseConfig } from '../src/config/index.js';
import {
  allocateMemfdGuestRam,
  closeKernelDevices,
  type KernelDevice,
  openKernelDevices,
} from '../src/loader/index.js';
import { Machine } from '../src/machine/index.js';
import { slot } from './machine-fixtures.js';

const UUID = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

let machine: Machine | undefined;
let kernel: KernelDevice[] = [];
afterEach(() => {
  machine?.close();
  machine = undefined;
  closeKernelDevices(kernel);
  kernel = [];
});

function fakeMtty(): FakeKernel {
  const host = { clock: { now: () => 0, schedule: () => () => {} }, log: console, options: {} };
  const [parent] = mttyPlugin.probe(host);
  const k = new FakeKernel();
  k.addMdev({ uuid: UUID, group: 9, device: parent.create('mtty-1', UUID).device });
  return k;
}

describe('a kernel device in the reference VMM', () => {
  it('is probed with its own IDs and runs the mtty guest driver through the kernel road', async () => {
    const k = fakeMtty();
    machine = new Machine({ ramSize: 16 << 20, allocateRam: (size) => allocateMemfdGuestRam(size) });
    const config = parseConfig(`devices:\n  - vfio: ${UUID}\n    slot: '00:05.0'\n`, 'vm.yaml');
    kernel = openKernelDevices(config, { guestMemory: machine.ram.memory, system: k });
    expect(kernel.map((d) => d.label)).toEqual([`vfio ${UUID}`]);
    machine.attach({ device: kernel[0].device, slot: slot(5), label: kernel[0].label });
    const found = await machine.probe();
    expect(found.find((d) => d.address.device === 5)).toMatchObject({
      vendorId: MTTY_VENDOR_ID,
      deviceId: MTTY_DEVICE_ID,
    });
    expect(k.dmaLog[0]).toMatchObject({ iova: 0, size: 16 << 20 });
    const runs = await machine.runDrivers([mttyGuestDriver]);
    expect(runs[0]).toMatchObject({ driver: mttyGuestDriver.name, ok: true });
    expect(
      machine.report().devices.find((d) => d.label === kernel[0].label)?.interrupts.total,
    ).toBeGreaterThan(0);
  });

  it('says what is missing when the host has no such device, from run and from lspci --vfio', async () => {
    for (const [argv, flag] of [
      [
        ['run', '--device', 'vfio:0000:7f:1f.7@00:05.0'],
        'command line --device #1: cannot attach it at 00:05.0',
      ],
      [['lspci', '--vfio', '0000:7f:1f.7'], 'command line --vfio 0000:7f:1f.7: cannot attach it at'],
    ] as const) {
      const io = bufferIo({ cwd: process.cwd(), env: {} });
      const code = await main(argv, io);
      expect(code).toBe(1);
      expect(io.err()).toContain('ENODEV: device 0000:7f:1f.7: ');
      expect(io.err()).toContain(flag);
      expect(io.err()).toContain('there is no PCI device 0000:7f:1f.7');
    }
    const io = bufferIo({ cwd: process.cwd(), env: {} });
    expect(await main(['serve', '--socket', '/tmp/vfiokit-none.sock', '--vfio', 'nonsense'], io)).toBe(1);
    expect(io.err()).toContain('vfiokit serve: EINVAL: device nonsense: "nonsense" is not a device');
  });

  it('refuses a vfio: device that names nothing, and a serve with both --device and --vfio', async () => {
    const io = bufferIo({ cwd: process.cwd(), env: {} });
    expect(await main(['lspci', '--device', 'vfio:'], io)).toBe(2);
    expect(io.err()).toContain('names no host device');
    const io2 = bufferIo({ cwd: process.cwd(), env: {} });
    expect(await main(['serve', '--socket', '/tmp/x.sock', '--device', 'a:b', '--vfio', UUID], io2)).toBe(2);
    expect(io2.err()).toContain('--device or --vfio, not both');
  });
});
