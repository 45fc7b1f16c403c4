/**
 * The PluginHost a served device is created with: mmappable region memory comes from memfds, so
 * their fds can go out with REGION_INFO replies and the client maps the same pages.
 */
import type { Clock, Logger, PluginHost, SharedMemory } from '@vfiokit/core';
import { PAGE_SIZE, VfioError } from '@vfiokit/core';
import { createRealClock, stderrLogger } from '../host.js';
import { allocateMemfdMemory } from '../native/memory.js';

export interface ServerPluginHostOptions {
  readonly log?: Logger;
  readonly clock?: Clock;
  readonly options?: Readonly<Record<string, unknown>>;
}

/** memfd memory rounded up to whole pages (mmap hands out pages; so does allocateSharedMemory). */
export function allocateMemfdSharedMemory(size: number, name: string): SharedMemory {
  if (!Number.isSafeInteger(size) || size <= 0)
    throw new VfioError('EINVAL', `cannot allocate device memory of ${String(size)} bytes for ${name}.`, {
      hint: 'Pass a positive whole number of bytes.',
    });
  return allocateMemfdMemory(name, Math.ceil(size / PAGE_SIZE) * PAGE_SIZE);
}

export function createPluginHostForServer(opts: ServerPluginHostOptions = {}): PluginHost {
  return {
    clock: opts.clock ?? createRealClock(),
    log: opts.log ?? stderrLogger(),
    options: opts.options ?? {},
    allocateMemory: allocateMemfdSharedMemory,
  };
}
