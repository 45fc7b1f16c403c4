/** What both IOMMU back-ends offer the device layer: mapping process memory at an IOVA. */

export interface DmaMapping {
  readonly iova: number;
  readonly size: number;
  /** The memory the device reaches there; kept referenced while it is mapped. */
  readonly memory: Uint8Array;
  readonly read: boolean;
  readonly write: boolean;
}

export interface DmaMapper {
  /** `type1v2` (a VFIO container) or `iommufd` (an IOAS). */
  readonly kind: 'type1v2' | 'iommufd';
  map(mapping: DmaMapping): void;
  unmap(iova: number, size: number): void;
  /** The mappings made and not yet unmapped. */
  readonly mappings: readonly DmaMapping[];
  close(): void;
}

/** The hint for DMA mapping failures that come from the locked-memory limit. */
export const MEMLOCK_HINT =
  'Mapping pins the memory: raise the locked-memory limit of this process (ulimit -l unlimited, LimitMEMLOCK=infinity for a service, or run as root).';

/** The IOMMU page: mappings start and end on it (VFIO_IOMMU_MAP_DMA, IOMMU_IOAS_MAP). */
export const IOMMU_PAGE = 4096;
