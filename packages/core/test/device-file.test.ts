import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeDeviceInfo,
  decodeIrqInfo,
  decodeRegionInfo,
  ERRNO,
  encodeDeviceFeature,
  encodeDeviceInfo,
  encodeIrqInfo,
  encodeIrqSet,
  encodeRegionInfoStruct,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  vfioPciIndexToOffset,
} from '../src/abi.js';
import { DeviceFile } from '../src/host.js';
import { VfioError } from '../src/index.js';
import { fakeDevice, fakeHost } from './helpers.js';

function openFile(opts: Parameters<typeof fakeDevice>[0] = {}) {
  const device = fakeDevice(opts);
  const host = fakeHost();
  const file = new DeviceFile(device, host);
  file.open();
  return { device, host, file };
}

function regionInfoArg(index: number, argsz: number, bufferSize = argsz): Uint8Array {
  const b = new Uint8Array(Math.max(bufferSize, 32));
  encodeRegionInfoStruct({ argsz, flags: 0, index, capOffset: 0, size: 0, offset: 0 }, b);
  return b;
}

function irqSet(
  flags: number,
  index: number,
  start: number,
  count: number,
  data: Uint8Array = new Uint8Array(0),
  argsz?: number,
) {
  return encodeIrqSet({ argsz: argsz ?? 20 + data.length, flags, index, start, count, data });
}

function eventfds(...fds: number[]): Uint8Array {
  const b = new Uint8Array(fds.length * 4);
  const dv = new DataView(b.buffer);
  fds.forEach((fd, i) => {
    dv.setInt32(i * 4, fd, true);
  });
  return b;
}

