import { randomUUID } from 'node:crypto';
import { createFakeClock, createRecordingLogger, createTestHost } from '@vfiokit/conformance';
import { VfioError } from '@vfiokit/core';
import { DeviceFile } from '@vfiokit/core/host';
import { describe, expect, it } from 'vitest';
import plugin, {
  NVML_VGPU_PGPU_HETEROGENEOUS_MODE,
  NVML_VGPU_PGPU_HOMOGENEOUS_MODE,
  parseOptions,
  RTX_6000_ADA,
  type SriovParent,
  TESLA_T4,
  VGPU_SCHEDULER_POLICY_FIXED_SHARE,
  type VgpuDevice,
  vgpuTypeDescription,
} from '../src/index.js';
import { rig } from './helpers.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof VfioError ? err.code : `not a VfioError: ${String(err)}`;
  }
  return 'no error';
};

describe('board tables', () => {
  it('lists the Tesla T4 C profiles as nvidia-319/320/321 with the driver-style description', () => {
    const { t4Parent } = rig();
    const types = t4Parent.types();
    expect(types.map((t) => [t.id, t.name, t.availableInstances])).toEqual([
      ['nvidia-319', 'NVIDIA T4-4C', 4],
      ['nvidia-320', 'NVIDIA T4-8C', 2],
      ['nvidia-321', 'NVIDIA T4-16C', 1],
    ]);
    expect(types[1].description).toBe(
      'num_heads=1, frl_config=60, framebuffer=8192M, max_resolution=4096x2160, max_instance=2',
    );
    expect(types.every((t) => t.deviceApi === 'vfio-pci')).toBe(true);
  });

  it('lists the RTX 6000 Ada Q profiles 941..950 with 48/n instances and leaves unpublished keys out', () => {
    expect(RTX_6000_ADA.profiles.map((p) => `${p.typeId}:${p.profile}:${p.maxInstances}`)).toEqual([
      '941:RTX6000-Ada-1Q:48',
      '942:RTX6000-Ada-2Q:24',
      '943:RTX6000-Ada-3Q:16',
      '944:RTX6000-Ada-4Q:12',
      '945:RTX6000-Ada-6Q:8',
      '946:RTX6000-Ada-8Q:6',
      '947:RTX6000-Ada-12Q:4',
      '948:RTX6000-Ada-16Q:3',
      '949:RTX6000-Ada-24Q:2',
      '950:RTX6000-Ada-48Q:1',
    ]);
    expect(vgpuTypeDescription(RTX_6000_ADA.profiles[3])).toBe(
      'frl_config=60, framebuffer=4096M, max_instance=12',
    );
    expect(TESLA_T4.deviceId).toBe(0x1eb8);
    expect(RTX_6000_ADA.deviceId).toBe(0x26b1);
  });

  it('refuses unknown, misspelled and ill-typed plugin options', () => {
    expect(code(() => parseOptions({ framebuferBytesPerGiB: 1 }))).toBe('EINVAL');
    expect(code(() => parseOptions({ framebufferBytesPerGiB: 5000 }))).toBe('EINVAL');
    expect(code(() => parseOptions({ boards: ['A100'] }))).toBe('EINVAL');
    expect(code(() => parseOptions({ mixedSize: 'yes' }))).toBe('EINVAL');
    expect(parseOptions({}).framebufferBytesPerGiB).toBe(256 * 1024);
  });

  it('probes one parent per simulated board through the plugin object', () => {
    const parents = plugin.probe({
      clock: createFakeClock(),
      log: createRecordingLogger(),
      options: { boards: ['T4'] },
    });
    expect(parents.map((p) => p.name)).toEqual(['0000:3b:00.0']);
  });
});

describe('equal-size placement (mdev on the T4)', () => {
  it('locks the GPU to the first type: other sizes show 0 available, the same type counts down', () => {
    const { t4Parent, t4 } = rig();
    expect(t4.mode).toBe(NVML_VGPU_PGPU_HOMOGENEOUS_MODE);
    const a = t4Parent.create('nvidia-320', randomUUID());
    const avail = () => Object.fromEntries(t4Parent.types().map((t) => [t.id, t.availableInstances]));
    expect(avail()).toEqual({ 'nvidia-319': 0, 'nvidia-320': 1, 'nvidia-321': 0 });
    expect(code(() => t4Parent.create('nvidia-319', randomUUID()))).toBe('ENOSPC');
    t4Parent.create('nvidia-320', randomUUID());
    expect(code(() => t4Parent.create('nvidia-320', randomUUID()))).toBe('ENOSPC');
    t4Parent.remove(a.uuid);
    expect(avail()['nvidia-320']).toBe(1);
    expect((a.device as VgpuDevice).placementId).toBe(0);
  });

  it('takes a placement_id attribute, refuses a taken or impossible one', () => {
    const { t4Parent } = rig();
    const a = t4Parent.create('nvidia-319', randomUUID(), { placement_id: '2' });
    expect((a.device as VgpuDevice).placementId).toBe(2);
    expect(code(() => t4Parent.create('nvidia-319', randomUUID(), { placement_id: '2' }))).toBe('ENOSPC');
    expect(code(() => t4Parent.create('nvidia-319', randomUUID(), { placement_id: '9' }))).toBe('EINVAL');
    expect(code(() => t4Parent.create('nvidia-319', randomUUID(), { placement_id: 'x' }))).toBe('EINVAL');
    expect(t4Parent.instances()).toHaveLength(1);
  });

  it('has no mixed-size mode on the T4', () => {
    const { t4 } = rig();
    expect(code(() => t4.setMixedSize(true))).toBe('EOPNOTSUPP');
  });
});

