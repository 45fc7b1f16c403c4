import { createFakeClock } from '@vfiokit/conformance';
import { describe, expect, it } from 'vitest';
import plugin, {
  availableInstances,
  GVTG_TYPE_TABLE,
  MiB,
  SimulatedHostGpu,
  typeDescription,
  typesForHost,
} from '../src/index.js';
import { newParent } from './helpers.js';

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const avail = (p: ReturnType<typeof newParent>) =>
  Object.fromEntries(p.types().map((t) => [t.id, t.availableInstances]));

describe('GVT-g vGPU types', () => {
  it('are intel_vgpu_configs: aperture, high GM, fences, weight 16/n and resolution per type', () => {
    expect(
      GVTG_TYPE_TABLE.map((t) => [
        t.name,
        t.lowGmSize / MiB,
        t.highGmSize / MiB,
        t.fences,
        t.weight,
        `${t.resolution.xres}x${t.resolution.yres}`,
      ]),
    ).toEqual([
      ['GVTg_V5_8', 64, 384, 4, 2, '1024x768'],
      ['GVTg_V5_4', 128, 512, 4, 4, '1920x1200'],
      ['GVTg_V5_2', 256, 1024, 4, 8, '1920x1200'],
      ['GVTg_V5_1', 512, 2048, 4, 16, '1920x1200'],
    ]);
  });

  it('exist only while the type fits the aperture left after the host keeps 128 MiB', () => {
    expect(typesForHost({ apertureSize: 256 * MiB }).map((t) => t.name)).toEqual(['GVTg_V5_8', 'GVTg_V5_4']);
    expect(typesForHost({ apertureSize: 512 * MiB }).map((t) => t.name)).toEqual([
      'GVTg_V5_8',
      'GVTg_V5_4',
      'GVTg_V5_2',
    ]);
    expect(typesForHost({ apertureSize: 1024 * MiB })).toHaveLength(4);
  });

  it('count available_instances as the worked examples say for 256 and 512 MiB apertures', () => {
    expect(avail(newParent(256))).toEqual({ 'i915-GVTg_V5_8': 2, 'i915-GVTg_V5_4': 1 });
    expect(avail(newParent(512))).toEqual({ 'i915-GVTg_V5_8': 6, 'i915-GVTg_V5_4': 3, 'i915-GVTg_V5_2': 1 });
  });

  it('take the minimum of the aperture, hidden GM and fence budgets (hidden GM binds on a 1 GiB aperture)', () => {
    // 1 GiB aperture: 896 MiB free low GM; 4 GiB - 1 GiB - 384 MiB = 2688 MiB free high GM; 28 fences
    expect(avail(newParent(1024))).toEqual({
      'i915-GVTg_V5_8': 7,
      'i915-GVTg_V5_4': 5,
      'i915-GVTg_V5_2': 2,
      'i915-GVTg_V5_1': 1,
    });
    const gpu = new SimulatedHostGpu({ apertureSize: 1024 * MiB, fenceCount: 12 });
    expect(availableInstances(gpu, GVTG_TYPE_TABLE[0], 0)).toBe(2); // (12 - 4) / 4 fences
  });

  it('never allow more than 8 vGPUs on one GPU', () => {
    const gpu = new SimulatedHostGpu({ apertureSize: 2048 * MiB, gmSize: 64 * 1024 * MiB, fenceCount: 64 });
    expect(availableInstances(gpu, GVTG_TYPE_TABLE[0], 0)).toBe(8);
    expect(availableInstances(gpu, GVTG_TYPE_TABLE[0], 5)).toBe(3);
  });

  it('show the description text GVT-g shows in sysfs', () => {
    expect(typeDescription(GVTG_TYPE_TABLE[1])).toBe(
      'low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4\n',
    );
    const t = newParent(512).types()[0];
    expect(t).toMatchObject({ id: 'i915-GVTg_V5_8', name: 'GVTg_V5_8', deviceApi: 'vfio-pci' });
    expect(t.attributes).toMatchObject({ resolution: '1024x768', weight: '2', fence: '4' });
  });
});

describe('the GVT-g parent', () => {
  it('is the host IGD 0000:00:02.0 found by the plugin probe', () => {
    const [parent] = plugin.probe({ clock: createFakeClock(), log: console, options: { apertureMiB: 256 } });
    expect(parent.name).toBe('0000:00:02.0');
    expect(plugin.guestDrivers).toHaveLength(1);
  });

  it('carves slices on create, across types, and refuses beyond capacity with ENOSPC', () => {
    const p = newParent(512);
    p.create('i915-GVTg_V5_2', uuid(1));
    expect(avail(p)).toEqual({ 'i915-GVTg_V5_8': 2, 'i915-GVTg_V5_4': 1, 'i915-GVTg_V5_2': 0 });
    p.create('i915-GVTg_V5_4', uuid(2));
    expect(() => p.create('i915-GVTg_V5_4', uuid(3))).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(avail(p)['i915-GVTg_V5_8']).toBe(0);
  });

  it('gives distinct, non-overlapping slices and fences, and returns them on removal', () => {
    const p = newParent(512);
    const a = p.create('i915-GVTg_V5_8', uuid(1));
    const b = p.create('i915-GVTg_V5_8', uuid(2));
    const ra = p.vgpu(a.uuid)!.resources;
    const rb = p.vgpu(b.uuid)!.resources;
    expect(ra.low.base + ra.low.size).toBeLessThanOrEqual(rb.low.base);
    expect(ra.low.base).toBeGreaterThanOrEqual(128 * MiB);
    expect(ra.high.base).toBeGreaterThanOrEqual(512 * MiB + 384 * MiB);
    expect(new Set([...ra.fences, ...rb.fences]).size).toBe(8);
    expect(Math.min(...ra.fences)).toBeGreaterThanOrEqual(4);
    expect(p.vgpu(a.uuid)!.vgpuId).toBe(1);
    expect(p.vgpu(b.uuid)!.vgpuId).toBe(2);
    p.remove(a.uuid);
    expect(avail(p)['i915-GVTg_V5_8']).toBe(5);
    const c = p.create('i915-GVTg_V5_8', uuid(3));
    expect(p.vgpu(c.uuid)!.resources.low).toEqual(ra.low);
    expect(p.vgpu(c.uuid)!.vgpuId).toBe(1);
  });

  it('refuses an aperture option that is not a BAR2 size', () => {
    expect(() => newParent(300)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
