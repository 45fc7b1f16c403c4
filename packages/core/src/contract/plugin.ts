/**
 * The plugin half of the contract: a package's default export, made with definePlugin.
 * plugin → parent devices → mdev types → instances created and removed by UUID → devices.
 */
import type { Clock, Logger } from './context.js';
import type { SharedMemory, VfioDevice } from './device.js';
import type { GuestDriver } from './guest.js';

/**
 * The contract version a plugin was written against. The loader accepts a plugin whose
 * `contractVersion` equals this major version.
 */
export const CONTRACT_VERSION = 1;

/** What sysfs shows in `mdev_supported_types/<id>/`. */
export interface MdevTypeInfo {
  /** The sysfs directory name, `<driver>-<name>`: `mtty-1`, `i915-GVTg_V5_4`, `nvidia-222`. */
  readonly id: string;
  /** `name`: the pretty name. */
  readonly name: string;
  /** `description`, when the driver provides one. */
  readonly description?: string;
  /** `device_api`. */
  readonly deviceApi: 'vfio-pci';
  /** `available_instances`, computed now. */
  readonly availableInstances: number;
  /** Further read-only type attributes (GVT-g's resolution, NVIDIA's framebuffer, ...). */
  readonly attributes?: Readonly<Record<string, string>>;
}

export interface MdevInstance {
  readonly uuid: string;
  readonly typeId: string;
  readonly device: VfioDevice;
}

/** A parent device: a physical (here simulated) device that mediates instances. */
export interface ParentDevice {
  /** The parent's name as /sys/class/mdev_bus lists it: `mtty`, `0000:00:02.0`. */
  readonly name: string;
  types(): readonly MdevTypeInfo[];
  /**
   * Create an instance (writing a UUID to `create`). Throws VfioError: EINVAL for a malformed
   * UUID or unknown type, EEXIST for a UUID in use, ENOSPC beyond capacity.
   */
  create(typeId: string, uuid: string, attrs?: Readonly<Record<string, string>>): MdevInstance;
  /** Remove an instance (writing to `remove`); EBUSY while it is open, ENODEV if unknown. */
  remove(uuid: string): void;
  instances(): readonly MdevInstance[];
}

/** Given to a plugin's probe: host services that exist before any device is open. */
export interface PluginHost {
  readonly clock: Clock;
  readonly log: Logger;
  /** Plugin options from the VMM configuration (free-form, the plugin validates them). */
  readonly options: Readonly<Record<string, unknown>>;
  /**
   * Memory for mmappable regions, chosen by the host: a memfd when the device is served over
   * vfio-user (its fd goes out with REGION_INFO), shared memory in process. Plugins call it
   * through `allocateDeviceMemory(host, ...)`, which falls back to shared memory.
   */
  readonly allocateMemory?: (size: number, name: string) => SharedMemory;
}

export interface VfioPlugin {
  /** The plugin's name (its package name, by convention). */
  readonly name: string;
  readonly contractVersion: number;
  readonly deviceApi: 'vfio-pci';
  readonly description: string;
  /** Find (or simulate) the parent devices this plugin mediates. */
  probe(host: PluginHost): readonly ParentDevice[];
  /** Guest drivers for this plugin's devices, run by the reference VMM after its PCI probe. */
  readonly guestDrivers?: readonly GuestDriver[];
}

export type PluginDefinition = Omit<VfioPlugin, 'contractVersion' | 'deviceApi'> & {
  readonly deviceApi?: 'vfio-pci';
};

/** The typed factory for a plugin object (the package's default export). */
export function definePlugin(definition: PluginDefinition): VfioPlugin {
  return Object.freeze({ deviceApi: 'vfio-pci' as const, ...definition, contractVersion: CONTRACT_VERSION });
}
