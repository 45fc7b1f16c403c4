/**
 * The container, group and iommufd parts of the kernel ABI that @vfiokit/core does not encode
 * yet (it encodes the device side). Layouts are linux/vfio.h and linux/iommufd.h of Linux 6.12;
 * test/abi.test.ts compiles C against the machine's linux/vfio.h for the structs it has.
 */
import { vfioIo } from '@vfiokit/core/abi';

// linux/vfio.h: struct vfio_group_status { __u32 argsz; __u32 flags; }
export const VFIO_GROUP_STATUS_SIZE = 8;
export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;

// linux/vfio.h (6.6+): the cdev path, issued on /dev/vfio/devices/vfioN.
export const VFIO_DEVICE_BIND_IOMMUFD = vfioIo(18);
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT = vfioIo(19);
export const VFIO_DEVICE_DETACH_IOMMUFD_PT = vfioIo(20);
/** struct vfio_device_bind_iommufd { argsz, flags, __s32 iommufd, out_devid } */
export const VFIO_DEVICE_BIND_IOMMUFD_SIZE = 16;
/** struct vfio_device_attach_iommufd_pt { argsz, flags, pt_id } */
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT_SIZE = 12;

// linux/iommufd.h: IOMMUFD_TYPE is ';' too, with commands from 0x80.
const iommufdIo = (cmd: number): number => (0x3b << 8) | cmd;
export const IOMMU_DESTROY = iommufdIo(0x80);
export const IOMMU_IOAS_ALLOC = iommufdIo(0x81);
export const IOMMU_IOAS_MAP = iommufdIo(0x85);
export const IOMMU_IOAS_UNMAP = iommufdIo(0x86);
/** struct iommu_destroy { size, id } */
export const IOMMU_DESTROY_SIZE = 8;
/** struct iommu_ioas_alloc { size, flags, out_ioas_id } */
export const IOMMU_IOAS_ALLOC_SIZE = 12;
/** struct iommu_ioas_map { size, flags, ioas_id, __reserved, user_va, length, iova } */
export const IOMMU_IOAS_MAP_SIZE = 40;
/** struct iommu_ioas_unmap { size, ioas_id, iova, length } */
export const IOMMU_IOAS_UNMAP_SIZE = 24;
// enum iommufd_ioas_map_flags
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;
