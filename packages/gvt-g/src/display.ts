/**
 * The vGPU's display as VFIO_DEVICE_QUERY_GFX_PLANE sees it (gvt/fb_decoder.c's role): the
 * pipe A primary plane and the cursor are decoded from the virtual registers, checked, and the
 * frame is copied from graphics memory into a region the VMM can read or mmap. A plane the
 * guest programmed impossibly (unknown format, tiling, a stride too small, a surface outside the
 * vGPU or unmapped) is reported disabled: format 0, size 0.
 */
import {
  DRM_PLANE_TYPE_CURSOR,
  DRM_PLANE_TYPE_PRIMARY,
  disabledGfxPlane,
  type GfxPlaneInfo,
  type SharedMemory,
} from '@vfiokit/core';
import {
  CURBASE_A,
  CURCNTR_A,
  CURPOS_A,
  CURSOR_POS_SIGN,
  DRM_FORMAT_ARGB8888,
  DRM_FORMAT_XBGR8888,
  DRM_FORMAT_XRGB8888,
  GTT_PAGE_SIZE,
  GVT_MAX_SURFACE_SIZE,
  MCURSOR_MODE_64_ARGB_AX,
  MCURSOR_MODE_128_ARGB_AX,
  MCURSOR_MODE_256_ARGB_AX,
  MCURSOR_MODE_MASK,
  PLANE_CTL_1_A,
  PLANE_CTL_ENABLE,
  PLANE_CTL_FORMAT_MASK,
  PLANE_CTL_FORMAT_XRGB_8888,
  PLANE_CTL_ORDER_RGBX,
  PLANE_CTL_TILED_MASK,
  PLANE_POS_1_A,
  PLANE_SIZE_1_A,
  PLANE_STRIDE_1_A,
  PLANE_STRIDE_UNIT,
  PLANE_SURF_1_A,
  PVINFO,
  VGT_PVINFO_PAGE,
} from './constants.js';
import type { GmAccess } from './ggtt.js';
import { MemoryPages } from './memory-pages.js';
import type { Vreg } from './mmio/vreg.js';

/** The frame region holds the largest surface GVT decodes. */
export const FRAME_REGION_SIZE = GVT_MAX_SURFACE_SIZE;
/** The cursor region holds a 256 × 256 ARGB cursor. */
export const CURSOR_REGION_SIZE = 256 * 256 * 4;

export interface DecodedPlane {
  readonly drmFormat: number;
  readonly width: number;
  readonly height: number;
  readonly stride: number;
  readonly surface: number;
  readonly x: number;
  readonly y: number;
}

export class VirtualDisplay {
  /** Why the last query reported a plane disabled, for logs and tests. */
  lastProblem = '';
  /** What of the frame and cursor regions may hold data (a reset clears only that). */
  private readonly framePages: MemoryPages;
  private readonly cursorPages: MemoryPages;

  constructor(
    private readonly regs: Vreg,
    private readonly gm: GmAccess,
    readonly frame: SharedMemory,
    readonly cursor: SharedMemory,
    readonly frameRegionIndex: number,
    readonly cursorRegionIndex: number,
  ) {
    this.framePages = new MemoryPages(frame);
    this.cursorPages = new MemoryPages(cursor);
  }

  /** The user mapped part of region `index` (the frame or the cursor). */
  mapped(index: number, offset: number, size: number): void {
    if (index === this.frameRegionIndex) this.framePages.mapped(offset, size);
    else if (index === this.cursorRegionIndex) this.cursorPages.mapped(offset, size);
  }

  /** Device reset: both regions read as zero again. */
  clear(): void {
    this.framePages.clear(0, this.frame.size);
    this.cursorPages.clear(0, this.cursor.size);
  }

