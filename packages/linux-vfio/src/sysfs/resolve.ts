/**
 * Which kernel device `--vfio <device>` names, and what stands between it and VFIO: the device
 * is found from a sysfs path, a PCI address or an mdev UUID, its driver, IOMMU group and mdev
 * type are read from sysfs, and each missing piece becomes an error that says what to do.
 */
import { VfioError } from '@vfiokit/core';
import type { HostSystem } from '../host/system.js';

const SYS_PCI = '/sys/bus/pci/devices';
const SYS_MDEV = '/sys/bus/mdev/devices';
const SYS_GROUPS = '/sys/kernel/iommu_groups';

/** `0000:00:03.0`: domain, bus, device and function, as sysfs names a PCI function. */
const PCI_ADDRESS = /^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Drivers that leave a group viable next to a VFIO device (vfio_dev_driver_allowed in drivers/vfio/group.c). */
const VIABLE_DRIVERS = new Set(['vfio-pci', 'pci-stub', 'pcieport']);

export interface GroupMember {
  /** The sysfs name (`0000:00:03.0`). */
  readonly name: string;
  readonly driver: string | undefined;
}

export interface HostDevice {
  /** What the user wrote. */
  readonly spec: string;
  /** The name VFIO_GROUP_GET_DEVICE_FD takes: the PCI address with its domain, or the mdev UUID. */
  readonly name: string;
  readonly bus: 'pci' | 'mdev';
  /** /sys/bus/pci/devices/<name> or /sys/bus/mdev/devices/<uuid>. */
  readonly sysfsPath: string;
  /** The bound driver (`vfio-pci`, `mtty`), if any. */
  readonly driver: string | undefined;
  /** The IOMMU group number, if the device has one. */
  readonly iommuGroup: number | undefined;
  /** For an mdev: its type id (`mtty-2`) and its parent's sysfs path. */
  readonly mdevType?: string;
  readonly parentPath?: string;
  /** For a PCI function: vendor and device ids from sysfs. */
  readonly vendorId?: number;
  readonly deviceId?: number;
  /** The VFIO character device (`/dev/vfio/devices/vfio0`) when the kernel has VFIO_DEVICE_CDEV. */
  readonly cdev: string | undefined;
}

function base(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

function dir(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(0, trimmed.lastIndexOf('/')) || '/';
}

function hexAttr(system: HostSystem, path: string): number | undefined {
  const t = system.readText(path)?.trim();
  return t && /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t, 16) : undefined;
}

/** The sysfs directory a spec names, before anything is checked. */
function locate(spec: string): { bus: 'pci' | 'mdev'; path: string } | undefined {
  const s = spec.trim();
  const pci = PCI_ADDRESS.exec(s);
  if (pci) {
    const [, domain = '0000', bus, device, fn] = pci;
    return { bus: 'pci', path: `${SYS_PCI}/${domain}:${bus}:${device}.${fn}`.toLowerCase() };
  }
  if (UUID.test(s)) return { bus: 'mdev', path: `${SYS_MDEV}/${s.toLowerCase()}` };
  if (s.startsWith('/sys/')) {
    const name = base(s);
    if (UUID.test(name)) return { bus: 'mdev', path: `${SYS_MDEV}/${name.toLowerCase()}` };
    if (PCI_ADDRESS.test(name)) return { bus: 'pci', path: `${SYS_PCI}/${name.toLowerCase()}` };
  }
  return undefined;
}

