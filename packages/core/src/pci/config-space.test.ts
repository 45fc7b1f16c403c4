/**
 * ConfigSpace's live registers (config-space.ts): the type-0 header, COMMAND and STATUS, bounds,
 * write listeners, reset and snapshot, and properties of the masks over whole-space writes. BAR
 * sizing, the capability lists and MSI/MSI-X state have their own config-space-*.test.ts files.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectVfioError, fullDevice, identity, space } from '../../test/config-space-helpers.js';
import { VfioError } from '../errors.js';
import { msiCapability } from './capabilities.js';
import { ConfigSpace } from './config-space.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_2,
  PCI_BASE_ADDRESS_3,
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
  PCI_HEADER_TYPE,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_MSI_FLAGS,
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
        // Learn each byte's kind of bits from the device itself, with every bit set first (the
        // device's own setRaw): a bit that stays set through a 0 and a 1 write is read-only, one
        // that a 0 write keeps and a 1 write clears is RW1C, one that reads back what was written
        // is writable.
        const ro = new Uint8Array(cs.size);
        const rw1c = new Uint8Array(cs.size);
        const writable = new Uint8Array(cs.size);
        probe.setRaw(0, new Uint8Array(cs.size).fill(0xff));
        for (let off = 0; off < cs.size; off++) {
          probe.writeU8(off, 0x00);
          const after0 = probe.readU8(off);
          probe.writeU8(off, 0xff);
          const after1 = probe.readU8(off);
          ro[off] = after0 & after1;
          rw1c[off] = after0 & ~after1 & 0xff;
          writable[off] = ~after0 & after1 & 0xff;
        }
        // the probe agrees with the header layout: ids and pointers read-only, the line writable,
        // STATUS's error bits RW1C
        if (
          ro[PCI_VENDOR_ID] !== 0xff ||
          ro[PCI_CAPABILITY_LIST] !== 0xff ||
          writable[PCI_INTERRUPT_LINE] !== 0xff
        )
          return false;
        if ((rw1c[PCI_STATUS + 1] & (PCI_STATUS_DETECTED_PARITY >> 8)) === 0) return false;
        const initial = cs.snapshot();
        for (const { offset, bytes } of ops) {
          const len = Math.min(bytes.length, cs.size - offset);
          cs.write(offset, bytes.subarray(0, len));
        }
        const now = cs.raw;
        for (let off = 0; off < cs.size; off++) {
          if (((now[off] ^ initial[off]) & ro[off]) !== 0) return false;
          // a write sets only writable bits (an RW1C bit it may only clear)
          if ((now[off] & ~initial[off] & ~writable[off]) !== 0) return false;
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
