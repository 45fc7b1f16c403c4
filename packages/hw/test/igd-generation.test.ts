import { VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { igdBdsmRegister, igdGeneration, igdGms, igdOverrideGms, igdStolenMemorySize } from '../src/index.js';

const MiB = 1 << 20;

describe('igdGeneration (qemu igd_gen)', () => {
  it.each([
    [0x0166, 6, 'Ivy Bridge HD 4000'],
    [0x0412, 7, 'Haswell HD 4600'],
    [0x0a16, 7, 'Haswell-ULT HD 4400'],
    [0x0f31, 7, 'Bay Trail'],
    [0x1616, 8, 'Broadwell HD 5500'],
    [0x22b0, 8, 'Cherryview'],
    [0x1912, 9, 'Skylake HD 530'],
    [0x5916, 9, 'Kaby Lake HD 620'],
    [0x3e92, 9, 'Coffee Lake UHD 630'],
    [0x9bc5, 9, 'Comet Lake UHD 630'],
    [0x3185, 9, 'Gemini Lake'],
    [0x8a52, 11, 'Ice Lake'],
    [0x4e55, 11, 'Jasper Lake'],
    [0x9a49, 12, 'Tiger Lake Iris Xe'],
    [0x4c8a, 12, 'Rocket Lake'],
    [0x4680, 12, 'Alder Lake-S'],
    [0xa7a0, 12, 'Raptor Lake-P'],
    [0x2772, -1, '945G (unknown to QEMU)'],
    [0x2a42, -1, 'GM45 (unknown to QEMU)'],
    [0x7d55, -1, 'Meteor Lake (unknown to QEMU)'],
  ])('maps 8086:%s to generation %s (%s)', (id, gen) => {
    expect(igdGeneration(id)).toBe(gen);
  });

  it('matches Broxton/Apollo Lake (bits 11..1 = 0xa84) before the Haswell 0x0a prefix', () => {
    for (const id of [0x0a84, 0x1a84, 0x1a85, 0x5a84, 0x5a85]) expect(igdGeneration(id)).toBe(9);
    expect(igdGeneration(0x0a86)).toBe(7);
  });
});

describe('stolen memory from GGC (qemu igd_stolen_memory_size)', () => {
  it('reads GMS from bits 7..3 before gen 8 and bits 15..8 from gen 8', () => {
    expect(igdGms(7, 0x0058)).toBe(0x0b);
    expect(igdGms(9, 0x0258)).toBe(0x02);
  });

  it('counts 32 MiB per GMS step before gen 9', () => {
    expect(igdStolenMemorySize(6, 5 << 3)).toBe(160 * MiB);
    expect(igdStolenMemorySize(8, 0x0100)).toBe(32 * MiB);
  });

  it('counts 4 MiB steps for GMS 0xf0..0xfe from gen 9, and 32 MiB below', () => {
    expect(igdStolenMemorySize(9, 0x01c1)).toBe(32 * MiB);
    expect(igdStolenMemorySize(9, 0xf0c1)).toBe(4 * MiB);
    expect(igdStolenMemorySize(12, 0xfe00)).toBe(60 * MiB);
    expect(igdStolenMemorySize(11, 0x4000)).toBe(64 * 32 * MiB);
  });

  it('gives an unknown generation no stolen memory', () => {
    expect(igdStolenMemorySize(-1, 0xffff)).toBe(0);
  });

  it('puts BDSM at the dword 0x5c before gen 11 and the qword 0xc0 from gen 11', () => {
    expect(igdBdsmRegister(9)).toEqual({ offset: 0x5c, size: 4 });
    expect(igdBdsmRegister(-1)).toEqual({ offset: 0x5c, size: 4 });
    expect(igdBdsmRegister(11)).toEqual({ offset: 0xc0, size: 8 });
    expect(igdBdsmRegister(12)).toEqual({ offset: 0xc0, size: 8 });
  });
});

describe('x-igd-gms override (qemu vfio_pci_igd_override_gms)', () => {
  it('replaces GMS and keeps the other GGC bits', () => {
    expect(igdOverrideGms(9, 0xf1, 0x01c1)).toBe(0xf1c1);
    expect(igdOverrideGms(7, 0x10, 0x0003)).toBe(0x0083);
  });

  it('refuses values outside the per-generation ranges with EINVAL', () => {
    for (const [gen, gms] of [
      [7, 0x11],
      [8, 0x41],
      [9, 0x41],
      [9, 0xff],
      [-1, 1],
    ]) {
      const err = (() => {
        try {
          igdOverrideGms(gen, gms, 0);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(VfioError);
      expect((err as VfioError).code).toBe('EINVAL');
    }
  });

  it('never throws anything but VfioError and keeps GMS decoding consistent', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(-1, 6, 7, 8, 9, 11, 12),
        fc.integer({ min: 0, max: 0x1ff }),
        fc.integer({ min: 0, max: 0xffff }),
        (gen, gms, ggc) => {
          let out: number;
          try {
            out = igdOverrideGms(gen, gms, ggc);
          } catch (e) {
            expect(e).toBeInstanceOf(VfioError);
            return;
          }
          expect(igdGms(gen, out)).toBe(gms);
        },
      ),
    );
  });
});

describe('the generation table against real device IDs', () => {
  it('names SNB 6, HSW 7, BDW 8, SKL/KBL/APL 9, ICL 11, TGL/ADL 12, else -1', () => {
    expect(
      [0x0102, 0x0412, 0x1616, 0x1912, 0x5916, 0x5a84, 0x0a84, 0x8a52, 0x9a49, 0x4680, 0x2e12].map(
        igdGeneration,
      ),
    ).toEqual([6, 7, 8, 9, 9, 9, 9, 11, 12, 12, -1]);
  });

  it('uses 32 MiB steps, and 4 MiB steps for GMS 0xf0-0xfe from gen 9', () => {
    expect(igdStolenMemorySize(9, 0x0200)).toBe(64 * MiB);
    expect(igdStolenMemorySize(9, 0xfe00)).toBe(60 * MiB);
    expect(igdStolenMemorySize(8, 0xf000)).toBe(0xf0 * 32 * MiB);
    expect(igdStolenMemorySize(6, 0x0018)).toBe(3 * 32 * MiB);
  });

  it('names the device in a refused GMS override, and says which values fit', () => {
    expect(() => igdOverrideGms(9, 0x50, 0x01c1, '00:02.0')).toThrow(
      /GMS override 80 does not suit an IGD of generation 9/,
    );
    let err: unknown;
    try {
      igdOverrideGms(8, 0x41, 0, '00:02.0');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VfioError);
    expect((err as VfioError).code).toBe('EINVAL');
    expect((err as VfioError).message).toContain('00:02.0');
    expect((err as VfioError).message).toContain('0x40');
  });
});
