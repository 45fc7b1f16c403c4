/**
 * @vfiokit/nvidia-vgpu: NVIDIA-style vGPUs on simulated physical GPUs built from published board
 * data (Tesla T4 with its C profiles, provisioned as classic mdev types; RTX 6000 Ada with the
 * Q profiles 941..950 of the upstream RFC, provisioned one vGPU per SR-IOV VF), with placement,
 * a host RPC mailbox answered by a vGPU manager, channels on a time-sliced engine under NVML's
 * scheduler policies, and VFIO migration v2 with pre-copy.
 *
 * Plugin options (all optional):
 *   framebufferBytesPerGiB  simulated framebuffer bytes per GiB of profile framebuffer (default
 *                           262144: a 16 GB profile gets 4 MiB; 1073741824 simulates real size)
 *   boards                  which boards to simulate: ["T4", "RTX6000-Ada"] (default both)
 *   mixedSize               put the mixed-size capable GPUs in mixed-size mode (default false)
 *   scheduler               { policy, timesliceNs, arrMode, avgFactor, frequency } (NVML values)
 *   payloadChecksum         CRC32 over framebuffer pages in migration streams (default true)
 */
import {
  allocateDeviceMemory,
  definePlugin,
  type ParentDevice,
  type PluginHost,
  type SharedMemory,
  VfioError,
} from '@vfiokit/core';
import { BOARDS, type BoardSpec } from './boards.js';
import { PhysicalGpu } from './gpu.js';
import { nvidiaVgpuGuestDriver } from './guest-driver.js';
import { createMdevParent, SriovParent } from './provisioning.js';
import type { SchedulerSettings } from './scheduler.js';

export const DEFAULT_FRAMEBUFFER_BYTES_PER_GIB = 256 * 1024;

/** PCI addresses of the simulated GPUs, one per board in BOARDS order. */
const GPU_ADDRESSES = ['0000:3b:00.0', '0000:c1:00.0'];

export interface NvidiaVgpuOptions {
  readonly framebufferBytesPerGiB?: number;
  readonly boards?: readonly string[];
  readonly mixedSize?: boolean;
  readonly scheduler?: Partial<SchedulerSettings>;
  readonly payloadChecksum?: boolean;
}

function bad(problem: string, hint: string): VfioError {
  return new VfioError('EINVAL', `@vfiokit/nvidia-vgpu options: ${problem}`, { hint });
}

/** Check the free-form plugin options. */
export function parseOptions(raw: Readonly<Record<string, unknown>>): NvidiaVgpuOptions {
  const known = ['framebufferBytesPerGiB', 'boards', 'mixedSize', 'scheduler', 'payloadChecksum'];
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) throw bad(`unknown option "${key}".`, `Known options: ${known.join(', ')}.`);
  }
  const scale = raw.framebufferBytesPerGiB ?? DEFAULT_FRAMEBUFFER_BYTES_PER_GIB;
  if (
    typeof scale !== 'number' ||
    !Number.isInteger(scale) ||
    scale < 4096 ||
    scale > 2 ** 30 ||
    scale % 4096 !== 0
  ) {
    throw bad(
      `framebufferBytesPerGiB ${String(scale)} is not a multiple of 4096 from 4096 to 2^30.`,
      'Use 262144 for tests, 1073741824 for real sizes.',
    );
  }
  const boards = raw.boards ?? BOARDS.map((b) => b.short);
  if (!Array.isArray(boards) || boards.some((b) => !BOARDS.some((x) => x.short === b))) {
    throw bad(
      `boards ${JSON.stringify(boards)} names an unknown board.`,
      `Known boards: ${BOARDS.map((b) => b.short).join(', ')}.`,
    );
  }
  for (const key of ['mixedSize', 'payloadChecksum'] as const) {
    if (raw[key] !== undefined && typeof raw[key] !== 'boolean')
      throw bad(`${key} must be true or false.`, 'Use a boolean.');
  }
  const scheduler = raw.scheduler;
  if (scheduler !== undefined && (typeof scheduler !== 'object' || scheduler === null)) {
    throw bad('scheduler must be an object.', 'Give { policy, timesliceNs, arrMode, avgFactor, frequency }.');
  }
  return {
    framebufferBytesPerGiB: scale,
    boards: boards as string[],
    ...(raw.mixedSize !== undefined ? { mixedSize: raw.mixedSize as boolean } : {}),
    ...(raw.payloadChecksum !== undefined ? { payloadChecksum: raw.payloadChecksum as boolean } : {}),
    ...(scheduler !== undefined ? { scheduler: scheduler as Partial<SchedulerSettings> } : {}),
  };
}

