/** DEVICE_GET_INFO: the flags match what the device does. */
import { VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS } from '@vfiokit/core';
import { VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET, VFIO_DEVICE_RESET } from '@vfiokit/core/abi';
import type { ConformanceCheck } from '../types.js';
import { describeError, describeRet, EINVAL, getDeviceInfo, ioctl } from './util.js';

export const deviceChecks: readonly ConformanceCheck[] = [
  {
    id: 'device.info',
    title:
      'DEVICE_GET_INFO reports a vfio-pci device with 9+ regions and 5 IRQ indexes, refuses argsz 15 and answers 16',
    run(ctx) {
      const { ret, info } = getDeviceInfo(ctx.file);
      if (!info) {
        ctx.fail({ problem: 'DEVICE_GET_INFO failed', expected: '0', actual: describeRet(ret) });
        return;
      }
      if (!(info.flags & VFIO_DEVICE_FLAGS_PCI)) {
        ctx.fail({
          problem: 'VFIO_DEVICE_FLAGS_PCI is not set',
          expected: 'flags with PCI (0x2)',
          actual: `flags 0x${info.flags.toString(16)}`,
        });
      }
      // linux/vfio.h: a vfio-pci device has at least VFIO_PCI_NUM_REGIONS regions and VFIO_PCI_NUM_IRQS IRQ indexes.
      if (info.numRegions < VFIO_PCI_NUM_REGIONS) {
        ctx.fail({
          problem: 'num_regions is below VFIO_PCI_NUM_REGIONS',
          expected: `>= ${VFIO_PCI_NUM_REGIONS}`,
          actual: String(info.numRegions),
        });
      }
      if (info.numIrqs !== VFIO_PCI_NUM_IRQS) {
        ctx.fail({
          problem: 'num_irqs is not VFIO_PCI_NUM_IRQS',
          expected: String(VFIO_PCI_NUM_IRQS),
          actual: String(info.numIrqs),
        });
      }
      // vfio_pci_ioctl_get_info: minsz is offsetofend(struct vfio_device_info, num_irqs), 16.
      const short = getDeviceInfo(ctx.file, 15);
      if (short.ret !== EINVAL) {
        ctx.fail({
          problem: 'DEVICE_GET_INFO with argsz 15 was not refused',
          expected: describeRet(EINVAL),
          actual: describeRet(short.ret),
        });
      }
      const minimal = getDeviceInfo(ctx.file, 16);
      if (minimal.ret !== 0) {
        ctx.fail({
          problem: 'DEVICE_GET_INFO with argsz 16 (up to num_irqs, as vfio-pci reads it) was refused',
          expected: '0',
          actual: describeRet(minimal.ret),
        });
      }
    },
  },
  {
    id: 'device.reset-flag',
    title: 'VFIO_DEVICE_FLAGS_RESET is set if and only if VFIO_DEVICE_RESET works',
    run(ctx) {
      const { info } = getDeviceInfo(ctx.file);
      if (!info) return ctx.skip('DEVICE_GET_INFO failed (reported by device.info).');
      const flag = (info.flags & VFIO_DEVICE_FLAGS_RESET) !== 0;
      const r = ioctl(ctx.file, VFIO_DEVICE_RESET, new Uint8Array(0));
      const works = r.ret === 0;
      if (flag && !works) {
        ctx.fail({
          problem: 'the RESET flag is set but VFIO_DEVICE_RESET fails',
          expected: 'reset returns 0',
          actual: `${describeRet(r.ret)}${r.error ? `: ${describeError(r.error)}` : ''}`,
        });
      } else if (!flag && works) {
        ctx.fail({
          problem: 'VFIO_DEVICE_RESET works but the RESET flag is not set',
          expected: describeRet(EINVAL),
          actual: '0',
        });
      } else if (!flag && r.ret !== EINVAL) {
        ctx.fail({
          problem: 'VFIO_DEVICE_RESET without the RESET flag must fail with EINVAL',
          expected: describeRet(EINVAL),
          actual: describeRet(r.ret),
        });
      }
    },
  },
];
