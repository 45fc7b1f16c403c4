import { crc32, inflateSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VfioError } from '../errors.js';
import { DRM_FORMAT_ARGB8888, DRM_FORMAT_XBGR8888, DRM_FORMAT_XRGB8888 } from './drm-format.js';
import { encodePng } from './png.js';

interface Chunk {
  type: string;
  data: Uint8Array;
  crcOk: boolean;
}

function chunks(png: Uint8Array): Chunk[] {
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const out: Chunk[] = [];
  for (let at = 8; at < png.length; ) {
    const len = dv.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const data = png.subarray(at + 8, at + 8 + len);
    const crc = dv.getUint32(at + 8 + len);
    out.push({ type, data, crcOk: crc === crc32(png.subarray(at + 4, at + 8 + len)) >>> 0 });
    at += 12 + len;
  }
  return out;
}

/** The RGB rows of a PNG this encoder wrote (filter byte dropped). */
function decodeRgb(png: Uint8Array): { width: number; height: number; rgb: Uint8Array } {
  const cs = chunks(png);
  const ihdr = new DataView(cs[0].data.buffer, cs[0].data.byteOffset, 13);
  const width = ihdr.getUint32(0);
  const height = ihdr.getUint32(4);
  const raw = inflateSync(cs[1].data);
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    expect(raw[y * (1 + width * 3)]).toBe(0);
    rgb.set(raw.subarray(y * (1 + width * 3) + 1, (y + 1) * (1 + width * 3)), y * width * 3);
  }
  return { width, height, rgb };
}

describe('encodePng', () => {
  it('writes the PNG signature, IHDR, IDAT and IEND with correct CRCs', () => {
    const png = encodePng(
      { width: 2, height: 1, stride: 8, drmFormat: DRM_FORMAT_XRGB8888 },
      new Uint8Array(8),
    );
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const cs = chunks(png);
    expect(cs.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
    expect(cs.every((c) => c.crcOk)).toBe(true);
    expect([...cs[0].data.subarray(8)]).toEqual([8, 2, 0, 0, 0]);
  });

  it('turns little-endian XRGB8888 (B, G, R, X in memory) into R, G, B', () => {
    const frame = Uint8Array.of(0x30, 0x20, 0x10, 0xff);
    const { rgb } = decodeRgb(
      encodePng({ width: 1, height: 1, stride: 4, drmFormat: DRM_FORMAT_XRGB8888 }, frame),
    );
    expect([...rgb]).toEqual([0x10, 0x20, 0x30]);
  });

  it('keeps XBGR8888 (R, G, B, X in memory) in its order', () => {
    const frame = Uint8Array.of(0x10, 0x20, 0x30, 0xff);
    const { rgb } = decodeRgb(
      encodePng({ width: 1, height: 1, stride: 4, drmFormat: DRM_FORMAT_XBGR8888 }, frame),
    );
    expect([...rgb]).toEqual([0x10, 0x20, 0x30]);
  });

  it('skips the padding at the end of each row that the stride leaves', () => {
    const frame = Uint8Array.of(1, 2, 3, 0, 9, 9, 9, 9, 4, 5, 6, 0);
    const { rgb } = decodeRgb(
      encodePng({ width: 1, height: 2, stride: 8, drmFormat: DRM_FORMAT_XBGR8888 }, frame),
    );
    expect([...rgb]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses a format it cannot write with EINVAL', () => {
    expect(() =>
      encodePng({ width: 1, height: 1, stride: 4, drmFormat: 0x3231564e }, new Uint8Array(4)),
    ).toThrow(/cannot be written as a PNG/);
  });

  it('refuses a frame whose stride and height run past the bytes', () => {
    expect(() =>
      encodePng({ width: 2, height: 2, stride: 8, drmFormat: DRM_FORMAT_ARGB8888 }, new Uint8Array(15)),
    ).toThrow(/does not fit 15 bytes/);
  });

  it('round-trips every pixel of any frame that fits (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 8 }),
        fc.constantFrom(DRM_FORMAT_XRGB8888, DRM_FORMAT_XBGR8888, DRM_FORMAT_ARGB8888),
        fc.infiniteStream(fc.integer({ min: 0, max: 255 })),
        (width, height, pad, drmFormat, stream) => {
          const stride = width * 4 + pad * 4;
          const bytes = Uint8Array.from(stream.take(stride * height));
          const { rgb } = decodeRgb(encodePng({ width, height, stride, drmFormat }, bytes));
          const bgr = drmFormat !== DRM_FORMAT_XBGR8888;
          for (let y = 0; y < height; y++) {
            for (let x = 0; x < width; x++) {
              const i = y * stride + x * 4;
              const o = (y * width + x) * 3;
              expect([rgb[o], rgb[o + 1], rgb[o + 2]]).toEqual(
                bgr ? [bytes[i + 2], bytes[i + 1], bytes[i]] : [bytes[i], bytes[i + 1], bytes[i + 2]],
              );
            }
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('never throws anything but VfioError and never reads past its input (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -4, max: 40 }),
        fc.integer({ min: -4, max: 40 }),
        fc.integer({ min: -8, max: 200 }),
        fc.constantFrom(DRM_FORMAT_XRGB8888, DRM_FORMAT_XBGR8888, 0, 0x34325258),
        fc.uint8Array({ maxLength: 400 }),
        (width, height, stride, drmFormat, bytes) => {
          // A guard page: any read past `bytes` would see these 0xEE bytes in the output.
          const backing = new Uint8Array(bytes.length + 64).fill(0xee);
          backing.set(bytes);
          const view = backing.subarray(0, bytes.length);
          try {
            const png = encodePng({ width, height, stride, drmFormat }, view);
            const { rgb } = decodeRgb(png);
            expect(rgb.length).toBe(width * height * 3);
            expect(stride * (height - 1) + width * 4).toBeLessThanOrEqual(bytes.length);
          } catch (err) {
            expect(err).toBeInstanceOf(VfioError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
