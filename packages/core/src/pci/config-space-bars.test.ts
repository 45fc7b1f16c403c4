/**
 * ConfigSpace BARs and expansion ROM: sizing probes, programmed addresses and the refusals of
 * definitions that do not fit (the BAR rules ConfigLayout records in config-layout.ts).
 */
import { describe, expect, it } from 'vitest';
import { expectVfioError, space } from '../../test/config-space-helpers.js';
import type { ConfigSpace } from './config-space.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_1,
  PCI_BASE_ADDRESS_2,
  PCI_BASE_ADDRESS_3,
  PCI_BASE_ADDRESS_4,
  PCI_ROM_ADDRESS,
} from './constants.js';

describe('ConfigSpace BAR sizing', () => {
  function size32(cs: ConfigSpace, off: number): number {
    cs.writeU32(off, 0xffffffff);
    return cs.readU32(off);
  }

  it('answers a 32-bit memory BAR sizing probe with the size mask', () => {
    const cs = space();
    cs.defineBar({ index: 0, kind: 'mem32', size: 0x1000 });
    expect(size32(cs, PCI_BASE_ADDRESS_0)).toBe(0xfffff000);
  });

  it('keeps the prefetchable bit of a 32-bit memory BAR', () => {
    const cs = space();
    cs.defineBar({ index: 3, kind: 'mem32', size: 0x100000, prefetchable: true });
    expect(cs.readU32(PCI_BASE_ADDRESS_3)).toBe(0x8);
    expect(size32(cs, PCI_BASE_ADDRESS_3)).toBe(0xfff00008);
  });

  it('answers an I/O BAR sizing probe with the size mask and the I/O space bit', () => {
    const cs = space();
    cs.defineBar({ index: 1, kind: 'io', size: 8 });
    expect(cs.readU32(PCI_BASE_ADDRESS_1)).toBe(1);
    expect(size32(cs, PCI_BASE_ADDRESS_1)).toBe(0xfffffff9);
  });

  it('sizes a 64-bit BAR across both dwords', () => {
    const cs = space();
    cs.defineBar({ index: 2, kind: 'mem64', size: 0x4000, prefetchable: true });
    expect(cs.readU32(PCI_BASE_ADDRESS_2)).toBe(0xc);
    expect(size32(cs, PCI_BASE_ADDRESS_2)).toBe(0xffffc00c);
    expect(size32(cs, PCI_BASE_ADDRESS_3)).toBe(0xffffffff);
  });

  it('sizes a 64-bit BAR larger than 4 GiB in the upper dword', () => {
    const cs = space();
    cs.defineBar({ index: 0, kind: 'mem64', size: 2 ** 34 });
    expect(size32(cs, PCI_BASE_ADDRESS_0)).toBe(0x4);
    expect(size32(cs, PCI_BASE_ADDRESS_1)).toBe(0xfffffffc);
  });

  it('sizes the expansion ROM and keeps its enable bit writable', () => {
    const cs = space();
    cs.defineRom(0x8000);
    expect(size32(cs, PCI_ROM_ADDRESS)).toBe(0xffff8001);
    cs.writeU32(PCI_ROM_ADDRESS, 0xfeb00001);
    expect(cs.rom()).toEqual({ size: 0x8000, enabled: true, address: 0xfeb00000 });
    cs.writeU32(PCI_ROM_ADDRESS, 0xfeb00000);
    expect(cs.rom()?.enabled).toBe(false);
  });

  it('reads unimplemented BARs and ROM as 0 and ignores writes to them', () => {
    const cs = space();
    cs.defineBar({ index: 0, kind: 'mem64', size: 0x1000 });
    for (const off of [PCI_BASE_ADDRESS_2, PCI_BASE_ADDRESS_4, 0x24, PCI_ROM_ADDRESS]) {
      expect(size32(cs, off)).toBe(0);
    }
    expect(cs.barAddress(2)).toBeUndefined();
    expect(cs.rom()).toBeUndefined();
  });

  it('reports programmed BAR addresses, 64-bit halves combined', () => {
    const cs = space();
    cs.defineBar({ index: 0, kind: 'mem32', size: 0x1000 });
    cs.defineBar({ index: 1, kind: 'io', size: 16 });
    cs.defineBar({ index: 2, kind: 'mem64', size: 0x100000 });
    cs.writeU32(PCI_BASE_ADDRESS_0, 0xfebf1234);
    cs.writeU32(PCI_BASE_ADDRESS_1, 0xc043);
    cs.writeU32(PCI_BASE_ADDRESS_2, 0x80000000);
    cs.writeU32(PCI_BASE_ADDRESS_3, 0x4);
    expect(cs.barAddress(0)).toBe(0xfebf1000);
    expect(cs.barAddress(1)).toBe(0xc040);
    expect(cs.barAddress(2)).toBe(0x4_8000_0000);
    expect(cs.barAddress(3)).toBeUndefined();
    expect(cs.bars()).toEqual([
      { index: 0, kind: 'mem32', size: 0x1000, prefetchable: false },
      { index: 1, kind: 'io', size: 16, prefetchable: false },
      { index: 2, kind: 'mem64', size: 0x100000, prefetchable: false },
    ]);
  });

  it('refuses BARs that are not powers of two, too small, too large or misplaced', () => {
    const cs = space();
    expectVfioError(() => cs.defineBar({ index: 0, kind: 'mem32', size: 0x1800 }), 'EINVAL');
    expectVfioError(() => cs.defineBar({ index: 0, kind: 'mem32', size: 8 }), 'EINVAL');
    expectVfioError(() => cs.defineBar({ index: 0, kind: 'io', size: 2 }), 'EINVAL');
    expectVfioError(() => cs.defineBar({ index: 0, kind: 'io', size: 512 }), 'EINVAL');
    expectVfioError(() => cs.defineBar({ index: 0, kind: 'mem32', size: 2 ** 32 }), 'EINVAL');
    expectVfioError(() => cs.defineBar({ index: 5, kind: 'mem64', size: 0x1000 }), 'EINVAL');
    expectVfioError(() => cs.defineBar({ index: 6, kind: 'mem32', size: 0x1000 }), 'EINVAL');
    expectVfioError(() => cs.defineBar({ index: 0, kind: 'io', size: 16, prefetchable: true }), 'EINVAL');
    expectVfioError(() => cs.defineRom(0x400), 'EINVAL');
    expect(cs.bars()).toEqual([]);
  });

  it('refuses a BAR whose slot is taken, including the upper half of a 64-bit BAR', () => {
    const cs = space();
    cs.defineBar({ index: 2, kind: 'mem64', size: 0x1000 });
    expectVfioError(() => cs.defineBar({ index: 3, kind: 'mem32', size: 0x1000 }), 'EEXIST');
    expectVfioError(() => cs.defineBar({ index: 2, kind: 'io', size: 4 }), 'EEXIST');
    cs.defineBar({ index: 0, kind: 'mem32', size: 0x1000 });
    expectVfioError(() => cs.defineBar({ index: 0, kind: 'mem64', size: 0x1000 }), 'EEXIST');
    cs.defineRom(0x800);
    expectVfioError(() => cs.defineRom(0x800), 'EEXIST');
  });
});
