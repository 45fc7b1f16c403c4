/**
 * ConfigSpace's behaviour, one describe per part (header, BAR sizing, capabilities, MSI and
 * MSI-X state, write listeners, reset and snapshot, properties); past 600 lines because it
 * follows the one class of config-space.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VfioError } from '../errors.js';
import {
  extendedCapability,
  msiCapability,
  msixCapability,
  pciExpressCapability,
  powerManagementCapability,
  vendorCapability,
} from './capabilities.js';
import { ConfigSpace, type PciIdentity } from './config-space.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_1,
  PCI_BASE_ADDRESS_2,
  PCI_BASE_ADDRESS_3,
  PCI_BASE_ADDRESS_4,
  PCI_CACHE_LINE_SIZE,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PM,
  PCI_CAP_ID_VNDR,
  PCI_CAPABILITY_LIST,
  PCI_CLASS_REVISION,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_PARITY,
  PCI_COMMAND_SERR,
  PCI_DEVICE_ID,
  PCI_EXT_CAP_ID_DSN,
  PCI_EXT_CAP_ID_VNDR,
  PCI_HEADER_TYPE,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_MSI_FLAGS,
  PCI_MSIX_FLAGS,
  PCI_ROM_ADDRESS,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_DETECTED_PARITY,
  PCI_STATUS_INTERRUPT,
  PCI_STATUS_REC_MASTER_ABORT,
  PCI_STATUS_SIG_TARGET_ABORT,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from './constants.js';
import { walkCapabilities, walkExtendedCapabilities } from './walk.js';

const identity: PciIdentity = {
  vendorId: 0x8086,
  deviceId: 0x5912,
  subsystemVendorId: 0x1af4,
  subsystemId: 0x1100,
  classCode: 0x030000,
  revision: 0x04,
  interruptPin: 1,
};

function space(size: 256 | 4096 = 256): ConfigSpace {
  return new ConfigSpace({ identity, size, name: 'test-dev' });
}

function expectVfioError(fn: () => unknown, code: string): VfioError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VfioError);
    expect((err as VfioError).code).toBe(code);
    return err as VfioError;
  }
  throw new Error('expected a VfioError');
}

/** A device like the ones plugins build: BARs of every kind, a ROM and the usual capabilities. */
function fullDevice(): ConfigSpace {
  const cs = space(4096);
  cs.defineBar({ index: 0, kind: 'mem32', size: 0x1000 });
  cs.defineBar({ index: 1, kind: 'io', size: 8 });
  cs.defineBar({ index: 2, kind: 'mem64', size: 0x10000000, prefetchable: true });
  cs.defineBar({ index: 4, kind: 'mem64', size: 0x4000 });
  cs.defineRom(0x10000);
  cs.addCapability(powerManagementCapability());
  cs.addCapability(msiCapability({ vectors: 4, addr64: true, perVectorMask: true }));
  cs.addCapability(pciExpressCapability({ type: 'endpoint' }));
  cs.addCapability(
    msixCapability({ tableSize: 16, tableBar: 0, tableOffset: 0x800, pbaBar: 0, pbaOffset: 0xc00 }),
  );
  cs.addCapability(vendorCapability(new Uint8Array([1, 2, 3]), { writeMask: new Uint8Array([0, 0xff, 0]) }));
  cs.addExtendedCapability(extendedCapability(PCI_EXT_CAP_ID_DSN, 1, new Uint8Array(8)));
  cs.addExtendedCapability(
    extendedCapability(PCI_EXT_CAP_ID_VNDR, 1, new Uint8Array(8), {
      writeMask: new Uint8Array([0, 0, 0, 0, 0xff, 0xff, 0, 0]),
      rw1cMask: new Uint8Array([0, 0, 0, 0, 0, 0, 0x0f, 0]),
    }),
  );
  cs.defineField(0xfc, new Uint8Array(4), { writeMask: new Uint8Array([0xff, 0xff, 0xff, 0xff]) });
  return cs;
}

