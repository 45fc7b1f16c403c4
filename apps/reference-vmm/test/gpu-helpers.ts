/** Booting a configuration in process, as `vfiokit run` does, for the GPU and migration tests. */
import { type Booted, boot } from '../src/cli/boot.js';
import { type ConfigInput, draftFromObject, finishConfig } from '../src/config/index.js';
import type { DriverRun } from '../src/machine/index.js';
import { silentLogger } from '../src/machine/index.js';

export async function bootConfig(input: ConfigInput): Promise<Booted> {
  const config = finishConfig(draftFromObject(input, 'a test configuration'));
  const booted = await boot(config, { cwd: process.cwd(), log: silentLogger() });
  await booted.machine.probe();
  return booted;
}

export async function runDrivers(booted: Booted): Promise<readonly DriverRun[]> {
  return booted.machine.runDrivers(booted.plugins.flatMap((p) => [...(p.plugin.guestDrivers ?? [])]));
}

export const GVTG_CONFIG: ConfigInput = {
  plugins: [{ package: '@vfiokit/gvt-g' }],
  machine: { ramSize: '64M' },
  devices: [{ plugin: '@vfiokit/gvt-g', type: 'i915-GVTg_V5_8', slot: '00:04.0' }],
};

export const NVIDIA_CONFIG: ConfigInput = {
  plugins: [{ package: '@vfiokit/nvidia-vgpu', options: { boards: ['T4'], framebufferBytesPerGiB: 262144 } }],
  machine: { ramSize: '64M' },
  devices: [{ plugin: '@vfiokit/nvidia-vgpu', type: 'nvidia-319', slot: '00:05.0' }],
};
