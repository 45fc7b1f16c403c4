import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../contract/context.js';
import { VfioError } from '../errors.js';
import { RegisterBank, type RegisterBankOptions, type RegisterSpec } from './register-bank.js';

function recordingLog(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    warnings,
    debug: () => {},
    info: () => {},
    warn: (m) => warnings.push(m),
    error: (m) => warnings.push(m),
  };
}

function bank(registers: RegisterSpec[], extra: Partial<RegisterBankOptions> = {}): RegisterBank {
  return new RegisterBank({ name: 'test BAR0', size: 0x100, registers, ...extra });
}

function expectEinval(fn: () => unknown, ...mentions: string[]): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VfioError);
    expect((err as VfioError).code).toBe('EINVAL');
    for (const m of mentions) expect((err as VfioError).message).toContain(m);
    return;
  }
  throw new Error('expected a VfioError');
}

function read(b: RegisterBank, offset: number, length: number): number[] {
  const dst = new Uint8Array(length);
  b.read(offset, dst);
  return Array.from(dst);
}

describe('RegisterBank values', () => {
  it('reads reset values of every width little-endian', () => {
    const b = bank([
      { name: 'ID', offset: 0x00, reset: 0x12345678, access: 'ro' },
      { name: 'CTL', offset: 0x04, width: 2, reset: 0xabcd },
      { name: 'FLAG', offset: 0x06, width: 1, reset: 0x5a },
      { name: 'BASE', offset: 0x08, width: 8, reset: 0x1122334455667788n },
    ]);
    expect(b.readU32(0x00)).toBe(0x12345678);
    expect(read(b, 0x04, 2)).toEqual([0xcd, 0xab]);
    expect(read(b, 0x06, 1)).toEqual([0x5a]);
    expect(read(b, 0x08, 8)).toEqual([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
    expect(b.readU32(0x08)).toBe(0x55667788);
    expect(b.readU32(0x0c)).toBe(0x11223344);
    expect(b.getBigInt('BASE')).toBe(0x1122334455667788n);
    expect(b.get('CTL')).toBe(0xabcd);
  });

  it('reads and writes partial widths as those bytes of the register', () => {
    const b = bank([{ name: 'R', offset: 0x10, reset: 0xaabbccdd }]);
    expect(read(b, 0x12, 2)).toEqual([0xbb, 0xaa]);
    expect(read(b, 0x11, 1)).toEqual([0xcc]);
    b.write(0x12, new Uint8Array([0x34, 0x12]));
    expect(b.get('R')).toBe(0x1234ccdd);
  });

  it('applies read-only and W1C masks per bit', () => {
    const b = bank([
      { name: 'STS', offset: 0x20, reset: 0xff00_00f0, readOnlyMask: 0xff00_0000, w1cMask: 0x0000_00f0 },
    ]);
    b.writeU32(0x20, 0x0000_1130);
    expect(b.get('STS')).toBe(0xff00_11c0);
    b.writeU32(0x20, 0x00ff_0000);
    expect(b.get('STS')).toBe(0xffff_00c0);
    b.write(0x20, new Uint8Array([0xff]));
    expect(b.get('STS')).toBe(0xffff_000f);
  });

  it('drops writes to read-only registers and reads write-only registers as 0', () => {
    const b = bank([
      { name: 'RO', offset: 0, reset: 7, access: 'ro' },
      { name: 'WO', offset: 4, reset: 9, access: 'wo' },
    ]);
    b.writeU32(0, 0xffffffff);
    expect(b.readU32(0)).toBe(7);
    b.writeU32(4, 0x55);
    expect(b.readU32(4)).toBe(0);
    expect(b.get('WO')).toBe(0x55);
    expect(b.unmappedAccesses + b.badWidthAccesses).toBe(0);
  });

  it('keeps 64-bit registers exact through bigint and sets without masks', () => {
    const b = bank([{ name: 'Q', offset: 0x40, width: 8, readOnlyMask: 0xffff_ffff_0000_0000n }]);
    b.write(0x40, new Uint8Array(8).fill(0xff));
    expect(b.getBigInt('Q')).toBe(0xffff_ffffn);
    b.set('Q', 0xdead_beef_0000_0001n);
    expect(b.getBigInt('Q')).toBe(0xdead_beef_0000_0001n);
    b.set('Q', -1n);
    expect(b.getBigInt('Q')).toBe(0xffff_ffff_ffff_ffffn);
  });
});

describe('RegisterBank hooks', () => {
  it('returns onRead values, whole or partial, without changing the stored value', () => {
    let counter = 0x100;
    const b = bank([
      { name: 'CNT', offset: 0x0, onRead: () => counter++ },
      { name: 'TS', offset: 0x8, width: 8, onRead: () => 0x1_2345_6789 },
    ]);
    expect(b.readU32(0)).toBe(0x100);
    expect(b.readU32(0)).toBe(0x101);
    expect(read(b, 1, 1)).toEqual([0x01]);
    expect(b.get('CNT')).toBe(0);
    expect(b.readU32(0xc)).toBe(1);
    expect(read(b, 0x8, 8)).toEqual([0x89, 0x67, 0x45, 0x23, 1, 0, 0, 0]);
  });

  it('calls onWrite with the merged new value and the old one, after the store', () => {
    const calls: [number, number, number][] = [];
    const b = bank([
      {
        name: 'DOORBELL',
        offset: 0x10,
        reset: 0x11223344,
        readOnlyMask: 0xff000000,
        onWrite: (value, old, reg) => calls.push([value, old, reg.value]),
      },
    ]);
    b.write(0x10, new Uint8Array([0xaa]));
    b.writeU32(0x10, 0xffffffff);
    expect(calls).toEqual([
      [0x112233aa, 0x11223344, 0x112233aa],
      [0x11ffffff, 0x112233aa, 0x11ffffff],
    ]);
  });

  it('lets an onWrite hook change its register through the handle (self-clearing bit)', () => {
    const b = bank([
      {
        name: 'RESET',
        offset: 0,
        onWrite: (value, _old, reg) => {
          if (value & 1) reg.value = value & ~1;
        },
      },
    ]);
    b.writeU32(0, 0x3);
    expect(b.readU32(0)).toBe(0x2);
  });

  it('does not call onWrite for read-only registers or refused accesses', () => {
    let calls = 0;
    const b = bank([
      { name: 'A', offset: 0, access: 'ro', onWrite: () => calls++ },
      { name: 'B', offset: 4, accessWidths: [4], onWrite: () => calls++ },
    ]);
    b.writeU32(0, 1);
    b.write(4, new Uint8Array(2));
    b.write(0x80, new Uint8Array(4));
    expect(calls).toBe(0);
  });
});

describe('RegisterBank bad accesses', () => {
  it('reads unmapped offsets as the unmapped byte, drops writes and counts them', () => {
    const b = bank([{ name: 'A', offset: 0 }], { unmappedValue: 0xff });
    expect(b.readU32(0x40)).toBe(0xffffffff);
    expect(read(b, 0x41, 2)).toEqual([0xff, 0xff]);
    b.writeU32(0x40, 0);
    b.write(0x90, new Uint8Array(8));
    expect(b.readU32(0x40)).toBe(0xffffffff);
    expect(b.unmappedAccesses).toBe(5);
  });

  it('treats offsets outside the bank and odd lengths as bad accesses without throwing', () => {
    const b = bank([{ name: 'A', offset: 0xfc }]);
    expect(b.readU32(0x100)).toBe(0);
    expect(b.readU32(-4)).toBe(0);
    expect(b.readU32(1e12)).toBe(0);
    b.writeU32(0x1000, 1);
    expect(read(b, 0xfc, 3)).toEqual([0, 0, 0]);
    b.write(0xfc, new Uint8Array(5));
    expect(b.unmappedAccesses).toBe(4);
    expect(b.badWidthAccesses).toBe(2);
  });

  it('refuses widths a register does not allow and accesses that run past it', () => {
    const b = bank([
      { name: 'STRICT', offset: 0, reset: 0x12345678, accessWidths: [4] },
      { name: 'HALF', offset: 4, width: 2, reset: 0xbeef },
      { name: 'NEXT', offset: 6, width: 2, reset: 0xcafe },
    ]);
    expect(read(b, 0, 2)).toEqual([0, 0]);
    b.write(0, new Uint8Array([0xff]));
    expect(b.get('STRICT')).toBe(0x12345678);
    expect(b.readU32(4)).toBe(0);
    b.writeU32(4, 0);
    expect(b.get('HALF')).toBe(0xbeef);
    expect(b.get('NEXT')).toBe(0xcafe);
    expect(b.badWidthAccesses).toBe(4);
    expect(b.unmappedAccesses).toBe(0);
  });

  it('logs a refused access once per offset and names the register', () => {
    const log = recordingLog();
    const b = bank([{ name: 'STRICT', offset: 0, accessWidths: [4] }], { log });
    for (let i = 0; i < 10; i++) {
      b.readU32(0x80);
      b.read(0, new Uint8Array(1));
    }
    expect(log.warnings).toHaveLength(2);
    expect(log.warnings[0]).toContain('test BAR0');
    expect(log.warnings[0]).toContain('0x80');
    expect(log.warnings[1]).toContain('STRICT');
    expect(b.unmappedAccesses).toBe(10);
    expect(b.badWidthAccesses).toBe(10);
  });

  it('bounds the log when a guest scans many offsets', () => {
    const log = recordingLog();
    const b = new RegisterBank({ name: 'big', size: 0x10000, registers: [], log });
    for (let off = 0; off < 0x10000; off += 4) b.readU32(off);
    expect(log.warnings.length).toBe(33);
    expect(log.warnings[32]).toContain('no longer logging');
    expect(b.unmappedAccesses).toBe(0x4000);
  });
});

describe('RegisterBank construction', () => {
  it('rejects overlapping registers naming both', () => {
    expectEinval(
      () =>
        bank([
          { name: 'A', offset: 0x10, width: 8 },
          { name: 'B', offset: 0x14 },
        ]),
      'A',
      'B',
    );
    expectEinval(() =>
      bank([
        { name: 'A', offset: 0x11, width: 1 },
        { name: 'B', offset: 0x10, width: 2 },
      ]),
    );
  });

  it('rejects registers outside the bank, bad widths, duplicate names and values that do not fit', () => {
    expectEinval(() => bank([{ name: 'A', offset: 0xfe }]), 'A', '256-byte');
    expectEinval(() => bank([{ name: 'A', offset: -4 }]));
    expectEinval(() => bank([{ name: 'A', offset: 0, width: 3 as 4 }]));
    expectEinval(
      () =>
        bank([
          { name: 'A', offset: 0 },
          { name: 'A', offset: 4 },
        ]),
      "'A'",
    );
    expectEinval(() => bank([{ name: 'A', offset: 0, width: 2, reset: 0x10000 }]), 'reset');
    expectEinval(() => bank([{ name: 'A', offset: 0, reset: -1 }]));
    expectEinval(() => bank([{ name: 'A', offset: 0, readOnlyMask: 1.5 }]));
    expectEinval(() => bank([{ name: 'A', offset: 0, width: 2, accessWidths: [4] }]));
    expectEinval(() => bank([{ name: 'A', offset: 0, accessWidths: [] }]));
    expectEinval(() => bank([{ name: 'A', offset: 0, access: 'ro', w1cMask: 1 }]));
    expectEinval(() => new RegisterBank({ name: 'x', size: 0, registers: [] }));
  });

  it('serves byte registers packed into one dword independently', () => {
    const b = bank([
      { name: 'B0', offset: 0x30, width: 1, reset: 1 },
      { name: 'B2', offset: 0x32, width: 1, reset: 3 },
      { name: 'H', offset: 0x35, width: 2, reset: 0x0605 },
    ]);
    expect(read(b, 0x30, 1)).toEqual([1]);
    expect(read(b, 0x31, 1)).toEqual([0]);
    expect(read(b, 0x32, 1)).toEqual([3]);
    expect(read(b, 0x35, 2)).toEqual([5, 6]);
    expect(b.unmappedAccesses).toBe(1);
    expect(b.readU32(0x30)).toBe(0);
    expect(b.badWidthAccesses).toBe(1);
  });

  it('throws ENOENT for an unknown register name', () => {
    const b = bank([]);
    expect(() => b.get('NOPE')).toThrow(VfioError);
    try {
      b.set('NOPE', 1);
    } catch (err) {
      expect((err as VfioError).code).toBe('ENOENT');
    }
  });
});

describe('RegisterBank reset and snapshot', () => {
  const regs: RegisterSpec[] = [
    { name: 'A', offset: 0, reset: 0x1234 },
    { name: 'B', offset: 8, width: 8, reset: 5n },
    { name: 'C', offset: 0x20, width: 1, reset: 0x7f },
  ];

  it('reset returns every register to its reset value', () => {
    const b = bank(regs);
    b.writeU32(0, 0xffffffff);
    b.set('B', 99);
    b.write(0x20, new Uint8Array([0]));
    b.reset();
    expect([b.get('A'), b.get('B'), b.get('C')]).toEqual([0x1234, 5, 0x7f]);
  });

  it('round-trips values through snapshot and restore into a twin bank', () => {
    const a = bank(regs);
    a.writeU32(0, 0xdeadbeef);
    a.set('B', 0x1_0000_0001n);
    const b = bank(regs);
    b.restore(a.snapshot());
    expect(b.snapshot()).toEqual(a.snapshot());
    expect(b.getBigInt('B')).toBe(0x1_0000_0001n);
  });

  it('refuses a snapshot of a bank with other registers', () => {
    const a = bank(regs);
    const b = bank([...regs.slice(0, 2), { name: 'D', offset: 0x20, width: 1 }]);
    expectEinval(() => b.restore(a.snapshot()));
    expectEinval(() => a.restore(new Uint8Array(3)));
  });
});

describe('RegisterBank properties', () => {
  const regs: RegisterSpec[] = [
    { name: 'ID', offset: 0x00, reset: 0x80861234, access: 'ro' },
    { name: 'CTL', offset: 0x04, reset: 0x0000ff00, readOnlyMask: 0x0000ff00 },
    { name: 'STS', offset: 0x08, reset: 0xf0f0f0f0, readOnlyMask: 0x0f000000, w1cMask: 0x000000ff },
    { name: 'Q', offset: 0x10, width: 8, reset: 0xabcdef0123456789n, readOnlyMask: 0xffff000000000000n },
    { name: 'B', offset: 0x19, width: 1, readOnlyMask: 0x80, reset: 0x80 },
    { name: 'H', offset: 0x1a, width: 2, reset: 0x4321, readOnlyMask: 0xff00, accessWidths: [2] },
    { name: 'HOOK', offset: 0x20, onRead: () => 0x5555, onWrite: () => {}, readOnlyMask: 0xffff0000 },
  ];
  const ro = new Map<number, number>([
    [0x00, 0xff],
    [0x01, 0xff],
    [0x02, 0xff],
    [0x03, 0xff],
    [0x05, 0xff],
    [0x0b, 0x0f],
    [0x16, 0xff],
    [0x17, 0xff],
    [0x19, 0x80],
    [0x1b, 0xff],
    [0x22, 0xff],
    [0x23, 0xff],
  ]);
  const access = fc.record({
    write: fc.boolean(),
    offset: fc.oneof(fc.integer({ min: 0, max: 0x40 }), fc.integer({ min: -8, max: 0x200 })),
    bytes: fc.uint8Array({ minLength: 0, maxLength: 9 }),
    u32: fc.boolean(),
  });

  it('never throws and never changes a read-only bit, whatever the guest does', () => {
    fc.assert(
      fc.property(fc.array(access, { maxLength: 100 }), (ops) => {
        const b = new RegisterBank({ name: 'prop', size: 0x40, registers: regs, log: recordingLog() });
        const before = b.snapshot();
        for (const op of ops) {
          if (op.u32) {
            if (op.write) b.writeU32(op.offset, op.bytes[0] ?? 0xffffffff);
            else b.readU32(op.offset);
          } else if (op.write) b.write(op.offset, op.bytes);
          else b.read(op.offset, op.bytes);
        }
        const after = b.snapshot();
        // snapshot: 4-byte layout hash, then the registers packed in declaration order
        const packedOffsets = [
          0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x19, 0x1a,
          0x1b, 0x20, 0x21, 0x22, 0x23,
        ];
        return packedOffsets.every((off, i) => ((before[4 + i] ^ after[4 + i]) & (ro.get(off) ?? 0)) === 0);
      }),
      { numRuns: 300 },
    );
  });

  it('answers the same bytes through readU32 and read for every aligned offset', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0x3f }).map((n) => n & ~3),
        fc.array(fc.integer(), { maxLength: 10 }),
        (offset, values) => {
          const b = new RegisterBank({ name: 'prop', size: 0x40, registers: regs.filter((r) => !r.onRead) });
          for (const [i, v] of values.entries()) b.writeU32((i * 4) % 0x40, v);
          const dst = new Uint8Array(4);
          b.read(offset, dst);
          return new DataView(dst.buffer).getUint32(0, true) === b.readU32(offset);
        },
      ),
    );
  });

  it('answers readValue and writeValue as read and write of those bytes: values, state, hooks, counters', () => {
    // Twin banks, one driven through the value road and one through bytes, with hooks that
    // record what they see: every answer, every hook call and the final state must agree.
    const twin = (calls: string[]) => {
      let reads = 0;
      return new RegisterBank({
        name: 'twin',
        size: 0x40,
        registers: regs.map((r) =>
          r.name === 'HOOK'
            ? {
                ...r,
                onRead: () => 0x5555 + reads++,
                onWrite: (v: number, old: number) => calls.push(`${v}/${old}`),
              }
            : r,
        ),
      });
    };
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            write: fc.boolean(),
            offset: fc.oneof(fc.integer({ min: 0, max: 0x44 }), fc.integer({ min: -8, max: 0x200 })),
            size: fc.constantFrom(1 as const, 2 as const, 4 as const),
            value: fc.oneof(fc.integer(), fc.integer({ min: 0, max: 0xffffffff }), fc.constant(-1)),
          }),
          { maxLength: 80 },
        ),
        (ops) => {
          const valueCalls: string[] = [];
          const byteCalls: string[] = [];
          const byValue = twin(valueCalls);
          const byBytes = twin(byteCalls);
          for (const op of ops) {
            const bytes = new Uint8Array(op.size);
            if (op.write) {
              for (let i = 0; i < op.size; i++) bytes[i] = (op.value >>> (8 * i)) & 0xff;
              byValue.writeValue(op.offset, op.size, op.value);
              byBytes.write(op.offset, bytes);
            } else {
              byBytes.read(op.offset, bytes);
              let expected = 0;
              for (let i = op.size - 1; i >= 0; i--) expected = expected * 256 + bytes[i];
              expect(byValue.readValue(op.offset, op.size)).toBe(expected);
            }
          }
          expect([...byValue.snapshot()]).toEqual([...byBytes.snapshot()]);
          expect(valueCalls).toEqual(byteCalls);
          expect([byValue.unmappedAccesses, byValue.badWidthAccesses]).toEqual([
            byBytes.unmappedAccesses,
            byBytes.badWidthAccesses,
          ]);
        },
      ),
      { numRuns: 300 },
    );
  });
});
