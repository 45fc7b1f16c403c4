import { inflateSync } from 'node:zlib';
import { VFIO_DEVICE_GFX_LINK_STATE_DOWN, VFIO_DEVICE_GFX_LINK_STATE_UP } from '@vfiokit/core';
import {
  decodeGfxPlaneInfo,
  encodeGfxPlaneInfo,
  VFIO_DEVICE_QUERY_GFX_PLANE,
  VFIO_GFX_PLANE_TYPE_DMABUF,
  VFIO_GFX_PLANE_TYPE_PROBE,
  VFIO_GFX_PLANE_TYPE_REGION,
} from '@vfiokit/core/abi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildEdid,
  CURBASE_A,
  CURCNTR_A,
  CURPOS_A,
  DRM_FORMAT_XRGB8888,
  EDID_BLOB_OFFSET,
  edidBlockProblem,
  edidPreferredMode,
  encodePng,
  GEN8_MASTER_IRQ,
  GEN8_MASTER_IRQ_CONTROL,
  GTT_PAGE_SIZE,
  PLANE_CTL_1_A,
  PLANE_CTL_ENABLE,
  PLANE_CTL_FORMAT_XRGB_8888,
  PLANE_SIZE_1_A,
  PLANE_STRIDE_1_A,
  PLANE_SURF_1_A,
  SDE_PORTD_HOTPLUG_CPT,
  SDEIER,
  SDEIIR,
  SDEIMR,
  SDEISR,
} from '../src/index.js';
import { mapGm, newParent, type OpenVgpu, openVgpu } from './helpers.js';

function query(d: OpenVgpu, flags: number, planeType = 1) {
  const arg = encodeGfxPlaneInfo({
    argsz: 64,
    flags,
    drmPlaneType: planeType,
    drmFormat: 0,
    drmFormatMod: 0n,
    width: 0,
    height: 0,
    stride: 0,
    size: 0,
    xPos: 0,
    yPos: 0,
    xHot: 0,
    yHot: 0,
    id: 0,
  });
  const r = d.file.ioctl(VFIO_DEVICE_QUERY_GFX_PLANE, arg);
  return { ret: r.ret, info: r.ret === 0 ? decodeGfxPlaneInfo(r.out) : undefined };
}

function programPlane(d: OpenVgpu, w: number, h: number) {
  const base = d.vgpu.resources.low.base;
  mapGm(d, base, 0x100000, Math.ceil((w * 4 * h) / GTT_PAGE_SIZE));
  const ap = d.file.mmap(d.offset(2) + base, d.vgpu.resources.low.size);
  for (let i = 0; i < w * h; i++)
    new DataView(ap.memory.bytes.buffer).setUint32(ap.memoryOffset + 4 * i, 0xff000000 | i, true);
  d.setReg(PLANE_STRIDE_1_A, (w * 4) / 64);
  d.setReg(PLANE_SIZE_1_A, ((h - 1) << 16) | (w - 1));
  d.setReg(PLANE_SURF_1_A, base);
  d.setReg(PLANE_CTL_1_A, PLANE_CTL_ENABLE | PLANE_CTL_FORMAT_XRGB_8888);
}

describe('QUERY_GFX_PLANE', () => {
  it('answers REGION probes and refuses DMABUF with EINVAL (no dma-buf in userspace)', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    expect(query(d, VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_REGION).ret).toBe(0);
    expect(query(d, VFIO_GFX_PLANE_TYPE_PROBE | VFIO_GFX_PLANE_TYPE_DMABUF).ret).toBe(-22);
  });

  it('reports the primary plane the guest programmed and puts the frame in the frame region', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    programPlane(d, 64, 16);
    const { info } = query(d, VFIO_GFX_PLANE_TYPE_REGION);
    expect(info).toMatchObject({
      drmFormat: DRM_FORMAT_XRGB8888,
      width: 64,
      height: 16,
      stride: 256,
      size: 4096,
      id: 11,
    });
    const frame = new Uint8Array(8);
    d.file.read(d.offset(11) + 4 * 17, frame);
    expect(new DataView(frame.buffer).getUint32(0, true)).toBe(0xff000011);
    const mapped = d.file.mmap(d.offset(11), GTT_PAGE_SIZE);
    expect(mapped.memory.bytes[mapped.memoryOffset + 4 * 17]).toBe(0x11);
  });

  it.each([
    [
      'a tiled surface',
      (d: OpenVgpu) => d.setReg(PLANE_CTL_1_A, PLANE_CTL_ENABLE | PLANE_CTL_FORMAT_XRGB_8888 | (1 << 10)),
    ],
    ['an unknown format', (d: OpenVgpu) => d.setReg(PLANE_CTL_1_A, PLANE_CTL_ENABLE | (0xd << 24))],
    ['a stride below the width', (d: OpenVgpu) => d.setReg(PLANE_STRIDE_1_A, 1)],
    ['a surface in another vGPU GM', (d: OpenVgpu) => d.setReg(PLANE_SURF_1_A, 0)],
    ['a surface beyond its mapped pages', (d: OpenVgpu) => d.setReg(PLANE_SIZE_1_A, (1000 << 16) | 63)],
  ])('reports the plane disabled for %s', (_what, spoil) => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    programPlane(d, 64, 16);
    spoil(d);
    const { ret, info } = query(d, VFIO_GFX_PLANE_TYPE_REGION);
    expect(ret).toBe(0);
    expect(info).toMatchObject({ drmFormat: 0, size: 0 });
    expect(d.vgpu.screen.lastProblem).not.toBe('');
  });

  it('reports a 64x64 ARGB cursor with its position and PVINFO hot spot', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const base = d.vgpu.resources.low.base + 16 * GTT_PAGE_SIZE;
    mapGm(d, base, 0x200000, 4);
    d.setReg(CURBASE_A, base);
    d.setReg(CURPOS_A, (20 << 16) | 10);
    d.setReg(CURCNTR_A, 0x27);
    d.setReg(0x78830, 3);
    d.setReg(0x78834, 4);
    const { info } = query(d, VFIO_GFX_PLANE_TYPE_REGION, 2);
    expect(info).toMatchObject({ width: 64, height: 64, xPos: 10, yPos: 20, xHot: 3, yHot: 4, id: 12 });
  });

  it('saves the frame as a PNG a decoder reads back', () => {
    const frame = new Uint8Array(2 * 2 * 4);
    new DataView(frame.buffer).setUint32(4, 0x00112233, true); // pixel (1,0): R 0x11 G 0x22 B 0x33
    const png = encodePng({ width: 2, height: 2, stride: 8, drmFormat: DRM_FORMAT_XRGB8888 }, frame);
    expect([...png.subarray(1, 4)]).toEqual([0x50, 0x4e, 0x47]);
    const idatLen = new DataView(png.buffer).getUint32(33);
    const raw = inflateSync(png.subarray(41, 41 + idatLen));
    expect([...raw.subarray(0, 7)]).toEqual([0, 0, 0, 0, 0x11, 0x22, 0x33]);
    expect(() =>
      encodePng({ width: 4, height: 4, stride: 16, drmFormat: DRM_FORMAT_XRGB8888 }, frame),
    ).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});

