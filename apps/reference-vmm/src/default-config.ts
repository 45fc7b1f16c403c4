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
    { package: '@vfiokit/gvt-g' },
    // One simulated Tesla T4 only; 256 KiB of framebuffer per GiB of profile keeps T4-4C at 1 MiB.
    { package: '@vfiokit/nvidia-vgpu', options: { boards: ['T4'], framebufferBytesPerGiB: 262144 } },
    // The IGD of the synthetic source: the skylake-hd530 host profile with the synthetic VBT.
    { package: '@vfiokit/gvt-d' },
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
    // GVT-g's smallest type: 64 MiB of aperture, 384 MiB hidden GM, 4 fences, 1024x768
    {
      plugin: '@vfiokit/gvt-g',
      type: 'i915-GVTg_V5_8',
      uuid: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1004',
      slot: '00:04.0',
    },
    // NVIDIA T4-4C: a 4 GB C-series profile, four per T4
    {
      plugin: '@vfiokit/nvidia-vgpu',
      type: 'nvidia-319',
      uuid: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1005',
      slot: '00:05.0',
    },
    // The assigned IGD at 00:02.0, where i915, the firmware and QEMU's igd.c expect it
    {
      plugin: '@vfiokit/gvt-d',
      type: 'gvt-d-igd',
      uuid: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1002',
      slot: '00:02.0',
    },
  ],
};
