/**
 * Little-endian codecs for the structs of linux/vfio.h. Offsets come from layout.ts (proven
 * against the real header); decoders check the length they are given and never read past it.
 *
 * Why one file past 600 lines: it is one encoder/decoder pair per struct, each a few dozen lines
 * that share the u64 and length checks at the top; a struct added is a pair added here. Where it
 * would split: the region-info capability chain (encodeRegionCaps/decodeRegionCaps and its cap
 * shapes), the one part with logic of its own, into region-caps.ts.
 */
import { VfioError } from '../errors.js';
import {
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
} from './constants.js';
import {
  type StructLayout,
  vfio_device_feature,
  vfio_device_feature_dma_logging_control,
  vfio_device_feature_dma_logging_report,
  vfio_device_feature_mig_state,
  vfio_device_gfx_plane_info,
  vfio_device_info,
  vfio_info_cap_header,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_irq_info,
  vfio_irq_set,
  vfio_precopy_info,
  vfio_region_info,
  vfio_region_info_cap_sparse_mmap,
  vfio_region_info_cap_type,
  vfio_region_sparse_mmap_area,
} from './layout.js';

const AREA_OFFSET = vfio_region_sparse_mmap_area.fields.offset.offset;
const AREA_SIZE = vfio_region_sparse_mmap_area.fields.size.offset;
const AREA_STRIDE = vfio_region_sparse_mmap_area.size;

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** A u64 as a JS number; values above 2^53 are refused rather than rounded. */
export function getU64(dv: DataView, offset: number, what: string): number {
  const lo = dv.getUint32(offset, true);
  const hi = dv.getUint32(offset + 4, true);
  if (hi > 0x1fffff) {
    throw new VfioError(
      'EOVERFLOW',
      `${what} is 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}, beyond 2^53.`,
      {
        hint: 'Offsets, sizes and addresses above 2^53 are not supported; use a smaller value.',
      },
    );
  }
  return hi * 0x100000000 + lo;
}

export function setU64(dv: DataView, offset: number, value: number): void {
  // ToUint32 is exact modulo 2^32 for every integer up to 2^53.
  const lo = value >>> 0;
  dv.setUint32(offset, lo, true);
  dv.setUint32(offset + 4, (value - lo) / 0x100000000, true);
}

function need(bytes: Uint8Array, layout: StructLayout, what = layout.name): void {
  if (bytes.byteLength < layout.size) {
    throw new VfioError(
      'EINVAL',
      `struct ${what} needs ${layout.size} bytes but ${bytes.byteLength} were given.`,
      {
        hint: 'Pass the whole struct; argsz must be at least its size.',
      },
    );
  }
}

// ---- capability chains (struct vfio_info_cap_header) -------------------------------------

export interface SparseMmapCap {
  readonly id: typeof VFIO_REGION_INFO_CAP_SPARSE_MMAP;
  readonly areas: readonly { readonly offset: number; readonly size: number }[];
}
export interface TypeCap {
  readonly id: typeof VFIO_REGION_INFO_CAP_TYPE;
  readonly type: number;
  readonly subtype: number;
}
export interface MsixMappableCap {
  readonly id: typeof VFIO_REGION_INFO_CAP_MSIX_MAPPABLE;
}
/** A capability whose id this codec does not know: kept as raw bytes (header included). */
export interface RawCap {
  readonly id: number;
  readonly version: number;
  readonly raw: Uint8Array;
}
export type RegionCap = SparseMmapCap | TypeCap | MsixMappableCap;

export function regionCapSize(cap: RegionCap): number {
  switch (cap.id) {
    case VFIO_REGION_INFO_CAP_SPARSE_MMAP:
      return vfio_region_info_cap_sparse_mmap.size + cap.areas.length * vfio_region_sparse_mmap_area.size;
    case VFIO_REGION_INFO_CAP_TYPE:
      return vfio_region_info_cap_type.size;
    case VFIO_REGION_INFO_CAP_MSIX_MAPPABLE:
      return vfio_info_cap_header.size;
  }
}

