import { readLe, VfioError, writeLe } from '@vfiokit/core';
import type { DeviceFile } from '@vfiokit/core/host';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegionTrap, type TrapFaults } from '../src/machine/address-map.js';
import { type AccessHandler, AddressMap, GuestMemory, Machine, MemoryHandler } from '../src/machine/index.js';
import { slot, TestDevice } from './machine-fixtures.js';

function tagged(tag: number): AccessHandler {
  return { read: (offset) => tag * 0x10000 + offset, write: () => {} };
}

describe('AddressMap', () => {
  it('finds the range holding an address by binary search and passes the offset inside it', () => {
    const map = new AddressMap('memory', 0x1_0000);
    map.add({ start: 0x4000, size: 0x1000, kind: 'trapped', owner: 'b', handler: tagged(2) });
    map.add({ start: 0x1000, size: 0x1000, kind: 'trapped', owner: 'a', handler: tagged(1) });
    expect(map.read(0x1004, 4)).toBe(0x10004);
    expect(map.read(0x4ffc, 4)).toBe(0x20ffc);
    expect(map.ranges().map((r) => r.owner)).toEqual(['a', 'b']);
  });

  it('refuses overlapping ranges with EEXIST and out-of-space ones with EINVAL', () => {
    const map = new AddressMap('io', 0x1_0000);
    map.add({ start: 0x100, size: 0x10, kind: 'trapped', owner: 'a', handler: tagged(1) });
    expect(() =>
      map.add({ start: 0x108, size: 0x10, kind: 'trapped', owner: 'b', handler: tagged(2) }),
    ).toThrow(/EEXIST.*overlaps a/);
    expect(() =>
      map.add({ start: 0xf8, size: 0x10, kind: 'trapped', owner: 'b', handler: tagged(2) }),
    ).toThrow(/EEXIST/);
    expect(() =>
      map.add({ start: 0xfff8, size: 0x10, kind: 'trapped', owner: 'c', handler: tagged(3) }),
    ).toThrow(/EINVAL/);
    expect(() => map.add({ start: 0x200, size: 0, kind: 'trapped', owner: 'c', handler: tagged(3) })).toThrow(
      /EINVAL/,
    );
  });

  it('answers all-ones for an access that runs past the end of its range and counts it', () => {
    const map = new AddressMap('memory', 0x1_0000);
    map.add({ start: 0x100, size: 4, kind: 'trapped', owner: 'a', handler: tagged(1) });
    expect(map.read(0x102, 4)).toBe(0xffffffff);
    map.write(0x103, 2, 0);
    expect(map.unclaimedReads).toBe(1);
    expect(map.unclaimedWrites).toBe(1);
  });

  it('serves an access in the last range found, and an access running past its end all-ones', () => {
    const map = new AddressMap('memory', 0x1_0000);
    const a = map.add({ start: 0x100, size: 8, kind: 'trapped', owner: 'a', handler: tagged(1) });
    const b = map.add({ start: 0x108, size: 8, kind: 'trapped', owner: 'b', handler: tagged(2) });
    expect(map.read(0x104, 4)).toBe(0x10004);
    // the last range found is `a`: these start in it and end past it
    expect(map.read(0x106, 4)).toBe(0xffffffff);
    expect(map.read(0x107, 2)).toBe(0xffff);
    map.write(0x105, 4, 0);
    expect(map.read(0x107, 1)).toBe(0x10007);
    // the next range, then back
    expect(map.read(0x108, 4)).toBe(0x20000);
    expect(map.read(0x10c, 4)).toBe(0x20004);
    expect(map.read(0x100, 4)).toBe(0x10000);
    expect(map.read(0x110, 1)).toBe(0xff);
    expect(map.unclaimedReads).toBe(3);
    expect(map.unclaimedWrites).toBe(1);
    expect([a.reads, b.reads, a.writes]).toEqual([3, 2, 0]);
  });

  it('forgets a removed range', () => {
    const map = new AddressMap('memory', 0x1_0000);
    const r = map.add({ start: 0x100, size: 4, kind: 'trapped', owner: 'a', handler: tagged(1) });
    expect(map.read(0x100, 1)).toBe(0x10000);
    map.remove(r);
    expect(map.read(0x100, 1)).toBe(0xff);
  });

  it('agrees with a linear search for any set of ranges and never throws on an access', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 0xfff0 }), fc.integer({ min: 1, max: 0x400 })), {
          maxLength: 24,
        }),
        fc.array(fc.tuple(fc.integer({ min: -8, max: 0x1_0008 }), fc.constantFrom(1, 2, 4)), {
          maxLength: 40,
        }),
        (specs, accesses) => {
          const map = new AddressMap('memory', 0x1_0000);
          const model: { start: number; size: number; tag: number }[] = [];
          specs.forEach(([start, size], tag) => {
            try {
              map.add({ start, size, kind: 'trapped', owner: `r${tag}`, handler: tagged(tag) });
              model.push({ start, size, tag });
            } catch (err) {
              expect(err).toBeInstanceOf(VfioError);
              const clash =
                start + size > 0x1_0000 ||
                model.some((m) => m.start < start + size && start < m.start + m.size);
              expect(clash).toBe(true);
            }
          });
          for (const [addr, size] of accesses) {
            const hit = model.find((m) => addr >= m.start && addr < m.start + m.size);
            const expected =
              hit && addr + size <= hit.start + hit.size
                ? hit.tag * 0x10000 + (addr - hit.start)
                : size === 4
                  ? 0xffffffff
                  : size === 2
                    ? 0xffff
                    : 0xff;
            expect(map.read(addr, size as 1 | 2 | 4)).toBe(expected);
            map.write(addr, size as 1 | 2 | 4, 0);
          }
        },
      ),
    );
  });
});

