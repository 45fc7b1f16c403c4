/**
 * VfioContainer: /dev/vfio/vfio, the legacy IOMMU context. It checks the API version and the
 * type1v2 extension when it opens, takes the IOMMU model when its first group joins
 * (VFIO_SET_IOMMU is refused before that), and maps process memory for device DMA with
 * VFIO_IOMMU_MAP_DMA. Shape after rust-vmm vfio-ioctls' VfioContainer.
 */
import { VfioError } from '@vfiokit/core';
import {
  ERRNO,
  encodeDmaMap,
  encodeDmaUnmap,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
} from '@vfiokit/core/abi';
import { type HostSystem, ioctlError } from '../host/system.js';
import { type DmaMapper, type DmaMapping, MEMLOCK_HINT } from './dma.js';

export const CONTAINER_PATH = '/dev/vfio/vfio';

export class VfioContainer implements DmaMapper {
  readonly kind = 'type1v2' as const;
  readonly #system: HostSystem;
  readonly #mappings: DmaMapping[] = [];
  #fd: number;
  #iommuSet = false;

  private constructor(system: HostSystem, fd: number) {
    this.#system = system;
    this.#fd = fd;
  }

  /** Open the container and check that this kernel speaks VFIO API 0 with the type1v2 IOMMU. */
  static open(system: HostSystem): VfioContainer {
    let fd: number;
    try {
      fd = system.open(CONTAINER_PATH);
    } catch (err) {
      const e = err as VfioError;
      throw new VfioError(
        e.code ?? 'EIO',
        e.code === 'ENOENT'
          ? `${CONTAINER_PATH} does not exist: the vfio module is not loaded.`
          : `${CONTAINER_PATH} cannot be opened (${e.code}).`,
        {
          hint:
            e.code === 'ENOENT'
              ? 'Load it as root: modprobe -a vfio vfio_iommu_type1 (and vfio-pci for a PCI device, mdev and the vendor driver for a mediated one).'
              : 'Run as root, or give this user read and write access to /dev/vfio/vfio.',
          cause: err,
        },
      );
    }
    const container = new VfioContainer(system, fd);
    try {
      // SAFETY (ioctlValue): VFIO_GET_API_VERSION and VFIO_CHECK_EXTENSION take an integer, no pointer.
      const version = system.ioctlValue(fd, VFIO_GET_API_VERSION, 0);
      if (version !== VFIO_API_VERSION) {
        throw new VfioError(
          'EPROTO',
          `${CONTAINER_PATH} speaks VFIO API version ${version}; this backend speaks ${VFIO_API_VERSION}.`,
        );
      }
      if (system.ioctlValue(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) <= 0) {
        throw new VfioError('ENODEV', 'the VFIO container offers no type1v2 IOMMU.', {
          hint: 'Load the type1 IOMMU driver as root: modprobe vfio_iommu_type1.',
        });
      }
    } catch (err) {
      container.close();
      throw err;
    }
    return container;
  }

  get fd(): number {
    return this.#fd;
  }

  get mappings(): readonly DmaMapping[] {
    return this.#mappings;
  }

  /** VFIO_CHECK_EXTENSION: > 0 when the extension (an IOMMU type) is there. */
  checkExtension(extension: number): boolean {
    return this.#system.ioctlValue(this.#fd, VFIO_CHECK_EXTENSION, extension) > 0;
  }

  /** Called by a group once it joined: the first one sets the IOMMU model (type1v2). */
  groupJoined(): void {
    if (this.#iommuSet) return;
    const ret = this.#system.ioctlValue(this.#fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    if (ret < 0) {
      // vfio_iommu_type1_attach_group: EPERM when the IOMMU cannot remap interrupts ("No
      // interrupt remapping support" in dmesg), ENODEV/EINVAL when type1 is not there.
      throw ioctlError(
        ret,
        'VFIO_SET_IOMMU type1v2',
        ret === -ERRNO.EPERM
          ? 'The type1 IOMMU driver refuses an IOMMU without interrupt remapping (see dmesg): turn interrupt remapping on (in the firmware; for a virtual machine, -device intel-iommu,intremap=on), or, accepting that the device could then inject interrupts, modprobe vfio_iommu_type1 allow_unsafe_interrupts=1.'
          : 'Load the type1 IOMMU driver: modprobe vfio_iommu_type1.',
      );
    }
    this.#iommuSet = true;
  }

  map(m: DmaMapping): void {
    this.#requireIommu();
    const vaddr = Number(this.#system.address(m.memory));
    const arg = encodeDmaMap({
      argsz: vfio_iommu_type1_dma_map.size,
      flags: (m.read ? VFIO_DMA_MAP_FLAG_READ : 0) | (m.write ? VFIO_DMA_MAP_FLAG_WRITE : 0),
      vaddr,
      iova: m.iova,
      size: m.size,
    });
    // SAFETY: vaddr points at m.memory, which this container keeps referenced in #mappings until
    // the range is unmapped, so the kernel never holds an address of freed memory.
    const ret = this.#system.ioctl(this.#fd, VFIO_IOMMU_MAP_DMA, arg);
    if (ret < 0) {
      throw ioctlError(
        ret,
        `VFIO_IOMMU_MAP_DMA of 0x${m.size.toString(16)} bytes at IOVA 0x${m.iova.toString(16)}`,
        ret === -ERRNO.ENOMEM || ret === -ERRNO.EPERM
          ? MEMLOCK_HINT
          : 'The IOVA and size must be page-aligned and not overlap a mapping.',
      );
    }
    this.#mappings.push(m);
  }

  unmap(iova: number, size: number): void {
    this.#requireIommu();
    const arg = encodeDmaUnmap({ argsz: vfio_iommu_type1_dma_unmap.size, flags: 0, iova, size });
    const ret = this.#system.ioctl(this.#fd, VFIO_IOMMU_UNMAP_DMA, arg);
    if (ret < 0)
      throw ioctlError(
        ret,
        `VFIO_IOMMU_UNMAP_DMA of 0x${size.toString(16)} bytes at IOVA 0x${iova.toString(16)}`,
      );
    for (let i = this.#mappings.length - 1; i >= 0; i--) {
      const m = this.#mappings[i];
      if (m.iova >= iova && m.iova + m.size <= iova + size) this.#mappings.splice(i, 1);
    }
  }

  #requireIommu(): void {
    if (this.#fd < 0) throw new VfioError('EBADF', 'the VFIO container is closed.');
    if (!this.#iommuSet)
      throw new VfioError('EINVAL', 'the VFIO container has no IOMMU yet: attach a group first.');
  }

  /** Closing the container unmaps everything (the kernel drops the IOMMU context with the last fd). */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    this.#mappings.length = 0;
    this.#system.close(fd);
  }
}
