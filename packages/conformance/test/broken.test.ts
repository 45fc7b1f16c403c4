import { describe, expect, it } from 'vitest';
import { type ConformanceReport, runConformance } from '../src/index.js';
import { type Breakage, tinyPlugin } from './fixtures/tiny-plugin.js';

const SEED = 42;

/** Each breakage, the check that must name it, and the region it must be reported at (if any). */
const CASES: [keyof Breakage, string, number | undefined][] = [
  ['resetFlagWithoutReset', 'device.reset-flag', undefined],
  ['sparseUnaligned', 'region.sparse-areas', 0],
  ['sparseOverlap', 'region.sparse-areas', 0],
  ['noTypeCap', 'region.type-cap', 9],
  ['overlappingRegions', 'region.offsets', 9],
  ['barSizeMismatch', 'config.bar-sizing', 0],
  ['bridgeHeader', 'config.header', 7],
  ['capabilityLoop', 'config.capabilities', 7],
  ['msiCountWrong', 'irq.info', 7],
  ['resetKeepsConfig', 'reset.config-restore', 7],
  ['throwingHandler', 'random.accesses', 2],
  ['capacityNotEnforced', 'capacity.limit', undefined],
  ['migrationLosesConfig', 'migration.save-resume', 7],
  ['closeFreesShared', 'migration.precopy-close', undefined],
];

function failedChecks(report: ConformanceReport): Set<string> {
  return new Set(report.failures.map((f) => f.check));
}

describe('deliberately broken plugins fail the named check', () => {
  for (const [breakage, check, region] of CASES) {
    it(`${breakage} fails ${check} with a message naming the device${region === undefined ? '' : ` and region ${region}`}`, async () => {
      const report = await runConformance(tinyPlugin({ [breakage]: true }), { seed: SEED, numRuns: 200 });
      expect(failedChecks(report)).toContain(check);
      const f = report.failures.find((x) => x.check === check)!;
      expect(f.device.plugin).toBe('@vfiokit/tiny-test-plugin');
      expect(f.device.uuid).toMatch(/^[0-9a-f-]{36}$/);
      expect(
        f.message.startsWith(
          `${check}: device @vfiokit/tiny-test-plugin/tiny0/${f.device.type} (${f.device.uuid})`,
        ),
      ).toBe(true);
      expect(f.message).toContain('expected');
      if (region !== undefined) {
        expect(f.region).toBe(region);
        expect(f.message).toContain(`region ${region} (`);
      }
      // Every type of the parent is checked, so both report the problem.
      expect(new Set(report.failures.filter((x) => x.check === check).map((x) => x.device.type))).toEqual(
        new Set(['tiny-a', 'tiny-b']),
      );
    });
  }

  it('a broken plugin fails only the checks its breakage touches', async () => {
    const report = await runConformance(tinyPlugin({ noTypeCap: true }), { seed: SEED });
    expect([...failedChecks(report)]).toEqual(['region.type-cap']);
    expect(report.failed).toBe(2);
  });

  it('a plugin without migration has the migration checks skipped with a reason, not failed', async () => {
    const report = await runConformance(tinyPlugin({ noMigration: true }), {
      seed: SEED,
      checks: ['migration'],
    });
    expect(report.failed).toBe(0);
    const results = report.devices.flatMap((d) => d.results).filter((r) => r.check.startsWith('migration.'));
    expect(results).toHaveLength(6);
    for (const r of results) {
      expect(r.status).toBe('skipped');
      expect(r.reason).toMatch(/does not offer migration/);
    }
  });

  it('a plugin with PRE_COPY passes the migration checks, blocked arcs included', async () => {
    const report = await runConformance(tinyPlugin({ preCopy: true }), { seed: SEED, checks: ['migration'] });
    expect(report.failures).toEqual([]);
    expect(report.passed).toBe(2 + 6);
  });

  it('a plugin of another contract version fails plugin.contract', async () => {
    const good = tinyPlugin();
    const report = await runConformance({ ...good, contractVersion: 99 }, { checks: ['device'] });
    const f = report.failures.find((x) => x.check === 'plugin.contract');
    expect(f?.message).toMatch(/contractVersion 1.*contractVersion 99/);
  });

  it('a probe that throws fails plugin.probe and runs no device checks', async () => {
    const good = tinyPlugin();
    const report = await runConformance({
      ...good,
      probe: () => {
        throw new Error('no GPU here');
      },
    });
    expect(report.failures.map((f) => f.check)).toEqual(['plugin.probe']);
    expect(report.failures[0].message).toContain('no GPU here');
    expect(report.devices).toHaveLength(1);
  });

  it('a device whose handlers throw during a check fails that check instead of crashing the run', async () => {
    const report = await runConformance(tinyPlugin({ throwingHandler: true }), {
      checks: ['reset'],
      seed: SEED,
    });
    // reset.config-restore writes only config space, so it still passes; the run completed.
    expect(report.devices).toHaveLength(3);
    expect(report.failed).toBe(0);
  });
});