export function regionCapsSize(caps: readonly RegionCap[]): number {
  let n = 0;
  for (const c of caps) n += regionCapSize(c);
  return n;
}

/**
 * Write `caps` as a chain at `at` inside `out`; each header's `next` is an offset from the
 * start of the info struct (`structStart`), 0 ends the chain (vfio_info_cap_shift).
 */
export function encodeRegionCaps(
  caps: readonly RegionCap[],
  out: Uint8Array,
  at: number,
  structStart = 0,
  dv: DataView = view(out),
): number {
  let pos = at;
  for (let i = 0; i < caps.length; i++) {
    const cap = caps[i];
    const size = regionCapSize(cap);
    const next = i + 1 < caps.length ? pos + size - structStart : 0;
    dv.setUint16(pos + vfio_info_cap_header.fields.id.offset, cap.id, true);
    dv.setUint16(pos + vfio_info_cap_header.fields.version.offset, 1, true);
    dv.setUint32(pos + vfio_info_cap_header.fields.next.offset, next, true);
    if (cap.id === VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
      const f = vfio_region_info_cap_sparse_mmap.fields;
      dv.setUint32(pos + f.nr_areas.offset, cap.areas.length, true);
      dv.setUint32(pos + f.reserved.offset, 0, true);
      const areas = cap.areas;
      let a = pos + f.areas.offset;
      for (let k = 0; k < areas.length; k++) {
        setU64(dv, a + AREA_OFFSET, areas[k].offset);
        setU64(dv, a + AREA_SIZE, areas[k].size);
        a += AREA_STRIDE;
      }
    } else if (cap.id === VFIO_REGION_INFO_CAP_TYPE) {
      dv.setUint32(pos + vfio_region_info_cap_type.fields.type.offset, cap.type >>> 0, true);
      dv.setUint32(pos + vfio_region_info_cap_type.fields.subtype.offset, cap.subtype >>> 0, true);
    }
    pos += size;
  }
  return pos;
}

/**
 * Walk a capability chain in `bytes` (the whole info struct and what follows) from
 * `capOffset`. Refuses loops, misaligned or out-of-range headers and truncated bodies.
 */
export function decodeRegionCaps(
  bytes: Uint8Array,
  capOffset: number,
  minOffset: number,
): (RegionCap | RawCap)[] {
  const dv = view(bytes);
  const caps: (RegionCap | RawCap)[] = [];
  const seen = new Set<number>();
  let pos = capOffset;
  while (pos !== 0) {
    if (pos < minOffset || pos % 4 !== 0 || pos + vfio_info_cap_header.size > bytes.byteLength) {
      throw new VfioError(
        'EINVAL',
        `capability header at offset ${pos} lies outside the ${bytes.byteLength}-byte info buffer or is misaligned.`,
        {
          hint: 'The chain is corrupt; each next must point inside the buffer, after the fixed struct.',
        },
      );
    }
    if (seen.has(pos)) {
      throw new VfioError('EINVAL', `capability chain loops back to offset ${pos}.`, {
        hint: 'The chain is corrupt.',
      });
    }
    seen.add(pos);
    const id = dv.getUint16(pos, true);
    const version = dv.getUint16(pos + 2, true);
    const next = dv.getUint32(pos + 4, true);
    if (id === VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
      if (pos + vfio_region_info_cap_sparse_mmap.size > bytes.byteLength) {
        throw new VfioError('EINVAL', `sparse-mmap capability at offset ${pos} is truncated.`);
      }
      const nr = dv.getUint32(pos + vfio_region_info_cap_sparse_mmap.fields.nr_areas.offset, true);
      const areasAt = pos + vfio_region_info_cap_sparse_mmap.fields.areas.offset;
      if (areasAt + nr * vfio_region_sparse_mmap_area.size > bytes.byteLength) {
        throw new VfioError(
          'EINVAL',
          `sparse-mmap capability at offset ${pos} claims ${nr} areas, more than the buffer holds.`,
        );
      }
      const areas: { offset: number; size: number }[] = [];
      for (let i = 0; i < nr; i++) {
        const a = areasAt + i * vfio_region_sparse_mmap_area.size;
        areas.push({
          offset: getU64(dv, a, 'sparse area offset'),
          size: getU64(dv, a + 8, 'sparse area size'),
        });
      }
      caps.push({ id, areas });
    } else if (id === VFIO_REGION_INFO_CAP_TYPE) {
      if (pos + vfio_region_info_cap_type.size > bytes.byteLength) {
        throw new VfioError('EINVAL', `type capability at offset ${pos} is truncated.`);
      }
      caps.push({ id, type: dv.getUint32(pos + 8, true), subtype: dv.getUint32(pos + 12, true) });
    } else if (id === VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) {
      caps.push({ id });
    } else {
      const end = next > pos && next <= bytes.byteLength ? next : pos + vfio_info_cap_header.size;
      caps.push({ id, version, raw: bytes.slice(pos, end) });
    }
    pos = next;
  }
  return caps;
}