describe('VFIO_DEVICE_GET_INFO', () => {
  it('returns EINVAL when argsz is below the 16 bytes vfio-pci reads (offsetofend num_irqs)', () => {
    const { file } = openFile();
    const r = file.ioctl(
      VFIO_DEVICE_GET_INFO,
      encodeDeviceInfo({ argsz: 15, flags: 0, numRegions: 0, numIrqs: 0, capOffset: 0 }),
    );
    expect(r.ret).toBe(-ERRNO.EINVAL);
    expect(r.error?.message).toMatch(/argsz 15/);
  });

  it('answers argsz 16 to 19 as vfio-pci does, copying back 16 bytes and leaving cap_offset as it was', () => {
    const { file } = openFile();
    const arg = encodeDeviceInfo({ argsz: 19, flags: 0, numRegions: 0, numIrqs: 0, capOffset: 0xdeadbeef });
    const r = file.ioctl(VFIO_DEVICE_GET_INFO, arg);
    expect(r.ret).toBe(0);
    const info = decodeDeviceInfo(r.out);
    expect(info.numIrqs).toBe(5);
    expect(info.capOffset).toBe(0xdeadbeef);
    const short = file.ioctl(
      VFIO_DEVICE_GET_INFO,
      arg.subarray(0, 16).map((b, i) => (i === 0 ? 16 : b)),
    );
    expect(short.ret).toBe(0);
    expect(short.out.length).toBe(16);
  });

  it('reports PCI and RESET flags and the counts of regions and IRQ indexes', () => {
    const { file } = openFile();
    const r = file.ioctl(
      VFIO_DEVICE_GET_INFO,
      encodeDeviceInfo({ argsz: 20, flags: 0, numRegions: 0, numIrqs: 0, capOffset: 0 }),
    );
    expect(r.ret).toBe(0);
    const info = decodeDeviceInfo(r.out);
    expect(info.flags).toBe(VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
    expect(info).toMatchObject({ argsz: 20, numRegions: 10, numIrqs: 5, capOffset: 0 });
  });

  it('leaves RESET out when the device cannot reset, and refuses VFIO_DEVICE_RESET with EINVAL', () => {
    const { file } = openFile({ reset: false });
    const r = file.ioctl(
      VFIO_DEVICE_GET_INFO,
      encodeDeviceInfo({ argsz: 20, flags: 0, numRegions: 0, numIrqs: 0, capOffset: 0 }),
    );
    expect(decodeDeviceInfo(r.out).flags & VFIO_DEVICE_FLAGS_RESET).toBe(0);
    expect(file.ioctl(VFIO_DEVICE_RESET, new Uint8Array(0)).ret).toBe(-ERRNO.EINVAL);
  });
});

describe('VFIO_DEVICE_GET_REGION_INFO', () => {
  it('returns EINVAL when argsz is below 32', () => {
    const { file } = openFile();
    expect(file.ioctl(VFIO_DEVICE_GET_REGION_INFO, regionInfoArg(0, 31, 32)).ret).toBe(-ERRNO.EINVAL);
  });

  it('returns EINVAL for an index at or beyond num_regions', () => {
    const { file } = openFile();
    const r = file.ioctl(VFIO_DEVICE_GET_REGION_INFO, regionInfoArg(10, 32));
    expect(r.ret).toBe(-ERRNO.EINVAL);
    expect(r.error?.message).toMatch(/no region 10/);
  });

  it('raises argsz to the size needed, sets FLAG_CAPS and leaves cap_offset 0 when the chain does not fit', () => {
    const { file } = openFile();
    const r = file.ioctl(VFIO_DEVICE_GET_REGION_INFO, regionInfoArg(0, 32));
    expect(r.ret).toBe(0);
    const info = decodeRegionInfo(r.out);
    expect(info.flags & VFIO_REGION_INFO_FLAG_CAPS).toBeTruthy();
    expect(info.argsz).toBe(32 + 16 + 16);
    expect(info.capOffset).toBe(0);
    expect(info.caps).toEqual([]);
  });

  it('writes the chain after the struct with next offsets from its start when argsz fits', () => {
    const { file } = openFile();
    const r = file.ioctl(VFIO_DEVICE_GET_REGION_INFO, regionInfoArg(0, 64));
    const info = decodeRegionInfo(r.out);
    expect(info).toMatchObject({
      argsz: 64,
      flags:
        VFIO_REGION_INFO_FLAG_READ |
        VFIO_REGION_INFO_FLAG_WRITE |
        VFIO_REGION_INFO_FLAG_MMAP |
        VFIO_REGION_INFO_FLAG_CAPS,
      index: 0,
      capOffset: 32,
      size: 8192,
      offset: vfioPciIndexToOffset(0),
    });
    expect(info.caps).toEqual([
      { id: VFIO_REGION_INFO_CAP_SPARSE_MMAP, areas: [{ offset: 4096, size: 4096 }] },
    ]);
  });

  it('gives a device-specific region its TYPE capability', () => {
    const { file } = openFile();
    const info = decodeRegionInfo(file.ioctl(VFIO_DEVICE_GET_REGION_INFO, regionInfoArg(9, 48)).out);
    expect(info.caps).toEqual([{ id: VFIO_REGION_INFO_CAP_TYPE, type: 0x80008086, subtype: 1 }]);
    expect(info.flags).toBe(VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_CAPS);
  });

  it('reports an unimplemented region with size 0 and no flags', () => {
    const { file } = openFile();
    const info = decodeRegionInfo(file.ioctl(VFIO_DEVICE_GET_REGION_INFO, regionInfoArg(3, 32)).out);
    expect(info).toMatchObject({ size: 0, flags: 0, capOffset: 0 });
  });
});

describe('VFIO_DEVICE_GET_IRQ_INFO', () => {
  it('reports INTx as EVENTFD | MASKABLE | AUTOMASKED with one vector', () => {
    const { file } = openFile();
    const r = file.ioctl(
      VFIO_DEVICE_GET_IRQ_INFO,
      encodeIrqInfo({ argsz: 16, flags: 0, index: 0, count: 0 }),
    );
    expect(decodeIrqInfo(r.out)).toEqual({
      argsz: 16,
      flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
      index: 0,
      count: 1,
    });
  });

  it('returns EINVAL for argsz below 16 and for an index beyond num_irqs', () => {
    const { file } = openFile();
    expect(
      file.ioctl(VFIO_DEVICE_GET_IRQ_INFO, encodeIrqInfo({ argsz: 15, flags: 0, index: 0, count: 0 })).ret,
    ).toBe(-ERRNO.EINVAL);
    const beyond = file.ioctl(
      VFIO_DEVICE_GET_IRQ_INFO,
      encodeIrqInfo({ argsz: 16, flags: 0, index: 5, count: 0 }),
    );
    expect(beyond.ret).toBe(-ERRNO.EINVAL);
    expect(beyond.error?.message).toMatch(/there is no IRQ index 5; the device has 5 IRQ indexes\./);
  });
});

describe('VFIO_DEVICE_SET_IRQS follows vfio_set_irqs_validate_and_prepare', () => {
  const T = VFIO_IRQ_SET_ACTION_TRIGGER;
  it('returns EINVAL for argsz below 20', () => {
    const { file } = openFile();
    expect(
      file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | T, 0, 0, 1, undefined, 19)).ret,
    ).toBe(-ERRNO.EINVAL);
  });
  it('returns EINVAL for an index at or beyond num_irqs', () => {
    const { file } = openFile();
    const r = file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | T, 5, 0, 1));
    expect(r.ret).toBe(-ERRNO.EINVAL);
    expect(r.error?.message).toMatch(/there is no IRQ index 5; the device has 5 IRQ indexes\./);
  });
  it('returns EINVAL when start + count overflows (CVE-2016-9083)', () => {
    const { file } = openFile();
    expect(file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | T, 1, 2, 0xfffffffe)).ret).toBe(
      -ERRNO.EINVAL,
    );
  });
  it('returns EINVAL for vectors outside the index', () => {
    const { file } = openFile();
    expect(file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | T, 1, 3, 2)).ret).toBe(
      -ERRNO.EINVAL,
    );
    expect(file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | T, 2, 0, 0)).ret).toBe(
      -ERRNO.EINVAL,
    );
  });
  it('returns EINVAL for two data types, none, or unknown flag bits', () => {
    const { file } = openFile();
    expect(
      file.ioctl(
        VFIO_DEVICE_SET_IRQS,
        irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | T, 0, 0, 1, new Uint8Array([1])),
      ).ret,
    ).toBe(-ERRNO.EINVAL);
    expect(file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(T, 0, 0, 1)).ret).toBe(-ERRNO.EINVAL);
    expect(file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | T | 0x40, 0, 0, 1)).ret).toBe(
      -ERRNO.EINVAL,
    );
  });
  it('refuses zero or several actions as vfio-pci does (ENOTTY)', () => {
    const { file } = openFile();
    expect(file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE, 0, 0, 1)).ret).toBe(-ERRNO.ENOTTY);
    expect(
      file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | T | VFIO_IRQ_SET_ACTION_MASK, 0, 0, 1))
        .ret,
    ).toBe(-ERRNO.ENOTTY);
  });
  it('returns EINVAL when argsz does not cover count data elements', () => {
    const { file } = openFile();
    expect(
      file.ioctl(
        VFIO_DEVICE_SET_IRQS,
        irqSet(VFIO_IRQ_SET_DATA_EVENTFD | T, 1, 0, 4, eventfds(1, 2, 3, 4), 20 + 15),
      ).ret,
    ).toBe(-ERRNO.EINVAL);
  });
  it('fires an assigned eventfd, and DATA_NONE | TRIGGER with count 0 disables the index', () => {
    const { file, host, device } = openFile();
    expect(
      file.ioctl(
        VFIO_DEVICE_SET_IRQS,
        irqSet(VFIO_IRQ_SET_DATA_EVENTFD | T, 1, 0, 4, eventfds(10, 11, 12, 13)),
      ).ret,
    ).toBe(0);
    device.ctx?.irq.trigger(1, 2);
    expect(host.fired).toEqual([12]);
    expect(file.irqEnabled(1)).toBe(true);
    expect(file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | T, 1, 0, 0)).ret).toBe(0);
    expect(file.irqEnabled(1)).toBe(false);
    device.ctx?.irq.trigger(1, 2);
    expect(host.fired).toEqual([12]);
    expect(file.irqCounters(1)?.dropped).toBe(1);
  });
  it('keeps INTx, MSI and MSI-X exclusive', () => {
    const { file } = openFile();
    expect(
      file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | T, 0, 0, 1, eventfds(5))).ret,
    ).toBe(0);
    expect(
      file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | T, 1, 0, 4, eventfds(1, 2, 3, 4)))
        .ret,
    ).toBe(-ERRNO.EINVAL);
  });
  it('holds a masked INTx as pending and delivers it on unmask; AUTOMASKED masks after each delivery', () => {
    const { file, host, device } = openFile();
    file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | T, 0, 0, 1, eventfds(7)));
    device.ctx?.irq.trigger(0);
    device.ctx?.irq.trigger(0);
    expect(host.fired).toEqual([7]);
    expect(
      file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, 0, 0, 1))
        .ret,
    ).toBe(0);
    expect(host.fired).toEqual([7, 7]);
  });
  it('drops a held INTx when the device lowers its line before the unmask', () => {
    const { file, host, device } = openFile();
    file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | T, 0, 0, 1, eventfds(7)));
    device.ctx?.irq.trigger(0);
    device.ctx?.irq.trigger(0);
    device.ctx?.irq.lower(0);
    file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, 0, 0, 1));
    expect(host.fired).toEqual([7]);
  });
  it('updates vectors inside the block enabled on a NORESIZE index, and refuses growing it', () => {
    const { file, host, device } = openFile();
    expect(
      file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | T, 1, 0, 2, eventfds(1, 2))).ret,
    ).toBe(0);
    expect(
      file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | T, 1, 1, 1, eventfds(9))).ret,
    ).toBe(0);
    device.ctx?.irq.trigger(1, 1);
    expect(host.fired).toEqual([9]);
    const grow = file.ioctl(
      VFIO_DEVICE_SET_IRQS,
      irqSet(VFIO_IRQ_SET_DATA_EVENTFD | T, 1, 0, 4, eventfds(1, 2, 3, 4)),
    );
    expect(grow.ret).toBe(-ERRNO.EINVAL);
    expect(grow.error?.message).toMatch(/NORESIZE/);
  });
  it('refuses MASK on an index that is not maskable (ENOTTY)', () => {
    const { file } = openFile();
    file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | T, 1, 0, 4, eventfds(1, 2, 3, 4)));
    expect(
      file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, 1, 0, 1))
        .ret,
    ).toBe(-ERRNO.ENOTTY);
  });
  it('fires a loopback interrupt with DATA_BOOL | TRIGGER only where the bool is set', () => {
    const { file, host } = openFile();
    file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | T, 1, 0, 4, eventfds(1, 2, 3, 4)));
    file.ioctl(
      VFIO_DEVICE_SET_IRQS,
      irqSet(VFIO_IRQ_SET_DATA_BOOL | T, 1, 0, 4, new Uint8Array([0, 1, 0, 1])),
    );
    expect(host.fired).toEqual([2, 4]);
  });
  it('refuses a loopback trigger on an index without a trigger (EINVAL), as vfio-pci does', () => {
    const { file, host } = openFile();
    const r = file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_NONE | T, 1, 0, 1));
    expect(r.ret).toBe(-ERRNO.EINVAL);
    expect(r.error?.message).toMatch(/has no trigger, so a loopback cannot fire it/);
    expect(host.fired).toEqual([]);
  });
  it('de-assigns one vector with an eventfd of -1', () => {
    const { file, host, device } = openFile();
    file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | T, 1, 0, 4, eventfds(1, 2, 3, 4)));
    file.ioctl(VFIO_DEVICE_SET_IRQS, irqSet(VFIO_IRQ_SET_DATA_EVENTFD | T, 1, 0, 4, eventfds(1, -1, 3, 4)));
    device.ctx?.irq.trigger(1, 1);
    expect(host.fired).toEqual([]);
  });
});

