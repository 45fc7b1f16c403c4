import { type GuestView, VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { fwCfgFiles, fwCfgPresent, fwCfgRead, fwCfgReadFile } from '../src/guest/fw-cfg.js';
import {
  FW_CFG_ARCH_LOCAL,
  FW_CFG_FILE_DIR,
  FW_CFG_FILE_FIRST,
  FW_CFG_FILE_SLOTS,
  FW_CFG_ID,
  FW_CFG_PORT_DATA,
  FW_CFG_PORT_SEL,
  FW_CFG_SIGNATURE,
  FW_CFG_WRITE_CHANNEL,
  FwCfg,
} from '../src/machine/fw-cfg.js';
import { Machine } from '../src/machine/index.js';

let machine: Machine | undefined;
afterEach(() => {
  machine?.close();
  machine = undefined;
});

function boot(): Machine {
  machine = new Machine({ ramSize: 16 * 1024 * 1024 });
  return machine;
}

/** Read `n` bytes of the selected item through the data port. */
function readData(guest: GuestView, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(guest.ioRead(FW_CFG_PORT_DATA, 1));
  return out;
}

describe('the fw_cfg device on I/O ports 0x510/0x511', () => {
  it('answers the "QEMU" signature and the traditional-interface ID through port I/O', () => {
    const { guest } = boot();
    guest.ioWrite(FW_CFG_PORT_SEL, 2, FW_CFG_SIGNATURE);
    expect(String.fromCharCode(...readData(guest, 4))).toBe('QEMU');
    guest.ioWrite(FW_CFG_PORT_SEL, 2, FW_CFG_ID);
    expect(readData(guest, 4)).toEqual([1, 0, 0, 0]);
    expect(fwCfgPresent(guest)).toBe(true);
  });

  it('lists files in a big-endian directory sorted by name, keys from FW_CFG_FILE_FIRST', () => {
    const m = boot();
    m.fwCfg.addFile('etc/zeta', new Uint8Array([1, 2, 3]));
    m.fwCfg.addFile('etc/alpha', new Uint8Array(300));
    m.guest.ioWrite(FW_CFG_PORT_SEL, 2, FW_CFG_FILE_DIR);
    const raw = readData(m.guest, 4 + 2 * 64);
    const dv = new DataView(new Uint8Array(raw).buffer);
    expect(dv.getUint32(0, false)).toBe(2);
    expect(dv.getUint32(4, false)).toBe(300);
    expect(dv.getUint16(8, false)).toBe(FW_CFG_FILE_FIRST);
    expect(String.fromCharCode(...raw.slice(12, 21))).toBe('etc/alpha');
    expect(raw[21]).toBe(0);
    expect(dv.getUint32(68, false)).toBe(3);
    expect(dv.getUint16(72, false)).toBe(FW_CFG_FILE_FIRST + 1);
    expect(fwCfgFiles(m.guest)).toEqual([
      { name: 'etc/alpha', size: 300, select: 0x20 },
      { name: 'etc/zeta', size: 3, select: 0x21 },
    ]);
  });

  it('reads a file by name through the guest reader, byte for byte', () => {
    const m = boot();
    const bytes = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff);
    m.fwCfg.addFile('etc/igd-opregion', bytes);
    expect(fwCfgReadFile(m.guest, 'etc/igd-opregion')).toEqual(bytes);
    expect(fwCfgReadFile(m.guest, 'etc/none')).toBeUndefined();
  });

  it('reads 0 past the end of an item, for an unknown key and for an architecture-local key', () => {
    const m = boot();
    m.fwCfg.addFile('etc/x', new Uint8Array([0xaa]));
    expect([...fwCfgRead(m.guest, FW_CFG_FILE_FIRST, 3)]).toEqual([0xaa, 0, 0]);
    expect([...fwCfgRead(m.guest, 0x1234, 2)]).toEqual([0, 0]);
    expect([...fwCfgRead(m.guest, FW_CFG_ARCH_LOCAL | FW_CFG_SIGNATURE, 2)]).toEqual([0, 0]);
  });

  it('ignores the write-channel bit when selecting and drops byte writes to the data port', () => {
    const m = boot();
    expect(String.fromCharCode(...fwCfgRead(m.guest, FW_CFG_WRITE_CHANNEL | FW_CFG_SIGNATURE, 4))).toBe(
      'QEMU',
    );
    m.guest.ioWrite(FW_CFG_PORT_SEL, 2, FW_CFG_SIGNATURE);
    m.guest.ioWrite(FW_CFG_PORT_DATA, 1, 0x00);
    expect(String.fromCharCode(...readData(m.guest, 4))).toBe('QEMU');
  });

  it('rewinds the item when the selector is written again', () => {
    const m = boot();
    fwCfgRead(m.guest, FW_CFG_SIGNATURE, 2);
    expect(String.fromCharCode(...fwCfgRead(m.guest, FW_CFG_SIGNATURE, 4))).toBe('QEMU');
  });

  it('refuses word and dword reads and reads outside its two ports (all-ones)', () => {
    const m = boot();
    m.guest.ioWrite(FW_CFG_PORT_SEL, 2, FW_CFG_SIGNATURE);
    expect(m.guest.ioRead(FW_CFG_PORT_SEL, 2)).toBe(0xffff);
    expect(m.guest.ioRead(FW_CFG_PORT_SEL, 4)).toBe(0xffffffff);
    // a byte write to the selector port selects nothing either
    m.guest.ioWrite(FW_CFG_PORT_SEL, 1, FW_CFG_ID);
    expect(String.fromCharCode(...readData(m.guest, 4))).toBe('QEMU');
  });

  it('refuses a duplicate name, a name of 56 bytes or more, a NUL in the name, and a full directory', () => {
    const f = new FwCfg();
    f.addFile('etc/a', new Uint8Array(1));
    expect(() => f.addFile('etc/a', new Uint8Array(1))).toThrow(/already has a file named "etc\/a"/);
    expect(() => f.addFile('x'.repeat(56), new Uint8Array(1))).toThrow(VfioError);
    expect(() => f.addFile('a\0b', new Uint8Array(1))).toThrow(/without NUL/);
    expect(() => f.addFile('', new Uint8Array(1))).toThrow(VfioError);
    for (let i = 1; i < FW_CFG_FILE_SLOTS; i++)
      f.addFile(`etc/f${String(i).padStart(2, '0')}`, new Uint8Array(1));
    try {
      f.addFile('etc/one-too-many', new Uint8Array(1));
      expect.unreachable();
    } catch (err) {
      expect((err as VfioError).code).toBe('ENOSPC');
    }
  });

  it('re-keys the directory when a file is removed, and removing an absent file is false', () => {
    const f = new FwCfg();
    f.addFile('etc/a', new Uint8Array([1]));
    f.addFile('etc/b', new Uint8Array([2]));
    expect(f.removeFile('etc/a')).toBe(true);
    expect(f.removeFile('etc/a')).toBe(false);
    expect(f.files()).toEqual([{ name: 'etc/b', size: 1, select: FW_CFG_FILE_FIRST }]);
  });

  it("keeps a copy: changing the caller's bytes later does not change the published file", () => {
    const f = new FwCfg();
    const b = new Uint8Array([1, 2]);
    f.addFile('etc/a', b);
    b[0] = 9;
    expect([...(f.file('etc/a') ?? [])]).toEqual([1, 2]);
  });

  it('round-trips any set of files through the guest reader (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9/_.-]{0,54}$/), { maxLength: 8 }),
        fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 8, maxLength: 8 }),
        (names, datas) => {
          const m = new Machine({ ramSize: 4 * 1024 * 1024 });
          try {
            for (const [i, n] of names.entries()) m.fwCfg.addFile(n, datas[i]);
            const files = fwCfgFiles(m.guest);
            expect(files.map((f) => f.name)).toEqual([...names].sort());
            for (const [i, n] of names.entries()) expect(fwCfgReadFile(m.guest, n, files)).toEqual(datas[i]);
          } finally {
            m.close();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('the guest fw_cfg reader against a hostile or absent device', () => {
  /** A GuestView whose data port returns the bytes of `item(key)`. */
  function fakeGuest(item: (key: number) => Uint8Array): GuestView {
    let key = 0;
    let off = 0;
    return {
      ioWrite: (port: number, _size: number, value: number) => {
        if (port === FW_CFG_PORT_SEL) {
          key = value;
          off = 0;
        }
      },
      ioRead: (port: number) => (port === FW_CFG_PORT_DATA ? (item(key)[off++] ?? 0) : 0xff),
    } as unknown as GuestView;
  }

  it('says ENODEV when no "QEMU" signature answers', () => {
    const g = fakeGuest(() => new Uint8Array(0));
    expect(fwCfgPresent(g)).toBe(false);
    expect(() => fwCfgFiles(g)).toThrow(/no fw_cfg device answers at I\/O port 0x510/);
  });

  it('refuses a directory count beyond 4096 entries instead of reading forever', () => {
    const g = fakeGuest((k) =>
      k === FW_CFG_SIGNATURE
        ? new Uint8Array([0x51, 0x45, 0x4d, 0x55])
        : new Uint8Array([0x00, 0x00, 0x10, 0x01]),
    );
    expect(() => fwCfgFiles(g)).toThrow(/claims 4097 files/);
  });

  it('never throws anything but VfioError on any directory bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (dir) => {
        const g = fakeGuest((k) =>
          k === FW_CFG_SIGNATURE
            ? new Uint8Array([0x51, 0x45, 0x4d, 0x55])
            : k === FW_CFG_FILE_DIR
              ? dir
              : new Uint8Array(0),
        );
        try {
          fwCfgFiles(g);
        } catch (err) {
          expect(err).toBeInstanceOf(VfioError);
        }
      }),
      { numRuns: 200 },
    );
  });
});
