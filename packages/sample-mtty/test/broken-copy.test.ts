/**
 * A deliberately broken copy of mtty: each breakage is a mistake a plugin author could make,
 * and the conformance suite must name the check it breaks, the device and the region.
 */

import { runConformance } from '@vfiokit/conformance';
import { definePlugin, MdevParent, type MigState, VFIO_PCI_BAR0_REGION_INDEX } from '@vfiokit/core';
import { describe, expect, it } from 'vitest';
import { MttyDevice, type MttyPorts } from '../src/index.js';

type Breakage = 'reset-keeps-config' | 'bar-size-lies' | 'capacity-unchecked' | 'migration-drops-uart';

class BrokenMtty extends MttyDevice {
  constructor(
    name: string,
    ports: MttyPorts,
    private readonly breakage: Breakage,
  ) {
    super(name, ports);
  }

  override reset(): void {
    // The breakage: a reset that forgets to restore config space.
    if (this.breakage === 'reset-keeps-config') return;
    super.reset();
  }

  override regionInfo(index: number) {
    const info = super.regionInfo(index);
    // The breakage: BAR0 reported twice as large as the config space sizes it.
    if (this.breakage === 'bar-size-lies' && info && index === VFIO_PCI_BAR0_REGION_INDEX)
      return { ...info, size: 16 };
    return info;
  }
}

function brokenPlugin(breakage: Breakage) {
  return definePlugin({
    name: `broken-mtty-${breakage}`,
    description: 'mtty with one deliberate mistake',
    probe: () => [
      new MdevParent<MttyPorts>({
        name: 'mtty',
        driver: 'mtty',
        // The breakage: availability that never goes down, so creation is never refused.
        ...(breakage === 'capacity-unchecked' ? { available: () => 24 } : { capacity: 24 }),
        types: [
          { name: '1', prettyName: 'Single port serial', units: 1, data: 1 },
          { name: '2', prettyName: 'Dual port serial', units: 2, data: 2 },
        ],
        create: (type, uuid) => {
          const dev = new BrokenMtty(uuid, type.data ?? 1, breakage);
          if (breakage === 'migration-drops-uart') {
            // The breakage: a resume that accepts the stream but loads nothing.
            const step = dev.migration.step.bind(dev.migration);
            dev.migration.step = (from: MigState, to: MigState) => {
              const stream = step(from, to);
              if (stream?.write) return { ...stream, write: () => {} };
              return stream;
            };
          }
          return dev;
        },
      }),
    ],
  });
}

describe('a broken copy of mtty fails the conformance checks it breaks, by name', () => {
  it.each([
    ['reset-keeps-config', 'reset.config-restore'],
    ['bar-size-lies', 'config.bar-sizing'],
    ['capacity-unchecked', 'capacity.limit'],
    ['migration-drops-uart', 'migration.save-resume'],
  ] as const)('%s fails %s', async (breakage, check) => {
    const report = await runConformance(brokenPlugin(breakage), { numRuns: 20 });
    const ids = new Set(report.failures.map((f) => f.check));
    expect(ids).toContain(check);
    const failure = report.failures.find((f) => f.check === check)!;
    expect(failure.message).toMatch(/mtty-[12]/);
    expect(failure.message).toContain(check);
  });

  it('the unbroken mtty passes every check', async () => {
    const report = await runConformance((await import('../src/index.js')).default, { numRuns: 20 });
    expect(report.failures).toEqual([]);
    expect(report.passed).toBeGreaterThan(40);
  });
});
