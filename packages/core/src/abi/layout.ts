/**
 * Struct layouts of linux/vfio.h, in one table. The codecs read their offsets from here, the
 * ABI report prints this table, and test/abi-header.test.ts compiles C against the machine's
 * header to prove every size and offset.
 */

/** Scalar fields carry their C type; `header` is an embedded vfio_info_cap_header; `array` a flexible array member. */
export type FieldType = 'u8' | 'u16' | 'u32' | 's32' | 'u64' | 'header' | 'array';

export interface FieldLayout {
  readonly offset: number;
  readonly type: FieldType;
}

export interface StructLayout {
  /** The C struct name, without `struct`. */
  readonly name: string;
  readonly size: number;
  readonly fields: Readonly<Record<string, FieldLayout>>;
  /** Not in the Linux 6.1 header; compared with its mainline definition instead. */
  readonly newerThan61?: boolean;
}

const f = (offset: number, type: FieldType): FieldLayout => ({ offset, type });

function layout(
  name: string,
  size: number,
  fields: Record<string, FieldLayout>,
  newerThan61 = false,
): StructLayout {
  return Object.freeze({
    name,
    size,
    fields: Object.freeze(fields),
    ...(newerThan61 ? { newerThan61 } : {}),
  });
}

// linux/vfio.h (6.1): every struct below, with the same field names.
export const vfio_info_cap_header = layout('vfio_info_cap_header', 8, {
  id: f(0, 'u16'),
  version: f(2, 'u16'),
  next: f(4, 'u32'),
});

export const vfio_device_info = layout('vfio_device_info', 20, {
  argsz: f(0, 'u32'),
  flags: f(4, 'u32'),
  num_regions: f(8, 'u32'),
  num_irqs: f(12, 'u32'),
  cap_offset: f(16, 'u32'),
});

export const vfio_region_info = layout('vfio_region_info', 32, {
  argsz: f(0, 'u32'),
  flags: f(4, 'u32'),
  index: f(8, 'u32'),
  cap_offset: f(12, 'u32'),
  size: f(16, 'u64'),
  offset: f(24, 'u64'),
});

export const vfio_region_sparse_mmap_area = layout('vfio_region_sparse_mmap_area', 16, {
  offset: f(0, 'u64'),
  size: f(8, 'u64'),
});

export const vfio_region_info_cap_sparse_mmap = layout('vfio_region_info_cap_sparse_mmap', 16, {
  header: f(0, 'header'),
  nr_areas: f(8, 'u32'),
  reserved: f(12, 'u32'),
  areas: f(16, 'array'),
});

export const vfio_region_info_cap_type = layout('vfio_region_info_cap_type', 16, {
  header: f(0, 'header'),
  type: f(8, 'u32'),
  subtype: f(12, 'u32'),
});

export const vfio_region_gfx_edid = layout('vfio_region_gfx_edid', 24, {
  edid_offset: f(0, 'u32'),
  edid_max_size: f(4, 'u32'),
  edid_size: f(8, 'u32'),
  max_xres: f(12, 'u32'),
  max_yres: f(16, 'u32'),
  link_state: f(20, 'u32'),
});

export const vfio_irq_info = layout('vfio_irq_info', 16, {
  argsz: f(0, 'u32'),
  flags: f(4, 'u32'),
  index: f(8, 'u32'),
  count: f(12, 'u32'),
});

export const vfio_irq_set = layout('vfio_irq_set', 20, {
  argsz: f(0, 'u32'),
  flags: f(4, 'u32'),
  index: f(8, 'u32'),
  start: f(12, 'u32'),
  count: f(16, 'u32'),
  data: f(20, 'array'),
});

export const vfio_device_gfx_plane_info = layout('vfio_device_gfx_plane_info', 64, {
  argsz: f(0, 'u32'),
  flags: f(4, 'u32'),
  drm_plane_type: f(8, 'u32'),
  drm_format: f(12, 'u32'),
  drm_format_mod: f(16, 'u64'),
  width: f(24, 'u32'),
  height: f(28, 'u32'),
  stride: f(32, 'u32'),
  size: f(36, 'u32'),
  x_pos: f(40, 'u32'),
  y_pos: f(44, 'u32'),
  x_hot: f(48, 'u32'),
  y_hot: f(52, 'u32'),
  region_index: f(56, 'u32'),
  dmabuf_id: f(56, 'u32'),
});