describe('region reads and writes at device-file offsets', () => {
  const bar0 = vfioPciIndexToOffset(0);
  it('reaches the device at the offset inside the region', () => {
    const { file, device } = openFile();
    file.write(bar0 + 16, new Uint8Array([1, 2, 3, 4]));
    expect([...device.bar0.subarray(16, 20)]).toEqual([1, 2, 3, 4]);
    const dst = new Uint8Array(4);
    file.read(bar0 + 16, dst);
    expect([...dst]).toEqual([1, 2, 3, 4]);
  });
  it('refuses an access that ends one byte past the region, touching nothing', () => {
    const { file, device } = openFile();
    expect(() => file.write(bar0 + 8189, new Uint8Array(4).fill(0xaa))).toThrow(
      /past the end of the 8192-byte region/,
    );
    expect(device.bar0.subarray(8180).every((b) => b === 0)).toBe(true);
  });
  it('refuses offsets in no region and offset + count overflow', () => {
    const { file } = openFile();
    expect(() => file.read(vfioPciIndexToOffset(3), new Uint8Array(1))).toThrow(VfioError);
    expect(() => file.read(Number.MAX_SAFE_INTEGER, new Uint8Array(8))).toThrow(VfioError);
    expect(() => file.read(-1, new Uint8Array(1))).toThrow(VfioError);
  });
  it('refuses writes to a read-only region', () => {
    const { file } = openFile();
    expect(() => file.write(vfioPciIndexToOffset(9), new Uint8Array(1))).toThrow(/read-only/);
  });
  it('turns a handler that throws into EIO for that access, naming device, region and offset', () => {
    const { file } = openFile({ throwOnRead: true });
    try {
      file.read(bar0 + 8, new Uint8Array(4));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(VfioError);
      expect((err as VfioError).code).toBe('EIO');
      expect((err as VfioError).message).toMatch(/device fake-0, region 0, offset 0x8/);
    }
    expect(file.regionCounters(0)?.errors).toBe(1);
  });
  it('refuses access before open', () => {
    const file = new DeviceFile(fakeDevice(), fakeHost());
    expect(() => file.read(bar0, new Uint8Array(4))).toThrow(/not open/);
  });
});

