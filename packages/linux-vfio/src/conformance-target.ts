/**
 * A kernel device as a conformance target: `vfiokit-conformance --vfio <device>` runs the suite
 * on it through the raw kernel road (KernelDeviceFile), so every answer, every errno and every
 * byte the checks see is the kernel's. Each check opens the device afresh; for a mediated
 * device, a check that needs a second instance gets one created through sysfs (and removed
 * after), as mdevctl would.
 */
import { randomUUID } from 'node:crypto';
import type { CountingTrigger, DeviceTarget, OpenedTarget } from '@vfiokit/conformance';
import { VfioError } from '@vfiokit/core';
import { type IommuPath, type OpenOptions, openVfioDevice } from './device/open.js';
import { type HostEventfd, type HostSystem, linuxSystem } from './host/system.js';
import { KernelDeviceFile } from './kernel-file.js';
import { type HostDevice, resolveHostDevice } from './sysfs/resolve.js';

export interface KernelTargetOptions extends OpenOptions {
  readonly system?: HostSystem;
}

export interface KernelTarget extends DeviceTarget {
  readonly host: HostDevice;
  /** Which IOMMU path the device opened through. */
  readonly path: IommuPath;
}

/** Eventfds for SET_IRQS, real ones: the count is what the kernel signalled since they were made. */
class KernelCheckHost {
  readonly #system: HostSystem;
  readonly #fds = new Map<number, { efd: HostEventfd; trigger: CountingTrigger }>();

  constructor(system: HostSystem) {
    this.#system = system;
  }

  createEventfd(): number {
    const efd = this.#system.createEventfd();
    let total = 0;
    const trigger: CountingTrigger = {
      fd: efd.fd,
      get count() {
        total += efd.read() ?? 0;
        return total;
      },
      released: undefined,
      signal() {},
    };
    this.#fds.set(efd.fd, { efd, trigger });
    return efd.fd;
  }

  eventfd(fd: number): CountingTrigger | undefined {
    return this.#fds.get(fd)?.trigger;
  }

  closeAll(): void {
    for (const { efd } of this.#fds.values()) efd.close();
    this.#fds.clear();
  }
}

function base(path: string | undefined): string {
  return path ? path.slice(path.lastIndexOf('/') + 1) : '-';
}

function hex4(n: number | undefined): string {
  return n === undefined ? '????' : n.toString(16).padStart(4, '0');
}

/** The kernel device `spec` names, checked openable (the error says what is missing when it is not). */
export function kernelTarget(spec: string, opts: KernelTargetOptions = {}): KernelTarget {
  const system = opts.system ?? linuxSystem();
  const host = resolveHostDevice(system, spec);
  const probe = openVfioDevice(system, host, opts);
  const path = probe.path;
  probe.close();

  const openOne = (device: HostDevice, release: () => void = () => {}): OpenedTarget => {
    const file = new KernelDeviceFile(system, device.name, () =>
      openVfioDevice(system, device, { iommu: path }),
    );
    file.open();
    const checkHost = new KernelCheckHost(system);
    return {
      name: device.name,
      file,
      host: checkHost,
      release() {
        try {
          file.close();
        } finally {
          checkHost.closeAll();
          release();
        }
      },
    };
  };

  const mdev = host.bus === 'mdev';
  const createPath =
    mdev && host.parentPath && host.mdevType
      ? `${host.parentPath}/mdev_supported_types/${host.mdevType}/create`
      : undefined;

  return {
    host,
    path,
    subject: mdev ? 'kernel-mdev' : 'kernel-pci',
    label: {
      plugin: 'kernel',
      parent: mdev ? base(host.parentPath) : (host.driver ?? '-'),
      type: mdev ? (host.mdevType ?? '-') : `${hex4(host.vendorId)}:${hex4(host.deviceId)}`,
      uuid: host.name,
    },
    open: () => openOne(host),
    ...(createPath
      ? {
          openAnother(): OpenedTarget {
            const uuid = randomUUID();
            system.writeText(createPath, uuid);
            const remove = () => system.writeText(`/sys/bus/mdev/devices/${uuid}/remove`, '1');
            try {
              return openOne(resolveHostDevice(system, uuid), remove);
            } catch (err) {
              try {
                remove();
              } catch {
                // reported by the open error below
              }
              throw err instanceof VfioError ? err : new VfioError('EIO', String(err));
            }
          },
        }
      : {}),
  };
}