/** The simulated GPUs of a probe, with the parents that provision them. */
export interface ProbedGpus {
  readonly gpus: readonly PhysicalGpu[];
  readonly parents: readonly ParentDevice[];
}

export function createGpus(host: PluginHost, options: NvidiaVgpuOptions = {}): ProbedGpus {
  const opts = parseOptions(options as Record<string, unknown>);
  const allocate = (size: number, name: string): SharedMemory => allocateDeviceMemory(host, size, name);
  const gpus: PhysicalGpu[] = [];
  const parents: ParentDevice[] = [];
  BOARDS.forEach((board: BoardSpec, i) => {
    if (!opts.boards?.includes(board.short)) return;
    const gpu = new PhysicalGpu({
      board,
      address: GPU_ADDRESSES[i],
      clock: host.clock,
      log: host.log,
      allocate,
      bytesPerGiB: opts.framebufferBytesPerGiB ?? DEFAULT_FRAMEBUFFER_BYTES_PER_GIB,
      ...(opts.scheduler ? { scheduler: opts.scheduler } : {}),
      mixedSize: opts.mixedSize === true && board.mixedSizeSupported,
      ...(opts.payloadChecksum !== undefined ? { payloadChecksum: opts.payloadChecksum } : {}),
    });
    gpus.push(gpu);
    parents.push(board.provisioning === 'mdev' ? createMdevParent(gpu) : new SriovParent(gpu));
  });
  return { gpus, parents };
}

export default definePlugin({
  name: '@vfiokit/nvidia-vgpu',
  description:
    'NVIDIA-style vGPUs: Tesla T4 C profiles as mdev types and RTX 6000 Ada Q profiles on SR-IOV VFs, with an RPC mailbox, fair scheduling and live migration.',
  probe: (host) => createGpus(host, host.options as NvidiaVgpuOptions).parents,
  guestDrivers: [nvidiaVgpuGuestDriver],
});

export * from './abi.js';
export * from './boards.js';
export { type GpuLink, VgpuDevice, vgpuConfigSpace } from './device.js';
export { type Channel, ENGINE_BYTES_PER_NS, FbAllocator, METHOD_NS, VgpuEngine } from './engine.js';
export {
  NVML_INVALID_VGPU_PLACEMENT_ID,
  NVML_VGPU_PGPU_HETEROGENEOUS_MODE,
  NVML_VGPU_PGPU_HOMOGENEOUS_MODE,
  PhysicalGpu,
  type PhysicalGpuOptions,
  simulatedFramebuffer,
} from './gpu.js';
export { NVIDIA_VGPU_TEST_PATTERN, nvidiaVgpuGuestDriver } from './guest-driver.js';
export { nvidiaVgpuMigrationProgram } from './guest-migration.js';
export {
  MAX_RUN_PAGES,
  MIG_FLAG_PAYLOAD_CRC,
  MIG_MAGIC,
  MIG_PAGE_SIZE,
  MIG_VERSION,
  type MigrationHost,
  RECORD_HEADER_SIZE,
  ResumeStream,
  SaveStream,
  STREAM_HEADER_SIZE,
  TAG_BAR3,
  TAG_END,
  TAG_FB,
  TAG_STATE,
  VgpuMigration,
} from './migration.js';
export { createMdevParent, SriovParent, VirtualFunction } from './provisioning.js';
export {
  DEFAULT_TIMESLICE_NS,
  type EngineClient,
  GpuScheduler,
  SCHEDULER_CAPS,
  type SchedulerPolicy,
  type SchedulerSettings,
  VGPU_SCHEDULER_ARR_DEFAULT,
  VGPU_SCHEDULER_ARR_DISABLE,
  VGPU_SCHEDULER_ARR_ENABLE,
  VGPU_SCHEDULER_POLICY_BEST_EFFORT,
  VGPU_SCHEDULER_POLICY_EQUAL_SHARE,
  VGPU_SCHEDULER_POLICY_FIXED_SHARE,
  VGPU_SCHEDULER_POLICY_UNKNOWN,
} from './scheduler.js';
