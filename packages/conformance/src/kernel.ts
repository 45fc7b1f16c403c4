/**
 * `--vfio <device>`: the suite on a kernel VFIO device. The Linux backend is its own package
 * (@vfiokit/linux-vfio, with a native addon) that a pipeline installs next to the suite; it is
 * loaded by name, from the working directory first, as plugins are, so the suite itself never
 * needs the addon.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { VfioError } from '@vfiokit/core';
import type { DeviceTarget } from './suite.js';

export const LINUX_BACKEND = '@vfiokit/linux-vfio';

interface LinuxBackend {
  kernelTarget(spec: string, opts?: { iommu?: 'auto' | 'group' | 'iommufd' }): DeviceTarget;
}

/** The kernel device `spec` names (a sysfs path, a PCI address or an mdev UUID), opened once to check it. */
export async function openKernelTarget(
  spec: string,
  opts: { iommu?: 'auto' | 'group' | 'iommufd'; cwd?: string; backend?: string } = {},
): Promise<DeviceTarget> {
  const cwd = opts.cwd ?? process.cwd();
  const name = opts.backend ?? LINUX_BACKEND;
  let target = name;
  try {
    target = pathToFileURL(createRequire(path.join(cwd, 'package.json')).resolve(name)).href;
  } catch {
    // not installed under cwd: try this package's own resolution
  }
  let mod: Partial<LinuxBackend>;
  try {
    mod = (await import(target)) as Partial<LinuxBackend>;
  } catch (cause) {
    const e = cause as NodeJS.ErrnoException;
    if (target === name && e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes(`'${name}'`)) {
      throw new VfioError(
        'ENOENT',
        `--vfio needs the Linux backend ${name}, which is not installed where ${cwd} or the suite can find it.`,
        {
          hint: `Install it next to the suite (npm install ${name}) and run from that project; it builds a small native addon with node-gyp.`,
          cause,
        },
      );
    }
    throw new VfioError(
      'EIO',
      `the Linux backend ${name} is installed but cannot be loaded: ${e.message.replace(/\.?$/, '.')}`,
      {
        hint: `Its native addon may not be built for this Node: run npm rebuild ${name} (it needs node-gyp, make and a C compiler).`,
        cause,
      },
    );
  }
  if (typeof mod.kernelTarget !== 'function')
    throw new VfioError(
      'EINVAL',
      `${name} does not export kernelTarget(); it is not the backend this suite knows.`,
    );
  return mod.kernelTarget(spec, opts.iommu ? { iommu: opts.iommu } : {});
}
