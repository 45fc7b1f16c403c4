/**
 * `vfiokit serve --save-frames <dir>`: the served device's primary plane becomes <dir>/<uuid>.png,
 * rewritten only when the frame changes; a folder that cannot be made is refused before any
 * device exists.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DRM_FORMAT_XRGB8888,
  DRM_PLANE_TYPE_PRIMARY,
  disabledGfxPlane,
  encodePng,
  type GfxPlaneInfo,
  type VfioDevice,
  VfioError,
} from '@vfiokit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { saveDeviceFrames } from '../src/display/save-frames.js';

const UUID = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
const FRAME_REGION = 9;

/** A device with a region display: a 4 × 3 XRGB8888 primary plane read from region 9. */
function displayDevice() {
  const width = 4;
  const height = 3;
  const stride = 32; // wider than a row: the padding must not reach the PNG
  const pixels = new Uint8Array(stride * height);
  const state = { enabled: true, readFails: false, reads: 0 };
  const plane: GfxPlaneInfo = {
    ...disabledGfxPlane(DRM_PLANE_TYPE_PRIMARY, FRAME_REGION),
    drmFormat: DRM_FORMAT_XRGB8888,
    width,
    height,
    stride,
    size: stride * height,
  };
  const device = {
    name: UUID,
    display: {
      kinds: { dmabuf: false, region: true },
      queryPlane: (_kind: 'dmabuf' | 'region', type: number) =>
        state.enabled && type === DRM_PLANE_TYPE_PRIMARY ? plane : disabledGfxPlane(type),
    },
    read(index: number, offset: number, dst: Uint8Array) {
      state.reads++;
      if (state.readFails) throw new VfioError('EIO', 'the frame region cannot be read.', { region: index });
      expect(index).toBe(FRAME_REGION);
      dst.set(pixels.subarray(offset, offset + dst.length));
    },
  } as unknown as VfioDevice;
  const setPixel = (x: number, y: number, xrgb: number) =>
    new DataView(pixels.buffer).setUint32(y * stride + x * 4, xrgb, true);
  const png = () => encodePng(plane, pixels);
  return { device, state, setPixel, png };
}

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'vfiokit-save-frames-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('saving a served device frame', () => {
  it('writes <dir>/<uuid>.png, creating the folder, with the PNG of the plane', () => {
    const d = displayDevice();
    d.setPixel(1, 2, 0x00ff8040);
    const dir = join(work, 'new', 'frames');
    const warnings: string[] = [];
    const saver = saveDeviceFrames(d.device, dir, { warn: (p) => warnings.push(p) });
    try {
      expect(saver.path).toBe(join(dir, `${UUID}.png`));
      expect(saver.save()).toBe(true);
      const png = readFileSync(saver.path);
      expect(Buffer.compare(png, d.png())).toBe(0);
      // IHDR: width and height big-endian at 16 and 20 (PNG spec 11.2.2)
      expect(png.readUInt32BE(16)).toBe(4);
      expect(png.readUInt32BE(20)).toBe(3);
      expect(readdirSync(dir)).toEqual([`${UUID}.png`]); // no .tmp left beside it
      expect(warnings).toEqual([]);
    } finally {
      saver.stop();
    }
  });

  it('rewrites the file only when the frame changed', () => {
    const d = displayDevice();
    const dir = join(work, 'change');
    const saver = saveDeviceFrames(d.device, dir, { warn: () => {} });
    try {
      expect(saver.save()).toBe(true);
      const first = statSync(saver.path);
      expect(saver.save()).toBe(false);
      expect(saver.save()).toBe(false);
      expect(statSync(saver.path).ino).toBe(first.ino); // the file was not replaced
      d.setPixel(0, 0, 0x00123456);
      expect(saver.save()).toBe(true);
      expect(statSync(saver.path).ino).not.toBe(first.ino);
      expect(Buffer.compare(readFileSync(saver.path), d.png())).toBe(0);
      // A disabled plane (the device was reset) keeps the last frame.
      d.state.enabled = false;
      const reads = d.state.reads;
      expect(saver.save()).toBe(false);
      expect(d.state.reads).toBe(reads);
      expect(Buffer.compare(readFileSync(saver.path), d.png())).toBe(0);
    } finally {
      saver.stop();
    }
  });

  it('warns once when the frame cannot be read, and keeps going', () => {
    const d = displayDevice();
    const warnings: string[] = [];
    const saver = saveDeviceFrames(d.device, join(work, 'failing'), { warn: (p) => warnings.push(p) });
    try {
      d.state.readFails = true;
      expect(saver.save()).toBe(false);
      expect(saver.save()).toBe(false);
      expect(warnings).toEqual(['the frame region cannot be read.']);
      expect(existsSync(saver.path)).toBe(false);
      d.state.readFails = false;
      expect(saver.save()).toBe(true);
    } finally {
      saver.stop();
    }
  });

  it('refuses a folder that cannot be made, naming it and why', () => {
    const file = join(work, 'a-file');
    writeFileSync(file, 'x');
    const d = displayDevice();
    let err: unknown;
    try {
      saveDeviceFrames(d.device, join(file, 'frames'), { warn: () => {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VfioError);
    expect((err as VfioError).code).toBe('ENOTDIR');
    expect((err as VfioError).message).toContain(`the frames folder ${join(file, 'frames')}`);
  });
});

describe('vfiokit serve --save-frames on the command line', () => {
  it('refuses a frames folder that cannot be made before creating a device or a socket', async () => {
    const file = join(work, 'not-a-folder');
    writeFileSync(file, 'x');
    const socket = join(work, 'frames.sock');
    const io = bufferIo({ cwd: work, env: {} });
    const code = await main(
      [
        'serve',
        '--socket',
        socket,
        '--device',
        '@vfiokit/no-such-plugin:t',
        '--save-frames',
        join(file, 'frames'),
      ],
      io,
    );
    expect(code).toBe(1);
    const first = io.err().split('\n')[0];
    expect(first).toContain(`cannot create the frames folder ${join(file, 'frames')}`);
    expect(first).not.toContain('no-such-plugin'); // refused before the plugin was even loaded
    expect(existsSync(socket)).toBe(false);
  });
});