// ---- struct vfio_device_info ---------------------------------------------------------------

export interface DeviceInfoStruct {
  argsz: number;
  flags: number;
  numRegions: number;
  numIrqs: number;
  capOffset: number;
}

export function encodeDeviceInfo(
  s: DeviceInfoStruct,
  out: Uint8Array = new Uint8Array(vfio_device_info.size),
): Uint8Array {
  need(out, vfio_device_info);
  const dv = view(out);
  const f = vfio_device_info.fields;
  dv.setUint32(f.argsz.offset, s.argsz, true);
  dv.setUint32(f.flags.offset, s.flags, true);
  dv.setUint32(f.num_regions.offset, s.numRegions, true);
  dv.setUint32(f.num_irqs.offset, s.numIrqs, true);
  dv.setUint32(f.cap_offset.offset, s.capOffset, true);
  return out;
}

export function decodeDeviceInfo(bytes: Uint8Array): DeviceInfoStruct {
  need(bytes, vfio_device_info);
  const dv = view(bytes);
  const f = vfio_device_info.fields;
  return {
    argsz: dv.getUint32(f.argsz.offset, true),
    flags: dv.getUint32(f.flags.offset, true),
    numRegions: dv.getUint32(f.num_regions.offset, true),
    numIrqs: dv.getUint32(f.num_irqs.offset, true),
    capOffset: dv.getUint32(f.cap_offset.offset, true),
  };
}

// ---- struct vfio_region_info ---------------------------------------------------------------

export interface RegionInfoStruct {
  argsz: number;
  flags: number;
  index: number;
  capOffset: number;
  size: number;
  offset: number;
}

export function encodeRegionInfoStruct(
  s: RegionInfoStruct,
  out: Uint8Array,
  at = 0,
  dv: DataView = view(out),
): void {
  const f = vfio_region_info.fields;
  dv.setUint32(at + f.argsz.offset, s.argsz, true);
  dv.setUint32(at + f.flags.offset, s.flags, true);
  dv.setUint32(at + f.index.offset, s.index, true);
  dv.setUint32(at + f.cap_offset.offset, s.capOffset, true);
  setU64(dv, at + f.size.offset, s.size);
  setU64(dv, at + f.offset.offset, s.offset);
}

/** A region info struct followed by its capability chain, in one buffer of `s.argsz` bytes at most. */
export function encodeRegionInfo(s: RegionInfoStruct, caps: readonly RegionCap[] = []): Uint8Array {
  const withCaps = s.capOffset !== 0 && caps.length > 0;
  const total = withCaps ? vfio_region_info.size + regionCapsSize(caps) : vfio_region_info.size;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  encodeRegionInfoStruct(s, out, 0, dv);
  if (withCaps) encodeRegionCaps(caps, out, s.capOffset, 0, dv);
  return out;
}

export function decodeRegionInfoStruct(bytes: Uint8Array): RegionInfoStruct {
  need(bytes, vfio_region_info);
  const dv = view(bytes);
  const f = vfio_region_info.fields;
  return {
    argsz: dv.getUint32(f.argsz.offset, true),
    flags: dv.getUint32(f.flags.offset, true),
    index: dv.getUint32(f.index.offset, true),
    capOffset: dv.getUint32(f.cap_offset.offset, true),
    size: getU64(dv, f.size.offset, 'vfio_region_info.size'),
    offset: getU64(dv, f.offset.offset, 'vfio_region_info.offset'),
  };
}

