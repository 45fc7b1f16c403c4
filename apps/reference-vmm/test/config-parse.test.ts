import { VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  draftFromObject,
  finishConfig,
  formatSize,
  formatSlot,
  parseConfig,
  parsePciAddress,
  parseSize,
  stableUuid,
} from '../src/config/index.js';
import { DEFAULT_CONFIG, DEFAULT_CONFIG_SOURCE } from '../src/default-config.js';

const MTTY = '@vfiokit/sample-mtty';

/** The problem sentence of the error parsing `text` throws. */
function problem(text: string, file = 'config.yaml'): string {
  try {
    parseConfig(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(VfioError);
    return (err as VfioError).problem;
  }
  throw new Error('the configuration was accepted');
}

describe('parseConfig: good configurations', () => {
  it('reads a YAML configuration with plugins, machine and devices', () => {
    const c = parseConfig(
      `plugins:
  - package: '${MTTY}'
    options: { ports: 24 }
machine:
  ramSize: 512M
devices:
  - plugin: '${MTTY}'
    parent: mtty
    type: mtty-2
    uuid: 83B8F4F2-509F-382F-3C1E-E6BFE0FA1001
    slot: 00:03.0
    attrs: { speed: 115200, loop: true }
`,
    );
    expect(c.plugins).toEqual([
      {
        package: MTTY,
        options: { ports: 24 },
        origin: expect.stringMatching(/^config\.yaml:\d+:\d+ plugins\[0\]$/),
      },
    ]);
    expect(c.machine.ramSize).toBe(512 * 2 ** 20);
    expect(c.devices).toHaveLength(1);
    const d = c.devices[0];
    expect(d).toMatchObject({
      kind: 'mdev',
      plugin: MTTY,
      parent: 'mtty',
      type: 'mtty-2',
      uuid: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001',
      slot: { bus: 0, device: 3, function: 0 },
      attrs: [
        ['speed', '115200'],
        ['loop', 'true'],
      ],
    });
    expect(d.origin).toBe('config.yaml:7:5 devices[0]');
  });

  it('reads the same configuration written as JSON', () => {
    const c = parseConfig(
      JSON.stringify({
        plugins: [{ package: MTTY }],
        machine: { ramSize: 268435456 },
        devices: [{ plugin: MTTY, type: 'mtty-1', slot: '0000:00:05.0' }],
      }),
      'vm.json',
    );
    expect(c.machine.ramSize).toBe(256 * 2 ** 20);
    expect(c.devices[0].slot).toEqual({ bus: 0, device: 5, function: 0 });
  });

  it('gives a device without a UUID the same generated UUID on every run', () => {
    const text = `plugins: [{ package: '${MTTY}' }]\ndevices: [{ plugin: '${MTTY}', type: mtty-1, slot: '00:04.0' }]\n`;
    const a = parseConfig(text).devices[0];
    const b = parseConfig(text).devices[0];
    expect(a.kind === 'mdev' && a.uuid).toBe(b.kind === 'mdev' && b.uuid);
    expect(a.kind === 'mdev' && a.uuid).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  it('gives devices without a slot the lowest free slots from 00:03.0', () => {
    const c = parseConfig(
      `plugins: [{ package: p }]\ndevices:\n  - { plugin: p, type: t, slot: '00:03.0' }\n  - { plugin: p, type: t }\n  - { plugin: p, type: t }\n`,
    );
    expect(c.devices.map((d) => formatSlot(d.slot))).toEqual(['00:03.0', '00:04.0', '00:05.0']);
  });

  it('accepts device definitions in mdevctl --dumpjson form under mdevctl', () => {
    const c = parseConfig(
      `plugins: [{ package: '${MTTY}' }]
mdevctl:
  - mtty:
      - 9f579710-6ffc-4201-987a-4ffa0fb1f3a5: { mdev_type: mtty-1, start: auto, attrs: [] }
`,
    );
    expect(c.devices[0]).toMatchObject({
      kind: 'mdev',
      plugin: undefined,
      parent: 'mtty',
      type: 'mtty-1',
      uuid: '9f579710-6ffc-4201-987a-4ffa0fb1f3a5',
    });
  });

  it('reads a bare mdevctl list document with the default plugins', () => {
    const c = parseConfig(
      JSON.stringify([
        {
          mtty: [
            { '9f579710-6ffc-4201-987a-4ffa0fb1f3a5': { mdev_type: 'mtty-2', start: 'manual', attrs: [] } },
          ],
        },
      ]),
      'defined.json',
      { defaultPlugins: [{ package: MTTY, options: {} }] },
    );
    expect(c.plugins.map((p) => p.package)).toEqual([MTTY]);
    expect(c.devices).toHaveLength(1);
    expect(formatSlot(c.devices[0].slot)).toBe('00:03.0');
  });

  it('treats an empty file as a machine with no plugins and no devices', () => {
    const c = parseConfig('');
    expect(c.plugins).toEqual([]);
    expect(c.devices).toEqual([]);
    expect(c.machine.ramSize).toBe(256 * 2 ** 20);
  });

  it('builds the embedded default configuration: the sample mtty at 00:03.0 with a fixed UUID', () => {
    const c = finishConfig(draftFromObject(DEFAULT_CONFIG, DEFAULT_CONFIG_SOURCE));
    expect(c.source).toBe('the default configuration');
    expect(c.plugins.map((p) => p.package)).toContain(MTTY);
    const mtty = c.devices.find((d) => d.kind === 'mdev' && d.plugin === MTTY);
    expect(mtty && formatSlot(mtty.slot)).toBe('00:03.0');
    expect(mtty?.kind === 'mdev' && mtty.uuid).toBe('83b8f4f2-509f-382f-3c1e-e6bfe0fa1001');
    expect(mtty?.kind === 'mdev' && mtty.type).toBe('mtty-2');
  });
});

describe('parseConfig: each mistake is one sentence with the file, line and column of the field', () => {
  it('names a slot that is not bus:device.function', () => {
    expect(
      problem(`plugins:
  - package: '${MTTY}'
devices:
  - plugin: '${MTTY}'
    type: mtty-2
    slot: 00:03.0
  - plugin: '${MTTY}'
    type: mtty-1
    slot: 00:3
`),
    ).toBe('config.yaml:9:11: devices[1].slot "00:3" is not a bus:device.function address such as 00:03.0.');
  });

  it('refuses a device number above 1f and a function above 7', () => {
    expect(problem(`devices: [{ plugin: p, type: t, slot: '00:20.0' }]`)).toMatch(
      /^config\.yaml:1:39: devices\[0\]\.slot "00:20\.0" is not/,
    );
    expect(problem(`devices: [{ plugin: p, type: t, slot: '00:02.8' }]`)).toMatch(
      /devices\[0\]\.slot "00:02\.8" is not/,
    );
  });

  it('names a missing field at its device', () => {
    expect(problem('plugins:\n  - package: x\ndevices:\n  - plugin: x\n    slot: 00:03.0\n')).toBe(
      'config.yaml:4:5: devices[0] is missing type (an mdev type id such as mtty-2).',
    );
  });

  it('names an unknown field at the key and lists the known ones', () => {
    expect(
      problem('plugins:\n  - package: x\ndevices:\n  - plugin: x\n    type: t\n    slots: 00:03.0\n'),
    ).toBe(
      'config.yaml:6:5: devices[0] has an unknown field "slots"; the known fields are plugin, parent, type, uuid, slot, attrs, vfioUser, vfio.',
    );
    expect(problem('plugin: []\n')).toBe(
      'config.yaml:1:1: the configuration has an unknown field "plugin"; the known fields are plugins, machine, devices, mdevctl.',
    );
  });

  it('says what a value of the wrong kind is', () => {
    expect(problem('devices:\n  - mtty\n')).toBe(
      `config.yaml:2:5: devices[0] "mtty" is not a device such as { plugin: '@vfiokit/sample-mtty', type: mtty-2, slot: '00:03.0' }.`,
    );
    expect(problem('plugins: { package: x }\n')).toBe(
      "config.yaml:1:10: plugins is a mapping, not a list of plugins such as [{ package: '@vfiokit/sample-mtty' }].",
    );
    expect(problem('- 1\n- 2\n')).toMatch(
      /^config\.yaml:1:1: \[0\] is not an object keyed by parent device name\./,
    );
  });

  it('locates fields in JSON too', () => {
    expect(
      problem(
        '{"plugins": [{"package": "x"}],\n "devices": [{"plugin": "x", "type": "t", "slot": 7}]}',
        'vm.json',
      ),
    ).toBe('vm.json:2:51: devices[0].slot 7 is not a bus:device.function address such as 00:03.0.');
  });

  it('refuses a memory size it cannot read and one out of range', () => {
    expect(problem('machine: { ramSize: 12Q }')).toBe(
      'config.yaml:1:21: machine.ramSize "12Q" is not a memory size such as 256M or 268435456.',
    );
    expect(problem('machine:\n  ramSize: 4G\n')).toBe(
      'config.yaml:2:12: machine.ramSize "4G" is not a whole number of 4 KiB pages between 2M and 2816M.',
    );
    expect(problem('machine:\n  ramSize: 1000\n')).toMatch(
      /machine\.ramSize 1000 is not a whole number of 4 KiB pages/,
    );
  });

  it('says a device whose plugin is not listed names an unknown plugin', () => {
    expect(problem('plugins: []\ndevices:\n  - { plugin: "@x/y", type: t }\n')).toBe(
      `config.yaml:3:15: devices[0].plugin "@x/y" is not in the plugins list; add { package: '@x/y' } to plugins.`,
    );
  });

  it('says a slot used twice is busy, and where it was taken first', () => {
    expect(
      problem(
        'plugins: [{ package: x }]\ndevices:\n  - plugin: x\n    type: t\n    slot: 00:03.0\n  - plugin: x\n    type: t\n    slot: "00:03.0"\n',
      ),
    ).toBe(
      'config.yaml:8:11: devices[1].slot 00:03.0 is already taken by devices[0] (config.yaml:5:11); give each device its own slot.',
    );
  });

  it('refuses the host bridge’s slot', () => {
    expect(problem('plugins: [{ package: x }]\ndevices: [{ plugin: x, type: t, slot: "00:00.0" }]\n')).toBe(
      "config.yaml:2:39: devices[0].slot 00:00.0 is the host bridge's slot; use 00:03.0 or another free slot.",
    );
  });

  it('refuses a function whose slot has nothing at function 0', () => {
    expect(problem('plugins: [{package: x}]\ndevices:\n  - {plugin: x, type: t, slot: "00:04.1"}\n')).toBe(
      'config.yaml:3:32: devices[0].slot 00:04.1 is a function of a slot with nothing at function 0, so the guest would never find it; use 00:04.0.',
    );
  });

  it('refuses a UUID used twice, whatever its case', () => {
    expect(
      problem(
        'plugins: [{package: x}]\ndevices:\n  - {plugin: x, type: t, uuid: 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001}\n  - {plugin: x, type: t, uuid: 83B8F4F2-509f-382f-3c1e-e6bfe0fa1001}\n',
      ),
    ).toBe(
      'config.yaml:4:32: devices[1].uuid 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001 is already used by devices[0]; each device needs its own UUID.',
    );
  });

  it('refuses a UUID that is not one', () => {
    expect(problem('devices: [{plugin: x, type: t, uuid: 1234}]')).toMatch(
      /devices\[0\]\.uuid 1234 is not a UUID such as/,
    );
  });

  it('refuses a plugin listed twice', () => {
    expect(problem('plugins:\n  - package: x\n  - package: x\n')).toBe(
      'config.yaml:3:14: plugins[1].package "x" is listed twice (first as plugins[0]); list each plugin once.',
    );
  });

  it('names a vfio-user device without a slot', () => {
    expect(problem('devices:\n  - vfioUser: /run/dev.sock\n')).toBe(
      'config.yaml:2:5: devices[0] is missing slot (the guest address such as 00:03.0).',
    );
  });

  it('reports YAML syntax errors and duplicate keys with their position', () => {
    expect(problem('plugins:\n  - package: x\n   bad: [\n')).toMatch(
      /^config\.yaml:3:1: the file is not valid YAML or JSON: .+\.$/,
    );
    expect(problem('plugins: []\nplugins: []\n')).toBe(
      'config.yaml:2:1: the file is not valid YAML or JSON: Map keys must be unique.',
    );
    expect(problem('devices: *nowhere\n')).toMatch(
      /^config\.yaml(:\d+:\d+)?: the file is not valid YAML or JSON: .*alias.*\.$/i,
    );
  });

  it('errors are ConfigErrors that carry the place', () => {
    try {
      parseConfig('devices:\n  - { plugin: x, type: t, slot: bad }\n');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).location).toEqual({ where: 'config.yaml:2:33', field: 'devices[0].slot' });
      expect((err as ConfigError).code).toBe('EINVAL');
    }
    expect.assertions(3);
  });
});

describe('parseConfig: properties', () => {
  it('never throws anything but a VfioError, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          parseConfig(text);
        } catch (err) {
          if (!(err instanceof VfioError)) throw err;
          expect(err.problem).toMatch(/^config\.yaml(:\d+:\d+)?: .*\.$/s);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('never throws anything but a VfioError for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        try {
          parseConfig(JSON.stringify(value), 'x.json');
        } catch (err) {
          if (!(err instanceof VfioError)) throw err;
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('slots, sizes and UUIDs', () => {
  it('formats and parses every bus 0..ff, device 0..1f, function 0..7 address back to itself', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xff }),
        fc.integer({ min: 0, max: 0x1f }),
        fc.integer({ min: 0, max: 7 }),
        (bus, device, fn) => {
          const a = { bus, device, function: fn };
          expect(parsePciAddress(formatSlot(a))).toEqual(a);
          expect(parsePciAddress(`0000:${formatSlot(a)}`)).toEqual(a);
        },
      ),
    );
  });

  it('refuses other domains and malformed slots', () => {
    for (const s of ['0001:00:03.0', '00:3', '0:03.0', '00:03', '00:03.0 ', 'zz:03.0', '00:1g.0', '']) {
      expect(parsePciAddress(s)).toBeUndefined();
    }
  });

  it('formats and parses sizes back to the same number of bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (n) => {
        expect(parseSize(formatSize(n))).toBe(n);
      }),
    );
    expect(parseSize('256M')).toBe(268435456);
    expect(parseSize('1GiB')).toBe(2 ** 30);
    expect(parseSize('64k')).toBe(65536);
    expect(parseSize('12Q')).toBeUndefined();
    expect(parseSize('-1')).toBeUndefined();
  });

  it('makes version-5 UUIDs that depend only on the name', () => {
    expect(stableUuid('a')).toBe(stableUuid('a'));
    expect(stableUuid('a')).not.toBe(stableUuid('b'));
  });
});

describe('parseConfig: a device of the host kernel', () => {
  it('reads a vfio entry with its slot, and one from the command line form', () => {
    const c = parseConfig("devices:\n  - vfio: '0000:01:00.0'\n    slot: '00:06.0'\n", 'vm.yaml');
    expect(c.devices).toEqual([
      {
        kind: 'vfio',
        device: '0000:01:00.0',
        slot: { bus: 0, device: 6, function: 0 },
        origin: 'vm.yaml:2:5 devices[0]',
      },
    ]);
  });
});
