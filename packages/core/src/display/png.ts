/**
 * A display plane's frame as a PNG (RFC 2083: signature, IHDR, one zlib IDAT, IEND), so a VMM
 * can save what a guest shows from a QUERY_GFX_PLANE region. 32-bit XRGB/XBGR/ARGB frames become
 * 8-bit RGB.
 */
import { crc32, deflateSync } from 'node:zlib';
import { VfioError } from '../errors.js';
import { DRM_FORMAT_ARGB8888, DRM_FORMAT_XBGR8888, DRM_FORMAT_XRGB8888 } from './drm-format.js';

// RFC 2083 §3.1: the PNG file signature
const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
// RFC 2083 §4.1.1: IHDR bit depth 8, colour type 2 (RGB triples)
const PNG_BIT_DEPTH = 8;
const PNG_COLOUR_RGB = 2;

/** The geometry QUERY_GFX_PLANE reports for a plane. */
export interface PngFrame {
  readonly width: number;
  readonly height: number;
  readonly stride: number;
  readonly drmFormat: number;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)) >>> 0);
  return out;
}

/** Encode `bytes` (a frame laid out as `frame` says) as a PNG; EINVAL for another format or a frame that does not fit. */
export function encodePng(frame: PngFrame, bytes: Uint8Array): Uint8Array {
  const { width, height, stride, drmFormat } = frame;
  const bgrOrder = drmFormat === DRM_FORMAT_XRGB8888 || drmFormat === DRM_FORMAT_ARGB8888;
  if (!bgrOrder && drmFormat !== DRM_FORMAT_XBGR8888) {
    throw new VfioError('EINVAL', `drm format 0x${drmFormat.toString(16)} cannot be written as a PNG here.`, {
      hint: 'Pass an XRGB8888, XBGR8888 or ARGB8888 frame.',
    });
  }
  if (
    !Number.isInteger(width) ||
    !Number.isInteger(height) ||
    !Number.isInteger(stride) ||
    width <= 0 ||
    height <= 0 ||
    stride < width * 4 ||
    stride * (height - 1) + width * 4 > bytes.length
  ) {
    throw new VfioError(
      'EINVAL',
      `a ${width}x${height} frame with stride ${stride} does not fit ${bytes.length} bytes.`,
      { hint: 'Use the width, height and stride QUERY_GFX_PLANE reported and the bytes of its region.' },
    );
  }
  const raw = new Uint8Array(height * (1 + width * 3));
  let o = 0;
  for (let y = 0; y < height; y++) {
    raw[o++] = 0; // RFC 2083 §6: filter type None
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
  ihdr[8] = PNG_BIT_DEPTH;
  ihdr[9] = PNG_COLOUR_RGB;
  const parts = [
    PNG_SIGNATURE,
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
