/**
 * Devices of the host kernel: a `vfio:<device>` entry of the configuration opens a kernel VFIO
 * device (a sysfs path, a PCI address or an mdev UUID) as a LinuxVfioDevice, the same
 * VfioDevice contract as an in-process instance, so the machine attaches it like any other.
 * Guest RAM is then a memfd mapping (page-aligned), DMA-mapped at IOVA 0 through the kernel's
 * IOMMU when the device opens, so the device's own DMA reaches guest memory.
 *
 * This file is the one place the VMM touches @vfiokit/linux-vfio.
 */
import { type SharedMemory, VfioError } from '@vfiokit/core';
import { toVfioError } from '@vfiokit/core/host';
import { type HostSystem, LinuxVfioDevice } from '@vfiokit/linux-vfio';
import { formatSlot, type VfioDeviceConfig, type VmmConfig } from '../config/index.js';

export interface KernelDevice {
  readonly config: VfioDeviceConfig;
  readonly device: LinuxVfioDevice;
  /** `vfio 0000:01:00.0`, for reports. */
  readonly label: string;
}

/** The configuration's kernel devices. */
export function kernelDevices(config: VmmConfig): VfioDeviceConfig[] {
  return config.devices.filter((d): d is VfioDeviceConfig => d.kind === 'vfio');
}

/** Open every kernel device of the configuration; on a failure the ones opened are closed again. */
export function openKernelDevices(
  config: VmmConfig,
  opts: { guestMemory: SharedMemory; system?: HostSystem },
): KernelDevice[] {
  const out: KernelDevice[] = [];
  try {
    for (const d of kernelDevices(config)) {
      let device: LinuxVfioDevice;
      try {
        device = LinuxVfioDevice.open(d.device, {
          guestMemory: opts.guestMemory,
          ...(opts.system ? { system: opts.system } : {}),
        });
      } catch (err) {
        const e = toVfioError(err);
        // The device as the place, so that the message carries the errno name and the device.
        throw new VfioError(e.code, `${d.origin}: cannot attach it at ${formatSlot(d.slot)}: ${e.problem}`, {
          device: d.device,
          ...(e.hint ? { hint: e.hint } : {}),
          cause: err,
        });
      }
      out.push({ config: d, device, label: `vfio ${device.name}` });
    }
  } catch (err) {
    closeKernelDevices(out);
    throw err;
  }
  return out;
}

/** Close each kernel device (its fds, its IOMMU context); never throws. */
export function closeKernelDevices(devices: readonly KernelDevice[]): VfioError[] {
  const problems: VfioError[] = [];
  for (const d of [...devices].reverse()) {
    try {
      d.device.dispose();
    } catch (err) {
      problems.push(toVfioError(err));
    }
  }
  return problems;
}