describe('RegionTrap in the map', () => {
  /** A device file whose region accesses (value accesses of its region ports) are recorded, and refused with EIO when `refuse` is set. */
  function fakeFile() {
    const calls: { op: string; region: number; offset: number; bytes: number[] }[] = [];
    const state = { refuse: false, value: [0x78, 0x56, 0x34, 0x12] };
    const refuse = (op: string, region: number) => {
      if (state.refuse) throw new VfioError('EIO', `device fake, region ${region}: ${op} refused.`);
    };
    const file = {
      regionPort: (region: number) => ({
        index: region,
        readValue: (offset: number, size: 1 | 2 | 4) => {
          refuse('read', region);
          const bytes = state.value.slice(0, size);
          calls.push({ op: 'read', region, offset, bytes });
          return readLe(Uint8Array.from(bytes), 0, size);
        },
        writeValue: (offset: number, size: 1 | 2 | 4, value: number) => {
          refuse('write', region);
          const bytes = new Uint8Array(size);
          writeLe(bytes, 0, size, value);
          calls.push({ op: 'write', region, offset, bytes: [...bytes] });
        },
      }),
    };
    return { file: file as unknown as DeviceFile, calls, state };
  }
  function faultLog() {
    const faults: { operation: string; region: number; offset: number; code: string }[] = [];
    const sink: TrapFaults = {
      fault: (err, operation, region, offset) =>
        faults.push({ operation, region, offset, code: (err as VfioError).code }),
    };
    return { faults, sink };
  }

  it('reads and writes each size at the region offset of the trapped part, little endian', () => {
    const { file, calls } = fakeFile();
    const { faults, sink } = faultLog();
    const map = new AddressMap('memory', 0x1_0000);
    const trap = new RegionTrap(sink, file, 3, 0x1000);
    const range = map.add({ start: 0x8000, size: 0x100, kind: 'trapped', owner: 'dev', handler: trap });
    expect(map.read(0x8010, 4)).toBe(0x12345678);
    expect(map.read(0x8014, 2)).toBe(0x5678);
    expect(map.read(0x80ff, 1)).toBe(0x78);
    map.write(0x8020, 4, 0xa1b2c3d4);
    map.write(0x8024, 2, 0x1beef);
    map.write(0x8026, 1, 0x1ee);
    expect(calls).toEqual([
      { op: 'read', region: 3, offset: 0x1010, bytes: [0x78, 0x56, 0x34, 0x12] },
      { op: 'read', region: 3, offset: 0x1014, bytes: [0x78, 0x56] },
      { op: 'read', region: 3, offset: 0x10ff, bytes: [0x78] },
      { op: 'write', region: 3, offset: 0x1020, bytes: [0xd4, 0xc3, 0xb2, 0xa1] },
      { op: 'write', region: 3, offset: 0x1024, bytes: [0xef, 0xbe] },
      { op: 'write', region: 3, offset: 0x1026, bytes: [0xee] },
    ]);
    expect([range.reads, range.writes]).toEqual([3, 3]);
    expect(faults).toEqual([]);
  });

  it('answers a refused read all-ones and drops a refused write, telling the fault with the region offset', () => {
    const { file, calls, state } = fakeFile();
    const { faults, sink } = faultLog();
    const map = new AddressMap('memory', 0x1_0000);
    map.add({
      start: 0x8000,
      size: 0x100,
      kind: 'trapped',
      owner: 'dev',
      handler: new RegionTrap(sink, file, 2, 0x40),
    });
    state.refuse = true;
    expect(map.read(0x8008, 4)).toBe(0xffffffff);
    expect(map.read(0x8008, 2)).toBe(0xffff);
    expect(map.read(0x8009, 1)).toBe(0xff);
    map.write(0x800c, 4, 1);
    map.write(0x800c, 2, 1);
    expect(faults).toEqual([
      { operation: 'read', region: 2, offset: 0x48, code: 'EIO' },
      { operation: 'read', region: 2, offset: 0x48, code: 'EIO' },
      { operation: 'read', region: 2, offset: 0x49, code: 'EIO' },
      { operation: 'write', region: 2, offset: 0x4c, code: 'EIO' },
      { operation: 'write', region: 2, offset: 0x4c, code: 'EIO' },
    ]);
    // the next access the device takes is served as before
    state.refuse = false;
    expect(map.read(0x8008, 4)).toBe(0x12345678);
    expect(calls).toEqual([{ op: 'read', region: 2, offset: 0x48, bytes: [0x78, 0x56, 0x34, 0x12] }]);
  });
});

