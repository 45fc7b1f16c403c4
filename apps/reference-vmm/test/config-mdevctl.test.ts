import { VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatMdevctlList,
  type MdevDefinition,
  parseMdevctlDevice,
  parseMdevctlList,
  toMdevctlDevice,
} from '../src/config/index.js';

// The shape of mdevctl's tests/list/default/defined.json (mdevctl/mdevctl): parents → [{ uuid: config }]
const MDEVCTL_DUMP = `[
  {
    "0000:00:02.0": [
      {
        "4a0a190f-dcf3-4def-9342-c48768f0c940": {
          "mdev_type": "i915-GVTg_V5_8",
          "start": "auto",
          "attrs": []
        }
      },
      {
        "9f579710-6ffc-4201-987a-4ffa0fb1f3a5": {
          "mdev_type": "vfio_ap-passthrough",
          "start": "manual",
          "attrs": [
            {
              "assign_adapter": "5"
            },
            {
              "assign_adapter": "6"
            }
          ]
        }
      }
    ]
  }
]`;

function errorOf(fn: () => unknown): VfioError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VfioError);
    return err as VfioError;
  }
  throw new Error('accepted');
}

describe('mdevctl JSON', () => {
  it('reads mdevctl list --dumpjson output, keeping attribute order and repeats', () => {
    const defs = parseMdevctlList(JSON.parse(MDEVCTL_DUMP));
    expect(defs).toEqual([
      {
        parent: '0000:00:02.0',
        uuid: '4a0a190f-dcf3-4def-9342-c48768f0c940',
        type: 'i915-GVTg_V5_8',
        start: 'auto',
        attrs: [],
      },
      {
        parent: '0000:00:02.0',
        uuid: '9f579710-6ffc-4201-987a-4ffa0fb1f3a5',
        type: 'vfio_ap-passthrough',
        start: 'manual',
        attrs: [
          ['assign_adapter', '5'],
          ['assign_adapter', '6'],
        ],
      },
    ]);
  });

  it('prints exactly what mdevctl prints for the same definitions', () => {
    expect(formatMdevctlList(parseMdevctlList(JSON.parse(MDEVCTL_DUMP)))).toBe(MDEVCTL_DUMP);
  });

  it('prints an empty list as []', () => {
    expect(formatMdevctlList([])).toBe('[]');
  });

  it('reads a single device file and defaults start to manual', () => {
    expect(
      parseMdevctlDevice({ mdev_type: 'mtty-1' }, 'mtty', '83B8F4F2-509F-382F-3C1E-E6BFE0FA1001'),
    ).toEqual({
      parent: 'mtty',
      uuid: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001',
      type: 'mtty-1',
      start: 'manual',
      attrs: [],
    });
    expect(
      toMdevctlDevice({ parent: 'p', uuid: 'u', type: 't', start: 'auto', attrs: [['a', '1']] }),
    ).toEqual({
      mdev_type: 't',
      start: 'auto',
      attrs: [{ a: '1' }],
    });
  });

  it('names the field of each mistake', () => {
    const u = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
    expect(errorOf(() => parseMdevctlDevice({}, 'mtty', u, 'dev')).problem).toBe(
      'dev.mdev_type is missing or not a type id such as "mtty-2".',
    );
    expect(
      errorOf(() => parseMdevctlDevice({ mdev_type: 't', start: 'sometimes' }, 'mtty', u, 'dev')).problem,
    ).toBe('dev.start "sometimes" is neither "auto" nor "manual".');
    expect(
      errorOf(() => parseMdevctlDevice({ mdev_type: 't', attrs: [{ a: 1 }] }, 'mtty', u, 'dev')).problem,
    ).toBe('dev.attrs[0] is not an object with one attribute name and its string value.');
    expect(
      errorOf(() => parseMdevctlDevice({ mdev_type: 't', colour: 'red' }, 'mtty', u, 'dev')).problem,
    ).toMatch(/^dev has an unknown field "colour"/);
    expect(errorOf(() => parseMdevctlDevice({ mdev_type: 't' }, 'mtty', 'not-a-uuid', 'dev')).problem).toBe(
      'dev is keyed by "not-a-uuid", which is not a UUID.',
    );
    expect(errorOf(() => parseMdevctlList([{ mtty: {} }])).problem).toBe(
      '[0]["mtty"] is not a list of { "<uuid>": { ... } } objects.',
    );
    expect(errorOf(() => parseMdevctlList([{ mtty: [{ a: {}, b: {} }] }])).problem).toBe(
      '[0]["mtty"][0] is not an object with exactly one UUID key.',
    );
  });

  const definition = fc.record({
    // parent names are sysfs names (never integer-like, which JSON objects would reorder)
    parent: fc.stringMatching(/^[a-z][a-z0-9:._-]{0,15}$/),
    uuid: fc.uuid().map((u) => u.toLowerCase()),
    type: fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/),
    start: fc.constantFrom('auto' as const, 'manual' as const),
    attrs: fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 })), {
      maxLength: 4,
    }),
  });

  it('round-trips any definitions through the dumpjson text (grouped by parent in first-seen order)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(definition, { selector: (d) => d.uuid, maxLength: 6 }), (defs) => {
        const back = parseMdevctlList(JSON.parse(formatMdevctlList(defs as MdevDefinition[])));
        const parents = [...new Set(defs.map((d) => d.parent))];
        const grouped = parents.flatMap((p) => defs.filter((d) => d.parent === p));
        expect(back).toEqual(grouped);
      }),
    );
  });

  it('never throws anything but a VfioError for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 5 }), (value) => {
        try {
          parseMdevctlList(value);
        } catch (err) {
          if (!(err instanceof VfioError)) throw err;
        }
      }),
    );
  });
});
