import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTRACT_VERSION } from '@vfiokit/core';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { loadPlugin, validatePlugin } from '../src/index.js';
import { openKernelTarget } from '../src/kernel.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const GOOD = path.join(here, 'fixtures', 'tiny-plugin.ts');
const BROKEN = path.join(here, 'fixtures', 'broken-plugin.ts');

function capture(tty = false) {
  let text = '';
  return {
    stream: { isTTY: tty, write: (s: string) => (text += s) },
    get text() {
      return text;
    },
  };
}

async function run(args: string[], tty = false) {
  const out = capture(tty);
  const err = capture();
  const code = await main(args, out.stream, err.stream);
  return { code, out: out.text, err: err.text };
}

describe('vfiokit-conformance', () => {
  it('prints usage for --help and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: vfiokit-conformance --plugin <package>/);
    expect(r.out).toContain('--junit <file>');
  });

  it('prints the ABI report as JSON keyed by linux/vfio.h names', async () => {
    const r = await run(['--abi-report']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.constants.VFIO_DEVICE_GET_REGION_INFO).toBe(0x3b6c);
    expect(report.structs.vfio_region_info).toEqual({
      size: 32,
      fields: { argsz: 0, cap_offset: 12, flags: 4, index: 8, offset: 24, size: 16 },
    });
  });

  it('exits 2 with a sentence for bad usage', async () => {
    expect((await run([])).err).toMatch(/--plugin <package> or --vfio <device> is required/);
    expect((await run(['--plugin', 'x', '--vfio', '0000:01:00.0'])).err).toContain('not both');
    expect((await run(['--vfio', '0000:01:00.0', '--iommu', 'vt-d'])).err).toContain(
      '--iommu takes auto, group or iommufd',
    );
    expect((await run(['--plugin'])).code).toBe(2);
    const r = await run(['--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown argument "--frobnicate"');
    expect((await run(['--runs', 'many', '--plugin', 'x'])).err).toContain('--runs takes a whole number');
  });

  it('names the Linux backend to install when it cannot be loaded', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vfiokit-no-backend-'));
    await expect(
      openKernelTarget('0000:01:00.0', { cwd: dir, backend: '@vfiokit/no-such-backend' }),
    ).rejects.toThrow(
      `ENOENT: --vfio needs the Linux backend @vfiokit/no-such-backend, which is not installed where ${dir} or the suite can find it. Install it next to the suite`,
    );
  });

  it('tells a backend that is installed but fails to load from one that is missing', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vfiokit-broken-backend-'));
    const pkg = path.join(dir, 'node_modules', '@vfiokit', 'broken-backend');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(path.join(pkg, 'package.json'), '{"name":"@vfiokit/broken-backend","main":"index.js"}');
    writeFileSync(path.join(pkg, 'index.js'), "throw new Error('the addon linux_vfio.node is missing');");
    await expect(
      openKernelTarget('0000:01:00.0', { cwd: dir, backend: '@vfiokit/broken-backend' }),
    ).rejects.toThrow(
      'EIO: the Linux backend @vfiokit/broken-backend is installed but cannot be loaded: the addon linux_vfio.node is missing. Its native addon may not be built for this Node: run npm rebuild @vfiokit/broken-backend',
    );
  });

  it('exits 2 naming the package it cannot load', async () => {
    const r = await run(['--plugin', '@vfiokit/no-such-plugin']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('cannot load plugin package "@vfiokit/no-such-plugin"');
  });

  it('runs a correct plugin: one ✓ line per check, the summary, exit 0, and a JUnit file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vfiokit-conformance-'));
    const junit = path.join(dir, 'out', 'junit.xml');
    const r = await run([
      '--plugin',
      GOOD,
      '--check',
      'device',
      '--check=region.type-cap',
      '--junit',
      junit,
      '--seed',
      '1',
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('device @vfiokit/tiny-test-plugin/tiny0/tiny-a');
    expect(r.out).toMatch(/ {2}✓ device\.reset-flag /);
    expect(r.out).not.toContain('✗');
    expect(r.out.trimEnd().split('\n').at(-1)).toBe('8 passed, 0 failed, 0 skipped');
    expect(r.out).not.toContain('\u001b[');
    const xml = readFileSync(junit, 'utf8');
    expect(xml.match(/<testcase /g)).toHaveLength(8);
  });

  it('runs a broken plugin: ✗ with the failure message, exit 1', async () => {
    const r = await run(['--plugin', BROKEN, '--check', 'region']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/✗ region\.type-cap/);
    expect(r.out).toMatch(
      /region\.type-cap: device @vfiokit\/tiny-test-plugin\/tiny0\/tiny-a \([0-9a-f-]+\), region 9/,
    );
    expect(r.out).toMatch(/\d+ passed, 2 failed, 0 skipped\n$/);
  });

  it('prints the report as JSON with --json', async () => {
    const r = await run(['--plugin', BROKEN, '--check', 'region.type-cap', '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.out);
    expect(report.failed).toBe(2);
    expect(report.failures[0].check).toBe('region.type-cap');
  });

  it('colours only a terminal', async () => {
    const r = await run(['--plugin', GOOD, '--check', 'device.info'], true);
    expect(r.out).toContain('\u001b[32m✓\u001b[0m');
  });
});

describe('loadPlugin and validatePlugin', () => {
  it('loads a plugin from a path', async () => {
    const p = await loadPlugin(GOOD);
    expect(p.name).toBe('@vfiokit/tiny-test-plugin');
  });

  it('says in one sentence what is wrong with a non-plugin', () => {
    expect(() => validatePlugin(undefined, 'package "x"')).toThrow(
      'EINVAL: package "x" does not export a plugin object (its default export is undefined).',
    );
    expect(() => validatePlugin({ name: 'p' }, 'package "x"')).toThrow(/without a probe\(\) function/);
    expect(() =>
      validatePlugin({ name: 'p', probe() {}, contractVersion: 0, deviceApi: 'vfio-pci' }, 'package "x"'),
    ).toThrow(`written for contract version 0, but this suite checks version ${CONTRACT_VERSION}`);
    expect(() =>
      validatePlugin(
        { name: 'p', probe() {}, contractVersion: CONTRACT_VERSION, deviceApi: 'vfio-ccw' },
        'package "x"',
      ),
    ).toThrow(/not vfio-pci/);
  });
});
