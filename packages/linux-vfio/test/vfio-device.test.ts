import { createTestHost } from '@vfiokit/conformance';
import { allocateSharedMemory, VFIO_PCI_CONFIG_REGION_INDEX } from '@vfiokit/core';
import {
  encodeIrqSet,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
} from '@vfiokit/core/abi';
import { DeviceFile } from '@vfiokit/core/host';
import { describe, expect, it } from 'vitest';
import { LinuxVfioDevice } from '../src/index.js';
import { fakeHost, UUID } from './helpers.js';

function eventfdSet(index: number, fd: number): Uint8Array {
  const data = new Uint8Array(4);
  new DataView(data.buffer).setInt32(0, fd, true);
  return encodeIrqSet({
    argsz: 24,
    flags: VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
    index,
    start: 0,
    count: 1,
    data,
  });
}

describe('a kernel device behind the VfioDevice contract', () => {
  it("shows the kernel's device, region and IRQ info and its config space to a device file in front", () => {
    const k = fakeHost();
    const dev = LinuxVfioDevice.open(UUID, { system: k });
    expect(dev.info()).toEqual({ reset: true, numRegions: 9, numIrqs: 5 });
    expect(dev.regionInfo(VFIO_PCI_CONFIG_REGION_INDEX)).toMatchObject({
      size: 256,
      read: true,
      write: true,
      mmap: false,
    });
    expect(dev.irqInfo(0)).toMatchObject({ count: 1, maskable: true, automasked: true });
    const file = new DeviceFile(dev, createTestHost());
    file.open();
    const id = new Uint8Array(4);
    file.readRegion(VFIO_PCI_CONFIG_REGION_INDEX, 0, id);
    expect(new DataView(id.buffer).getUint32(0, true)).toBe(0x32534348);
    file.close();
    dev.dispose();
    expect(k.openFds).toBe(0);
  });

  it('maps guest memory at IOVA 0 while open and unmaps it at close', () => {
    const k = fakeHost();
    const guest = allocateSharedMemory(0x10000);
    const dev = LinuxVfioDevice.open(UUID, { system: k, guestMemory: guest });
    const file = new DeviceFile(dev, createTestHost());
    file.open();
    expect(dev.kernel.dma.mappings).toHaveLength(1);
    expect(dev.kernel.dma.mappings[0]).toMatchObject({ iova: 0, size: 0x10000, read: true, write: true });
    file.close();
    expect(dev.kernel.dma.mappings).toHaveLength(0);
    dev.dispose();
  });

  it('gives the kernel eventfds when SET_IRQS changes, and forwards what the kernel signals', () => {
    const k = fakeHost();
    const dev = LinuxVfioDevice.open(UUID, { system: k });
    const host = createTestHost();
    const file = new DeviceFile(dev, host);
    file.open();
    const fd = host.createEventfd();
    expect(file.ioctl(VFIO_DEVICE_SET_IRQS, eventfdSet(0, fd)).ret).toBe(0);
    // The kernel fires INTx (a loopback on the kernel's own fd): the guest's trigger counts it.
    expect(dev.kernel.device.setIrqs(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, 1)).toBe(0);
    expect(host.eventfd(fd)?.count).toBe(1);
    // Disabling the index locally disables it in the kernel too.
    expect(
      file.ioctl(
        VFIO_DEVICE_SET_IRQS,
        encodeIrqSet({
          argsz: 20,
          flags: VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
          index: 0,
          start: 0,
          count: 0,
          data: new Uint8Array(0),
        }),
      ).ret,
    ).toBe(0);
    expect(
      dev.kernel.device.setIrqs(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, 0, 1),
    ).toBeLessThan(0);
    file.close();
    dev.dispose();
    expect(k.openFds).toBe(0);
  });
});

describe('a kernel device served to a host that maps DMA as it goes', () => {
  it("mirrors the host's IOVA mappings into the kernel's IOMMU and drops them with the host", () => {
    const k = fakeHost();
    const dev = LinuxVfioDevice.open(UUID, { system: k });
    const host = createTestHost({ memorySize: 0x4000 });
    const file = new DeviceFile(dev, host);
    file.open();
    expect(dev.kernel.dma.mappings.map((m) => [m.iova, m.size])).toEqual([[0, 0x4000]]);
    host.iova.map({ iova: 0x100000, size: 0x2000, read: true, write: true, memory: new Uint8Array(0x2000) });
    expect(dev.kernel.dma.mappings).toHaveLength(2);
    host.iova.unmap(0x100000, 0x2000);
    expect(dev.kernel.dma.mappings).toHaveLength(1);
    file.close();
    expect(dev.kernel.dma.mappings).toHaveLength(0);
    dev.dispose();
  });
});
