/**
 * A frame from QUERY_GFX_PLANE as a PNG (RFC 2083: signature, IHDR, one zlib IDAT, IEND), so a
 * VMM's report can save what the guest shows. 32-bit XRGB/XBGR/ARGB frames become 8-bit RGB.
 */
import { deflateSync } from 'node:zlib';
import { VfioError } from '@vfiokit/core';
import { DRM_FORMAT_ARGB8888, DRM_FORMAT_XBGR8888, DRM_FORMAT_XRGB8888 } from './constants.js';

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, crc = 0xffffffff): number {
  let c = crc;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  dv.setUint32(8 + data.length, (crc32(out.subarray(4, 8 + data.length)) ^ 0xffffffff) >>> 0);
  return out;
}

export interface PngFrame {
  readonly width: number;
  readonly height: number;
  readonly stride: number;
  readonly drmFormat: number;
}

export function encodePng(frame: PngFrame, bytes: Uint8Array): Uint8Array {
  const { width, height, stride, drmFormat } = frame;
  const bgrOrder = drmFormat === DRM_FORMAT_XRGB8888 || drmFormat === DRM_FORMAT_ARGB8888;
  if (!bgrOrder && drmFormat !== DRM_FORMAT_XBGR8888) {
    throw new VfioError('EINVAL', `drm format 0x${drmFormat.toString(16)} cannot be written as a PNG here.`, {
      hint: 'Pass an XRGB8888, XBGR8888 or ARGB8888 frame.',
    });
  }
  if (width <= 0 || height <= 0 || stride < width * 4 || stride * (height - 1) + width * 4 > bytes.length) {
    throw new VfioError(
      'EINVAL',
      `a ${width}x${height} frame with stride ${stride} does not fit ${bytes.length} bytes.`,
      {
        hint: 'Use the width, height and stride QUERY_GFX_PLANE reported and the bytes of its region.',
      },
    );
  }
  const raw = new Uint8Array(height * (1 + width * 3));
  let o = 0;
  for (let y = 0; y < height; y++) {
    raw[o++] = 0; // filter: none
    let i = y * stride;
    for (let x = 0; x < width; x++, i += 4) {
      // little-endian XRGB8888 is B, G, R, X in memory; XBGR8888 is R, G, B, X
      raw[o++] = bgrOrder ? bytes[i + 2] : bytes[i];
      raw[o++] = bytes[i + 1];
      raw[o++] = bgrOrder ? bytes[i] : bytes[i + 2];
    }
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  const parts = [
    SIGNATURE,
    chunk('IHDR', ihdr),
    chunk('IDAT', new Uint8Array(deflateSync(raw))),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
