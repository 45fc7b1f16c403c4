import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EmulatedConfig } from '../src/machine/emulated-config.js';

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
