import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VfioError } from '../errors.js';
import {
  type CapabilityBody,
  extendedCapability,
  msiCapability,
  msiCapabilitySize,
  msixCapability,
  pciExpressCapability,
  powerManagementCapability,
  vendorCapability,
} from './capabilities.js';
import {
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_CAP_ID_VNDR,
  PCI_EXP_DEVCTL,
  PCI_EXP_DEVSTA,
  PCI_EXP_FLAGS,
  PCI_EXP_LNKCAP,
  PCI_EXP_LNKSTA,
  PCI_MSI_FLAGS,
  PCI_PM_CTRL,
  PCI_PM_PMC,
} from './constants.js';

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) => (u16(b, o) | (u16(b, o + 2) << 16)) >>> 0;

/** Field offset → [value, write mask] of a 16/32-bit field, read from a built capability. */
function field16(cap: CapabilityBody, o: number): [number, number, number] {
  return [
    u16(cap.bytes, o),
    u16(cap.writeMask ?? new Uint8Array(64), o),
    u16(cap.rw1cMask ?? new Uint8Array(64), o),
  ];
}
function field32(cap: CapabilityBody, o: number): [number, number] {
  return [u32(cap.bytes, o), u32(cap.writeMask ?? new Uint8Array(64), o)];
}

function expectEinval(fn: () => unknown): void {
  expect(fn).toThrow(VfioError);
  try {
    fn();
  } catch (err) {
    expect((err as VfioError).code).toBe('EINVAL');
  }
}

describe('powerManagementCapability', () => {
  it('is an 8-byte version-3 PM capability with only PowerState writable', () => {
    const cap = powerManagementCapability();
    expect(cap.id).toBe(PCI_CAP_ID_PM);
    expect(cap.bytes.length).toBe(8);
    expect(cap.bytes[0]).toBe(PCI_CAP_ID_PM);
    expect(field16(cap, PCI_PM_PMC)).toEqual([0x0003, 0, 0]);
    expect(field16(cap, PCI_PM_CTRL)).toEqual([0x0008, 0x0003, 0]);
  });
});

describe('msiCapability', () => {
  // PCI Local Bus Specification 3.0 §6.8.1, figure 6-9: the four MSI layouts
  const layouts = [
    { addr64: false, perVectorMask: false, size: 0x0a, data: 0x08 },
    { addr64: true, perVectorMask: false, size: 0x0e, data: 0x0c },
    { addr64: false, perVectorMask: true, size: 0x14, data: 0x08, mask: 0x0c, pending: 0x10 },
    { addr64: true, perVectorMask: true, size: 0x18, data: 0x0c, mask: 0x10, pending: 0x14 },
  ];

  for (const l of layouts) {
    it(`lays out a ${l.addr64 ? '64' : '32'}-bit MSI capability ${l.perVectorMask ? 'with' : 'without'} masking per the spec`, () => {
      const cap = msiCapability({ vectors: 16, addr64: l.addr64, perVectorMask: l.perVectorMask });
      expect(cap.id).toBe(PCI_CAP_ID_MSI);
      expect(cap.bytes.length).toBe(l.size);
      expect(msiCapabilitySize(l.addr64, l.perVectorMask)).toBe(l.size);
      const flags = (4 << 1) | (l.addr64 ? 0x80 : 0) | (l.perVectorMask ? 0x100 : 0);
      expect(field16(cap, PCI_MSI_FLAGS)).toEqual([flags, 0x0071, 0]);
      expect(field32(cap, 4)).toEqual([0, 0xfffffffc]);
      if (l.addr64) expect(field32(cap, 8)).toEqual([0, 0xffffffff]);
      expect(field16(cap, l.data)).toEqual([0, 0xffff, 0]);
      if (l.mask !== undefined && l.pending !== undefined) {
        expect(field32(cap, l.mask)).toEqual([0, 0xffff]);
        expect(field32(cap, l.pending)).toEqual([0, 0]);
      }
    });
  }

  it('encodes Multiple Message Capable and the implemented mask bits for each vector count', () => {
    for (const [vectors, mmc] of [
      [1, 0],
      [2, 1],
      [4, 2],
      [8, 3],
      [16, 4],
      [32, 5],
    ] as const) {
      const cap = msiCapability({ vectors, addr64: false, perVectorMask: true });
      expect((u16(cap.bytes, PCI_MSI_FLAGS) >> 1) & 7).toBe(mmc);
      expect(u32(cap.writeMask ?? new Uint8Array(), 0x0c)).toBe(
        vectors === 32 ? 0xffffffff : 2 ** vectors - 1,
      );
    }
  });

  it('refuses a vector count that is not a power of two up to 32', () => {
    for (const vectors of [0, 3, 64, 1.5]) {
      expectEinval(() => msiCapability({ vectors: vectors as 1, addr64: false, perVectorMask: false }));
    }
  });
});