/** Find the device and read what sysfs says about it; throws when there is no such device. */
export function resolveHostDevice(system: HostSystem, spec: string): HostDevice {
  const where = locate(spec);
  if (!where) {
    throw new VfioError(
      'EINVAL',
      `"${spec}" is not a device: give a sysfs path, a PCI address or an mdev UUID.`,
      {
        hint: 'For example /sys/bus/pci/devices/0000:01:00.0, 0000:01:00.0, or 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 (ls /sys/bus/mdev/devices).',
      },
    );
  }
  const { bus, path } = where;
  const name = base(path);
  if (!system.exists(path)) {
    throw new VfioError(
      'ENODEV',
      bus === 'pci'
        ? `there is no PCI device ${name} (${path} does not exist).`
        : `there is no mediated device ${name} (${path} does not exist).`,
      {
        device: name,
        hint:
          bus === 'pci'
            ? 'List the functions with `lspci -D` or `ls /sys/bus/pci/devices`.'
            : 'Create it through its parent (echo <uuid> > <parent>/mdev_supported_types/<type>/create, or mdevctl start), and load the mdev module and the vendor driver first.',
      },
    );
  }
  const driverLink = system.readLink(`${path}/driver`);
  const groupLink = system.readLink(`${path}/iommu_group`);
  const group = groupLink === undefined ? undefined : Number(base(groupLink));
  const cdevs = system.list(`${path}/vfio-dev`)?.filter((e) => /^vfio\d+$/.test(e)) ?? [];
  const out: HostDevice = {
    spec,
    name,
    bus,
    sysfsPath: path,
    driver: driverLink === undefined ? undefined : base(driverLink),
    iommuGroup: group !== undefined && Number.isInteger(group) ? group : undefined,
    cdev: cdevs.length > 0 ? `/dev/vfio/devices/${cdevs[0]}` : undefined,
  };
  if (bus === 'mdev') {
    const typeLink = system.readLink(`${path}/mdev_type`);
    const real = system.realPath(path);
    return {
      ...out,
      ...(typeLink !== undefined ? { mdevType: base(typeLink) } : {}),
      ...(real !== undefined ? { parentPath: dir(real) } : {}),
    };
  }
  return {
    ...out,
    ...(hexAttr(system, `${path}/vendor`) !== undefined
      ? { vendorId: hexAttr(system, `${path}/vendor`) }
      : {}),
    ...(hexAttr(system, `${path}/device`) !== undefined
      ? { deviceId: hexAttr(system, `${path}/device`) }
      : {}),
  };
}

/** A VFIO driver: vfio-pci itself or a vendor variant of it (mlx5_vfio_pci, hisi_acc_vfio_pci...). */
export function isVfioPciDriver(driver: string | undefined): boolean {
  return driver !== undefined && (driver === 'vfio-pci' || /[-_]vfio[-_]pci$/.test(driver));
}

function bindHint(d: HostDevice): string {
  const p = d.sysfsPath;
  const unbind = d.driver ? `echo ${d.name} > ${p}/driver/unbind; ` : '';
  return `Bind it to vfio-pci as root: modprobe vfio-pci; ${unbind}echo vfio-pci > ${p}/driver_override; echo ${d.name} > /sys/bus/pci/drivers_probe.`;
}

/**
 * The device is bound to a VFIO driver and has an IOMMU group; returns the group number, or
 * throws the error that names the missing piece.
 */
export function requireVfioReady(d: HostDevice): number {
  // The group first: without an IOMMU vfio-pci refuses to bind, so binding would not help.
  if (d.iommuGroup === undefined) {
    throw new VfioError(
      'ENODEV',
      d.bus === 'pci'
        ? `PCI device ${d.name} has no IOMMU group: the IOMMU is off or absent.`
        : `mediated device ${d.name} has no IOMMU group: no VFIO driver has taken it.`,
      {
        device: d.name,
        hint:
          d.bus === 'pci'
            ? 'Enable VT-d (or AMD-Vi) in the firmware and boot with intel_iommu=on (or amd_iommu=on); in a QEMU guest, give the q35 machine -device intel-iommu,intremap=on. `dmesg | grep -i -e DMAR -e IOMMU` shows whether it came up.'
            : `Load its vendor driver's VFIO support (the module that registered ${d.parentPath ?? 'the parent'}) and the vfio and mdev modules.`,
      },
    );
  }
  if (d.bus === 'pci' && !isVfioPciDriver(d.driver)) {
    throw new VfioError(
      d.driver ? 'EBUSY' : 'ENODEV',
      d.driver
        ? `PCI device ${d.name} is bound to ${d.driver}, not to vfio-pci.`
        : `PCI device ${d.name} is not bound to any driver, so VFIO does not offer it.`,
      { device: d.name, hint: bindHint(d) },
    );
  }
  return d.iommuGroup;
}

/** The devices in an IOMMU group and their drivers. */
export function groupMembers(system: HostSystem, group: number): GroupMember[] {
  const names = system.list(`${SYS_GROUPS}/${group}/devices`) ?? [];
  return names.sort().map((name) => {
    const link = system.readLink(`${SYS_GROUPS}/${group}/devices/${name}/driver`);
    return { name, driver: link === undefined ? undefined : base(link) };
  });
}

/** The members that keep a group from being viable (vfio_group_viable): bound to a driver VFIO does not allow. */
export function blockingMembers(members: readonly GroupMember[]): GroupMember[] {
  return members.filter(
    (m) => m.driver !== undefined && !VIABLE_DRIVERS.has(m.driver) && !isVfioPciDriver(m.driver),
  );
}
