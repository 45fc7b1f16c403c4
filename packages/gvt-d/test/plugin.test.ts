import { createTestHost } from '@vfiokit/conformance';
import { type PluginHost, VfioError } from '@vfiokit/core';
import { describe, expect, it } from 'vitest';
import plugin, {
  createIgdParent,
  fixtureSource,
  igdAssignmentPlan,
  sourceFromOptions,
  syntheticSource,
} from '../src/index.js';
import { catchVfioError } from './helpers.js';

function host(options: Record<string, unknown> = {}): PluginHost {
  const t = createTestHost();
  return { clock: t.clock, log: t.log, options };
}

const UUID = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';

describe('the gvt-d plugin', () => {
  it('is @vfiokit/gvt-d and probes one parent, named by the IGD address, with no files at all', () => {
    expect(plugin.name).toBe('@vfiokit/gvt-d');
    expect(plugin.deviceApi).toBe('vfio-pci');
    const parents = plugin.probe(host());
    expect(parents.map((p) => p.name)).toEqual(['0000:00:02.0']);
  });

  it('shows the passthrough IGD as one type, gvt-d-igd, available 1 then 0 while assigned', () => {
    const [parent] = plugin.probe(host());
    const types = parent.types();
    expect(types.map((t) => [t.id, t.deviceApi, t.availableInstances])).toEqual([
      ['gvt-d-igd', 'vfio-pci', 1],
    ]);
    expect(types[0].attributes).toEqual({
      device_id: '8086:1912',
      generation: '9',
      stolen_bytes: String(32 << 20),
    });
    const inst = parent.create('gvt-d-igd', UUID);
    expect(inst.device.name).toBe('0000:00:02.0');
    expect(parent.types()[0].availableInstances).toBe(0);
    expect(
      catchVfioError(() => parent.create('gvt-d-igd', '83b8f4f2-509f-382f-3c1e-e6bfe0fa1002')).code,
    ).toBe('ENOSPC');
    parent.remove(UUID);
    expect(parent.types()[0].availableInstances).toBe(1);
  });

  it('chooses the source from options: synthetic with a profile, fixture, linux', () => {
    expect(sourceFromOptions({}).describe()).toContain('synthetic');
    expect(sourceFromOptions({ source: 'synthetic', profile: 'tigerlake-iris-xe' }).load().generation).toBe(
      12,
    );
    expect(sourceFromOptions({ source: 'fixture', profile: 'kabylake-hd620' }).load().igd.deviceId).toBe(
      0x5916,
    );
    expect(
      sourceFromOptions({ source: 'linux', bdf: '0000:00:02.0', root: '/nonexistent' }).describe(),
    ).toContain('linux');
  });

  it('refuses an unknown source and option values that are not strings', () => {
    expect(catchVfioError(() => sourceFromOptions({ source: 'usb' })).message).toContain('"usb"');
    expect(catchVfioError(() => sourceFromOptions({ source: 'fixture', opRegion: 42 })).message).toContain(
      '"opRegion"',
    );
  });

  it('fails the probe with the source error when the Linux host has no IGD', () => {
    const err = catchVfioError(() => plugin.probe(host({ source: 'linux', root: '/nonexistent' })));
    expect(err).toBeInstanceOf(VfioError);
    expect(err.code).toBe('ENOENT');
  });

  it('names the parent by the bdf option', () => {
    const parent = createIgdParent(fixtureSource().load(), '0000:00:02.0');
    expect(parent.name).toBe('0000:00:02.0');
  });
});

describe('igdAssignmentPlan: what QEMU does in front of the device', () => {
  it('emulates ASLS and the gen 9 dword BDSM from 0, mirrors BDSM at 0x1080c0 and asks for the stolen size', () => {
    const plan = igdAssignmentPlan(syntheticSource().load());
    expect(plan.emulate).toEqual([
      { name: 'ASLS', offset: 0xfc, size: 4, initial: 0n, writable: true },
      { name: 'BDSM', offset: 0x5c, size: 4, initial: 0n, writable: true },
    ]);
    expect(plan.mmioMirrors).toEqual([{ bar: 0, offset: 0x1080c0, size: 4, config: 0x5c }]);
    expect(plan.fwCfg['etc/igd-bdsm-size']).toEqual(new Uint8Array([0, 0, 0, 2, 0, 0, 0, 0]));
    expect(plan.legacyMode.eligible).toBe(true);
  });

  it('uses the qword BDSM at 0xc0 from gen 11 and refuses legacy mode, saying why', () => {
    const plan = igdAssignmentPlan(syntheticSource('tigerlake-iris-xe').load());
    expect(plan.emulate[1]).toMatchObject({ name: 'BDSM', offset: 0xc0, size: 8 });
    expect(plan.legacyMode).toEqual({
      eligible: false,
      reason: "the IGD's generation is 12; legacy mode needs 6 to 9",
    });
  });

  it('emulates GGC read-only with x-igd-gms, mirrors it at 0x108040, and sizes stolen memory from it', () => {
    const plan = igdAssignmentPlan(syntheticSource().load(), { gms: 0xf1 });
    expect(plan.emulate.find((r) => r.name === 'GGC')).toMatchObject({
      offset: 0x50,
      initial: 0xf1c1n,
      writable: false,
    });
    expect(plan.mmioMirrors[0]).toEqual({ bar: 0, offset: 0x108040, size: 2, config: 0x50 });
    expect(plan.stolenBytes).toBe(8 << 20);
  });

  it('refuses legacy mode on q35 and at another guest address', () => {
    const facts = syntheticSource().load();
    expect(igdAssignmentPlan(facts, { machine: 'q35' }).legacyMode.reason).toContain('i440fx');
    expect(igdAssignmentPlan(facts, { guestAddress: '00:03.0' }).legacyMode.reason).toContain('00:02.0');
  });
});
