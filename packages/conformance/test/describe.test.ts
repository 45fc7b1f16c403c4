import { describe, expect, it } from 'vitest';
import { ALL_CHECKS, describeConformance, registerConformance, type VitestApi } from '../src/index.js';
import { tinyPlugin } from './fixtures/tiny-plugin.js';

// The way a plugin package uses the suite: one call registers one describe per device and one it per check.
await describeConformance(tinyPlugin(), { numRuns: 50, seed: 3 });

/** A recording stand-in for vitest's describe and it. */
function recorder() {
  const names: string[] = [];
  const tests: { name: string; fn: (ctx: { skip(note?: string): never }) => unknown }[] = [];
  let depth = 0;
  const api: VitestApi = {
    describe(name, fn) {
      names.push(`${'  '.repeat(depth)}${name}`);
      depth++;
      fn();
      depth--;
    },
    it(name, fn) {
      tests.push({ name, fn });
    },
  };
  return { api, names, tests };
}

describe('registerConformance', () => {
  it('registers a describe per device and an it per check', () => {
    const r = recorder();
    registerConformance(r.api, tinyPlugin());
    expect(r.names).toEqual([
      'conformance: @vfiokit/tiny-test-plugin',
      '  tiny0 / tiny-a',
      '  tiny0 / tiny-b',
    ]);
    expect(r.tests).toHaveLength(2 + 2 * ALL_CHECKS.length);
    expect(r.tests[2].name).toBe(`${ALL_CHECKS[0].id}: ${ALL_CHECKS[0].title}`);
  });

  it('makes a failing check throw with every failure message', async () => {
    const r = recorder();
    registerConformance(r.api, tinyPlugin({ noTypeCap: true }), { checks: ['region.type-cap'] });
    const test = r.tests.find((t) => t.name.startsWith('region.type-cap'))!;
    await expect(
      test.fn({
        skip: () => {
          throw new Error('unexpected skip');
        },
      }),
    ).rejects.toThrow(/region\.type-cap: device .*region 9/);
  });

  it('turns a skipped check into a vitest skip with the reason', async () => {
    const r = recorder();
    registerConformance(r.api, tinyPlugin({ noMigration: true }), { checks: ['migration.arcs'] });
    const test = r.tests.find((t) => t.name.startsWith('migration.arcs'))!;
    let note: string | undefined;
    await expect(
      Promise.resolve(
        test.fn({
          skip: (n?: string): never => {
            note = n;
            throw new Error('skipped');
          },
        }),
      ),
    ).rejects.toThrow('skipped');
    expect(note).toMatch(/does not offer migration/);
  });

  it('fails the plugin-level test for a probe that throws', async () => {
    const r = recorder();
    const good = tinyPlugin();
    registerConformance(r.api, {
      ...good,
      probe: () => {
        throw new Error('boom');
      },
    });
    const probe = r.tests.find((t) => t.name.startsWith('plugin.probe'))!;
    expect(() =>
      probe.fn({
        skip: () => {
          throw new Error('no');
        },
      }),
    ).toThrow(/boom/);
  });
});