describe('mixed-size placement (RTX 6000 Ada)', () => {
  it('places different sizes at aligned slot ids and counts what still fits', () => {
    const { ada } = rig({ mixedSize: true });
    expect(ada.mode).toBe(NVML_VGPU_PGPU_HETEROGENEOUS_MODE);
    const q24 = RTX_6000_ADA.profiles[8];
    const q4 = RTX_6000_ADA.profiles[3];
    const q1 = RTX_6000_ADA.profiles[0];
    expect(ada.supportedPlacements(q24)).toEqual([0, 24]);
    const big = ada.createVgpu(q24, randomUUID(), 24);
    expect(big.placementId).toBe(24);
    expect(ada.available(q24)).toBe(1);
    expect(ada.available(q4)).toBe(6);
    ada.createVgpu(q4, randomUUID(), 4);
    expect(ada.available(q24)).toBe(0);
    expect(ada.creatablePlacements(q4)).toEqual([0, 8, 12, 16, 20]);
    expect(ada.available(q1)).toBe(20);
    expect(code(() => ada.createVgpu(q4, randomUUID(), 6))).toBe('EINVAL');
    expect(code(() => ada.createVgpu(q4, randomUUID(), 24))).toBe('ENOSPC');
  });

  it('refuses fixed share in mixed-size mode and mode changes while vGPUs exist', () => {
    const { ada } = rig({ mixedSize: true });
    expect(code(() => ada.configureScheduler({ policy: VGPU_SCHEDULER_POLICY_FIXED_SHARE }))).toBe('EINVAL');
    ada.createVgpu(RTX_6000_ADA.profiles[0], randomUUID());
    expect(code(() => ada.setMixedSize(false))).toBe('EBUSY');
  });
});

describe('SR-IOV provisioning (one vGPU per VF)', () => {
  it('lists creatable types as "ID : name" lines and selects one through current_vgpu_type', () => {
    const { adaParent } = rig();
    const vf = (adaParent as SriovParent).vfs[0];
    const text = vf.creatableVgpuTypes();
    expect(text.split('\n')[0]).toBe('ID    : vGPU Name');
    expect(text).toContain('941   : NVIDIA RTX6000-Ada-1Q\n');
    expect(text).toContain('950   : NVIDIA RTX6000-Ada-48Q\n');
    expect(vf.currentVgpuType).toBe(0);
    vf.writeCurrentVgpuType('944\n');
    expect(vf.currentVgpuType).toBe(944);
    expect(vf.device?.name).toBe(vf.address);
    expect(vf.creatableVgpuTypes()).toBe('ID    : vGPU Name\n');
    // equal-size mode: the other VFs may now only take 944
    const other = (adaParent as SriovParent).vfs[1].creatableVgpuTypes();
    expect(other).toBe('ID    : vGPU Name\n944   : NVIDIA RTX6000-Ada-4Q\n');
  });

  it('refuses to change or clear the type while the VF is open, and unknown or malformed ids', () => {
    const { adaParent } = rig();
    const vf = (adaParent as SriovParent).vfs[0];
    expect(code(() => vf.writeCurrentVgpuType('12345'))).toBe('EINVAL');
    expect(code(() => vf.writeCurrentVgpuType('abc'))).toBe('EINVAL');
    vf.writeCurrentVgpuType('941');
    expect(code(() => vf.writeCurrentVgpuType('942'))).toBe('EBUSY');
    const file = new DeviceFile(vf.device as VgpuDevice, createTestHost());
    file.open();
    expect(code(() => vf.writeCurrentVgpuType('0'))).toBe('EBUSY');
    expect(vf.currentVgpuType).toBe(941);
    file.close();
    vf.writeCurrentVgpuType('0');
    expect(vf.currentVgpuType).toBe(0);
    expect(vf.device).toBeUndefined();
  });

  it('gives VFs PCI addresses after the PF, the first at function 4', () => {
    const { adaParent } = rig();
    const vfs = (adaParent as SriovParent).vfs;
    expect(vfs[0].address).toBe('0000:c1:00.4');
    expect(vfs[4].address).toBe('0000:c1:01.0');
    expect(vfs).toHaveLength(48);
  });

  it('creates through the ParentDevice view by picking a free VF, with available_instances following', () => {
    const { adaParent } = rig();
    const uuid = randomUUID();
    const inst = adaParent.create('nvidia-949', uuid);
    expect(inst.device.name).toBe('0000:c1:00.4');
    expect(adaParent.types().find((t) => t.id === 'nvidia-949')?.availableInstances).toBe(1);
    expect(adaParent.types().find((t) => t.id === 'nvidia-941')?.availableInstances).toBe(0);
    expect(code(() => adaParent.create('nvidia-949', uuid))).toBe('EEXIST');
    expect(code(() => adaParent.create('nvidia-999', randomUUID()))).toBe('EINVAL');
    adaParent.remove(uuid);
    expect(code(() => adaParent.remove(uuid))).toBe('ENODEV');
    expect((adaParent as SriovParent).vfs[0].currentVgpuType).toBe(0);
  });
});
