import { VfioError } from '@vfiokit/core';
import { describe, expect, it } from 'vitest';
import plugin from '../src/index.js';
import { probeParent } from './helpers.js';

function uuid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

function available(parent: ReturnType<typeof probeParent>): Record<string, number> {
  return Object.fromEntries(parent.types().map((t) => [t.id, t.availableInstances]));
}

describe('mtty plugin and types', () => {
  it('is a vfio-pci plugin with one parent named mtty', () => {
    expect(plugin.name).toBe('@vfiokit/sample-mtty');
    expect(plugin.deviceApi).toBe('vfio-pci');
    expect(probeParent().name).toBe('mtty');
  });

  it('offers mtty-1 "Single port serial" and mtty-2 "Dual port serial" as mtty.c does', () => {
    const types = probeParent().types();
    expect(types.map((t) => [t.id, t.name, t.deviceApi])).toEqual([
      ['mtty-1', 'Single port serial', 'vfio-pci'],
      ['mtty-2', 'Dual port serial', 'vfio-pci'],
    ]);
  });
});

describe('mtty capacity: one pool of 24 ports', () => {
  it('starts with 24 single-port and 12 dual-port instances available', () => {
    expect(available(probeParent())).toEqual({ 'mtty-1': 24, 'mtty-2': 12 });
  });

  it('creates 24 single-port devices and refuses the 25th with ENOSPC', () => {
    const parent = probeParent();
    for (let i = 0; i < 24; i++) parent.create('mtty-1', uuid(i));
    expect(available(parent)).toEqual({ 'mtty-1': 0, 'mtty-2': 0 });
    expect(() => parent.create('mtty-1', uuid(99))).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    expect(parent.instances()).toHaveLength(24);
  });

  it('creates 12 dual-port devices and refuses a 13th and even a single port after them', () => {
    const parent = probeParent();
    for (let i = 0; i < 12; i++) parent.create('mtty-2', uuid(i));
    expect(() => parent.create('mtty-2', uuid(99))).toThrow(VfioError);
    expect(() => parent.create('mtty-1', uuid(98))).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
  });

  it('computes available_instances as remaining ports / ports per type when types are mixed', () => {
    const parent = probeParent();
    for (let i = 0; i < 23; i++) parent.create('mtty-1', uuid(i));
    expect(available(parent)).toEqual({ 'mtty-1': 1, 'mtty-2': 0 });
    expect(() => parent.create('mtty-2', uuid(99))).toThrow(expect.objectContaining({ code: 'ENOSPC' }));
    parent.remove(uuid(0));
    expect(available(parent)).toEqual({ 'mtty-1': 2, 'mtty-2': 1 });
    parent.create('mtty-2', uuid(99));
    expect(available(parent)).toEqual({ 'mtty-1': 0, 'mtty-2': 0 });
  });

  it('gives ports back on removal', () => {
    const parent = probeParent();
    parent.create('mtty-2', uuid(1));
    expect(available(parent)).toEqual({ 'mtty-1': 22, 'mtty-2': 11 });
    parent.remove(uuid(1));
    expect(available(parent)).toEqual({ 'mtty-1': 24, 'mtty-2': 12 });
  });

  it('gives every probe its own pool', () => {
    const a = probeParent();
    for (let i = 0; i < 12; i++) a.create('mtty-2', uuid(i));
    expect(available(probeParent())).toEqual({ 'mtty-1': 24, 'mtty-2': 12 });
  });

  it('refuses an unknown type with EINVAL', () => {
    expect(() => probeParent().create('mtty-3', uuid(1))).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
  });
});
