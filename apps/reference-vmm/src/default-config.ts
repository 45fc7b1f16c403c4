/**
 * The embedded default configuration: one device of each in-tree plugin, so `vfiokit run` with
 * no argument shows every plugin at work. It is a constant, not a file lookup, so it runs the
 * same from any directory. UUIDs are fixed so reports and lspci output are the same on every run.
 */
import type { ConfigInput } from './config/index.js';

export const DEFAULT_CONFIG_SOURCE = 'the default configuration';

export const DEFAULT_CONFIG: ConfigInput = {
  plugins: [
    { package: '@vfiokit/sample-mtty' },
    // @vfiokit/gvt-d: add { package: '@vfiokit/gvt-d' } here once the plugin exports a device.
  ],
  machine: { ramSize: '256M' },
  devices: [
    // samples/vfio-mdev/mtty.c's dual-port type: two 16550 UARTs, BAR0 and BAR1 I/O, INTx
    {
      plugin: '@vfiokit/sample-mtty',
      type: 'mtty-2',
      uuid: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001',
      slot: '00:03.0',
    },
    // @vfiokit/gvt-d: the IGD goes at 00:02.0 (where i915 and QEMU's igd.c expect it), e.g.
    // { plugin: '@vfiokit/gvt-d', type: '<its type id>', slot: '00:02.0' },
  ],
};