describe('mmap', () => {
  it('maps a page-aligned range inside a sparse area and refuses the rest', () => {
    const { file } = openFile();
    const bar0 = vfioPciIndexToOffset(0);
    expect(file.mmap(bar0 + 4096, 4096).size).toBe(4096);
    expect(() => file.mmap(bar0, 4096)).toThrow(/outside every mmap area/);
    expect(() => file.mmap(bar0 + 4096 + 1, 4096)).toThrow(/page aligned/);
    expect(() => file.mmap(vfioPciIndexToOffset(7), 4096)).toThrow(/not mmappable/);
  });
});

describe('VFIO_DEVICE_FEATURE', () => {
  const feature = (flags: number, data: Uint8Array = new Uint8Array(8)) =>
    encodeDeviceFeature({ argsz: 8 + data.length, flags, data });
  it('answers ENOTTY for migration on a device without it', () => {
    const { file } = openFile();
    expect(
      file.ioctl(VFIO_DEVICE_FEATURE, feature(VFIO_DEVICE_FEATURE_MIGRATION | VFIO_DEVICE_FEATURE_GET)).ret,
    ).toBe(-ERRNO.ENOTTY);
    expect(
      file.ioctl(
        VFIO_DEVICE_FEATURE,
        feature(VFIO_DEVICE_FEATURE_MIGRATION | VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET),
      ).ret,
    ).toBe(-ERRNO.ENOTTY);
  });
  it('refuses GET and SET together without PROBE, and unknown flag bits', () => {
    const { file } = openFile();
    expect(
      file.ioctl(VFIO_DEVICE_FEATURE, feature(1 | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)).ret,
    ).toBe(-ERRNO.EINVAL);
    expect(file.ioctl(VFIO_DEVICE_FEATURE, feature(1 | VFIO_DEVICE_FEATURE_GET | (1 << 19))).ret).toBe(
      -ERRNO.EINVAL,
    );
  });
  it('answers ENOTTY for an unknown feature', () => {
    const { file } = openFile();
    expect(file.ioctl(VFIO_DEVICE_FEATURE, feature(0x77 | VFIO_DEVICE_FEATURE_GET)).ret).toBe(-ERRNO.ENOTTY);
  });
});