export const vfio_device_ioeventfd = layout('vfio_device_ioeventfd', 32, {
  argsz: f(0, 'u32'),
  flags: f(4, 'u32'),
  offset: f(8, 'u64'),
  data: f(16, 'u64'),
  fd: f(24, 's32'),
});

export const vfio_device_feature = layout('vfio_device_feature', 8, {
  argsz: f(0, 'u32'),
  flags: f(4, 'u32'),
  data: f(8, 'array'),
});

export const vfio_device_feature_migration = layout('vfio_device_feature_migration', 8, {
  flags: f(0, 'u64'),
});

export const vfio_device_feature_mig_state = layout('vfio_device_feature_mig_state', 8, {
  device_state: f(0, 'u32'),
  data_fd: f(4, 's32'),
});

export const vfio_device_low_power_entry_with_wakeup = layout('vfio_device_low_power_entry_with_wakeup', 8, {
  wakeup_eventfd: f(0, 's32'),
  reserved: f(4, 'u32'),
});

export const vfio_device_feature_dma_logging_control = layout('vfio_device_feature_dma_logging_control', 24, {
  page_size: f(0, 'u64'),
  num_ranges: f(8, 'u32'),
  __reserved: f(12, 'u32'),
  ranges: f(16, 'u64'),
});

export const vfio_device_feature_dma_logging_range = layout('vfio_device_feature_dma_logging_range', 16, {
  iova: f(0, 'u64'),
  length: f(8, 'u64'),
});

export const vfio_device_feature_dma_logging_report = layout('vfio_device_feature_dma_logging_report', 32, {
  iova: f(0, 'u64'),
  length: f(8, 'u64'),
  page_size: f(16, 'u64'),
  bitmap: f(24, 'u64'),
});

export const vfio_iommu_type1_dma_map = layout('vfio_iommu_type1_dma_map', 32, {
  argsz: f(0, 'u32'),
  flags: f(4, 'u32'),
  vaddr: f(8, 'u64'),
  iova: f(16, 'u64'),
  size: f(24, 'u64'),
});

export const vfio_iommu_type1_dma_unmap = layout('vfio_iommu_type1_dma_unmap', 24, {
  argsz: f(0, 'u32'),
  flags: f(4, 'u32'),
  iova: f(8, 'u64'),
  size: f(16, 'u64'),
});

// Mainline linux/vfio.h (6.2+): not in the 6.1 header.
export const vfio_precopy_info = layout(
  'vfio_precopy_info',
  24,
  { argsz: f(0, 'u32'), flags: f(4, 'u32'), initial_bytes: f(8, 'u64'), dirty_bytes: f(16, 'u64') },
  true,
);

export const vfio_device_feature_mig_data_size = layout(
  'vfio_device_feature_mig_data_size',
  8,
  { stop_copy_length: f(0, 'u64') },
  true,
);

/** Every layout the codecs use, keyed by C name. */
export const STRUCT_LAYOUTS: Readonly<Record<string, StructLayout>> = Object.freeze(
  Object.fromEntries(
    [
      vfio_info_cap_header,
      vfio_device_info,
      vfio_region_info,
      vfio_region_sparse_mmap_area,
      vfio_region_info_cap_sparse_mmap,
      vfio_region_info_cap_type,
      vfio_region_gfx_edid,
      vfio_irq_info,
      vfio_irq_set,
      vfio_device_gfx_plane_info,
      vfio_device_ioeventfd,
      vfio_device_feature,
      vfio_device_feature_migration,
      vfio_device_feature_mig_state,
      vfio_device_low_power_entry_with_wakeup,
      vfio_device_feature_dma_logging_control,
      vfio_device_feature_dma_logging_range,
      vfio_device_feature_dma_logging_report,
      vfio_iommu_type1_dma_map,
      vfio_iommu_type1_dma_unmap,
      vfio_precopy_info,
      vfio_device_feature_mig_data_size,
    ].map((l) => [l.name, l]),
  ),
);
