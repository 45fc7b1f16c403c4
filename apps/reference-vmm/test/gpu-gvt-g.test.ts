import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { Booted } from '../src/cli/boot.js';
import { bufferIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { captureFrame, queryPrimaryPlane, saveFrames } from '../src/display/save-frames.js';
import { bootConfig, GVTG_CONFIG, NVIDIA_CONFIG, runDrivers } from './gpu-helpers.js';
import { tempDir } from './temp-dirs.js';

let booted: Booted | undefined;
afterEach(() => {
  booted?.shutdown();
  booted = undefined;
});

/** Width, height and RGB pixels of a PNG written by the core's encoder. */
function readPng(png: Uint8Array): { width: number; height: number; rgb: Uint8Array } {
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  const idatLen = dv.getUint32(33);
  const raw = inflateSync(png.subarray(41, 41 + idatLen));
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    rgb.set(raw.subarray(y * (1 + width * 3) + 1, (y + 1) * (1 + width * 3)), y * width * 3);
  return { width, height, rgb };
}

describe('@vfiokit/gvt-g on the reference machine', () => {
  it('boots a GVTg_V5_8 vGPU by package name and its i915 driver passes with MSI', async () => {
    booted = await bootConfig(GVTG_CONFIG);
    const runs = await runDrivers(booted);
    expect(runs).toHaveLength(1);
    const run = runs[0];
    expect(run.ok, run.summary).toBe(true);
    expect(run.driver).toBe('i915 on a GVT-g vGPU');
    expect(run.facts).toMatchObject({
      vgtId: 1,
      mappable: { size: 64 << 20 },
      nonmappable: { size: 384 << 20 },
      fences: 4,
      interrupt: 'msi',
    });
  });

  it('maps exactly the vGPU aperture slice of BAR2 directly, above 4 GiB, and traps the rest', async () => {
    booted = await bootConfig(GVTG_CONFIG);
    await runDrivers(booted);
    const dev = booted.machine.report().devices.find((d) => d.slot === '0000:00:04.0');
    const bar0 = dev?.regions.find((r) => r.name === 'BAR0');
    const bar2 = dev?.regions.find((r) => r.name === 'BAR2');
    expect(bar0?.barKind).toBe('mem64');
    expect(bar2).toMatchObject({ barKind: 'mem64', prefetchable: true, mapping: 'mixed' });
    expect(bar2?.guestAddress ?? 0).toBeGreaterThanOrEqual(2 ** 32);
    const direct = bar2?.parts.filter((p) => p.how === 'direct') ?? [];
    expect(direct).toHaveLength(1);
    expect(direct[0].size).toBe(64 << 20);
    // The driver drew 256x64 pixels through the direct slice, never through the trap.
    expect(direct[0].writes).toBeGreaterThanOrEqual(256 * 64);
    expect(dev?.interrupts.mode).toBe('msi');
    expect(dev?.interrupts.total).toBeGreaterThanOrEqual(1);
    expect(booted.machine.report().errors).toEqual([]);
  });

  it('answers QUERY_GFX_PLANE in REGION mode with the plane the driver programmed', async () => {
    booted = await bootConfig(GVTG_CONFIG);
    const file = booted.machine.devices()[0].file;
    const before = queryPrimaryPlane(file);
    expect(before?.drmFormat).toBe(0);
    await runDrivers(booted);
    const plane = queryPrimaryPlane(file);
    expect(plane).toMatchObject({ width: 256, height: 64, stride: 1024 });
    const png = readPng(captureFrame(file, plane as NonNullable<typeof plane>));
    expect([png.width, png.height]).toEqual([256, 64]);
    // Pixel (3, 5) is guestPattern(3, 5) = 0xff030506 (XRGB): R 0x03, G 0x05, B 0x06.
    const at = (5 * 256 + 3) * 3;
    expect([...png.rgb.subarray(at, at + 3)]).toEqual([0x03, 0x05, 0x06]);
    // Pixel (20, 10) is inside the blit rectangle, colour 0xff2080c0.
    const blit = (10 * 256 + 20) * 3;
    expect([...png.rgb.subarray(blit, blit + 3)]).toEqual([0x20, 0x80, 0xc0]);
  });

  it('saves no frame for a device without a display and says so for a disabled plane', async () => {
    booted = await bootConfig({
      plugins: [...(GVTG_CONFIG.plugins ?? []), ...(NVIDIA_CONFIG.plugins ?? [])],
      machine: { ramSize: '64M' },
      devices: [...(GVTG_CONFIG.devices ?? []), ...(NVIDIA_CONFIG.devices ?? [])],
    });
    const dir = tempDir('vfiokit-frames-');
    const r = await saveFrames(booted.machine, dir);
    expect(r.saved).toEqual([]);
    expect(r.problems).toEqual([{ slot: '00:04.0', problem: expect.stringMatching(/plane is disabled/) }]);
  });

  it('vfiokit run --save-frames writes <slot>.png for the gvt-g display of the default configuration', async () => {
    const cwd = tempDir('vfiokit-frames-');
    const io = bufferIo({ cwd });
    const code = await main(['run', '--save-frames', 'frames'], io);
    expect(io.err()).toBe('');
    expect(code).toBe(0);
    expect(io.out()).toMatch(/Frames\n {2}00:04\.0 256x64 primary plane -> .*frames\/00:04\.0\.png/);
    const png = readPng(readFileSync(join(cwd, 'frames', '00:04.0.png')));
    expect([png.width, png.height]).toEqual([256, 64]);
  });

  it('vfiokit run --save-frames --json lists the saved frames', async () => {
    const cwd = tempDir('vfiokit-frames-');
    const io = bufferIo({ cwd });
    expect(await main(['run', '--json', '--save-frames', 'out'], io)).toBe(0);
    const j = JSON.parse(io.out()) as {
      frames: { saved: { slot: string; width: number; region: number }[] };
    };
    expect(j.frames.saved).toEqual([expect.objectContaining({ slot: '00:04.0', width: 256, region: 11 })]);
  });
});
