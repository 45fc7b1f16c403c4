/**
 * The information ioctls, decoded and answered as vfio-pci answers them:
 * VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO (with the capability-chain retry rule),
 * VFIO_DEVICE_GET_IRQ_INFO and VFIO_DEVICE_QUERY_GFX_PLANE.
 */

import {
  decodeGfxPlaneInfo,
  decodeIrqInfo,
  decodeRegionInfoStruct,
  encodeGfxPlaneInfo,
  encodeIrqInfo,
  encodeRegionCaps,
  encodeRegionInfoStruct,
  regionCapsSize,
} from '../abi/codecs.js';
import {
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_GFX_PLANE_TYPE_DMABUF,
  VFIO_GFX_PLANE_TYPE_PROBE,
  VFIO_GFX_PLANE_TYPE_REGION,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_REGION_INFO_FLAG_CAPS,
} from '../abi/constants.js';
import {
  vfio_device_gfx_plane_info,
  vfio_device_info,
  vfio_irq_info,
  vfio_region_info,
} from '../abi/layout.js';
import type { IrqInfo } from '../contract/device.js';
import { VfioError } from '../errors.js';
import { argszError, noIrqError } from './access-errors.js';
import type { IoctlScope } from './device-host.js';

/** VFIO_IRQ_INFO_* flags of an IRQ index. */
export function irqInfoFlags(info: IrqInfo): number {
  return (
    (info.eventfd ? VFIO_IRQ_INFO_EVENTFD : 0) |
    (info.maskable ? VFIO_IRQ_INFO_MASKABLE : 0) |
    (info.automasked ? VFIO_IRQ_INFO_AUTOMASKED : 0) |
    (info.noresize ? VFIO_IRQ_INFO_NORESIZE : 0)
  );
}

export function ioctlGetInfo(f: IoctlScope, out: Uint8Array): number {
  // vfio_pci_ioctl_get_info: minsz = offsetofend(struct vfio_device_info, num_irqs), 16 bytes,
  // and only those are copied back (cap_offset is written only with a capability chain, which
  // a vfio-pci device of ours never has), so a caller of the 6.1 struct or a shorter one works.
  const minsz = vfio_device_info.fields.cap_offset.offset;
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const argsz = out.byteLength >= 4 ? dv.getUint32(vfio_device_info.fields.argsz.offset, true) : 0;
  if (argsz < minsz || out.byteLength < minsz) throw argszError(f.name, 'vfio_device_info', argsz, minsz);
  dv.setUint32(
    vfio_device_info.fields.flags.offset,
    VFIO_DEVICE_FLAGS_PCI | (f.info.reset ? VFIO_DEVICE_FLAGS_RESET : 0),
    true,
  );
  dv.setUint32(vfio_device_info.fields.num_regions.offset, f.info.numRegions, true);
  dv.setUint32(vfio_device_info.fields.num_irqs.offset, f.info.numIrqs, true);
  return 0;
}

export function ioctlGetRegionInfo(f: IoctlScope, out: Uint8Array): number {
  const minsz = vfio_region_info.size; // offsetofend(struct vfio_region_info, offset)
  const s = decodeRegionInfoStruct(out);
  if (s.argsz < minsz) throw argszError(f.name, 'vfio_region_info', s.argsz, minsz);
  const r = f.file.regionInfo(s.index);
  const capsSize = regionCapsSize(r.caps);
  let flags = r.flags;
  let argsz = s.argsz;
  let capOffset = 0;
  if (capsSize > 0) {
    flags |= VFIO_REGION_INFO_FLAG_CAPS;
    const needed = vfio_region_info.size + capsSize;
    if (s.argsz < needed || out.byteLength < needed) {
      // vfio_pci_ioctl_get_region_info: report the size needed and no chain; the caller retries.
      argsz = needed;
    } else {
      capOffset = vfio_region_info.size;
      encodeRegionCaps(r.caps, out, capOffset);
    }
  }
  encodeRegionInfoStruct({ argsz, flags, index: r.index, capOffset, size: r.size, offset: r.offset }, out);
  return 0;
}

export function ioctlGetIrqInfo(f: IoctlScope, out: Uint8Array): number {
  const minsz = vfio_irq_info.size; // offsetofend(struct vfio_irq_info, count)
  const s = decodeIrqInfo(out);
  if (s.argsz < minsz) throw argszError(f.name, 'vfio_irq_info', s.argsz, minsz);
  if (s.index >= f.info.numIrqs) throw noIrqError(f.name, s.index, f.info.numIrqs);
  const info = f.file.irqInfo(s.index);
  encodeIrqInfo({ argsz: s.argsz, flags: irqInfoFlags(info), index: s.index, count: info.count }, out);
  return 0;
}

export function ioctlQueryGfxPlane(f: IoctlScope, out: Uint8Array): number {
  const minsz = vfio_device_gfx_plane_info.fields.region_index.offset + 4;
  const s = decodeGfxPlaneInfo(out);
  if (s.argsz < minsz) throw argszError(f.name, 'vfio_device_gfx_plane_info', s.argsz, minsz);
  const display = f.device.display;
  const kind =
    s.flags & VFIO_GFX_PLANE_TYPE_DMABUF
      ? 'dmabuf'
      : s.flags & VFIO_GFX_PLANE_TYPE_REGION
        ? 'region'
        : undefined;
  if (!display || !kind || (kind === 'dmabuf' ? !display.kinds.dmabuf : !display.kinds.region)) {
    throw new VfioError('EINVAL', 'the device offers no display plane of that kind.', {
      device: f.name,
      hint: 'Probe DMABUF first, then REGION, as QEMU does.',
    });
  }
  if (s.flags & VFIO_GFX_PLANE_TYPE_PROBE) return 0;
  const p = display.queryPlane(kind, s.drmPlaneType);
  out.set(
    encodeGfxPlaneInfo({ ...p, argsz: s.argsz, flags: s.flags }).subarray(
      0,
      Math.min(out.byteLength, vfio_device_gfx_plane_info.size),
    ),
  );
  return 0;
}
