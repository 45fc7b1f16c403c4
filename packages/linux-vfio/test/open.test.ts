import { VfioError } from '@vfiokit/core';
import { createMttyParent } from '@vfiokit/sample-mtty';
import { describe, expect, it } from 'vitest';
import { openVfioDevice, resolveHostDevice, VfioContainer } from '../src/index.js';
import { FakeKernel } from '../src/testing/fake-kernel.js';
import { BDF, fakeHost, UUID } from './helpers.js';

function errorOf(fn: () => unknown): VfioError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VfioError);
    return err as VfioError;
  }
  throw new Error('expected a VfioError');
}

describe('finding the device', () => {
  it('takes a PCI address with or without its domain, a sysfs path or an mdev UUID', () => {
    const k = fakeHost();
    expect(resolveHostDevice(k, '00:03.0')).toMatchObject({
      name: BDF,
      bus: 'pci',
      driver: 'vfio-pci',
      iommuGroup: 5,
    });
    expect(resolveHostDevice(k, `/sys/bus/pci/devices/${BDF}`).name).toBe(BDF);
    expect(resolveHostDevice(k, `/sys/devices/pci0000:00/${BDF}/`).name).toBe(BDF);
    expect(resolveHostDevice(k, UUID.toUpperCase())).toMatchObject({
      name: UUID,
      bus: 'mdev',
      mdevType: 'mtty-2',
      parentPath: '/sys/devices/virtual/mtty/mtty',
      iommuGroup: 7,
    });
    expect(resolveHostDevice(k, BDF)).toMatchObject({ vendorId: 0x1234, deviceId: 0x11e8 });
  });

  it('says what to write when the text names no device, and where to look when it is absent', () => {
    const k = fakeHost();
    expect(errorOf(() => resolveHostDevice(k, 'gpu0')).code).toBe('EINVAL');
    const e = errorOf(() => resolveHostDevice(k, '0000:01:00.0'));
    expect(e.code).toBe('ENODEV');
    expect(e.message).toContain('no PCI device 0000:01:00.0');
    expect(e.message).toContain('lspci -D');
    expect(errorOf(() => resolveHostDevice(k, '83b8f4f2-509f-382f-3c1e-e6bfe0fa1fff')).message).toContain(
      'mdev_supported_types',
    );
  });
});