export function decodeRegionInfo(bytes: Uint8Array): RegionInfoStruct & { caps: (RegionCap | RawCap)[] } {
  const s = decodeRegionInfoStruct(bytes);
  const caps = s.capOffset === 0 ? [] : decodeRegionCaps(bytes, s.capOffset, vfio_region_info.size);
  return { ...s, caps };
}

// ---- struct vfio_irq_info / vfio_irq_set ----------------------------------------------------

export interface IrqInfoStruct {
  argsz: number;
  flags: number;
  index: number;
  count: number;
}

export function encodeIrqInfo(
  s: IrqInfoStruct,
  out: Uint8Array = new Uint8Array(vfio_irq_info.size),
): Uint8Array {
  need(out, vfio_irq_info);
  const dv = view(out);
  const f = vfio_irq_info.fields;
  dv.setUint32(f.argsz.offset, s.argsz, true);
  dv.setUint32(f.flags.offset, s.flags, true);
  dv.setUint32(f.index.offset, s.index, true);
  dv.setUint32(f.count.offset, s.count, true);
  return out;
}

export function decodeIrqInfo(bytes: Uint8Array): IrqInfoStruct {
  need(bytes, vfio_irq_info);
  const dv = view(bytes);
  const f = vfio_irq_info.fields;
  return {
    argsz: dv.getUint32(f.argsz.offset, true),
    flags: dv.getUint32(f.flags.offset, true),
    index: dv.getUint32(f.index.offset, true),
    count: dv.getUint32(f.count.offset, true),
  };
}

export interface IrqSetStruct {
  argsz: number;
  flags: number;
  index: number;
  start: number;
  count: number;
  /** The bytes after the 20-byte header (u8 per vector for BOOL, s32 per vector for EVENTFD). */
  data: Uint8Array;
}

export function encodeIrqSet(s: IrqSetStruct): Uint8Array {
  const out = new Uint8Array(vfio_irq_set.size + s.data.byteLength);
  const dv = view(out);
  const f = vfio_irq_set.fields;
  dv.setUint32(f.argsz.offset, s.argsz, true);
  dv.setUint32(f.flags.offset, s.flags, true);
  dv.setUint32(f.index.offset, s.index, true);
  dv.setUint32(f.start.offset, s.start, true);
  dv.setUint32(f.count.offset, s.count, true);
  out.set(s.data, f.data.offset);
  return out;
}

export function decodeIrqSet(bytes: Uint8Array): IrqSetStruct {
  need(bytes, vfio_irq_set);
  const dv = view(bytes);
  const f = vfio_irq_set.fields;
  return {
    argsz: dv.getUint32(f.argsz.offset, true),
    flags: dv.getUint32(f.flags.offset, true),
    index: dv.getUint32(f.index.offset, true),
    start: dv.getUint32(f.start.offset, true),
    count: dv.getUint32(f.count.offset, true),
    data: bytes.subarray(f.data.offset),
  };
}

// ---- struct vfio_device_feature and its payloads -------------------------------------------

export interface DeviceFeatureStruct {
  argsz: number;
  flags: number;
  data: Uint8Array;
}

export function encodeDeviceFeature(s: DeviceFeatureStruct): Uint8Array {
  const out = new Uint8Array(vfio_device_feature.size + s.data.byteLength);
  const dv = view(out);
  dv.setUint32(vfio_device_feature.fields.argsz.offset, s.argsz, true);
  dv.setUint32(vfio_device_feature.fields.flags.offset, s.flags, true);
  out.set(s.data, vfio_device_feature.fields.data.offset);
  return out;
}

export function decodeDeviceFeature(bytes: Uint8Array): DeviceFeatureStruct {
  need(bytes, vfio_device_feature);
  const dv = view(bytes);
  return {
    argsz: dv.getUint32(vfio_device_feature.fields.argsz.offset, true),
    flags: dv.getUint32(vfio_device_feature.fields.flags.offset, true),
    data: bytes.subarray(vfio_device_feature.fields.data.offset),
  };
}

