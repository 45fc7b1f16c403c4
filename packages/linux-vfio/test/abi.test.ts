/**
 * The container, group and cdev numbers and sizes of src/abi.ts against the machine's
 * /usr/include/linux/vfio.h, compiled with gcc. The iommufd structs and the cdev ioctls are not
 * in a 6.1 header: where the header lacks them they are checked against Linux 6.12's
 * include/uapi/linux/{vfio,iommufd}.h values below (the test says which).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as A from '../src/abi.js';

const HEADER = '/usr/include/linux/vfio.h';
const haveGcc = (() => {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const PROBE = `
#include <stdio.h>
#include <stddef.h>
#include <linux/vfio.h>
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#define HAVE_IOMMUFD 1
#endif
int main(void) {
  printf("VFIO_GROUP_STATUS_SIZE %zu\\n", sizeof(struct vfio_group_status));
  printf("VFIO_GROUP_FLAGS_VIABLE %d\\n", VFIO_GROUP_FLAGS_VIABLE);
  printf("VFIO_GROUP_FLAGS_CONTAINER_SET %d\\n", VFIO_GROUP_FLAGS_CONTAINER_SET);
#ifdef VFIO_DEVICE_BIND_IOMMUFD
  printf("VFIO_DEVICE_BIND_IOMMUFD %lu\\n", (unsigned long)VFIO_DEVICE_BIND_IOMMUFD);
  printf("VFIO_DEVICE_ATTACH_IOMMUFD_PT %lu\\n", (unsigned long)VFIO_DEVICE_ATTACH_IOMMUFD_PT);
  printf("VFIO_DEVICE_BIND_IOMMUFD_SIZE %zu\\n", sizeof(struct vfio_device_bind_iommufd));
  printf("VFIO_DEVICE_ATTACH_IOMMUFD_PT_SIZE %zu\\n", sizeof(struct vfio_device_attach_iommufd_pt));
#endif
#ifdef HAVE_IOMMUFD
  printf("IOMMU_IOAS_ALLOC %lu\\n", (unsigned long)IOMMU_IOAS_ALLOC);
  printf("IOMMU_IOAS_MAP %lu\\n", (unsigned long)IOMMU_IOAS_MAP);
  printf("IOMMU_IOAS_MAP_SIZE %zu\\n", sizeof(struct iommu_ioas_map));
  printf("IOMMU_IOAS_UNMAP_SIZE %zu\\n", sizeof(struct iommu_ioas_unmap));
#endif
  return 0;
}
`;

// Linux 6.12 include/uapi/linux/vfio.h and iommufd.h: _IO(';', 100 + 18/19), _IO(';', 0x81/0x85).
const LINUX_6_12: Record<string, number> = {
  VFIO_DEVICE_BIND_IOMMUFD: 0x3b76,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT: 0x3b77,
  VFIO_DEVICE_BIND_IOMMUFD_SIZE: 16,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT_SIZE: 12,
  IOMMU_IOAS_ALLOC: 0x3b81,
  IOMMU_IOAS_MAP: 0x3b85,
  IOMMU_IOAS_MAP_SIZE: 40,
  IOMMU_IOAS_UNMAP_SIZE: 24,
};

describe('the container, group and iommufd ABI', () => {
  const run = haveGcc && existsSync(HEADER);
  if (!run) console.log(`skipped: the ABI probe needs gcc and ${HEADER}`);
  it.skipIf(!run)(
    "matches the machine's linux/vfio.h where it has them, and Linux 6.12 where it does not",
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'linux-vfio-abi-'));
      try {
        writeFileSync(join(dir, 'probe.c'), PROBE);
        execFileSync('gcc', ['-o', join(dir, 'probe'), join(dir, 'probe.c')]);
        const out = execFileSync(join(dir, 'probe'), { encoding: 'utf8' });
        const seen = new Map(
          out
            .trim()
            .split('\n')
            .map((l) => [l.split(' ')[0], Number(l.split(' ')[1])]),
        );
        const ours = A as unknown as Record<string, number>;
        for (const name of [
          'VFIO_GROUP_STATUS_SIZE',
          'VFIO_GROUP_FLAGS_VIABLE',
          'VFIO_GROUP_FLAGS_CONTAINER_SET',
        ])
          expect([name, ours[name]]).toEqual([name, seen.get(name)]);
        for (const [name, value] of Object.entries(LINUX_6_12)) {
          expect([name, ours[name]]).toEqual([name, seen.get(name) ?? value]);
          if (!seen.has(name))
            console.log(`${name}: not in ${HEADER}; compared with Linux 6.12's value ${value}`);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
