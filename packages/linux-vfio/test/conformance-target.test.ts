import { createTestHost, runTargetConformance, selectChecks } from '@vfiokit/conformance';
import { MigState } from '@vfiokit/core';
import { DeviceFile } from '@vfiokit/core/host';
import { createMttyParent } from '@vfiokit/sample-mtty';
import { describe, expect, it } from 'vitest';
import { kernelTarget } from '../src/index.js';
import { FakeKernel } from '../src/testing/fake-kernel.js';
import { BDF, fakeHost, UUID } from './helpers.js';

describe('the conformance suite on a kernel device', () => {
  it('runs every check that applies to a mediated device and passes them on a kernel-exact one', async () => {
    const k = fakeHost();
    const target = kernelTarget(UUID, { system: k });
    expect(target.label).toEqual({ plugin: 'kernel', parent: 'mtty', type: 'mtty-2', uuid: UUID });
    expect(target.subject).toBe('kernel-mdev');
    const report = await runTargetConformance(target, { seed: 3, numRuns: 30 });
    expect(report.failures).toEqual([]);
    const status = Object.fromEntries(report.devices[0].results.map((r) => [r.check, r.status]));
    expect(status['capacity.lifecycle']).toBe('skipped');
    expect(status['capacity.limit']).toBe('skipped');
    expect(status['migration.save-resume']).toBe('passed');
    expect(status['migration.arcs']).toBe('passed');
    expect(status['irq.trigger']).toBe('passed');
    expect(report.devices[0].results).toHaveLength(selectChecks().length);
    // The second instance the save/resume check created was removed again, and nothing leaked.
    expect(k.writes.filter((w) => w.path.endsWith('/create'))).toHaveLength(1);
    expect(k.writes.filter((w) => w.path.endsWith('/remove'))).toHaveLength(1);
    expect(k.openFds).toBe(0);
  });

  it('runs a vfio-pci device as kernel-pci, with reads only in the random accesses', async () => {
    const k = fakeHost();
    const target = kernelTarget(BDF, { system: k });
    expect(target.label).toEqual({ plugin: 'kernel', parent: 'vfio-pci', type: '1234:11e8', uuid: BDF });
    expect(target.subject).toBe('kernel-pci');
    const report = await runTargetConformance(target, {
      seed: 3,
      numRuns: 30,
      checks: ['random', 'migration'],
    });
    expect(report.failures).toEqual([]);
    const random = report.devices[0].results.find((r) => r.check === 'random.accesses');
    expect(random?.notes.join()).toContain('reads only');
    // A function has no second instance: save/resume reuses it after a reset, or skips.
    const save = report.devices[0].results.find((r) => r.check === 'migration.save-resume');
    expect(save?.status).not.toBe('failed');
    expect(k.openFds).toBe(0);
  });

  it('saves and resumes an mdev an earlier user left in STOP_COPY (its state outlives the file, as mtty keeps it)', async () => {
    const parent = createMttyParent();
    const device = parent.create('mtty-2', UUID).device;
    const k = new FakeKernel();
    k.addMdev({ uuid: UUID, group: 7, device });
    k.createMdev = (type, uuid) => parent.create(type, uuid).device;
    const earlier = new DeviceFile(device, createTestHost({ device: UUID }));
    earlier.open();
    earlier.setMigrationState(MigState.STOP_COPY);
    earlier.close();
    const report = await runTargetConformance(kernelTarget(UUID, { system: k }), {
      seed: 3,
      checks: ['migration.save-resume'],
    });
    expect(report.failures).toEqual([]);
    const save = report.devices[0].results.find((r) => r.check === 'migration.save-resume');
    expect(save?.status).toBe('passed');
    expect(save?.notes.join()).toContain('the device was in STOP_COPY when the check began');
    expect(k.openFds).toBe(0);
  });

  it('refuses a device that cannot be opened before any check runs, with the reason', () => {
    const k = fakeHost();
    k.denied.add('/dev/vfio/7');
    expect(() => kernelTarget(UUID, { system: k })).toThrow(/permission denied opening \/dev\/vfio\/7/);
  });
});
