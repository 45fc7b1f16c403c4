/**
 * 8-byte guest MMIO (GuestView.mmioRead64/mmioWrite64, AddressMap.read64/write64): one access
 * to memory and to a trapped device region (the device sees one 8-byte read or write, as QEMU's
 * vfio regions take 1 to 8 bytes); a handler of at most 4 bytes gets two 4-byte accesses, low
 * half first, as QEMU's memory core splits them; a miss reads all-ones and is counted.
 */
import { ConfigSpace, PciDeviceModel, RegisterBank, VfioError } from '@vfiokit/core';
import type { DeviceFile } from '@vfiokit/core/host';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegionTrap, type TrapFaults } from '../src/machine/address-map.js';
import { type AccessHandler, AddressMap, Machine, MemoryHandler } from '../src/machine/index.js';
import { slot } from './machine-fixtures.js';

/** A handler of at most 4 bytes that records its accesses and answers `tag + offset` per byte. */
function narrow(calls: string[]): AccessHandler {
  return {
    read: (offset, size) => {
      calls.push(`r ${offset.toString(16)} ${size}`);
      return (0x11 * (offset + 1)) >>> 0;
    },
    write: (offset, size, value) => {
      calls.push(`w ${offset.toString(16)} ${size} ${value.toString(16)}`);
    },
  };
}

