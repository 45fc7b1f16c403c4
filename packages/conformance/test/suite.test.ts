import { describe, expect, it } from 'vitest';
import { ALL_CHECKS, runConformance, selectChecks } from '../src/index.js';
import { tinyPlugin } from './fixtures/tiny-plugin.js';

describe('runConformance on a correct plugin', () => {
  it('passes every check of every type, skipping none', async () => {
    // with PRE_COPY, which migration.precopy-close needs
    const report = await runConformance(tinyPlugin({ preCopy: true }), { seed: 7 });
    expect(report.failures).toEqual([]);
    expect(report.failed).toBe(0);
    expect(report.skipped).toBe(0);
    // The plugin-level entry plus one entry per mdev type.
    expect(report.devices.map((d) => `${d.device.parent}/${d.device.type}`)).toEqual([
      '-/-',
      'tiny0/tiny-a',
      'tiny0/tiny-b',
    ]);
    for (const d of report.devices.slice(1))
      expect(d.results.map((r) => r.check)).toEqual(ALL_CHECKS.map((c) => c.id));
    expect(report.passed).toBe(2 + 2 * ALL_CHECKS.length);
  });

  it('leaves no instance behind and available_instances as it found it', async () => {
    const plugin = tinyPlugin();
    // probe once to look at the parent the suite will use: the plugin makes a new parent per probe,
    // so check through a plugin whose probe returns a fixed parent.
    const [parent] = plugin.probe({
      clock: { now: () => 0, schedule: () => () => {} },
      log: console,
      options: {},
    });
    const fixed = { ...plugin, probe: () => [parent] };
    const before = parent.types().map((t) => t.availableInstances);
    await runConformance(fixed, { checks: ['capacity', 'migration'] });
    expect(parent.instances()).toEqual([]);
    expect(parent.types().map((t) => t.availableInstances)).toEqual(before);
  });

  it('gives each check a fresh instance with its own UUID', async () => {
    const report = await runConformance(tinyPlugin({ noTypeCap: true, sparseUnaligned: true }), {
      checks: ['region'],
    });
    const uuidOf = (check: string) =>
      report.failures.find((f) => f.check === check && f.device.type === 'tiny-a')?.device.uuid;
    expect(uuidOf('region.type-cap')).toBeDefined();
    expect(uuidOf('region.sparse-areas')).toBeDefined();
    expect(uuidOf('region.type-cap')).not.toBe(uuidOf('region.sparse-areas'));
  });

  it('every check id is unique and has an area prefix', () => {
    const ids = ALL_CHECKS.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[a-z]+\.[a-z0-9-]+$/);
  });

  it('selects checks by id or by area, and leaves out skipped ones', () => {
    expect(selectChecks({ checks: ['region'] }).every((c) => c.id.startsWith('region.'))).toBe(true);
    expect(selectChecks({ checks: ['irq.info'] }).map((c) => c.id)).toEqual(['irq.info']);
    expect(selectChecks({ checks: ['reg'] })).toEqual([]);
    expect(selectChecks({ skipChecks: ['random'] }).some((c) => c.id.startsWith('random.'))).toBe(false);
  });

  it('reports live through onResult, once per check and device', async () => {
    const seen: string[] = [];
    await runConformance(tinyPlugin(), {
      checks: ['device'],
      onResult: (d, r) => seen.push(`${d.type}:${r.check}`),
    });
    expect(seen).toEqual([
      '-:plugin.contract',
      '-:plugin.probe',
      'tiny-a:device.info',
      'tiny-a:device.reset-flag',
      'tiny-b:device.info',
      'tiny-b:device.reset-flag',
    ]);
  });

  it('skips every check of a type that has no capacity left, with the reason', async () => {
    const plugin = tinyPlugin();
    const [parent] = plugin.probe({
      clock: { now: () => 0, schedule: () => () => {} },
      log: console,
      options: {},
    });
    parent.create('tiny-b', '00000000-0000-0000-0000-000000000001');
    parent.create('tiny-b', '00000000-0000-0000-0000-000000000002');
    const report = await runConformance({ ...plugin, probe: () => [parent] }, { checks: ['device'] });
    const results = report.devices.slice(1).flatMap((d) => d.results);
    expect(results.every((r) => r.status === 'skipped' && /available_instances 0/.test(r.reason ?? ''))).toBe(
      true,
    );
  });
});
