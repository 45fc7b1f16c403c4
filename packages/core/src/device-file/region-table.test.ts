import { describe, expect, it } from 'vitest';
import { vfioPciIndexToOffset } from '../abi/constants.js';
import type { RegionInfo, VfioDevice } from '../contract/device.js';
import { RegionTable } from './region-table.js';

/** A device whose region infos are the caller's objects, answered as they are at each open. */
function deviceOf(infos: (RegionInfo | undefined)[]): VfioDevice {
  return {
    name: 'regions',
    info: () => ({ reset: false, numRegions: infos.length, numIrqs: 0 }),
    regionInfo: (i) => infos[i],
    irqInfo: () => undefined,
    open() {},
    close() {},
    read() {},
    write() {},
  };
}

describe('RegionTable', () => {
  it('resolves an info object changed in place since the last open from what it holds now', () => {
    const bar: { -readonly [K in keyof RegionInfo]: RegionInfo[K] } = {
      index: 0,
      size: 0x1000,
      read: true,
      write: true,
      mmap: false,
    };
    const device = deviceOf([bar]);
    const first = new RegionTable(device, 1).regions[0];
    expect(first).toMatchObject({ size: 0x1000, write: true, flags: 3, offset: 0 });
    // Unchanged: the same frozen region again.
    expect(new RegionTable(device, 1).regions[0]).toBe(first);
    for (const change of [
      () => (bar.size = 0x2000),
      () => (bar.write = false),
      () => (bar.mmap = true),
      () => (bar.offset = vfioPciIndexToOffset(3)),
      () => (bar.sparseMmap = [{ offset: 0, size: 0x1000 }]),
      () => (bar.msixMappable = true),
    ]) {
      change();
      const now = new RegionTable(device, 1).regions[0];
      expect(now).toEqual({
        index: 0,
        size: bar.size,
        read: true,
        write: bar.write,
        mmap: bar.mmap,
        offset: bar.offset ?? 0,
        flags: 1 | (bar.write ? 2 : 0) | (bar.mmap ? 4 : 0),
        caps: now.caps,
        ...(bar.sparseMmap ? { sparseMmap: bar.sparseMmap } : {}),
        ...(bar.msixMappable ? { msixMappable: true } : {}),
      });
      expect(Object.isFrozen(now)).toBe(true);
    }
    expect(new RegionTable(device, 1).regions[0].caps.map((c) => c.id)).toEqual([1, 3]);
  });

  it('resolves one info object answered at two indexes at each of them', () => {
    const shared: RegionInfo = { index: 0, size: 0x100, read: true, write: false, mmap: false };
    const table = new RegionTable(deviceOf([shared, shared]), 2);
    expect(table.regions.map((r) => [r.index, r.offset])).toEqual([
      [0, vfioPciIndexToOffset(0)],
      [1, vfioPciIndexToOffset(1)],
    ]);
    expect(table.lookup(vfioPciIndexToOffset(1) + 4)?.index).toBe(1);
  });

  it('copies a region type into the chain at every open (the type object may change too)', () => {
    const type = { type: 0x80008086, subtype: 1 };
    const info: RegionInfo = { index: 9, size: 0x100, read: true, write: false, mmap: false, type };
    const infos = [...Array.from({ length: 9 }, () => undefined), info];
    const device = deviceOf(infos);
    expect(new RegionTable(device, 10).regions[9].caps).toEqual([{ id: 2, type: 0x80008086, subtype: 1 }]);
    type.subtype = 3;
    expect(new RegionTable(device, 10).regions[9].caps).toEqual([{ id: 2, type: 0x80008086, subtype: 3 }]);
  });
});
