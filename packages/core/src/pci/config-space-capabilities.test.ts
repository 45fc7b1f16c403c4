/**
 * ConfigSpace's capability lists: placement from 0x40 and 0x100, linking, read-only headers,
 * device-defined fields and the refusals of placements that do not fit (config-layout.ts).
 */
import { describe, expect, it } from 'vitest';
import { expectVfioError, fullDevice, space } from '../../test/config-space-helpers.js';
import {
  extendedCapability,
  msiCapability,
  pciExpressCapability,
  powerManagementCapability,
  vendorCapability,
} from './capabilities.js';
import {
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_PM,
  PCI_CAP_ID_VNDR,
  PCI_CAPABILITY_LIST,
  PCI_EXT_CAP_ID_DSN,
  PCI_EXT_CAP_ID_VNDR,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
} from './constants.js';
import { walkCapabilities, walkExtendedCapabilities } from './walk.js';

describe('ConfigSpace capabilities', () => {
  it('places capabilities from 0x40, 4-byte aligned, and links them through 0x34', () => {
    const cs = space();
    const pm = cs.addCapability(powerManagementCapability());
    const msi = cs.addCapability(msiCapability({ vectors: 1, addr64: false, perVectorMask: false }));
    const vndr = cs.addCapability(vendorCapability(new Uint8Array([0xaa])));
    expect(pm).toBe(0x40);
    expect(msi).toBe(0x48); // PM is 8 bytes
    expect(vndr).toBe(0x54); // MSI 32-bit without masking is 10 bytes, rounded up to 12
    expect(cs.readU8(PCI_CAPABILITY_LIST)).toBe(0x40);
    expect(cs.readU16(PCI_STATUS) & PCI_STATUS_CAP_LIST).toBe(PCI_STATUS_CAP_LIST);
    expect([cs.readU8(0x40), cs.readU8(0x41)]).toEqual([PCI_CAP_ID_PM, 0x48]);
    expect([cs.readU8(0x48), cs.readU8(0x49)]).toEqual([PCI_CAP_ID_MSI, 0x54]);
    expect([cs.readU8(0x54), cs.readU8(0x55), cs.readU8(0x56), cs.readU8(0x57)]).toEqual([
      PCI_CAP_ID_VNDR,
      0,
      4,
      0xaa,
    ]);
    expect(cs.capabilities()).toEqual([
      { id: PCI_CAP_ID_PM, offset: 0x40, length: 8 },
      { id: PCI_CAP_ID_MSI, offset: 0x48, length: 10 },
      { id: PCI_CAP_ID_VNDR, offset: 0x54, length: 4 },
    ]);
  });

  it('walks to the same list the builder recorded', () => {
    const cs = fullDevice();
    const walked = walkCapabilities((o) => cs.readU8(o), cs.size);
    expect(walked).toEqual({
      ok: true,
      capabilities: cs.capabilities().map(({ id, offset }) => ({ id, offset })),
    });
    const ext = walkExtendedCapabilities((o) => cs.readU32(o), cs.size);
    expect(ext).toEqual({
      ok: true,
      capabilities: cs.extendedCapabilities().map(({ id, offset, version }) => ({ id, offset, version })),
    });
  });

  it('keeps next pointers and capability ids read-only whatever the masks say', () => {
    const cs = space();
    const cap = vendorCapability(new Uint8Array(2));
    cap.writeMask?.fill(0xff);
    const at = cs.addCapability(cap);
    cs.writeU16(at, 0xffff);
    expect(cs.readU16(at)).toBe(PCI_CAP_ID_VNDR);
    cs.writeU8(at + 3, 0x5a);
    expect(cs.readU8(at + 3)).toBe(0x5a);
  });

  it('places a capability at a chosen offset and keeps the list in order of addition', () => {
    const cs = space();
    cs.addCapability(msiCapability({ vectors: 1, addr64: true, perVectorMask: false }), 0xac);
    cs.addCapability(powerManagementCapability(), 0xd0);
    const exp = cs.addCapability(pciExpressCapability({ type: 'rc-integrated' }));
    expect(exp).toBe(0x40);
    expect(cs.readU8(PCI_CAPABILITY_LIST)).toBe(0xac);
    expect(cs.readU8(0xad)).toBe(0xd0);
    expect(cs.readU8(0xd1)).toBe(0x40);
    expect(cs.readU8(0x41)).toBe(0);
  });

  it('refuses overlapping, misaligned and oversize placements', () => {
    const cs = space();
    cs.addCapability(powerManagementCapability(), 0x50);
    expectVfioError(() => cs.addCapability(powerManagementCapability(), 0x54), 'EBUSY');
    expectVfioError(() => cs.addCapability(powerManagementCapability(), 0x62), 'EINVAL');
    expectVfioError(() => cs.addCapability(powerManagementCapability(), 0x3c), 'EINVAL');
    expectVfioError(() => cs.addCapability(powerManagementCapability(), 0xfc), 'EINVAL');
    expectVfioError(() => cs.addCapability(vendorCapability(new Uint8Array(200))), 'ENOSPC');
    expect(cs.capabilities()).toHaveLength(1);
  });

  it('skips fields the device defined when placing capabilities', () => {
    const cs = space();
    cs.defineField(0x40, new Uint8Array(4));
    expect(cs.addCapability(powerManagementCapability())).toBe(0x44);
    expectVfioError(() => cs.defineField(0x48, new Uint8Array(1)), 'EBUSY');
    expectVfioError(() => cs.defineField(0x3c, new Uint8Array(4)), 'EINVAL');
  });

  it('applies the masks of a device-defined field', () => {
    const cs = space();
    cs.defineField(0xf0, new Uint8Array([0x11, 0x22]), {
      writeMask: new Uint8Array([0xf0, 0]),
      rw1cMask: new Uint8Array([0, 0x02]),
    });
    cs.writeU16(0xf0, 0xffff);
    expect(cs.readU16(0xf0)).toBe(0x20f1);
  });

  it('refuses extended capabilities in a 256-byte space', () => {
    const cs = space(256);
    expectVfioError(() => cs.addExtendedCapability(extendedCapability(1, 1, new Uint8Array(4))), 'EINVAL');
  });

  it('places extended capabilities from 0x100 and links their 32-bit headers', () => {
    const cs = space(4096);
    const a = cs.addExtendedCapability(extendedCapability(PCI_EXT_CAP_ID_DSN, 1, new Uint8Array(8)));
    const b = cs.addExtendedCapability(extendedCapability(PCI_EXT_CAP_ID_VNDR, 2, new Uint8Array(6)));
    const c = cs.addExtendedCapability(extendedCapability(0x23, 1, new Uint8Array(0)), 0x400);
    expect([a, b, c]).toEqual([0x100, 0x10c, 0x400]);
    expect(cs.readU32(0x100)).toBe((0x10c << 20) | (1 << 16) | PCI_EXT_CAP_ID_DSN);
    expect(cs.readU32(0x10c)).toBe(((0x400 << 20) | (2 << 16) | PCI_EXT_CAP_ID_VNDR) >>> 0);
    expect(cs.readU32(0x400)).toBe((1 << 16) | 0x23);
    cs.writeU32(0x100, 0);
    expect(cs.readU32(0x100)).toBe((0x10c << 20) | (1 << 16) | PCI_EXT_CAP_ID_DSN);
  });

  it('requires the first extended capability at 0x100', () => {
    const cs = space(4096);
    expectVfioError(
      () => cs.addExtendedCapability(extendedCapability(1, 1, new Uint8Array(4)), 0x200),
      'EINVAL',
    );
    cs.defineField(0x100, new Uint8Array(4));
    expectVfioError(() => cs.addExtendedCapability(extendedCapability(1, 1, new Uint8Array(4))), 'EBUSY');
  });

  it('refuses a standard capability with a version and masks of the wrong length', () => {
    const cs = space(4096);
    expectVfioError(() => cs.addCapability(extendedCapability(1, 1, new Uint8Array(4))), 'EINVAL');
    expectVfioError(
      () => cs.addCapability({ id: 9, bytes: new Uint8Array(4), writeMask: new Uint8Array(3) }),
      'EINVAL',
    );
    expectVfioError(() => cs.addCapability({ id: 0x100, bytes: new Uint8Array(4) }), 'EINVAL');
    expectVfioError(() => cs.addCapability({ id: 9, bytes: new Uint8Array(1) }), 'EINVAL');
  });
});
