/**
 * The configuration file's shape, as valibot schemas. The schemas say what is allowed; the
 * sentences people read when something is not come from FIELD_PROBLEMS, keyed by the field's
 * path pattern (`devices[].slot`), so each field has one wording wherever it fails.
 */
import { isUuid } from '@vfiokit/core';
import * as v from 'valibot';
import { parsePciAddress } from './address.js';
import { parseSize } from './size.js';

const nonEmpty = v.pipe(v.string(), v.minLength(1));
const slot = v.pipe(
  v.string(),
  v.check((s) => parsePciAddress(s) !== undefined),
);
const uuid = v.pipe(
  v.string(),
  v.check((s) => isUuid(s)),
);
const attrValue = v.union([v.string(), v.number(), v.boolean()]);

export const PluginEntrySchema = v.strictObject({
  package: nonEmpty,
  options: v.optional(v.record(v.string(), v.unknown())),
});

export const MachineSchema = v.strictObject({
  ramSize: v.optional(
    v.union([
      v.pipe(
        v.string(),
        v.check((s) => parseSize(s) !== undefined),
      ),
      v.pipe(v.number(), v.integer(), v.minValue(0)),
    ]),
  ),
});

export const MdevDeviceSchema = v.strictObject({
  plugin: nonEmpty,
  parent: v.optional(nonEmpty),
  type: nonEmpty,
  uuid: v.optional(uuid),
  slot: v.optional(slot),
  attrs: v.optional(v.record(v.string(), attrValue)),
});

export const VfioUserDeviceSchema = v.strictObject({
  vfioUser: nonEmpty,
  slot,
});

/** A device of the host kernel through VFIO: a sysfs path, a PCI address or an mdev UUID. */
export const VfioDeviceSchema = v.strictObject({
  vfio: nonEmpty,
  slot,
});

/** A device entry is a vfio-user device when it names a socket, a kernel device when it names `vfio`, an mdev device otherwise. */
export const DeviceSchema = v.lazy((input) =>
  typeof input === 'object' && input !== null && 'vfioUser' in input
    ? VfioUserDeviceSchema
    : typeof input === 'object' && input !== null && 'vfio' in input
      ? VfioDeviceSchema
      : MdevDeviceSchema,
);

export const ConfigSchema = v.strictObject({
  plugins: v.optional(v.array(PluginEntrySchema)),
  machine: v.optional(MachineSchema),
  devices: v.optional(v.array(DeviceSchema)),
  /** Device definitions in `mdevctl list --dumpjson` form (checked by the mdevctl parser). */
  mdevctl: v.optional(v.unknown()),
});

export type ConfigInput = v.InferOutput<typeof ConfigSchema>;
export type MdevDeviceInput = v.InferOutput<typeof MdevDeviceSchema>;
export type VfioUserDeviceInput = v.InferOutput<typeof VfioUserDeviceSchema>;
export type PluginEntryInput = v.InferOutput<typeof PluginEntrySchema>;

const DEVICE_EXAMPLE = "{ plugin: '@vfiokit/sample-mtty', type: mtty-2, slot: '00:03.0' }";

/** What a field must be, as the end of "<field> <value> is not ...". */
export const FIELD_PROBLEMS: Readonly<Record<string, string>> = {
  '': 'is not a configuration mapping with plugins, machine and devices',
  plugins: "is not a list of plugins such as [{ package: '@vfiokit/sample-mtty' }]",
  'plugins[]': "is not a plugin entry such as { package: '@vfiokit/sample-mtty' }",
  'plugins[].package': 'is not a package name such as @vfiokit/sample-mtty',
  'plugins[].options': 'is not a mapping of plugin options',
  'plugins[].options.*': 'is not a plugin option',
  machine: 'is not a mapping such as { ramSize: 256M }',
  'machine.ramSize': 'is not a memory size such as 256M or 268435456',
  devices: `is not a list of devices such as [${DEVICE_EXAMPLE}]`,
  'devices[]': `is not a device such as ${DEVICE_EXAMPLE}`,
  'devices[].plugin': 'is not a plugin package name such as @vfiokit/sample-mtty',
  'devices[].parent': 'is not a parent device name such as mtty',
  'devices[].type': 'is not an mdev type id such as mtty-2',
  'devices[].uuid': 'is not a UUID such as 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001',
  'devices[].slot': 'is not a bus:device.function address such as 00:03.0',
  'devices[].attrs': 'is not a mapping of attribute names to values',
  'devices[].attrs.*': 'is not an attribute value (a string, number or boolean)',
  'devices[].vfioUser': 'is not a socket path such as /run/vfiokit/dev0.sock',
  'devices[].vfio':
    'is not a host device such as 0000:01:00.0, /sys/bus/pci/devices/0000:01:00.0 or an mdev UUID',
};

/** What a missing field is, for "<parent> is missing <field> (...)". */
export const FIELD_MEANINGS: Readonly<Record<string, string>> = {
  'plugins[].package': 'the npm package name of the plugin',
  'devices[].plugin': 'the package name of the plugin that creates the device',
  'devices[].type': 'an mdev type id such as mtty-2',
  'devices[].slot': 'the guest address such as 00:03.0',
};

export const KNOWN_FIELDS: Readonly<Record<string, readonly string[]>> = {
  '': ['plugins', 'machine', 'devices', 'mdevctl'],
  'plugins[]': ['package', 'options'],
  machine: ['ramSize'],
  'devices[]': ['plugin', 'parent', 'type', 'uuid', 'slot', 'attrs', 'vfioUser', 'vfio'],
};