describe('msixCapability', () => {
  it('encodes table size N-1, table and PBA as offset|BIR, enable and function mask writable', () => {
    const cap = msixCapability({
      tableSize: 2048,
      tableBar: 4,
      tableOffset: 0x10000,
      pbaBar: 5,
      pbaOffset: 0x18,
    });
    expect(cap.id).toBe(PCI_CAP_ID_MSIX);
    expect(cap.bytes.length).toBe(12);
    expect(field16(cap, 2)).toEqual([0x07ff, 0xc000, 0]);
    expect(field32(cap, 4)).toEqual([0x10004, 0]);
    expect(field32(cap, 8)).toEqual([0x1d, 0]);
  });

  it('refuses bad table sizes, BAR indexes and unaligned offsets', () => {
    const ok = { tableSize: 4, tableBar: 0, tableOffset: 0, pbaBar: 0, pbaOffset: 0x100 };
    expectEinval(() => msixCapability({ ...ok, tableSize: 0 }));
    expectEinval(() => msixCapability({ ...ok, tableSize: 2049 }));
    expectEinval(() => msixCapability({ ...ok, tableBar: 6 }));
    expectEinval(() => msixCapability({ ...ok, pbaBar: -1 }));
    expectEinval(() => msixCapability({ ...ok, tableOffset: 4 }));
    expectEinval(() => msixCapability({ ...ok, pbaOffset: 2 ** 32 }));
  });
});

describe('pciExpressCapability', () => {
  it('builds a version-2 endpoint with a x1 2.5 GT/s link', () => {
    const cap = pciExpressCapability({ type: 'endpoint' });
    expect(cap.id).toBe(PCI_CAP_ID_EXP);
    expect(cap.bytes.length).toBe(0x3c);
    expect(field16(cap, PCI_EXP_FLAGS)).toEqual([0x0002, 0, 0]);
    expect(field16(cap, PCI_EXP_DEVCTL)).toEqual([0x2810, 0x78ff, 0]);
    expect(field16(cap, PCI_EXP_DEVSTA)).toEqual([0, 0, 0x000f]);
    expect(field32(cap, PCI_EXP_LNKCAP)).toEqual([0x11, 0]);
    expect(field16(cap, PCI_EXP_LNKSTA)).toEqual([0x0011, 0, 0]);
  });

  it('builds a root-complex integrated endpoint without link registers', () => {
    const cap = pciExpressCapability({ type: 'rc-integrated' });
    expect(u16(cap.bytes, PCI_EXP_FLAGS)).toBe(0x0092);
    expect(Array.from(cap.bytes.subarray(0x0c, 0x14))).toEqual(new Array(8).fill(0));
    expect(Array.from(cap.bytes.subarray(0x2c, 0x3c))).toEqual(new Array(16).fill(0));
  });

  it('refuses other device types', () => {
    expectEinval(() => pciExpressCapability({ type: 'root-port' as 'endpoint' }));
  });
});

describe('vendorCapability', () => {
  it('writes the id, the total length and the body, with body masks placed after the header', () => {
    const cap = vendorCapability(new Uint8Array([7, 8]), { rw1cMask: new Uint8Array([0, 1]) });
    expect(cap.id).toBe(PCI_CAP_ID_VNDR);
    expect(Array.from(cap.bytes)).toEqual([PCI_CAP_ID_VNDR, 0, 5, 7, 8]);
    expect(Array.from(cap.rw1cMask ?? [])).toEqual([0, 0, 0, 0, 1]);
  });

  it('refuses a body too long for the length byte and masks of another length', () => {
    expect(vendorCapability(new Uint8Array(252)).bytes[2]).toBe(255);
    expectEinval(() => vendorCapability(new Uint8Array(253)));
    expectEinval(() => vendorCapability(new Uint8Array(2), { writeMask: new Uint8Array(3) }));
  });
});

describe('extendedCapability', () => {
  it('reserves a zero 4-byte header and carries id and version', () => {
    const cap = extendedCapability(0x0b, 1, new Uint8Array([1, 2, 3, 4]), {
      writeMask: new Uint8Array([0, 0xff, 0, 0]),
    });
    expect(cap.id).toBe(0x0b);
    expect(cap.version).toBe(1);
    expect(Array.from(cap.bytes)).toEqual([0, 0, 0, 0, 1, 2, 3, 4]);
    expect(Array.from(cap.writeMask ?? [])).toEqual([0, 0, 0, 0, 0, 0xff, 0, 0]);
  });

  it('refuses ids and versions that do not fit the header', () => {
    expectEinval(() => extendedCapability(0x10000, 1, new Uint8Array(0)));
    expectEinval(() => extendedCapability(1, 16, new Uint8Array(0)));
    expectEinval(() => extendedCapability(1, -1, new Uint8Array(0)));
  });

  it('throws only VfioError for any id, version and body', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -5, max: 0x20000 }),
        fc.integer({ min: -2, max: 20 }),
        fc.uint8Array({ maxLength: 64 }),
        (id, version, body) => {
          try {
            const cap = extendedCapability(id, version, body);
            return cap.bytes.length === body.length + 4;
          } catch (err) {
            return err instanceof VfioError;
          }
        },
      ),
    );
  });
});