describe('ConfigSpace header', () => {
  it('lays out the identity at the pci_regs.h offsets', () => {
    const cs = space();
    expect(cs.readU16(PCI_VENDOR_ID)).toBe(0x8086);
    expect(cs.readU16(PCI_DEVICE_ID)).toBe(0x5912);
    expect(cs.readU32(PCI_CLASS_REVISION)).toBe(0x03000004);
    expect(cs.readU16(PCI_SUBSYSTEM_VENDOR_ID)).toBe(0x1af4);
    expect(cs.readU16(PCI_SUBSYSTEM_ID)).toBe(0x1100);
    expect(cs.readU8(PCI_HEADER_TYPE)).toBe(0);
    expect(cs.readU8(PCI_INTERRUPT_PIN)).toBe(1);
    expect(cs.readU8(PCI_CAPABILITY_LIST)).toBe(0);
    expect(cs.readU16(PCI_STATUS) & PCI_STATUS_CAP_LIST).toBe(0);
  });

  it('keeps the ids, class, header type and interrupt pin read-only', () => {
    const cs = space();
    const before = cs.snapshot();
    for (const off of [PCI_VENDOR_ID, PCI_DEVICE_ID, PCI_SUBSYSTEM_VENDOR_ID, PCI_SUBSYSTEM_ID]) {
      cs.writeU16(off, 0xffff);
    }
    cs.writeU32(PCI_CLASS_REVISION, 0xffffffff);
    cs.writeU8(PCI_HEADER_TYPE, 0xff);
    cs.writeU8(PCI_INTERRUPT_PIN, 0xff);
    cs.writeU32(PCI_CAPABILITY_LIST, 0xffffffff);
    expect(cs.snapshot()).toEqual(before);
  });

  it('makes the interrupt line and cache line size read-write', () => {
    const cs = space();
    cs.writeU8(PCI_INTERRUPT_LINE, 0x0b);
    cs.writeU8(PCI_CACHE_LINE_SIZE, 0x10);
    expect(cs.readU8(PCI_INTERRUPT_LINE)).toBe(0x0b);
    expect(cs.readU8(PCI_CACHE_LINE_SIZE)).toBe(0x10);
  });

  it('lets COMMAND take only master, parity, SERR and INTx disable without BARs', () => {
    const cs = space();
    cs.writeU16(PCI_COMMAND, 0xffff);
    expect(cs.command).toBe(
      PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE,
    );
    expect(cs.memoryEnabled()).toBe(false);
    expect(cs.ioEnabled()).toBe(false);
    expect(cs.busMasterEnabled()).toBe(true);
    expect(cs.intxDisabled()).toBe(true);
  });

  it('lets a VGA controller take COMMAND.IO for its legacy ports without an I/O BAR', () => {
    const cs = space();
    cs.defineBar({ index: 0, kind: 'mem64', size: 0x100000 });
    cs.writeU16(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
    expect(cs.ioEnabled()).toBe(false);
    cs.decodeWithoutBar(PCI_COMMAND_IO);
    cs.writeU16(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
    expect(cs.ioEnabled()).toBe(true);
    expect(() => cs.decodeWithoutBar(PCI_COMMAND_MASTER)).toThrow(VfioError);
  });

  it('lets COMMAND.MEMORY and COMMAND.IO be written once a BAR of that kind exists', () => {
    const cs = space();
    cs.defineBar({ index: 0, kind: 'mem32', size: 0x1000 });
    cs.writeU16(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);
    expect(cs.memoryEnabled()).toBe(true);
    expect(cs.ioEnabled()).toBe(false);
    cs.defineBar({ index: 1, kind: 'io', size: 16 });
    cs.writeU16(PCI_COMMAND, PCI_COMMAND_IO);
    expect(cs.ioEnabled()).toBe(true);
    expect(cs.memoryEnabled()).toBe(false);
  });

  it('clears STATUS error bits where 1 is written and keeps the others', () => {
    const cs = space();
    const errors = PCI_STATUS_DETECTED_PARITY | PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_SIG_TARGET_ABORT;
    cs.setRaw(PCI_STATUS, new Uint8Array([0, errors >> 8]));
    cs.writeU16(PCI_STATUS, PCI_STATUS_REC_MASTER_ABORT);
    expect(cs.readU16(PCI_STATUS)).toBe(PCI_STATUS_DETECTED_PARITY | PCI_STATUS_SIG_TARGET_ABORT);
    cs.writeU16(PCI_STATUS, 0);
    expect(cs.readU16(PCI_STATUS)).toBe(PCI_STATUS_DETECTED_PARITY | PCI_STATUS_SIG_TARGET_ABORT);
    cs.writeU16(PCI_STATUS, 0xffff);
    expect(cs.readU16(PCI_STATUS)).toBe(0);
  });

  it('shows the interrupt status the device sets and the guest cannot change it', () => {
    const cs = space();
    cs.setInterruptStatus(true);
    expect(cs.readU16(PCI_STATUS) & PCI_STATUS_INTERRUPT).toBe(PCI_STATUS_INTERRUPT);
    cs.writeU16(PCI_STATUS, 0xffff);
    expect(cs.readU16(PCI_STATUS) & PCI_STATUS_INTERRUPT).toBe(PCI_STATUS_INTERRUPT);
    cs.setInterruptStatus(false);
    expect(cs.readU16(PCI_STATUS) & PCI_STATUS_INTERRUPT).toBe(0);
  });

  it('marks a multi-function device in bit 7 of the header type', () => {
    const cs = new ConfigSpace({ identity: { ...identity, headerType: 0x80 } });
    expect(cs.readU8(PCI_HEADER_TYPE)).toBe(0x80);
  });

  it('refuses identities that do not fit their fields and non-type-0 headers', () => {
    expectVfioError(() => new ConfigSpace({ identity: { ...identity, vendorId: 0x10000 } }), 'EINVAL');
    expectVfioError(() => new ConfigSpace({ identity: { ...identity, classCode: 0x1000000 } }), 'EINVAL');
    expectVfioError(() => new ConfigSpace({ identity: { ...identity, revision: -1 } }), 'EINVAL');
    expectVfioError(() => new ConfigSpace({ identity: { ...identity, headerType: 1 } }), 'EINVAL');
    expectVfioError(
      () => new ConfigSpace({ identity: { ...identity, interruptPin: 5 as unknown as 1 } }),
      'EINVAL',
    );
    expectVfioError(() => new ConfigSpace({ identity, size: 512 as unknown as 256 }), 'EINVAL');
  });

  it('refuses accesses outside the space with EINVAL naming the offset', () => {
    const cs = space();
    const err = expectVfioError(() => cs.readU32(254), 'EINVAL');
    expect(err.place.offset).toBe(254);
    expect(err.place.device).toBe('test-dev');
    expectVfioError(() => cs.write(-1, new Uint8Array(1)), 'EINVAL');
    expectVfioError(() => cs.read(250, new Uint8Array(8)), 'EINVAL');
    expectVfioError(() => cs.setRaw(256, new Uint8Array(1)), 'EINVAL');
  });

  it('reads and writes any in-bounds length byte by byte with the masks', () => {
    const cs = space();
    cs.write(PCI_COMMAND, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    const out = new Uint8Array(6);
    cs.read(PCI_COMMAND, out);
    expect(Array.from(out)).toEqual([0x44, 0x05, 0x00, 0x00, 0x04, 0x00]);
  });
});

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

describe('ConfigSpace MSI and MSI-X state', () => {
  it('reads MSI state as the guest programs it (64-bit, per-vector masking)', () => {
    const cs = space();
    const off = cs.addCapability(msiCapability({ vectors: 8, addr64: true, perVectorMask: true }));
    expect(cs.msi()).toMatchObject({ offset: off, enabled: false, vectorsEnabled: 1, vectorsCapable: 8 });
    cs.writeU32(off + 4, 0xfee00000);
    cs.writeU32(off + 8, 0x1);
    cs.writeU16(off + 0xc, 0x4041);
    cs.writeU32(off + 0x10, 0xffffffff);
    cs.writeU16(off + PCI_MSI_FLAGS, 0x0031); // MME = 8 vectors, enable
    expect(cs.msi()).toEqual({
      offset: off,
      enabled: true,
      vectorsEnabled: 8,
      vectorsCapable: 8,
      addr64: true,
      address: 0x1_fee0_0000,
      data: 0x4041,
      perVectorMask: true,
      maskBits: 0xff,
      pendingBits: 0,
    });
  });

  it('clamps Multiple Message Enable above what the capability offers', () => {
    const cs = space();
    const off = cs.addCapability(msiCapability({ vectors: 2, addr64: false, perVectorMask: false }));
    cs.writeU16(off + PCI_MSI_FLAGS, 0x0051);
    expect(cs.msi()?.vectorsEnabled).toBe(2);
  });

  it('lets the device set pending bits the guest cannot write', () => {
    const cs = space();
    const off = cs.addCapability(msiCapability({ vectors: 4, addr64: false, perVectorMask: true }));
    cs.setMsiPending(0xff);
    expect(cs.msi()?.pendingBits).toBe(0xf);
    cs.writeU32(off + 0x10, 0);
    expect(cs.readU32(off + 0x10)).toBe(0xf);
  });

  it('refuses pending bits without MSI or without per-vector masking', () => {
    const cs = space();
    expectVfioError(() => cs.setMsiPending(1), 'EINVAL');
    cs.addCapability(msiCapability({ vectors: 4, addr64: false, perVectorMask: false }));
    expectVfioError(() => cs.setMsiPending(1), 'EINVAL');
    expect(cs.msix()).toBeUndefined();
  });

  it('reads MSI-X state and lets only enable and function mask change', () => {
    const cs = space();
    const off = cs.addCapability(
      msixCapability({ tableSize: 64, tableBar: 3, tableOffset: 0x2000, pbaBar: 3, pbaOffset: 0x3000 }),
    );
    cs.writeU16(off + PCI_MSIX_FLAGS, 0xffff);
    cs.writeU32(off + 4, 0);
    cs.writeU32(off + 8, 0);
    expect(cs.msix()).toEqual({
      offset: off,
      enabled: true,
      functionMask: true,
      tableSize: 64,
      tableBar: 3,
      tableOffset: 0x2000,
      pbaBar: 3,
      pbaOffset: 0x3000,
    });
    expect(cs.msi()).toBeUndefined();
  });
});

describe('ConfigSpace write listeners', () => {
  it('tells listeners the range of every guest write and stops after unsubscribe', () => {
    const cs = space();
    cs.addCapability(msiCapability({ vectors: 1, addr64: false, perVectorMask: false }));
    const seen: [number, number][] = [];
    const stop = cs.onWrite((offset, length) => {
      seen.push([offset, length]);
    });
    cs.writeU16(PCI_COMMAND, PCI_COMMAND_MASTER);
    cs.write(0x40, new Uint8Array(3));
    cs.writeU8(PCI_INTERRUPT_LINE, 5);
    cs.writeU32(PCI_BASE_ADDRESS_0, 0);
    cs.setRaw(0x40, new Uint8Array(1));
    cs.reset();
    stop();
    cs.writeU16(PCI_COMMAND, 0);
    expect(seen).toEqual([
      [PCI_COMMAND, 2],
      [0x40, 3],
      [PCI_INTERRUPT_LINE, 1],
      [PCI_BASE_ADDRESS_0, 4],
    ]);
  });

  it('shows listeners the state after the write (MSI enable)', () => {
    const cs = space();
    const off = cs.addCapability(msiCapability({ vectors: 1, addr64: false, perVectorMask: false }));
    const states: boolean[] = [];
    cs.onWrite(() => states.push(cs.msi()?.enabled ?? false));
    cs.writeU16(off + PCI_MSI_FLAGS, 1);
    cs.writeU16(off + PCI_MSI_FLAGS, 0);
    expect(states).toEqual([true, false]);
  });
});

describe('ConfigSpace reset and snapshot', () => {
  it('reset restores the state right after setup', () => {
    const cs = fullDevice();
    const built = cs.snapshot();
    cs.writeU16(PCI_COMMAND, 0xffff);
    cs.writeU32(PCI_BASE_ADDRESS_0, 0xfe000000);
    cs.writeU16(0x48 + PCI_MSI_FLAGS, 1);
    cs.setInterruptStatus(true);
    cs.writeU32(0xfc, 0x12345678);
    expect(cs.snapshot()).not.toEqual(built);
    cs.reset();
    expect(cs.snapshot()).toEqual(built);
  });

  it('round-trips live state through snapshot and restore on a twin device', () => {
    const a = fullDevice();
    a.writeU16(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    a.writeU32(PCI_BASE_ADDRESS_2, 0xc0000000);
    a.writeU32(PCI_BASE_ADDRESS_3, 0x1);
    a.writeU8(PCI_INTERRUPT_LINE, 10);
    const b = fullDevice();
    b.restore(a.snapshot());
    expect(b.snapshot()).toEqual(a.snapshot());
    expect(b.barAddress(2)).toBe(0x1_c000_0000);
    expect(b.memoryEnabled()).toBe(true);
  });

  it('refuses a snapshot of another size or another device', () => {
    const cs = fullDevice();
    expectVfioError(() => cs.restore(new Uint8Array(256)), 'EINVAL');
    const other = new ConfigSpace({ identity: { ...identity, deviceId: 0x1234 }, size: 4096 });
    expectVfioError(() => cs.restore(other.snapshot()), 'EINVAL');
  });
});

describe('ConfigSpace properties', () => {
  const writes = fc.array(
    fc.record({
      offset: fc.integer({ min: 0, max: 4095 }),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
    { maxLength: 200 },
  );

  it('never changes a read-only bit and only clears RW1C bits, whatever the guest writes', () => {
    fc.assert(
      fc.property(writes, (ops) => {
        const cs = fullDevice();
        const probe = fullDevice();
        // Learn each byte's kind of bits from the device itself: a bit that neither a 0 nor a 1
        // write changes is read-only.
        const ro = new Uint8Array(cs.size);
        for (let off = 0; off < cs.size; off++) {
          const before = probe.readU8(off);
          probe.writeU8(off, 0x00);
          const after0 = probe.readU8(off);
          probe.writeU8(off, 0xff);
          const after1 = probe.readU8(off);
          ro[off] = ~((before ^ after0) | (before ^ after1) | (after0 ^ after1)) & 0xff;
        }
        // the probe agrees with the header layout: ids and pointers read-only, the line writable
        if (ro[PCI_VENDOR_ID] !== 0xff || ro[PCI_CAPABILITY_LIST] !== 0xff || ro[PCI_INTERRUPT_LINE] !== 0)
          return false;
        const initial = cs.snapshot();
        for (const { offset, bytes } of ops) {
          const len = Math.min(bytes.length, cs.size - offset);
          cs.write(offset, bytes.subarray(0, len));
        }
        const now = cs.raw;
        for (let off = 0; off < cs.size; off++) {
          if (((now[off] ^ initial[off]) & ro[off]) !== 0) return false;
        }
        return true;
      }),
      { numRuns: 60 },
    );
  });

  it('keeps the capability lists walkable whatever the guest writes', () => {
    fc.assert(
      fc.property(writes, (ops) => {
        const cs = fullDevice();
        for (const { offset, bytes } of ops)
          cs.write(offset, bytes.subarray(0, Math.min(bytes.length, cs.size - offset)));
        const walk = walkCapabilities((o) => cs.readU8(o), cs.size);
        const ext = walkExtendedCapabilities((o) => cs.readU32(o), cs.size);
        return (
          walk.ok &&
          walk.capabilities.map((c) => c.id).join() ===
            [PCI_CAP_ID_PM, PCI_CAP_ID_MSI, PCI_CAP_ID_EXP, PCI_CAP_ID_MSIX, PCI_CAP_ID_VNDR].join() &&
          ext.ok &&
          ext.capabilities.length === 2
        );
      }),
      { numRuns: 100 },
    );
  });

  it('throws only VfioError for any offset and length', () => {
    fc.assert(
      fc.property(fc.integer({ min: -10, max: 5000 }), fc.integer({ min: 0, max: 16 }), (offset, len) => {
        const cs = space(256);
        try {
          cs.write(offset, new Uint8Array(len).fill(0xff));
          cs.read(offset, new Uint8Array(len));
          return offset >= 0 && offset + len <= 256;
        } catch (err) {
          return err instanceof VfioError && (offset < 0 || offset + len > 256);
        }
      }),
    );
  });
});