describe('the EDID region', () => {
  function edidField(d: OpenVgpu, off: number) {
    return d.read32(10, off);
  }

  it('describes the blob at 0x800, at most 128 bytes, with the type resolution as limits', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_4');
    expect([0, 4, 8, 12, 16, 20].map((o) => edidField(d, o))).toEqual([
      0x800,
      128,
      128,
      1920,
      1200,
      VFIO_DEVICE_GFX_LINK_STATE_UP,
    ]);
    expect(edidPreferredMode(d.vgpu.edid.current)).toEqual({ xres: 1920, yres: 1200 });
  });

  it('takes link down, a new blob, and link up, and raises a hotplug interrupt', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    d.setReg(SDEIMR, 0);
    d.setReg(SDEIER, SDE_PORTD_HOTPLUG_CPT);
    d.setReg(GEN8_MASTER_IRQ, GEN8_MASTER_IRQ_CONTROL);
    d.write32(10, 20, VFIO_DEVICE_GFX_LINK_STATE_DOWN);
    expect(d.reg(SDEISR) & SDE_PORTD_HOTPLUG_CPT).toBe(0);
    expect(d.msiCount()).toBe(1);
    d.setReg(SDEIIR, 0xffffffff);
    const edid = buildEdid({ xres: 800, yres: 600 });
    d.write32(10, 8, 128);
    d.file.write(d.offset(10) + EDID_BLOB_OFFSET, edid);
    d.write32(10, 20, VFIO_DEVICE_GFX_LINK_STATE_UP);
    expect(d.reg(SDEISR) & SDE_PORTD_HOTPLUG_CPT).toBe(SDE_PORTD_HOTPLUG_CPT);
    expect(d.msiCount()).toBe(2);
    expect(edidPreferredMode(d.vgpu.edid.current)).toEqual({ xres: 800, yres: 600 });
  });

  it('refuses link up with a broken EDID, an edid_size above 128 and writes to read-only fields', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    d.write32(10, 20, VFIO_DEVICE_GFX_LINK_STATE_DOWN);
    d.file.write(d.offset(10) + EDID_BLOB_OFFSET, new Uint8Array(128).fill(1));
    expect(() => d.write32(10, 20, VFIO_DEVICE_GFX_LINK_STATE_UP)).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(() => d.write32(10, 8, 129)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => d.write32(10, 0, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => d.write32(10, 20, 7)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    expect(() => d.file.read(d.offset(10), new Uint8Array(2))).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });

  it('builds valid EDIDs whose preferred mode is the resolution asked for', () => {
    for (const r of [
      { xres: 1024, yres: 768 },
      { xres: 1920, yres: 1200 },
      { xres: 640, yres: 480 },
    ]) {
      const e = buildEdid(r);
      expect(edidBlockProblem(e)).toBeUndefined();
      expect(edidPreferredMode(e)).toEqual(r);
    }
  });

  it('judges any bytes without throwing and never accepts a block with a bad checksum (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const problem = edidBlockProblem(bytes);
        if (bytes.length >= 128 && bytes.subarray(0, 128).reduce((a, b) => a + b, 0) % 256 !== 0) {
          expect(problem).toBeDefined();
        }
        edidPreferredMode(bytes);
      }),
    );
  });
});
