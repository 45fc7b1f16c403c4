/**
 * The mdev framework for plugins: what drivers/vfio/mdev does for a kernel driver. A plugin
 * describes its types and how to make a device; MdevParent keeps the instances, checks UUIDs,
 * refuses duplicates and creation beyond capacity, and computes available_instances either
 * from the plugin (GVT-g's get_available) or from one counter shared by all types
 * (mdev_driver.max_instances).
 */

import type { VfioDevice } from '../contract/device.js';
import type { MdevInstance, MdevTypeInfo, ParentDevice } from '../contract/plugin.js';
import { isDeviceOpen } from '../device-file/device-file.js';
import { VfioError } from '../errors.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

/** One type of a parent, as the plugin declares it. */
export interface MdevTypeSpec<T = unknown> {
  /** The type's sysfs_name; the type id is `<driver>-<name>`. */
  readonly name: string;
  /** The pretty name (sysfs `name`); defaults to `name`. */
  readonly prettyName?: string;
  readonly description?: string;
  readonly attributes?: Readonly<Record<string, string>>;
  /** How many units of the shared capacity one instance uses (mtty: ports per device). */
  readonly units?: number;
  /** Plugin data for `create`. */
  readonly data?: T;
}

export interface MdevParentOptions<T> {
  /** Parent name as /sys/class/mdev_bus lists it. */
  readonly name: string;
  /** Driver name, the prefix of every type id (`mtty`, `i915`, `nvidia`). */
  readonly driver: string;
  readonly types: readonly MdevTypeSpec<T>[];
  /**
   * Capacity shared by all types, in units (mdev_driver.max_instances; mtty's 24 ports).
   * Leave it out and give `available` instead when the driver computes availability.
   */
  readonly capacity?: number;
  /** get_available: instances of `type` that can still be created. */
  readonly available?: (type: MdevTypeSpec<T>) => number;
  /** Make the device; throw VfioError (ENOSPC, ...) when the resources are not there. */
  readonly create: (
    type: MdevTypeSpec<T>,
    uuid: string,
    attrs: Readonly<Record<string, string>>,
  ) => VfioDevice;
  /** Give back what `create` took. */
  readonly destroy?: (instance: MdevInstance) => void;
}

export class MdevParent<T = unknown> implements ParentDevice {
  readonly name: string;
  private readonly byUuid = new Map<string, MdevInstance & { units: number }>();
  private used = 0;

  constructor(private readonly opts: MdevParentOptions<T>) {
    this.name = opts.name;
    if (opts.capacity === undefined && opts.available === undefined) {
      throw new VfioError(
        'EINVAL',
        `parent ${opts.name} declares neither a capacity nor an available() function.`,
        {
          hint: 'Give MdevParent a shared capacity or a get_available-style function.',
        },
      );
    }
  }

  private typeId(t: MdevTypeSpec<T>): string {
    return `${this.opts.driver}-${t.name}`;
  }

  private availableFor(t: MdevTypeSpec<T>): number {
    if (this.opts.available) return Math.max(0, this.opts.available(t));
    const units = t.units ?? 1;
    return Math.floor(((this.opts.capacity ?? 0) - this.used) / units);
  }

  types(): readonly MdevTypeInfo[] {
    return this.opts.types.map((t) => ({
      id: this.typeId(t),
      name: t.prettyName ?? t.name,
      ...(t.description !== undefined ? { description: t.description } : {}),
      deviceApi: 'vfio-pci' as const,
      availableInstances: this.availableFor(t),
      ...(t.attributes ? { attributes: t.attributes } : {}),
    }));
  }

  create(typeId: string, uuid: string, attrs: Readonly<Record<string, string>> = {}): MdevInstance {
    const type = this.opts.types.find((t) => this.typeId(t) === typeId);
    if (!type) {
      throw new VfioError('EINVAL', `parent ${this.name} has no mdev type "${typeId}".`, {
        hint: `Known types: ${this.opts.types.map((t) => this.typeId(t)).join(', ')}.`,
      });
    }
    if (!isUuid(uuid)) {
      throw new VfioError('EINVAL', `"${uuid}" is not a UUID.`, {
        hint: 'Write a 36-character UUID such as 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 (uuidgen makes one).',
      });
    }
    const key = uuid.toLowerCase();
    if (this.byUuid.has(key)) {
      throw new VfioError('EEXIST', `a device with UUID ${key} already exists on parent ${this.name}.`, {
        hint: 'Pick a new UUID or remove the existing device first.',
      });
    }
    if (this.availableFor(type) < 1) {
      throw new VfioError(
        'ENOSPC',
        `no capacity left for another ${typeId} on parent ${this.name} (available_instances is 0).`,
        {
          hint: 'Remove an instance or choose a smaller type.',
        },
      );
    }
    const device = this.opts.create(type, key, attrs);
    const instance = { uuid: key, typeId, device, units: type.units ?? 1 };
    this.byUuid.set(key, instance);
    if (this.opts.capacity !== undefined) this.used += instance.units;
    return { uuid: key, typeId, device };
  }

  remove(uuid: string): void {
    const key = uuid.toLowerCase();
    const instance = this.byUuid.get(key);
    if (!instance) {
      throw new VfioError('ENODEV', `no device with UUID ${key} on parent ${this.name}.`, {
        hint: 'List the instances to see which exist.',
      });
    }
    if (isDeviceOpen(instance.device)) {
      throw new VfioError('EBUSY', `device ${key} is open and cannot be removed.`, {
        hint: 'Close the device (stop the VM or detach it) before removing it.',
      });
    }
    this.opts.destroy?.({ uuid: instance.uuid, typeId: instance.typeId, device: instance.device });
    this.byUuid.delete(key);
    if (this.opts.capacity !== undefined) this.used -= instance.units;
  }

  instances(): readonly MdevInstance[] {
    return [...this.byUuid.values()].map(({ uuid, typeId, device }) => ({ uuid, typeId, device }));
  }
}
