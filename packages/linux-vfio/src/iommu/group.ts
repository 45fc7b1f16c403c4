/**
 * VfioGroup: /dev/vfio/<group>, the unit of isolation. Opening it checks that the group is
 * viable (every device in it bound to a VFIO driver or to none); it joins a container with
 * VFIO_GROUP_SET_CONTAINER and hands out device fds by name with VFIO_GROUP_GET_DEVICE_FD.
 * Shape after rust-vmm vfio-ioctls' VfioGroup.
 */
import { VfioError } from '@vfiokit/core';
import {
  ERRNO,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
} from '@vfiokit/core/abi';
import { VFIO_GROUP_FLAGS_CONTAINER_SET, VFIO_GROUP_FLAGS_VIABLE, VFIO_GROUP_STATUS_SIZE } from '../abi.js';
import { type HostSystem, ioctlError } from '../host/system.js';
import { blockingMembers, groupMembers, type HostDevice } from '../sysfs/resolve.js';
import type { VfioContainer } from './container.js';

export interface GroupStatus {
  readonly viable: boolean;
  readonly containerSet: boolean;
}

/** The hint for EACCES on a VFIO device node. */
export function permissionHint(path: string): string {
  return `Run as root, or give this user the node: chown <user> ${path} (a udev rule SUBSYSTEM=="vfio", OWNER="<user>" keeps it), and raise the locked-memory limit for DMA (ulimit -l).`;
}

export class VfioGroup {
  readonly id: number;
  readonly path: string;
  readonly #system: HostSystem;
  #fd: number;

  private constructor(system: HostSystem, id: number, fd: number) {
    this.#system = system;
    this.id = id;
    this.path = `/dev/vfio/${id}`;
    this.#fd = fd;
  }

  /** Open group `id` of `device` and check that it is viable. */
  static open(system: HostSystem, id: number, device: HostDevice): VfioGroup {
    const path = `/dev/vfio/${id}`;
    let fd: number;
    try {
      fd = system.open(path);
    } catch (err) {
      const e = err as VfioError;
      const code = e.code ?? 'EIO';
      const why =
        code === 'ENOENT'
          ? `${path} does not exist, so IOMMU group ${id} of ${device.name} is not offered by VFIO.`
          : code === 'EACCES' || code === 'EPERM'
            ? `permission denied opening ${path} (IOMMU group ${id} of ${device.name}).`
            : code === 'EBUSY'
              ? `${path} is already open: IOMMU group ${id} of ${device.name} is in use by another process (a running VM?).`
              : `${path} cannot be opened (${code}).`;
      const hint =
        code === 'ENOENT'
          ? device.bus === 'pci'
            ? 'Bind the device to vfio-pci (modprobe vfio-pci) so that VFIO creates the group node.'
            : 'Load the vfio module and the vendor driver of the mediated device.'
          : code === 'EACCES' || code === 'EPERM'
            ? permissionHint(path)
            : code === 'EBUSY'
              ? 'Stop the process that has the group open (fuser -v /dev/vfio/*), then try again.'
              : undefined;
      throw new VfioError(code, why, { device: device.name, ...(hint ? { hint } : {}), cause: err });
    }
    const group = new VfioGroup(system, id, fd);
    try {
      const status = group.status();
      if (!status.viable) {
        const blockers = blockingMembers(groupMembers(system, id));
        const list = blockers.map((m) => `${m.name} (bound to ${m.driver})`).join(', ');
        throw new VfioError(
          'EPERM',
          `IOMMU group ${id} of ${device.name} is not viable: ${list || 'a device in it is bound to a driver VFIO does not allow'}.`,
          {
            device: device.name,
            hint: `Every device in /sys/kernel/iommu_groups/${id}/devices must be bound to vfio-pci (or to no driver): unbind ${blockers.map((m) => m.name).join(', ') || 'them'} from their drivers and bind them to vfio-pci too.`,
          },
        );
      }
    } catch (err) {
      group.close();
      throw err;
    }
    return group;
  }

  get fd(): number {
    return this.#fd;
  }

  status(): GroupStatus {
    const arg = new Uint8Array(VFIO_GROUP_STATUS_SIZE);
    new DataView(arg.buffer).setUint32(0, VFIO_GROUP_STATUS_SIZE, true);
    const ret = this.#system.ioctl(this.#fd, VFIO_GROUP_GET_STATUS, arg);
    if (ret < 0) throw ioctlError(ret, `VFIO_GROUP_GET_STATUS of ${this.path}`);
    const flags = new DataView(arg.buffer).getUint32(4, true);
    return {
      viable: (flags & VFIO_GROUP_FLAGS_VIABLE) !== 0,
      containerSet: (flags & VFIO_GROUP_FLAGS_CONTAINER_SET) !== 0,
    };
  }

  /** VFIO_GROUP_SET_CONTAINER, then the container takes its IOMMU model if it has none yet. */
  setContainer(container: VfioContainer): void {
    const arg = new Uint8Array(4);
    new DataView(arg.buffer).setInt32(0, container.fd, true);
    // SAFETY: the argument is a pointer to an int holding the container fd: `arg`, 4 bytes.
    const ret = this.#system.ioctl(this.#fd, VFIO_GROUP_SET_CONTAINER, arg);
    if (ret < 0) {
      throw ioctlError(
        ret,
        `VFIO_GROUP_SET_CONTAINER of ${this.path}`,
        ret === -ERRNO.EPERM
          ? 'The group is not viable or this process lacks CAP_SYS_RAWIO for it.'
          : ret === -ERRNO.EBUSY
            ? 'The group already belongs to a container.'
            : undefined,
      );
    }
    container.groupJoined();
  }

  /** VFIO_GROUP_GET_DEVICE_FD by the device's name (PCI address or mdev UUID): a new device fd. */
  getDeviceFd(name: string): number {
    const bytes = new TextEncoder().encode(`${name}\0`);
    // SAFETY: the argument is a NUL-terminated string in `bytes`; the kernel reads up to the NUL.
    const ret = this.#system.ioctl(this.#fd, VFIO_GROUP_GET_DEVICE_FD, bytes);
    if (ret < 0) {
      throw ioctlError(
        ret,
        `VFIO_GROUP_GET_DEVICE_FD of ${name} in ${this.path}`,
        ret === -ERRNO.EBUSY
          ? 'The device is already open (by this or another process), or it is being removed.'
          : ret === -ERRNO.ENODEV
            ? `${name} is not in IOMMU group ${this.id}.`
            : undefined,
      );
    }
    return ret;
  }

  /** Closing the group fd leaves the container (the kernel unsets it with the last reference). */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    this.#system.close(fd);
  }
}
