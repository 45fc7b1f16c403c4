/**
 * Granules of the host IOMMU model. These are properties of the machine and of the type1 IOMMU
 * driver, not of linux/vfio.h, so they live here rather than in abi/constants.ts.
 */

import { PAGE_SIZE } from '../bytes.js';

/** The page size (bytes.ts PAGE_SIZE), which is also the smallest bit of type1's pgsize_bitmap. */
export const IOMMU_PAGE_SIZE = PAGE_SIZE;

/**
 * Default limit of mappings per container: the `dma_entry_limit` module parameter of
 * drivers/vfio/vfio_iommu_type1.c (U16_MAX). MAP_DMA beyond it fails with ENOSPC.
 */
export const DMA_ENTRY_LIMIT = 0xffff;

/**
 * The largest IOVA end (exclusive) this host can represent: IOVAs are JS numbers, exact up to
 * Number.MAX_SAFE_INTEGER. type1 refuses u64 fields that do not fit its own types with EINVAL
 * (vfio_dma_do_map: "Verify that none of our __u64 fields overflow"); we do the same.
 */
export const IOVA_LIMIT = Number.MAX_SAFE_INTEGER + 1;

export function isPageAligned(value: number, pageSize: number = IOMMU_PAGE_SIZE): boolean {
  return value % pageSize === 0;
}