describe('MemoryHandler and guest RAM', () => {
  it('reads and writes little-endian values of each size', () => {
    const bytes = new Uint8Array(16);
    const h = new MemoryHandler(bytes, 4, 8);
    h.write(0, 4, 0x11223344);
    h.write(4, 2, 0xaabb);
    h.write(6, 1, 0x1ff);
    expect([...bytes.subarray(4, 12)]).toEqual([0x44, 0x33, 0x22, 0x11, 0xbb, 0xaa, 0xff, 0]);
    expect(h.read(0, 4)).toBe(0x11223344);
    expect(h.read(2, 2)).toBe(0x1122);
  });

  it('allocates aligned buffers above 1 MiB and refuses what does not fit', () => {
    const ram = new GuestMemory(4 * 1024 * 1024);
    const a = ram.alloc(100);
    const b = ram.alloc(64, 64);
    expect(a).toBe(0x10_0000);
    expect(b % 64).toBe(0);
    expect(b).toBeGreaterThanOrEqual(a + 100);
    expect(() => ram.alloc(8 * 1024 * 1024)).toThrow(/ENOMEM/);
    expect(() => ram.alloc(16, 3)).toThrow(/EINVAL/);
    ram.resetAllocator();
    expect(ram.alloc(1)).toBe(0x10_0000);
  });

  it('faults RAM accesses outside the RAM with EFAULT and refuses RAM that reaches ECAM', () => {
    const ram = new GuestMemory(4 * 1024 * 1024);
    expect(() => ram.read(4 * 1024 * 1024 - 1, new Uint8Array(2))).toThrow(/EFAULT/);
    expect(() => ram.write(-1, new Uint8Array(1))).toThrow(/EFAULT/);
    expect(() => new GuestMemory(0xc000_0000)).toThrow(/EINVAL/);
    expect(() => new GuestMemory(12345)).toThrow(/EINVAL/);
  });
});

describe('MSIX_MAPPABLE', () => {
  it('maps the whole table BAR directly and reads the vector from the device-kept table', async () => {
    const m = new Machine({ ramSize: 16 * 1024 * 1024 });
    try {
      const dev = new TestDevice({ msix: { tableSize: 2, mappable: true } });
      m.attach({ device: dev, slot: slot(3), label: 'dev' });
      const [, d] = await m.probe();
      expect(d.interrupts.kind).toBe('msix');
      const r2 = m.report().devices[1].regions.find((r) => r.index === 2);
      expect(r2).toMatchObject({ mapping: 'direct' });
      expect(r2?.parts).toEqual([{ offset: 0, size: 0x1000, how: 'direct', reads: 0, writes: 8 }]);
      dev.raiseInterrupt(1);
      expect(m.guest.interrupts.count(d.interrupts.vectors[1])).toBe(1);
    } finally {
      m.close();
    }
  });
});
