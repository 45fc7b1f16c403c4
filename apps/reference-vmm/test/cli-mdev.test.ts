/**
 * `vfiokit types` and `vfiokit mdev`: the mdevctl verbs, flags, JSON and messages (mdevctl's
 * src/main.rs, src/mdev.rs, tests/list/default/*.json), and types agreeing with types --json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bufferIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { MdevStore } from '../src/cli/mdev-state.js';
import type { MdevDefinition } from '../src/config/index.js';
import { tempDir } from './temp-dirs.js';

const MTTY = '@vfiokit/sample-mtty';
const U1 = '9f579710-6ffc-4201-987a-4ffa0fb1f3a5';
const U2 = '4a0a190f-dcf3-4def-9342-c48768f0c940';

async function cli(argv: string[], cwd = tempDir('vfiokit-mdev-'), files: Record<string, string> = {}) {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(cwd, name), text);
  const io = bufferIo({ cwd, env: { XDG_STATE_HOME: join(cwd, 'state') } });
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err(), cwd, first: io.err().split('\n')[0] };
}

/** The (parent, type) pairs a `vfiokit types` text lists. */
function pairsFromText(text: string): string[] {
  const out: string[] = [];
  let parent = '';
  for (const line of text.split('\n')) {
    const p = /^\/sys\/class\/mdev_bus\/([^/]+)\//.exec(line);
    if (p) parent = p[1];
    const t = /^ {2}mdev_supported_types\/([^/]+)\//.exec(line);
    if (t) out.push(`${parent} ${t[1]}`);
  }
  return out.sort();
}

function pairsFromJson(text: string): string[] {
  const out: string[] = [];
  for (const byParent of JSON.parse(text) as Record<string, Record<string, unknown>[]>[])
    for (const [parent, types] of Object.entries(byParent))
      for (const t of types) out.push(`${parent} ${Object.keys(t)[0]}`);
  return out.sort();
}

describe('vfiokit types', () => {
  it('lays out parents and types as /sys/class/mdev_bus shows them', async () => {
    const r = await cli(['types']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`/sys/class/mdev_bus/mtty/   (plugin ${MTTY})`);
    expect(r.out).toContain('  mdev_supported_types/mtty-2/\n    name                 Dual port serial\n');
    expect(r.out).toContain('    available_instances  12\n');
  });

  it('lists GVT-g and GVT-d under the one parent they both name, in text and JSON, each type with its plugin', async () => {
    const text = await cli(['types']);
    expect(text.out).toContain(
      '/sys/class/mdev_bus/0000:00:02.0/   (plugins @vfiokit/gvt-g, @vfiokit/gvt-d)',
    );
    expect(text.out).toContain('  mdev_supported_types/gvt-d-igd/   (plugin @vfiokit/gvt-d)');
    expect(text.out).toContain('  mdev_supported_types/i915-GVTg_V5_8/   (plugin @vfiokit/gvt-g)');
    const json = JSON.parse((await cli(['types', '--json'])).out);
    const igd = json[0]['0000:00:02.0'].map((t: Record<string, unknown>) => Object.keys(t)[0]);
    expect(igd).toEqual([
      'gvt-d-igd',
      'i915-GVTg_V5_1',
      'i915-GVTg_V5_2',
      'i915-GVTg_V5_4',
      'i915-GVTg_V5_8',
    ]);
    expect(json[0]['0000:00:02.0'][0]['gvt-d-igd'].plugin).toBe('@vfiokit/gvt-d');
  });

  it('agrees with types --json for every set of the in-tree plugins', async () => {
    const plugins = ['@vfiokit/sample-mtty', '@vfiokit/gvt-g', '@vfiokit/gvt-d', '@vfiokit/nvidia-vgpu'];
    for (let mask = 1; mask < 1 << plugins.length; mask++) {
      const set = plugins.filter((_, i) => mask & (1 << i));
      const cwd = tempDir('vfiokit-types-');
      const config = {
        plugins: set.map((p) => ({
          package: p,
          ...(p.includes('nvidia') ? { options: { boards: ['T4'] } } : {}),
        })),
        devices: [],
      };
      writeFileSync(join(cwd, 'c.json'), JSON.stringify(config));
      const text = await cli(['types', 'c.json'], cwd);
      const json = await cli(['types', 'c.json', '--json'], cwd);
      expect(text.code, text.err).toBe(0);
      expect(pairsFromJson(json.out), set.join(' ')).toEqual(pairsFromText(text.out));
    }
  }, 60_000);
});

