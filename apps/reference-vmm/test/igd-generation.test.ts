import * as gvtd from '@vfiokit/gvt-d';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EmulatedConfig } from '../src/machine/emulated-config.js';
import {
  igdBdsmRegister,
  igdGeneration,
  igdGms,
  igdOverrideGms,
  igdStolenSize,
} from '../src/machine/igd/generation.js';

describe("the VMM's IGD generation table (qemu igd_gen)", () => {
  it('agrees with the device side (gvt-d, an independent copy) on every device ID', () => {
    for (let id = 0; id <= 0xffff; id++) expect(igdGeneration(id)).toBe(gvtd.igdGeneration(id));
  });

  it('names the generations of real IDs: SNB 6, HSW 7, BDW 8, SKL/KBL/APL 9, ICL 11, TGL/ADL 12, else -1', () => {
    expect(
      [0x0102, 0x0412, 0x1616, 0x1912, 0x5916, 0x5a84, 0x0a84, 0x8a52, 0x9a49, 0x4680, 0x2e12].map(
        igdGeneration,
      ),
    ).toEqual([6, 7, 8, 9, 9, 9, 9, 11, 12, 12, -1]);
  });

  it('sizes stolen memory like the device side for any GGC and generation (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(-1, 6, 7, 8, 9, 11, 12),
        fc.integer({ min: 0, max: 0xffffffff }),
        (gen, ggc) => {
          expect(igdStolenSize(gen, ggc)).toBe(gvtd.igdStolenMemorySize(gen, ggc));
          expect(igdGms(gen, ggc)).toBe(gvtd.igdGms(gen, ggc));
        },
      ),
    );
  });

  it('uses 32 MiB steps, and 4 MiB steps for GMS 0xf0-0xfe from gen 9', () => {
    expect(igdStolenSize(9, 0x0200)).toBe(64 << 20);
    expect(igdStolenSize(9, 0xf000)).toBe(4 << 20);
    expect(igdStolenSize(9, 0xfe00)).toBe(60 << 20);
    expect(igdStolenSize(8, 0xf000)).toBe(0xf0 * 32 * 2 ** 20);
    expect(igdStolenSize(6, 0x0018)).toBe(3 * 32 * 2 ** 20);
    expect(igdStolenSize(-1, 0xffff)).toBe(0);
  });

  it('puts BDSM at 0x5c (4 bytes) before gen 11 and at 0xc0 (8 bytes) from gen 11', () => {
    expect(igdBdsmRegister(9)).toEqual({ offset: 0x5c, size: 4 });
    expect(igdBdsmRegister(11)).toEqual({ offset: 0xc0, size: 8 });
  });

  it('accepts and refuses GMS overrides exactly as the device side does (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(-1, 6, 7, 8, 9, 11, 12),
        fc.integer({ min: -2, max: 0x110 }),
        fc.integer({ min: 0, max: 0xffff }),
        (gen, gms, ggc) => {
          let mine: number | string;
          let theirs: number | string;
          try {
            mine = igdOverrideGms(gen, gms, ggc, 'igd');
          } catch (err) {
            mine = 'refused';
            expect(err).toBeInstanceOf(Error);
            expect((err as { code?: string }).code).toBe('EINVAL');
          }
          try {
            theirs = gvtd.igdOverrideGms(gen, gms, ggc);
          } catch {
            theirs = 'refused';
          }
          expect(mine).toBe(theirs);
        },
      ),
    );
  });
});

describe('emulated config bytes (QEMU emulated_config_bits)', () => {
  it('answers emulated bytes and passes the others through from the device', () => {
    const e = new EmulatedConfig(256);
    e.emulate(0xfc, new Uint8Array([1, 2, 3, 4]), true);
    expect(e.covers(0xf8, 4)).toBe(false);
    expect(e.covers(0xfa, 4)).toBe(true);
    expect(e.merge(0xfc, 4, 0xdeadbeef)).toBe(0x04030201);
    expect(e.merge(0xfa, 4, 0xdeadbeef)).toBe(0x0201beef);
  });

  it('takes writes only into writable emulated bytes', () => {
    const e = new EmulatedConfig(256);
    e.emulate(0x50, new Uint8Array([0xc1, 0x01, 0, 0]), false);
    e.emulate(0x5c, new Uint8Array(4), true);
    e.write(0x50, 4, 0);
    e.write(0x5c, 4, 0x8b000000);
    expect(e.read(0x50, 4)).toBe(0x01c1);
    expect(e.read(0x5c, 4)).toBe(0x8b000000);
  });

  it('refuses to emulate bytes outside config space', () => {
    expect(() => new EmulatedConfig(256).emulate(0xfe, new Uint8Array(4), true)).toThrow(
      /outside|cannot emulate/,
    );
  });

  it('never changes a non-emulated bit of a read, and a write never touches non-emulated bytes (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 252 }),
        fc.constantFrom(1 as const, 2 as const, 4 as const),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (offset, size, device, value) => {
          const e = new EmulatedConfig(256);
          e.emulate(0xfc, new Uint8Array(4), true);
          e.emulate(0x5c, new Uint8Array(4), false);
          const before = e.value.slice();
          const merged = e.merge(offset, size, device >>> 0);
          for (let i = 0; i < size; i++) {
            const a = offset + i;
            const byte = Math.floor(merged / 256 ** i) % 256;
            const expected = e.emulated[a] ? e.value[a] : Math.floor((device >>> 0) / 256 ** i) % 256;
            expect(byte).toBe(expected);
          }
          e.write(offset, size, value);
          for (let a = 0; a < 256; a++) if (!(e.emulated[a] & e.wmask[a])) expect(e.value[a]).toBe(before[a]);
        },
      ),
    );
  });
});
