import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { moduleName, parseModulesDep } from '../src/assets/kernel.js';
import { CI_QEMU, chooseQemu } from '../src/env.js';
import { elfDeps } from '../src/initramfs/elf.js';
import { junitXml, xmlText } from '../src/report/junit.js';
import { defineSuite, guestAddress } from '../src/suite.js';

describe('QEMU selection', () => {
  it('skips in one line on a machine without VFIOKIT_QEMU or CI', () => {
    const c = chooseQemu({}, '/repo');
    expect(c.kind).toBe('skip');
    expect(c.kind === 'skip' && c.why.split('\n')).toHaveLength(1);
  });
  it('fails in CI when the QEMU it names is missing', () => {
    expect(chooseQemu({ VFIOKIT_QEMU: '/nonexistent/qemu' }, '/repo').kind).toBe('error');
    expect(chooseQemu({ CI: 'true' }, '/nonexistent-repo').kind).toBe('error');
    expect(CI_QEMU).toBe('../shared/qemu/qemu-system-x86_64');
  });
  it('takes an executable VFIOKIT_QEMU, relative to the repository root', () => {
    expect(chooseQemu({ VFIOKIT_QEMU: 'node' }, '/nonexistent').kind).toBe('error');
    expect(chooseQemu({ VFIOKIT_QEMU: process.execPath }, '/')).toEqual({
      kind: 'run',
      qemu: process.execPath,
    });
  });
});

describe('modules.dep', () => {
  it('names modules as modprobe does and keeps their full dependency lists', () => {
    const dep = parseModulesDep(
      'kernel/drivers/vfio/pci/vfio-pci.ko.xz: kernel/drivers/vfio/pci/vfio-pci-core.ko.xz kernel/drivers/vfio/vfio.ko.xz\nkernel/drivers/vfio/vfio.ko.xz:\n',
    );
    expect(dep.get('vfio_pci')?.deps).toEqual([
      'kernel/drivers/vfio/pci/vfio-pci-core.ko.xz',
      'kernel/drivers/vfio/vfio.ko.xz',
    ]);
    expect(dep.get('vfio')?.deps).toEqual([]);
    expect(moduleName('kernel/a/i915.ko')).toBe('i915');
  });
});

describe('ELF dependencies', () => {
  it('finds the interpreter and DT_NEEDED libraries of this Node binary', () => {
    const deps = elfDeps(readFileSync(process.execPath), process.execPath);
    expect(deps.interpreter).toMatch(/ld-linux-x86-64\.so\.2$/);
    expect(deps.needed).toContain('libc.so.6');
  });
  it('refuses anything else with a sentence, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          elfDeps(bytes, 'x');
        } catch (err) {
          expect((err as Error).message).toMatch(/^x is not an ELF64/);
        }
      }),
    );
    const header = readFileSync(process.execPath).subarray(0, 64);
    expect(() => elfDeps(header, 'cut')).toThrow(/cut is not an ELF64 .*outside the file/);
  });
});

describe('JUnit', () => {
  it('escapes markup and characters XML cannot hold', () => {
    expect(xmlText('<a href="x">&\'\u0001')).toBe('&lt;a href=&quot;x&quot;&gt;&amp;&apos;\\x01');
  });
  it('counts failures and skips per boot', () => {
    const xml = junitXml([
      { suite: 's', boot: 'b', name: 'one', status: 'passed', output: '', ms: 5 },
      { suite: 's', boot: 'b', name: 'two', status: 'failed', message: 'why\nmore', output: 'out', ms: 5 },
      { suite: 's', boot: 'b', name: 'three', status: 'skipped', message: 'absent', output: '', ms: 0 },
    ]);
    expect(xml).toContain('<testsuite name="guest/s/b" tests="3" failures="1" skipped="1"');
    expect(xml).toContain('<failure message="why">why\nmore</failure>');
    expect(xml).toContain('<testcase classname="guest.s.b" name="b: one" time="0.005"/>');
  });
});

describe('suite definitions', () => {
  const check = { name: 'c', script: 'pass' };
  it('refuse duplicate boots, devices and checks and device ids the shell cannot hold', () => {
    expect(() =>
      defineSuite({
        name: 's',
        boots: [
          { name: 'a', devices: [], checks: [] },
          { name: 'a', devices: [], checks: [] },
        ],
      }),
    ).toThrow(/two boots/);
    expect(() =>
      defineSuite({
        name: 's',
        boots: [{ name: 'a', devices: [{ id: 'my-dev', device: 'p:t', addr: '05.0' }], checks: [check] }],
      }),
    ).toThrow(/not a shell name/);
    expect(() =>
      defineSuite({
        name: 's',
        boots: [{ name: 'a', devices: [{ id: 'd', device: 'p:t', addr: '5' }], checks: [check] }],
      }),
    ).toThrow(/not like 05.0/);
    expect(() =>
      defineSuite({ name: 's', boots: [{ name: 'a', devices: [], checks: [check, check] }] }),
    ).toThrow(/two checks/);
    expect(() =>
      defineSuite({ name: 's', boots: [{ name: 'a', devices: [], checks: [{ name: 'x' }] }] }),
    ).toThrow(/neither/);
  });
  it('give the guest address of a slot', () => {
    expect(guestAddress('05.0')).toBe('0000:00:05.0');
    expect(guestAddress('2.0')).toBe('0000:00:02.0');
  });
});