describe('hostile input', () => {
  it('never throws from ioctl, whatever the request and bytes, and the device keeps answering', () => {
    const { file } = openFile();
    const requests = [0x3b6b, 0x3b6c, 0x3b6d, 0x3b6e, 0x3b6f, 0x3b72, 0x3b75, 0x3b79];
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom(...requests), fc.integer({ min: 0, max: 0xffff })),
        fc.uint8Array({ maxLength: 96 }),
        (req, bytes) => {
          const r = file.ioctl(req, bytes);
          expect(r.ret <= 0 || Number.isInteger(r.ret)).toBe(true);
          if (r.ret < 0) expect(r.error).toBeInstanceOf(VfioError);
        },
      ),
      { numRuns: 2000 },
    );
    const r = file.ioctl(
      VFIO_DEVICE_GET_INFO,
      encodeDeviceInfo({ argsz: 20, flags: 0, numRegions: 0, numIrqs: 0, capOffset: 0 }),
    );
    expect(r.ret).toBe(0);
  });
  it('only ever throws VfioError from reads and writes at random offsets', () => {
    const { file } = openFile();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 11 }),
        fc.integer({ min: -16, max: 9000 }),
        fc.integer({ min: 0, max: 16 }),
        (idx, off, len) => {
          try {
            file.read(vfioPciIndexToOffset(idx) + off, new Uint8Array(len));
          } catch (err) {
            expect(err).toBeInstanceOf(VfioError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