export function encodeMigState(deviceState: number, dataFd: number): Uint8Array {
  const out = new Uint8Array(vfio_device_feature_mig_state.size);
  const dv = view(out);
  dv.setUint32(vfio_device_feature_mig_state.fields.device_state.offset, deviceState, true);
  dv.setInt32(vfio_device_feature_mig_state.fields.data_fd.offset, dataFd, true);
  return out;
}

export function decodeMigState(bytes: Uint8Array): { deviceState: number; dataFd: number } {
  need(bytes, vfio_device_feature_mig_state);
  const dv = view(bytes);
  return {
    deviceState: dv.getUint32(vfio_device_feature_mig_state.fields.device_state.offset, true),
    dataFd: dv.getInt32(vfio_device_feature_mig_state.fields.data_fd.offset, true),
  };
}

export interface DmaLoggingControl {
  pageSize: number;
  numRanges: number;
  ranges: number;
}

export function decodeDmaLoggingControl(bytes: Uint8Array): DmaLoggingControl {
  need(bytes, vfio_device_feature_dma_logging_control);
  const dv = view(bytes);
  const f = vfio_device_feature_dma_logging_control.fields;
  return {
    pageSize: getU64(dv, f.page_size.offset, 'page_size'),
    numRanges: dv.getUint32(f.num_ranges.offset, true),
    ranges: getU64(dv, f.ranges.offset, 'ranges'),
  };
}

export interface DmaLoggingReport {
  iova: number;
  length: number;
  pageSize: number;
  bitmap: number;
}

export function decodeDmaLoggingReport(bytes: Uint8Array): DmaLoggingReport {
  need(bytes, vfio_device_feature_dma_logging_report);
  const dv = view(bytes);
  const f = vfio_device_feature_dma_logging_report.fields;
  return {
    iova: getU64(dv, f.iova.offset, 'iova'),
    length: getU64(dv, f.length.offset, 'length'),
    pageSize: getU64(dv, f.page_size.offset, 'page_size'),
    bitmap: getU64(dv, f.bitmap.offset, 'bitmap'),
  };
}

export function encodePrecopyInfo(initialBytes: number, dirtyBytes: number): Uint8Array {
  const out = new Uint8Array(vfio_precopy_info.size);
  const dv = view(out);
  const f = vfio_precopy_info.fields;
  dv.setUint32(f.argsz.offset, vfio_precopy_info.size, true);
  dv.setUint32(f.flags.offset, 0, true);
  setU64(dv, f.initial_bytes.offset, initialBytes);
  setU64(dv, f.dirty_bytes.offset, dirtyBytes);
  return out;
}

// ---- struct vfio_device_gfx_plane_info ----------------------------------------------------

export interface GfxPlaneInfoStruct {
  argsz: number;
  flags: number;
  drmPlaneType: number;
  drmFormat: number;
  drmFormatMod: bigint;
  width: number;
  height: number;
  stride: number;
  size: number;
  xPos: number;
  yPos: number;
  xHot: number;
  yHot: number;
  id: number;
}

export function encodeGfxPlaneInfo(s: GfxPlaneInfoStruct): Uint8Array {
  const out = new Uint8Array(vfio_device_gfx_plane_info.size);
  const dv = view(out);
  const f = vfio_device_gfx_plane_info.fields;
  dv.setUint32(f.argsz.offset, s.argsz, true);
  dv.setUint32(f.flags.offset, s.flags, true);
  dv.setUint32(f.drm_plane_type.offset, s.drmPlaneType, true);
  dv.setUint32(f.drm_format.offset, s.drmFormat, true);
  dv.setBigUint64(f.drm_format_mod.offset, s.drmFormatMod, true);
  dv.setUint32(f.width.offset, s.width, true);
  dv.setUint32(f.height.offset, s.height, true);
  dv.setUint32(f.stride.offset, s.stride, true);
  dv.setUint32(f.size.offset, s.size, true);
  dv.setUint32(f.x_pos.offset, s.xPos, true);
  dv.setUint32(f.y_pos.offset, s.yPos, true);
  dv.setUint32(f.x_hot.offset, s.xHot >>> 0, true);
  dv.setUint32(f.y_hot.offset, s.yHot >>> 0, true);
  dv.setUint32(f.region_index.offset, s.id, true);
  return out;
}

