/**
 * The configuration `vfiokit migrate` moves when given none: one NVIDIA T4-4C vGPU with a
 * 16 MiB framebuffer (4 MiB per GiB of profile) and 32 MiB of guest RAM, so a live migration
 * with pre-copy rounds takes well under a second.
 */
import type { ConfigInput } from '../config/index.js';

export const MIGRATE_CONFIG_SOURCE = 'the default migration configuration';

export const MIGRATE_DEFAULT_CONFIG: ConfigInput = {
  plugins: [
    { package: '@vfiokit/nvidia-vgpu', options: { boards: ['T4'], framebufferBytesPerGiB: 4 << 20 } },
  ],
  machine: { ramSize: '32M' },
  devices: [
    {
      plugin: '@vfiokit/nvidia-vgpu',
      type: 'nvidia-319',
      uuid: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1105',
      slot: '00:05.0',
    },
  ],
};
