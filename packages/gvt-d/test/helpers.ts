import { VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { expect } from 'vitest';
import { buildVbt, type VbtBlockInput } from '../src/index.js';

/** Runs fn and returns the VfioError it threw; fails the test on success or on any other error. */
export function catchVfioError(fn: () => unknown): VfioError {
  try {
    fn();
  } catch (err) {
    if (err instanceof VfioError) return err;
    throw new Error(`expected a VfioError, got ${String(err)}`);
  }
  throw new Error('expected a VfioError, but the call succeeded');
}

/** Expects EINVAL at an offset, with each of the words in the message. */
export function expectEinval(fn: () => unknown, offset: number, ...words: string[]): VfioError {
  const err = catchVfioError(fn);
  expect(err.code).toBe('EINVAL');
  expect(err.place.offset, err.message).toBe(offset);
  for (const w of words) expect(err.message).toContain(w);
  return err;
}

/** Calls fn; anything thrown must be a VfioError with code EINVAL. */
export function onlyEinval(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof VfioError)) throw err;
    if (err.code !== 'EINVAL') throw new Error(`unexpected code ${err.code}: ${err.message}`);
  }
}

export function le16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >> 8) & 0xff;
}

export function le32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}

/** A child device of `size` bytes with handle, type, port, DDC pin and AUX channel set. */
export function childDevice(
  size: number,
  handle: number,
  type: number,
  port: number,
  ddc: number,
  aux: number,
) {
  const c = new Uint8Array(size);
  le16(c, 0, handle);
  le16(c, 2, type);
  c[16] = port;
  c[19] = ddc;
  c[25] = aux;
  c[27] = 1 << 5; // integrated encoder
  return c;
}

/** Blocks 1, 2 (two children of 38 bytes + one empty), 12, 40 and an unknown block 200. */
export function sampleBlocks(): VbtBlockInput[] {
  const children = [
    childDevice(38, 0x0008, 0x1806, 10, 3, 0x40),
    childDevice(38, 0x0004, 0x60d6, 7, 5, 0x10),
    new Uint8Array(38),
  ];
  const defs = new Uint8Array(5 + 38 * children.length);
  defs[0] = 2; // CRT DDC pin
  defs[1] = 1 << 2; // dpms_aim
  defs[4] = 38;
  for (const [i, c] of children.entries()) defs.set(c, 5 + 38 * i);
  const features = new Uint8Array([
    0x4a, 0x00, 0x04, 0x00, 0x03, 0x08, 0x3c, 0x84, 0x1c, 0x02, 0, 0, 0, 0, 0x55, 0, 0, 0xff, 0x9f,
  ]);
  return [
    { id: 1, data: new Uint8Array([0x0f, 0x41, 0x00, 0x01, 0x00]) },
    { id: 2, data: defs },
    { id: 12, data: features },
    { id: 40, data: new Uint8Array([2, 3, 0x77, 0]) },
    { id: 200, data: new Uint8Array([1, 2, 3, 4, 5]) },
  ];
}

export function sampleVbt(): Uint8Array {
  return buildVbt(sampleBlocks(), { platform: 'SKYLAKE', bdbVersion: 221 });
}

/** Random blocks that buildVbt accepts (a MIPI v3 block always carries its 5-byte prefix). */
export const arbBlocks = (maxData = 300, maxBlocks = 16) =>
  fc
    .array(
      fc.record({
        id: fc.integer({ min: 0, max: 255 }),
        data: fc.uint8Array({ maxLength: maxData }),
      }),
      { maxLength: maxBlocks },
    )
    .map((blocks) =>
      blocks.map((b) => {
        if (b.id === 53 && b.data.length === 0) return { id: b.id, data: new Uint8Array([2]) };
        if (b.id === 53 && b.data.length > 0 && b.data[0] >= 3 && b.data.length < 5) {
          const data = b.data.slice();
          data[0] = 2;
          return { id: b.id, data };
        }
        return b;
      }),
    );
