/**
 * The iommufd path (Linux 6.6+ with IOMMUFD and VFIO_DEVICE_CDEV): /dev/iommu holds an I/O
 * address space (IOAS), the device's own character device /dev/vfio/devices/vfioN is bound to
 * it with VFIO_DEVICE_BIND_IOMMUFD and attached with VFIO_DEVICE_ATTACH_IOMMUFD_PT, and DMA is
 * mapped with IOMMU_IOAS_MAP at fixed IOVAs. No group and no container are involved.
 */
import { VfioError } from '@vfiokit/core';
import { ERRNO, setU64 } from '@vfiokit/core/abi';
import {
  IOMMU_DESTROY,
  IOMMU_DESTROY_SIZE,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOC_SIZE,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_SIZE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_IOAS_UNMAP_SIZE,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT_SIZE,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_BIND_IOMMUFD_SIZE,
} from '../abi.js';
import { type HostSystem, ioctlError } from '../host/system.js';
import { type DmaMapper, type DmaMapping, MEMLOCK_HINT } from './dma.js';

export const IOMMUFD_PATH = '/dev/iommu';

/** Whether this host offers the iommufd path for a device with character device `cdev`. */
export function iommufdAvailable(system: HostSystem, cdev: string | undefined): boolean {
  return cdev !== undefined && system.exists(IOMMUFD_PATH) && system.exists(cdev);
}

export class IommufdIoas implements DmaMapper {
  readonly kind = 'iommufd' as const;
  readonly #system: HostSystem;
  readonly #mappings: DmaMapping[] = [];
  #fd: number;
  readonly ioasId: number;

  private constructor(system: HostSystem, fd: number, ioasId: number) {
    this.#system = system;
    this.#fd = fd;
    this.ioasId = ioasId;
  }

  /** Open /dev/iommu and allocate one IOAS. */
  static open(system: HostSystem): IommufdIoas {
    const fd = system.open(IOMMUFD_PATH);
    const arg = new Uint8Array(IOMMU_IOAS_ALLOC_SIZE);
    new DataView(arg.buffer).setUint32(0, IOMMU_IOAS_ALLOC_SIZE, true);
    // SAFETY: struct iommu_ioas_alloc, 12 bytes, in `arg`; the kernel writes out_ioas_id inside it.
    const ret = system.ioctl(fd, IOMMU_IOAS_ALLOC, arg);
    if (ret < 0) {
      system.close(fd);
      throw ioctlError(ret, 'IOMMU_IOAS_ALLOC on /dev/iommu');
    }
    return new IommufdIoas(system, fd, new DataView(arg.buffer).getUint32(8, true));
  }

  get fd(): number {
    return this.#fd;
  }

  get mappings(): readonly DmaMapping[] {
    return this.#mappings;
  }

  /** Bind a device cdev fd to this iommufd and attach it to the IOAS. */
  attachDevice(deviceFd: number, name: string): number {
    const bind = new Uint8Array(VFIO_DEVICE_BIND_IOMMUFD_SIZE);
    const bv = new DataView(bind.buffer);
    bv.setUint32(0, VFIO_DEVICE_BIND_IOMMUFD_SIZE, true);
    bv.setInt32(8, this.#fd, true);
    // SAFETY: struct vfio_device_bind_iommufd, 16 bytes, in `bind`; out_devid is written inside it.
    let ret = this.#system.ioctl(deviceFd, VFIO_DEVICE_BIND_IOMMUFD, bind);
    if (ret < 0) throw ioctlError(ret, `VFIO_DEVICE_BIND_IOMMUFD of ${name}`);
    const attach = new Uint8Array(VFIO_DEVICE_ATTACH_IOMMUFD_PT_SIZE);
    const av = new DataView(attach.buffer);
    av.setUint32(0, VFIO_DEVICE_ATTACH_IOMMUFD_PT_SIZE, true);
    av.setUint32(8, this.ioasId, true);
    // SAFETY: struct vfio_device_attach_iommufd_pt, 12 bytes, in `attach`.
    ret = this.#system.ioctl(deviceFd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, attach);
    if (ret < 0) throw ioctlError(ret, `VFIO_DEVICE_ATTACH_IOMMUFD_PT of ${name} to IOAS ${this.ioasId}`);
    return bv.getUint32(12, true);
  }

  map(m: DmaMapping): void {
    this.#requireOpen();
    const arg = new Uint8Array(IOMMU_IOAS_MAP_SIZE);
    const dv = new DataView(arg.buffer);
    dv.setUint32(0, IOMMU_IOAS_MAP_SIZE, true);
    dv.setUint32(
      4,
      IOMMU_IOAS_MAP_FIXED_IOVA |
        (m.read ? IOMMU_IOAS_MAP_READABLE : 0) |
        (m.write ? IOMMU_IOAS_MAP_WRITEABLE : 0),
      true,
    );
    dv.setUint32(8, this.ioasId, true);
    setU64(dv, 16, Number(this.#system.address(m.memory)));
    setU64(dv, 24, m.size);
    setU64(dv, 32, m.iova);
    // SAFETY: user_va points at m.memory, kept referenced in #mappings until it is unmapped.
    const ret = this.#system.ioctl(this.#fd, IOMMU_IOAS_MAP, arg);
    if (ret < 0) {
      throw ioctlError(
        ret,
        `IOMMU_IOAS_MAP of 0x${m.size.toString(16)} bytes at IOVA 0x${m.iova.toString(16)}`,
        ret === -ERRNO.ENOMEM || ret === -ERRNO.EPERM ? MEMLOCK_HINT : undefined,
      );
    }
    this.#mappings.push(m);
  }

  unmap(iova: number, size: number): void {
    this.#requireOpen();
    const arg = new Uint8Array(IOMMU_IOAS_UNMAP_SIZE);
    const dv = new DataView(arg.buffer);
    dv.setUint32(0, IOMMU_IOAS_UNMAP_SIZE, true);
    dv.setUint32(4, this.ioasId, true);
    setU64(dv, 8, iova);
    setU64(dv, 16, size);
    const ret = this.#system.ioctl(this.#fd, IOMMU_IOAS_UNMAP, arg);
    if (ret < 0)
      throw ioctlError(
        ret,
        `IOMMU_IOAS_UNMAP of 0x${size.toString(16)} bytes at IOVA 0x${iova.toString(16)}`,
      );
    for (let i = this.#mappings.length - 1; i >= 0; i--) {
      const m = this.#mappings[i];
      if (m.iova >= iova && m.iova + m.size <= iova + size) this.#mappings.splice(i, 1);
    }
  }

  #requireOpen(): void {
    if (this.#fd < 0) throw new VfioError('EBADF', 'the iommufd is closed.');
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    this.#mappings.length = 0;
    const arg = new Uint8Array(IOMMU_DESTROY_SIZE);
    const dv = new DataView(arg.buffer);
    dv.setUint32(0, IOMMU_DESTROY_SIZE, true);
    dv.setUint32(4, this.ioasId, true);
    this.#system.ioctl(fd, IOMMU_DESTROY, arg);
    this.#system.close(fd);
  }
}