  /** The primary plane as programmed, or a sentence saying why it cannot be shown. */
  decodePrimary(): DecodedPlane | string {
    const ctl = this.regs.get(PLANE_CTL_1_A);
    if ((ctl & PLANE_CTL_ENABLE) === 0) return 'the primary plane is disabled';
    if ((ctl & PLANE_CTL_FORMAT_MASK) >>> 0 !== PLANE_CTL_FORMAT_XRGB_8888) {
      return `primary plane format 0x${((ctl & PLANE_CTL_FORMAT_MASK) >>> 24).toString(16)} is not XRGB8888`;
    }
    if ((ctl & PLANE_CTL_TILED_MASK) !== 0)
      return 'the primary plane is tiled; only linear surfaces are decoded';
    const size = this.regs.get(PLANE_SIZE_1_A);
    const width = (size & 0xffff) + 1;
    const height = (size >>> 16) + 1;
    const stride = (this.regs.get(PLANE_STRIDE_1_A) & 0x3ff) * PLANE_STRIDE_UNIT;
    const surface = this.regs.get(PLANE_SURF_1_A) & ~(GTT_PAGE_SIZE - 1) & 0xffffffff;
    const pos = this.regs.get(PLANE_POS_1_A);
    if (stride < width * 4) return `stride ${stride} is less than ${width} pixels of 4 bytes`;
    if (stride * height > GVT_MAX_SURFACE_SIZE)
      return `a ${stride}x${height} surface exceeds the 36 MiB GVT decodes`;
    if (!this.gm.inside(surface >>> 0, stride * height))
      return `the surface at GM 0x${(surface >>> 0).toString(16)} is outside this vGPU`;
    const drmFormat = ctl & PLANE_CTL_ORDER_RGBX ? DRM_FORMAT_XBGR8888 : DRM_FORMAT_XRGB8888;
    return { drmFormat, width, height, stride, surface: surface >>> 0, x: pos & 0xffff, y: pos >>> 16 };
  }

  /** QUERY_GFX_PLANE in REGION mode for the primary plane: the frame is copied into the frame region. */
  queryPrimary(): GfxPlaneInfo {
    const p = this.decodePrimary();
    if (typeof p === 'string') {
      this.lastProblem = p;
      return disabledGfxPlane(DRM_PLANE_TYPE_PRIMARY, this.frameRegionIndex);
    }
    const size = p.stride * p.height;
    this.framePages.written(0, size);
    if (!this.gm.read(p.surface, this.frame.bytes.subarray(0, size))) {
      this.lastProblem = `part of the surface at GM 0x${p.surface.toString(16)} has no GGTT mapping`;
      return disabledGfxPlane(DRM_PLANE_TYPE_PRIMARY, this.frameRegionIndex);
    }
    this.lastProblem = '';
    return {
      drmPlaneType: DRM_PLANE_TYPE_PRIMARY,
      drmFormat: p.drmFormat,
      drmFormatMod: 0n,
      width: p.width,
      height: p.height,
      stride: p.stride,
      size,
      xPos: p.x,
      yPos: p.y,
      xHot: 0,
      yHot: 0,
      id: this.frameRegionIndex,
    };
  }

  /** QUERY_GFX_PLANE in REGION mode for the cursor (hot spot from PVINFO, as GVT reports it). */
  queryCursor(): GfxPlaneInfo {
    const ctl = this.regs.get(CURCNTR_A);
    const mode = ctl & MCURSOR_MODE_MASK;
    const side =
      mode === MCURSOR_MODE_64_ARGB_AX
        ? 64
        : mode === MCURSOR_MODE_128_ARGB_AX
          ? 128
          : mode === MCURSOR_MODE_256_ARGB_AX
            ? 256
            : 0;
    if (side === 0) {
      this.lastProblem =
        mode === 0 ? 'the cursor is disabled' : `cursor mode 0x${mode.toString(16)} is not an ARGB mode`;
      return disabledGfxPlane(DRM_PLANE_TYPE_CURSOR, this.cursorRegionIndex);
    }
    const base = (this.regs.get(CURBASE_A) & ~(GTT_PAGE_SIZE - 1)) >>> 0;
    const size = side * side * 4;
    this.cursorPages.written(0, size);
    if (!this.gm.read(base, this.cursor.bytes.subarray(0, size))) {
      this.lastProblem = `the cursor at GM 0x${base.toString(16)} is outside this vGPU or unmapped`;
      return disabledGfxPlane(DRM_PLANE_TYPE_CURSOR, this.cursorRegionIndex);
    }
    const pos = this.regs.get(CURPOS_A);
    const coord = (v: number) => (v & CURSOR_POS_SIGN ? -(v & 0x7fff) : v & 0x7fff);
    this.lastProblem = '';
    return {
      drmPlaneType: DRM_PLANE_TYPE_CURSOR,
      drmFormat: DRM_FORMAT_ARGB8888,
      drmFormatMod: 0n,
      width: side,
      height: side,
      stride: side * 4,
      size,
      // u32 fields: a cursor partly off the left or top edge wraps, as GVT's int-to-u32 copy does
      xPos: coord(pos & 0xffff) >>> 0,
      yPos: coord(pos >>> 16) >>> 0,
      xHot: this.regs.get(VGT_PVINFO_PAGE + PVINFO.cursorXHot) >>> 0,
      yHot: this.regs.get(VGT_PVINFO_PAGE + PVINFO.cursorYHot) >>> 0,
      id: this.cursorRegionIndex,
    };
  }
}