describe('AddressMap 8-byte accesses', () => {
  it('read and write memory whole, little endian, exact past 2^53, each one access of the range', () => {
    const bytes = new Uint8Array(0x100);
    const map = new AddressMap('memory', 0x1_0000);
    const range = map.add({
      start: 0x1000,
      size: 0x100,
      kind: 'ram',
      owner: 'ram',
      handler: new MemoryHandler(bytes),
    });
    map.write64(0x1008, 0x8877_6655_4433_2211n);
    expect([...bytes.subarray(8, 16)]).toEqual([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    expect(map.read64(0x1008)).toBe(0x8877_6655_4433_2211n);
    // Unaligned, and a value wider than 64 bits keeps its low 64 bits, a negative one its two's complement.
    map.write64(0x1011, (1n << 70n) | 0xfedc_ba98_7654_3210n);
    expect(map.read64(0x1011)).toBe(0xfedc_ba98_7654_3210n);
    map.write64(0x10f8, -2n);
    expect(map.read64(0x10f8)).toBe(0xffff_ffff_ffff_fffen);
    expect([range.reads, range.writes]).toEqual([3, 3]);
  });

  it('read all-ones and drop the write when they hit nothing or run past the range, and count them', () => {
    const bytes = new Uint8Array(0x100).fill(0x5a);
    const map = new AddressMap('memory', 0x1_0000);
    const range = map.add({
      start: 0x1000,
      size: 0x100,
      kind: 'ram',
      owner: 'ram',
      handler: new MemoryHandler(bytes),
    });
    expect(map.read64(0x10fc)).toBe(0xffff_ffff_ffff_ffffn);
    expect(map.read64(0x2000)).toBe(0xffff_ffff_ffff_ffffn);
    map.write64(0x10f9, 0n);
    map.write64(0xfff8 + 4, 0n);
    expect(bytes.every((b) => b === 0x5a)).toBe(true);
    expect([map.unclaimedReads, map.unclaimedWrites, range.reads, range.writes]).toEqual([2, 2, 0, 0]);
  });

  it('give a handler of at most 4 bytes two 4-byte accesses, low half first', () => {
    const calls: string[] = [];
    const map = new AddressMap('memory', 0x1_0000);
    const range = map.add({
      start: 0x3000,
      size: 0x40,
      kind: 'emulated',
      owner: 'dev',
      handler: narrow(calls),
    });
    expect(map.read64(0x3010)).toBe((BigInt(0x11 * 0x15) << 32n) | BigInt(0x11 * 0x11));
    map.write64(0x3020, 0xaabb_ccdd_1122_3344n);
    expect(calls).toEqual(['r 10 4', 'r 14 4', 'w 20 4 11223344', 'w 24 4 aabbccdd']);
    expect([range.reads, range.writes]).toEqual([1, 1]);
  });

  it('answer as two 4-byte accesses do on memory, for any address and value (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            write: fc.boolean(),
            addr: fc.integer({ min: 0xff0, max: 0x1110 }),
            value: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
          }),
          { maxLength: 40 },
        ),
        (ops) => {
          const wide = new Uint8Array(0x100);
          const halves = new Uint8Array(0x100);
          const a = new AddressMap('memory', 0x1_0000);
          const b = new AddressMap('memory', 0x1_0000);
          a.add({ start: 0x1000, size: 0x100, kind: 'ram', owner: 'ram', handler: new MemoryHandler(wide) });
          b.add({
            start: 0x1000,
            size: 0x100,
            kind: 'ram',
            owner: 'ram',
            handler: new MemoryHandler(halves),
          });
          for (const o of ops) {
            const inside = o.addr >= 0x1000 && o.addr + 8 <= 0x1100;
            if (o.write) {
              a.write64(o.addr, o.value);
              if (inside) {
                b.write(o.addr, 4, Number(o.value & 0xffff_ffffn));
                b.write(o.addr + 4, 4, Number(o.value >> 32n));
              }
            } else {
              const expected = inside
                ? BigInt(b.read(o.addr, 4)) | (BigInt(b.read(o.addr + 4, 4)) << 32n)
                : 0xffff_ffff_ffff_ffffn;
              expect(a.read64(o.addr)).toBe(expected);
            }
          }
          expect([...wide]).toEqual([...halves]);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('RegionTrap 8-byte accesses', () => {
  function fakeFile(refuse: { on: boolean }) {
    const calls: string[] = [];
    const file = {
      regionPort: (region: number) => ({
        index: region,
        read: (offset: number, dst: Uint8Array) => {
          if (refuse.on) throw new VfioError('EIO', 'refused.');
          dst.set([1, 2, 3, 4, 5, 6, 7, 8].slice(0, dst.length));
          calls.push(`read ${region} ${offset.toString(16)} ${dst.length}`);
          return dst.length;
        },
        write: (offset: number, src: Uint8Array) => {
          if (refuse.on) throw new VfioError('EIO', 'refused.');
          calls.push(`write ${region} ${offset.toString(16)} ${[...src].join(',')}`);
          return src.length;
        },
      }),
    };
    return { file: file as unknown as DeviceFile, calls };
  }

  it('reach the region as one 8-byte access; a refused one reads all-ones, drops the write and is told', () => {
    const refuse = { on: false };
    const { file, calls } = fakeFile(refuse);
    const faults: string[] = [];
    const sink: TrapFaults = {
      fault: (err, op, region, offset) =>
        faults.push(`${op} ${region} ${offset.toString(16)} ${(err as VfioError).code}`),
    };
    const map = new AddressMap('memory', 0x1_0000);
    map.add({
      start: 0x8000,
      size: 0x100,
      kind: 'trapped',
      owner: 'dev',
      handler: new RegionTrap(sink, file, 2, 0x1000),
    });
    expect(map.read64(0x8010)).toBe(0x0807_0605_0403_0201n);
    map.write64(0x8018, 0x0102_0304_0506_0708n);
    expect(calls).toEqual(['read 2 1010 8', 'write 2 1018 8,7,6,5,4,3,2,1']);
    refuse.on = true;
    expect(map.read64(0x8020)).toBe(0xffff_ffff_ffff_ffffn);
    map.write64(0x8028, 1n);
    expect(faults).toEqual(['read 2 1020 EIO', 'write 2 1028 EIO']);
  });

  it('keep their bytes when the device makes another 8-byte access in the middle of one', () => {
    const map = new AddressMap('memory', 0x1_0000);
    const seen: string[] = [];
    const file = {
      regionPort: (region: number) => ({
        index: region,
        read: (offset: number, dst: Uint8Array) => {
          for (let i = 0; i < dst.length; i++) dst[i] = (offset >>> 4) + i;
          // The device answers, then (say, raising an interrupt) makes an 8-byte access of its own.
          if (offset === 0x1010) map.read64(0x8040);
          return dst.length;
        },
        write: (offset: number, src: Uint8Array) => {
          if (offset === 0x1018) map.write64(0x8048, 0x5a5a_5a5a_5a5a_5a5an);
          seen.push(`${offset.toString(16)} ${[...src].join(',')}`);
          return src.length;
        },
      }),
    } as unknown as DeviceFile;
    const sink: TrapFaults = { fault: () => {} };
    map.add({
      start: 0x8000,
      size: 0x100,
      kind: 'trapped',
      owner: 'dev',
      handler: new RegionTrap(sink, file, 2, 0x1000),
    });
    // 0x1010 >>> 4 = 0x101: the bytes 01..08; the inner read at 0x1040 has 04..0b.
    expect(map.read64(0x8010)).toBe(0x0807_0605_0403_0201n);
    map.write64(0x8018, 0x0102_0304_0506_0708n);
    expect(seen).toEqual(['1048 90,90,90,90,90,90,90,90', '1018 8,7,6,5,4,3,2,1']);
  });
});

describe('a guest 8-byte MMIO access of a device', () => {
  it('reaches a trapped register whole, as one access of 8 bytes, and a directly mapped BAR whole', async () => {
    const config = new ConfigSpace({
      name: 'q0',
      identity: {
        vendorId: 0x1b36,
        deviceId: 0x0011,
        subsystemVendorId: 0,
        subsystemId: 0,
        classCode: 0xff0000,
        revision: 1,
      },
    });
    config.defineBar({ index: 0, kind: 'mem64', size: 0x1000 });
    const bank = new RegisterBank({
      name: 'q0 BAR0',
      size: 0x1000,
      registers: [
        { name: 'PTE', offset: 0x100, width: 8, reset: 0n },
        { name: 'CTL', offset: 0x108, reset: 0 },
      ],
    });
    const seen: string[] = [];
    const device = new PciDeviceModel({
      name: 'q0',
      config,
      bars: {
        0: {
          handler: {
            read: (o, d) => {
              seen.push(`read ${o.toString(16)} ${d.length}`);
              bank.read(o, d);
            },
            write: (o, s) => {
              seen.push(`write ${o.toString(16)} ${s.length}`);
              bank.write(o, s);
            },
          },
        },
      },
    });
    const m = new Machine({ ramSize: 16 * 1024 * 1024 });
    try {
      m.attach({ device, slot: slot(3), label: 'q0' });
      const [, d] = await m.probe();
      const bar0 = d.bars.find((b) => b.index === 0)?.address ?? 0;
      m.guest.mmioWrite64(bar0 + 0x100, 0xdead_beef_0bad_f00dn);
      expect(m.guest.mmioRead64(bar0 + 0x100)).toBe(0xdead_beef_0bad_f00dn);
      expect(bank.getBigInt('PTE')).toBe(0xdead_beef_0bad_f00dn);
      expect(seen).toEqual(['write 100 8', 'read 100 8']);
      const counters = m.functionAt(slot(3))?.file.regionCounters(0);
      expect(counters).toMatchObject({ reads: 1, writes: 1, bytesRead: 8, bytesWritten: 8, errors: 0 });
      // Guest RAM too, and a miss.
      const ram = m.guest.ram.alloc(64);
      m.guest.mmioWrite64(ram, 0x0123_4567_89ab_cdefn);
      expect(m.guest.mmioRead64(ram)).toBe(0x0123_4567_89ab_cdefn);
      expect(m.guest.mmioRead64(0xf000_0000)).toBe(0xffff_ffff_ffff_ffffn);
    } finally {
      m.close();
    }
  });
});