describe('vfiokit mdev (mdevctl verbs)', () => {
  it('defines, starts, lists and stops as mdevctl does, and run --defined creates the active device', async () => {
    const { cwd } = await cli(['mdev', 'list']);
    const def = await cli(['mdev', 'define', '--parent', 'mtty', '--type', 'mtty-1', '--uuid', U1], cwd);
    // mdevctl prints the UUID only when it generated one
    expect(def).toMatchObject({ code: 0, out: '' });
    expect((await cli(['mdev', 'list'], cwd)).out).toBe('\n');
    expect((await cli(['mdev', 'list', '--defined'], cwd)).out).toBe(`${U1} mtty mtty-1 manual\n\n`);
    expect((await cli(['mdev', 'start', '--uuid', U1], cwd)).code).toBe(0);
    expect((await cli(['mdev', 'list'], cwd)).out).toBe(`${U1} mtty mtty-1 manual (defined)\n\n`);
    expect((await cli(['mdev', 'list', '-d'], cwd)).out).toBe(`${U1} mtty mtty-1 manual (active)\n\n`);
    expect(JSON.parse((await cli(['mdev', 'list', '--dumpjson'], cwd)).out)).toEqual([
      { mtty: [{ [U1]: { mdev_type: 'mtty-1', start: 'manual', attrs: [] } }] },
    ]);
    const run = await cli(['run', '--defined', '--json'], cwd);
    expect(run.code, run.err).toBe(0);
    expect(JSON.parse(run.out).devices.map((d: { uuid: string }) => d.uuid)).toContain(U1);
    expect((await cli(['mdev', 'stop', '--uuid', U1], cwd)).code).toBe(0);
    const again = await cli(['mdev', 'stop', '--uuid', U1], cwd);
    expect(again.code).toBe(1);
    expect(again.first).toBe(`vfiokit mdev: Error removing device ${U1}`);
  });

  it('generates and prints a UUID, and refuses to define the same UUID twice on one parent', async () => {
    const r = await cli(['mdev', 'define', '-p', 'mtty', '-t', 'mtty-2', '--auto']);
    expect(r.code).toBe(0);
    const uuid = r.out.trim();
    expect(uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const dup = await cli(['mdev', 'define', '-p', 'mtty', '-t', 'mtty-1', '-u', uuid], r.cwd);
    expect(dup.code).toBe(1);
    expect(dup.first).toBe(`vfiokit mdev: Device ${uuid} on mtty already defined`);
  });

  it('keeps one UUID under two parents apart, as mdevctl does, and asks for a parent where that is ambiguous', async () => {
    const { cwd } = await cli(['mdev', 'define', '-u', U1, '-p', 'mtty', '-t', 'mtty-1']);
    expect((await cli(['mdev', 'define', '-u', U1, '-p', '0000:00:02.0', '-t', 'gvt-d-igd'], cwd)).code).toBe(
      0,
    );
    expect((await cli(['mdev', 'start', '-u', U1], cwd)).first).toBe(
      `vfiokit mdev: Multiple definitions found for device ${U1}. Please specify a parent.`,
    );
    expect((await cli(['mdev', 'modify', '-u', U1, '--auto'], cwd)).first).toBe(
      `vfiokit mdev: Multiple definitions found for ${U1}, specify a parent`,
    );
    expect((await cli(['mdev', 'start', '-u', U1, '-p', '0000:00:02.0'], cwd)).code).toBe(0);
    // the GVT-d definition on the parent GVT-g also names is created by the GVT-d plugin
    const plugins = { plugins: [{ package: '@vfiokit/gvt-g' }, { package: '@vfiokit/gvt-d' }], devices: [] };
    writeFileSync(join(cwd, 'igd.json'), JSON.stringify(plugins));
    const run = await cli(['run', 'igd.json', '--defined', '--json'], cwd);
    expect(run.code, run.err).toBe(0);
    expect(JSON.parse(run.out).devices.find((d: { uuid: string }) => d.uuid === U1)).toMatchObject({
      type: 'gvt-d-igd',
    });
    // undefine without a parent removes every definition of the UUID
    expect((await cli(['mdev', 'undefine', '-u', U1], cwd)).code).toBe(0);
    expect((await cli(['mdev', 'list', '--defined'], cwd)).out).toBe('\n');
    expect((await cli(['mdev', 'undefine', '-u', U1], cwd)).first).toBe(
      'vfiokit mdev: No devices match the specified uuid',
    );
  });

  it('modifies the type, the start policy and the attributes, with mdevctl index rules', async () => {
    const { cwd } = await cli(['mdev', 'define', '-u', U1, '-p', 'mtty', '-t', 'mtty-1']);
    const mod = (...a: string[]) => cli(['mdev', 'modify', '-u', U1, ...a], cwd);
    expect((await mod('-t', 'mtty-2', '--auto')).code).toBe(0);
    expect((await mod('--addattr', 'speed', '--value', '9600')).code).toBe(0);
    expect((await mod('--addattr', 'parity', '--value', 'none', '--index', '0')).code).toBe(0);
    expect((await cli(['mdev', 'list', '-d', '-v'], cwd)).out).toBe(
      `${U1} mtty mtty-2 auto\n  Attrs:\n    @{0}: {"parity":"none"}\n    @{1}: {"speed":"9600"}\n\n`,
    );
    const bad = await mod('--delattr', '--index', '5');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('Attribute index 5 is invalid\n  Attrs:\n    @{0}: {"parity":"none"}');
    expect((await mod('--delattr')).code).toBe(0);
    expect((await mod('--manual')).code).toBe(0);
    const file = JSON.parse(readFileSync(join(cwd, 'state/vfiokit/mdevctl.d/mtty', U1), 'utf8'));
    expect(file).toEqual({ mdev_type: 'mtty-2', start: 'manual', attrs: [{ parity: 'none' }] });
    expect((await mod('--addattr', 'x')).first).toBe('vfiokit mdev: No attribute value provided');
    expect((await mod('--auto', '--manual')).code).toBe(2);
    expect((await cli(['mdev', 'modify', '-u', U2, '--auto'], cwd)).first).toBe(
      `vfiokit mdev: Mediated device ${U2} is not defined`,
    );
    expect(
      (
        await cli(
          ['mdev', 'modify', '-u', U1, '-p', 'mtty', '--addattr', 'a', '--value', 'b', '--index', '9'],
          cwd,
        )
      ).first,
    ).toBe('vfiokit mdev: Attribute index 9 is invalid');
  });

  it('defines and modifies from mdevctl single-device JSON, with mdevctl’s rules for --jsonfile', async () => {
    const files = {
      'dev.json': '{"mdev_type": "mtty-2", "start": "auto", "attrs": [{"speed": "9600"}]}',
      'bad.json': '{"mdev_type": "mtty-2"}',
    };
    const r = await cli(
      ['mdev', 'define', '-p', 'mtty', '--jsonfile', 'dev.json', '-u', U2],
      undefined,
      files,
    );
    expect(r.code).toBe(0);
    const list = JSON.parse((await cli(['mdev', 'list', '-d', '--dumpjson', '-u', U2], r.cwd)).out);
    // one device picked by --uuid: its JSON alone, ready for a config file
    expect(list).toEqual({ mdev_type: 'mtty-2', start: 'auto', attrs: [{ speed: '9600' }] });
    expect(
      (await cli(['mdev', 'define', '-p', 'mtty', '--jsonfile', 'dev.json', '-u', U2], r.cwd)).first,
    ).toBe(`vfiokit mdev: Cowardly refusing to overwrite existing config for mtty/${U2}`);
    expect((await cli(['mdev', 'define', '-u', U1, '--jsonfile', 'dev.json'], r.cwd)).first).toBe(
      'vfiokit mdev: Parent device required to define device via "dev.json"',
    );
    expect((await cli(['mdev', 'define', '-p', 'mtty', '--jsonfile', 'bad.json'], r.cwd)).first).toBe(
      'vfiokit mdev: invalid json',
    );
    expect(
      (await cli(['mdev', 'define', '-p', 'mtty', '--jsonfile', 'dev.json', '-t', 'mtty-1'], r.cwd)).code,
    ).toBe(2);
    expect((await cli(['mdev', 'modify', '-u', U2, '--jsonfile', 'dev.json'], r.cwd)).first).toBe(
      'vfiokit mdev: Parent device required to modify device via json file',
    );
  });

  it('starts a device with no definition from its parent and type, checking them against the plugins', async () => {
    const r = await cli(['mdev', 'start', '-p', 'mtty', '-t', 'mtty-1']);
    expect(r.code, r.err).toBe(0);
    const uuid = r.out.trim();
    expect((await cli(['mdev', 'list'], r.cwd)).out).toBe(`${uuid} mtty mtty-1 manual\n\n`);
    // a running device can be defined from what it is
    expect((await cli(['mdev', 'define', '-u', uuid], r.cwd)).code).toBe(0);
    expect((await cli(['mdev', 'list', '-d'], r.cwd)).out).toBe(`${uuid} mtty mtty-1 manual (active)\n\n`);
    expect((await cli(['mdev', 'start', '-u', uuid, '-p', 'mtty', '-t', 'mtty-1'], r.cwd)).first).toBe(
      'vfiokit mdev: Device already exists',
    );
    expect((await cli(['mdev', 'start', '-p', 'MTTY', '-t', 'mtty-1'], r.cwd)).first).toBe(
      "vfiokit mdev: Unable to find parent device 'MTTY'. Did you mean 'mtty'?",
    );
    expect((await cli(['mdev', 'start', '-p', 'mtty', '-t', 'mtty-9'], r.cwd)).first).toBe(
      'vfiokit mdev: Parent mtty does not support mdev type mtty-9',
    );
    expect((await cli(['mdev', 'start', '-p', '0000:00:02.0', '-t', 'gvt-d-igd'], r.cwd)).code).toBe(0);
    expect((await cli(['mdev', 'start', '-p', '0000:00:02.0', '-t', 'gvt-d-igd'], r.cwd)).first).toBe(
      'vfiokit mdev: No available instances of gvt-d-igd on 0000:00:02.0',
    );
    expect((await cli(['mdev', 'start', '-u', U2], r.cwd)).first).toBe(
      'vfiokit mdev: Device is insufficiently specified',
    );
  });

  it('lists the types as mdevctl types does, text and --dumpjson, and for one parent with -p', async () => {
    const r = await cli(['mdev', 'types', '-p', 'mtty']);
    expect(r.out).toBe(
      'mtty\n  mtty-1\n    Available instances: 24\n    Device API: vfio-pci\n    Name: Single port serial\n  mtty-2\n    Available instances: 12\n    Device API: vfio-pci\n    Name: Dual port serial\n\n',
    );
    const json = JSON.parse((await cli(['mdev', 'types', '--dumpjson', '-p', 'mtty'])).out);
    expect(json).toEqual([
      {
        mtty: [
          { 'mtty-1': { available_instances: 24, device_api: 'vfio-pci', name: 'Single port serial' } },
          { 'mtty-2': { available_instances: 12, device_api: 'vfio-pci', name: 'Dual port serial' } },
        ],
      },
    ]);
    expect((await cli(['mdev', 'types', '--dumpjson', '-p', 'nope'])).out).toBe('[]\n');
  });

  it('refuses an unknown action, a missing --uuid and a malformed one with exit 2', async () => {
    expect((await cli(['mdev', 'create'])).code).toBe(2);
    expect((await cli(['mdev', 'start'])).first).toBe('vfiokit mdev start needs --uuid or --parent.');
    expect((await cli(['mdev', 'stop'])).first).toBe('vfiokit mdev stop needs --uuid.');
    expect((await cli(['mdev', 'undefine', '-u', 'nope'])).first).toBe(
      'vfiokit mdev undefine: "nope" is not a UUID for --uuid.',
    );
    // an option without its value is named as it was typed, long or short
    expect((await cli(['mdev', 'define', '--type'])).first).toBe(
      'vfiokit mdev define: option --type needs a value.',
    );
    expect((await cli(['mdev', 'define', '-p', 'mtty', '-t'])).first).toBe(
      'vfiokit mdev define: option -t needs a value.',
    );
  });
});

describe('MdevStore', () => {
  const uuid = fc.uuid({ version: 4 });
  const name = fc.stringMatching(/^[a-z0-9][a-z0-9:._-]{0,15}$/);
  const attrs = fc.array(fc.tuple(name, fc.string({ maxLength: 20 })), { maxLength: 4 });

  it('reads back every definition it writes, sorted by parent then UUID', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.record({ parent: name, uuid, type: name, start: fc.constantFrom('auto', 'manual'), attrs }),
          {
            selector: (d) => `${d.parent}/${d.uuid}`,
            maxLength: 6,
          },
        ),
        (defs) => {
          const store = new MdevStore(tempDir('vfiokit-store-'));
          for (const d of defs) store.writeDefinition(d as MdevDefinition);
          const back = store.defined().map(({ active: _a, ...d }) => d);
          const want = [...defs].sort((a, b) =>
            a.parent < b.parent ? -1 : a.parent > b.parent ? 1 : a.uuid < b.uuid ? -1 : 1,
          );
          expect(back).toEqual(want.map((d) => ({ ...d, attrs: d.attrs.map(([k, v]) => [k, v]) })));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('throws nothing but a VfioError for any content of a definition or an active record', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), fc.oneof(fc.string(), fc.json()), uuid, (def, act, u) => {
        const dir = tempDir('vfiokit-store-');
        mkdirSync(join(dir, 'mdevctl.d', 'mtty'), { recursive: true });
        mkdirSync(join(dir, 'active'), { recursive: true });
        writeFileSync(join(dir, 'mdevctl.d', 'mtty', u), def);
        writeFileSync(join(dir, 'active', u), act);
        const store = new MdevStore(dir);
        for (const f of [() => store.defined(), () => store.active(), () => store.runnable()]) {
          try {
            f();
          } catch (err) {
            expect(err).toBeInstanceOf(VfioError);
          }
        }
      }),
      { numRuns: 60 },
    );
  });
});
