/**
 * PciDeviceModel.mmap, asked directly (a server or VMM need not come through DeviceFile): it
 * hands out memory only inside the region's memory and, with a sparse-mmap capability, inside
 * one listed area, as DeviceFile.mmap does, so a BAR's trapped part is never mapped.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { vfioPciIndexToOffset } from '../src/abi/constants.js';
import { DeviceFile, type DeviceHost } from '../src/host.js';
import { allocateSharedMemory, PAGE_SIZE, PciDeviceModel, VfioError } from '../src/index.js';
import { silentLog, testConfigSpace } from './helpers.js';

const BAR_SIZE = 8 * PAGE_SIZE;
// Pages 1 and 4–5 are mappable; 0, 2–3 and 6–7 are trapped registers.
const AREAS = [
  { offset: PAGE_SIZE, size: PAGE_SIZE },
  { offset: 4 * PAGE_SIZE, size: 2 * PAGE_SIZE },
];

function model(): PciDeviceModel {
  const config = testConfigSpace('mmap-model', [
    { index: 0, kind: 'mem32', size: BAR_SIZE },
    { index: 2, kind: 'mem32', size: 2 * PAGE_SIZE },
  ]);
  return new PciDeviceModel({
    name: 'mmap-model',
    config,
    bars: {
      0: {
        memory: allocateSharedMemory(BAR_SIZE),
        sparseMmap: AREAS,
        handler: { read: (_o, d) => d.fill(0), write: () => {} },
      },
      2: { memory: allocateSharedMemory(2 * PAGE_SIZE) },
    },
  });
}

const insideAnArea = (offset: number, size: number) =>
  AREAS.some((a) => offset >= a.offset && offset + size <= a.offset + a.size);

function outcome(run: () => unknown): string {
  try {
    run();
    return 'ok';
  } catch (err) {
    if (err instanceof VfioError) return err.code;
    throw err;
  }
}

describe('PciDeviceModel.mmap', () => {
  it('maps a listed area and refuses the trapped pages around it, naming device, region and offset', () => {
    const m = model();
    expect(m.mmap(0, PAGE_SIZE, PAGE_SIZE)).toMatchObject({ memoryOffset: PAGE_SIZE, size: PAGE_SIZE });
    expect(m.mmap(0, 4 * PAGE_SIZE, 2 * PAGE_SIZE).size).toBe(2 * PAGE_SIZE);
    let caught: unknown;
    try {
      m.mmap(0, 0, 2 * PAGE_SIZE);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(VfioError);
    const e = caught as VfioError;
    expect(e.code).toBe('EINVAL');
    expect(e.message).toContain("mmap of 0x2000 bytes at 0x0 is outside the region's mmap areas");
    expect(e.message).toContain('mmap-model');
    expect(e.place).toMatchObject({ device: 'mmap-model', region: 0, offset: 0 });
    // Spanning two areas is not inside one of them.
    expect(outcome(() => m.mmap(0, PAGE_SIZE, 4 * PAGE_SIZE))).toBe('EINVAL');
  });

  it('without sparse areas maps any part of the memory and nothing past it', () => {
    const m = model();
    expect(m.mmap(2, 0, 2 * PAGE_SIZE).size).toBe(2 * PAGE_SIZE);
    expect(outcome(() => m.mmap(2, PAGE_SIZE, 2 * PAGE_SIZE))).toBe('EINVAL');
    expect(outcome(() => m.mmap(2, -PAGE_SIZE, PAGE_SIZE))).toBe('EINVAL');
    expect(outcome(() => m.mmap(2, 0, 0))).toBe('EINVAL');
    expect(outcome(() => m.mmap(7, 0, PAGE_SIZE))).toBe('EINVAL'); // config space has no memory
  });

  it('agrees with DeviceFile.mmap on every page-aligned request', () => {
    const m = model();
    const file = new DeviceFile(m, { log: silentLog } as unknown as DeviceHost);
    file.open();
    fc.assert(
      fc.property(fc.integer({ min: -1, max: 9 }), fc.integer({ min: 1, max: 9 }), (page, pages) => {
        const offset = page * PAGE_SIZE;
        const size = pages * PAGE_SIZE;
        const direct = outcome(() => m.mmap(0, offset, size));
        expect(direct).toBe(insideAnArea(offset, size) ? 'ok' : 'EINVAL');
        if (offset >= 0)
          expect(outcome(() => file.mmap(vfioPciIndexToOffset(0) + offset, size))).toBe(direct);
      }),
      { numRuns: 300, seed: 7 },
    );
  });
});