export function decodeGfxPlaneInfo(bytes: Uint8Array): GfxPlaneInfoStruct {
  need(bytes, vfio_device_gfx_plane_info);
  const dv = view(bytes);
  const f = vfio_device_gfx_plane_info.fields;
  return {
    argsz: dv.getUint32(f.argsz.offset, true),
    flags: dv.getUint32(f.flags.offset, true),
    drmPlaneType: dv.getUint32(f.drm_plane_type.offset, true),
    drmFormat: dv.getUint32(f.drm_format.offset, true),
    drmFormatMod: dv.getBigUint64(f.drm_format_mod.offset, true),
    width: dv.getUint32(f.width.offset, true),
    height: dv.getUint32(f.height.offset, true),
    stride: dv.getUint32(f.stride.offset, true),
    size: dv.getUint32(f.size.offset, true),
    xPos: dv.getUint32(f.x_pos.offset, true),
    yPos: dv.getUint32(f.y_pos.offset, true),
    xHot: dv.getUint32(f.x_hot.offset, true),
    yHot: dv.getUint32(f.y_hot.offset, true),
    id: dv.getUint32(f.region_index.offset, true),
  };
}

// ---- IOMMU type1 map/unmap ----------------------------------------------------------------

export interface DmaMapStruct {
  argsz: number;
  flags: number;
  vaddr: number;
  iova: number;
  size: number;
}

export function encodeDmaMap(s: DmaMapStruct): Uint8Array {
  const out = new Uint8Array(vfio_iommu_type1_dma_map.size);
  const dv = view(out);
  const f = vfio_iommu_type1_dma_map.fields;
  dv.setUint32(f.argsz.offset, s.argsz, true);
  dv.setUint32(f.flags.offset, s.flags, true);
  setU64(dv, f.vaddr.offset, s.vaddr);
  setU64(dv, f.iova.offset, s.iova);
  setU64(dv, f.size.offset, s.size);
  return out;
}

export function decodeDmaMap(bytes: Uint8Array): DmaMapStruct {
  need(bytes, vfio_iommu_type1_dma_map);
  const dv = view(bytes);
  const f = vfio_iommu_type1_dma_map.fields;
  return {
    argsz: dv.getUint32(f.argsz.offset, true),
    flags: dv.getUint32(f.flags.offset, true),
    vaddr: getU64(dv, f.vaddr.offset, 'vaddr'),
    iova: getU64(dv, f.iova.offset, 'iova'),
    size: getU64(dv, f.size.offset, 'size'),
  };
}

export interface DmaUnmapStruct {
  argsz: number;
  flags: number;
  iova: number;
  size: number;
}

export function encodeDmaUnmap(s: DmaUnmapStruct): Uint8Array {
  const out = new Uint8Array(vfio_iommu_type1_dma_unmap.size);
  const dv = view(out);
  const f = vfio_iommu_type1_dma_unmap.fields;
  dv.setUint32(f.argsz.offset, s.argsz, true);
  dv.setUint32(f.flags.offset, s.flags, true);
  setU64(dv, f.iova.offset, s.iova);
  setU64(dv, f.size.offset, s.size);
  return out;
}

export function decodeDmaUnmap(bytes: Uint8Array): DmaUnmapStruct {
  need(bytes, vfio_iommu_type1_dma_unmap);
  const dv = view(bytes);
  const f = vfio_iommu_type1_dma_unmap.fields;
  return {
    argsz: dv.getUint32(f.argsz.offset, true),
    flags: dv.getUint32(f.flags.offset, true),
    iova: getU64(dv, f.iova.offset, 'iova'),
    size: getU64(dv, f.size.offset, 'size'),
  };
}
