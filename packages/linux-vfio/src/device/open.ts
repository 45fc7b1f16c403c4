/**
 * Opening a kernel device: find it, check what VFIO needs (a VFIO driver, an IOMMU group, a
 * viable group, access to the nodes), then take the iommufd path where the kernel has it and
 * the container/group path otherwise:
 *
 *   container/group: /dev/vfio/vfio (API version, type1v2) + /dev/vfio/<group> (viable)
 *                    -> SET_CONTAINER -> SET_IOMMU type1v2 -> GET_DEVICE_FD by name
 *   iommufd/cdev:    /dev/iommu (IOAS) + /dev/vfio/devices/vfioN -> BIND_IOMMUFD -> ATTACH_IOMMUFD_PT
 */
import { VfioError } from '@vfiokit/core';
import type { HostSystem } from '../host/system.js';
import { VfioContainer } from '../iommu/container.js';
import type { DmaMapper } from '../iommu/dma.js';
import { permissionHint, VfioGroup } from '../iommu/group.js';
import { IommufdIoas, iommufdAvailable } from '../iommu/iommufd.js';
import { type HostDevice, requireVfioReady, resolveHostDevice } from '../sysfs/resolve.js';
import { VfioDeviceFd } from './device-fd.js';

export type IommuPath = 'group' | 'iommufd';

export interface OpenOptions {
  /** 'auto' (default): iommufd when the kernel offers it for this device, else the container/group API. */
  readonly iommu?: 'auto' | IommuPath;
}

/** An open kernel device with the IOMMU context its DMA goes through. */
export interface OpenedDevice {
  readonly host: HostDevice;
  readonly device: VfioDeviceFd;
  readonly dma: DmaMapper;
  readonly path: IommuPath;
  /** The group (container/group path only). */
  readonly group: VfioGroup | undefined;
  /** Close the device, then the group and the IOMMU context. Idempotent. */
  close(): void;
}

function openGroupPath(system: HostSystem, host: HostDevice): OpenedDevice {
  const groupId = requireVfioReady(host);
  const container = VfioContainer.open(system);
  let group: VfioGroup | undefined;
  let device: VfioDeviceFd | undefined;
  try {
    group = VfioGroup.open(system, groupId, host);
    group.setContainer(container);
    device = new VfioDeviceFd(system, group.getDeviceFd(host.name), host.name);
  } catch (err) {
    group?.close();
    container.close();
    throw err;
  }
  const g = group;
  const d = device;
  let closed = false;
  return {
    host,
    device: d,
    dma: container,
    path: 'group',
    group: g,
    close() {
      if (closed) return;
      closed = true;
      d.close();
      g.close();
      container.close();
    },
  };
}

function openIommufdPath(system: HostSystem, host: HostDevice): OpenedDevice {
  if (!host.cdev) {
    throw new VfioError('ENODEV', `${host.name} has no VFIO character device (no vfio-dev/ in sysfs).`, {
      device: host.name,
      hint: 'The kernel needs CONFIG_VFIO_DEVICE_CDEV and CONFIG_IOMMUFD; use the container/group path on this one.',
    });
  }
  requireVfioReady(host);
  const ioas = IommufdIoas.open(system);
  let fd: number | undefined;
  try {
    try {
      fd = system.open(host.cdev);
    } catch (err) {
      const e = err as VfioError;
      throw new VfioError(e.code ?? 'EIO', `${host.cdev} cannot be opened (${e.code}).`, {
        device: host.name,
        ...(e.code === 'EACCES' || e.code === 'EPERM' ? { hint: permissionHint(host.cdev) } : {}),
        cause: err,
      });
    }
    ioas.attachDevice(fd, host.name);
  } catch (err) {
    if (fd !== undefined) system.close(fd);
    ioas.close();
    throw err;
  }
  const device = new VfioDeviceFd(system, fd, host.name);
  let closed = false;
  return {
    host,
    device,
    dma: ioas,
    path: 'iommufd',
    group: undefined,
    close() {
      if (closed) return;
      closed = true;
      device.close();
      ioas.close();
    },
  };
}

/** Open the kernel device that `spec` (a sysfs path, a PCI address or an mdev UUID) names. */
export function openVfioDevice(
  system: HostSystem,
  spec: string | HostDevice,
  opts: OpenOptions = {},
): OpenedDevice {
  const host = typeof spec === 'string' ? resolveHostDevice(system, spec) : spec;
  const want = opts.iommu ?? 'auto';
  if (want === 'iommufd') return openIommufdPath(system, host);
  if (want === 'auto' && iommufdAvailable(system, host.cdev)) return openIommufdPath(system, host);
  return openGroupPath(system, host);
}