describe('opening through the container and group API', () => {
  it('opens the device, joins a type1v2 container and releases every fd on close', () => {
    const k = fakeHost();
    const o = openVfioDevice(k, BDF);
    expect(o.path).toBe('group');
    expect(o.dma.kind).toBe('type1v2');
    expect(o.group?.status()).toEqual({ viable: true, containerSet: true });
    expect(o.device.info().numRegions).toBe(9);
    o.close();
    o.close();
    expect(k.openFds).toBe(0);
  });

  it('maps and unmaps DMA through the container, keeping the memory referenced while mapped', () => {
    const k = fakeHost();
    const o = openVfioDevice(k, UUID);
    const memory = new Uint8Array(0x4000);
    o.dma.map({ iova: 0x10000, size: 0x4000, memory, read: true, write: true });
    expect(k.dmaLog).toEqual([{ iova: 0x10000, size: 0x4000, vaddr: 0x7f0000000000 }]);
    expect(o.dma.mappings.map((m) => m.memory)).toEqual([memory]);
    expect(() => o.dma.map({ iova: 0x11000, size: 0x1000, memory, read: true, write: false })).toThrow(
      /EEXIST/,
    );
    o.dma.unmap(0x10000, 0x4000);
    expect(o.dma.mappings).toEqual([]);
    o.close();
  });

  it('names the module to load when /dev/vfio/vfio is missing', () => {
    const k = fakeHost();
    k.vfioLoaded = false;
    const e = errorOf(() => openVfioDevice(k, BDF));
    expect(e.code).toBe('ENOENT');
    expect(e.message).toContain('modprobe -a vfio vfio_iommu_type1');
  });

  it('says how to bind a function that another driver holds, and one that has no driver', () => {
    const k = new FakeKernel();
    const parent = createMttyParent();
    k.addPciDevice({ name: '0000:00:04.0', driver: 'e1000e', device: parent.create('mtty-1', UUID).device });
    const e = errorOf(() => openVfioDevice(k, '0000:00:04.0'));
    expect(e.code).toBe('EBUSY');
    expect(e.message).toContain('bound to e1000e, not to vfio-pci');
    expect(e.message).toContain('echo 0000:00:04.0 > /sys/bus/pci/devices/0000:00:04.0/driver/unbind');
    expect(e.message).toContain('echo vfio-pci > /sys/bus/pci/devices/0000:00:04.0/driver_override');
    k.addPciDevice({
      name: '0000:00:05.0',
      driver: null,
      device: parent.create('mtty-1', '83b8f4f2-509f-382f-3c1e-e6bfe0fa1003').device,
    });
    const none = errorOf(() => openVfioDevice(k, '0000:00:05.0'));
    expect(none.code).toBe('ENODEV');
    expect(none.message).toContain('not bound to any driver');
  });

  it('says that the IOMMU is off when the function has no group', () => {
    const k = fakeHost();
    const host = { ...resolveHostDevice(k, BDF), iommuGroup: undefined };
    const e = errorOf(() => openVfioDevice(k, host));
    expect(e.code).toBe('ENODEV');
    expect(e.message).toContain('no IOMMU group');
    expect(e.message).toContain('intel_iommu=on');
    // Unbound as well: the IOMMU comes first, since vfio-pci will not bind without it.
    const unbound = errorOf(() => openVfioDevice(k, { ...host, driver: undefined }));
    expect(unbound.message).toContain('no IOMMU group');
    expect(unbound.message).not.toContain('driver_override');
  });

  it('lists the devices that keep a group from being viable', () => {
    const k = fakeHost();
    k.addGroupMember(5, '0000:00:03.1', 'snd_hda_intel');
    k.nonViable.add(5);
    const e = errorOf(() => openVfioDevice(k, BDF));
    expect(e.code).toBe('EPERM');
    expect(e.message).toContain(
      'IOMMU group 5 of 0000:00:03.0 is not viable: 0000:00:03.1 (bound to snd_hda_intel)',
    );
    expect(k.openFds).toBe(0);
  });

  it('says how to get permission on the group node, and who holds a busy group', () => {
    const k = fakeHost();
    k.denied.add('/dev/vfio/5');
    const e = errorOf(() => openVfioDevice(k, BDF));
    expect(e.code).toBe('EACCES');
    expect(e.message).toContain('chown <user> /dev/vfio/5');
    expect(e.message).toContain('ulimit -l');
    k.denied.clear();
    const first = openVfioDevice(k, BDF);
    const busy = errorOf(() => openVfioDevice(k, BDF));
    expect(busy.code).toBe('EBUSY');
    expect(busy.message).toContain('in use by another process');
    first.close();
    expect(k.openFds).toBe(0);
  });

  it('refuses a container without the type1v2 IOMMU and one of another API version', () => {
    const k = fakeHost();
    const ioctlValue = k.ioctlValue.bind(k);
    k.ioctlValue = (fd, req, v) => (req === 0x3b65 ? 0 : ioctlValue(fd, req, v));
    expect(errorOf(() => VfioContainer.open(k)).message).toContain('modprobe vfio_iommu_type1');
    k.ioctlValue = (fd, req, v) => (req === 0x3b64 ? 1 : ioctlValue(fd, req, v));
    expect(errorOf(() => VfioContainer.open(k)).code).toBe('EPROTO');
    expect(k.openFds).toBe(0);
  });
});

describe('opening through iommufd', () => {
  it('binds the cdev to an IOAS and maps DMA there when the kernel has /dev/iommu', () => {
    const k = new FakeKernel();
    k.iommufd = true;
    k.addPciDevice({ name: BDF, device: createMttyParent().create('mtty-1', UUID).device, cdev: true });
    const o = openVfioDevice(k, BDF);
    expect(o.path).toBe('iommufd');
    expect(o.group).toBeUndefined();
    expect(o.device.info().numIrqs).toBe(5);
    o.dma.map({ iova: 0, size: 0x1000, memory: new Uint8Array(0x1000), read: true, write: true });
    expect(k.dmaLog).toHaveLength(1);
    o.close();
    expect(k.openFds).toBe(0);
    expect(openVfioDevice(k, BDF, { iommu: 'group' }).path).toBe('group');
  });

  it('says which kernel options the cdev path needs when the device has no cdev', () => {
    const k = fakeHost();
    const e = errorOf(() => openVfioDevice(k, BDF, { iommu: 'iommufd' }));
    expect(e.message).toContain('CONFIG_VFIO_DEVICE_CDEV');
  });
});

describe('the type1 IOMMU refusing the group', () => {
  it('explains EPERM from VFIO_SET_IOMMU as missing interrupt remapping, with both ways out', () => {
    const k = fakeHost();
    const ioctlValue = k.ioctlValue.bind(k);
    k.ioctlValue = (fd, req, v) => (req === 0x3b66 ? -1 : ioctlValue(fd, req, v));
    const e = errorOf(() => openVfioDevice(k, BDF));
    expect(e.code).toBe('EPERM');
    expect(e.message).toContain('without interrupt remapping');
    expect(e.message).toContain('allow_unsafe_interrupts=1');
    expect(k.openFds).toBe(0);
  });
});
