import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as C from '../src/abi/constants.js';
import { STRUCT_LAYOUTS } from '../src/abi/layout.js';
import { type AbiReport, abiReport, formatAbiReport } from '../src/abi/report.js';
import { VfioError } from '../src/errors.js';

const isSorted = (keys: string[]): boolean => keys.every((k, i) => i === 0 || keys[i - 1] < k);

function expectVfioError(fn: () => unknown, pattern: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(VfioError);
  expect((thrown as VfioError).code).toBe('EINVAL');
  expect((thrown as VfioError).message).toMatch(pattern);
}

describe('abiReport', () => {
  const report = abiReport();

  it('has exactly the fields constants, structs, newerThan61 and header', () => {
    expect(Object.keys(report).sort()).toEqual(['constants', 'header', 'newerThan61', 'structs']);
    expect(report.header).toBe('linux/vfio.h');
  });

  it('lists every numeric VFIO_* export of constants.ts and nothing else', () => {
    const expected = Object.entries(C)
      .filter(([name, value]) => name.startsWith('VFIO_') && typeof value === 'number')
      .map(([name]) => name)
      .sort();
    expect(Object.keys(report.constants)).toEqual(expected);
    for (const [name, value] of Object.entries(report.constants)) {
      expect(value, name).toBe((C as Record<string, unknown>)[name]);
    }
  });

  it('leaves out functions, strings and sets', () => {
    expect(report.constants).not.toHaveProperty('vfioIo');
    expect(report.constants).not.toHaveProperty('vfioPciIndexToOffset');
    expect(report.constants).not.toHaveProperty('VFIO_DEVICE_API_PCI_STRING');
    expect(report.constants).not.toHaveProperty('NEWER_THAN_6_1');
    expect(Object.values(report.constants).every((v) => Number.isSafeInteger(v))).toBe(true);
  });

  it('carries ioctl numbers, flags and the vfio-pci offset constants by value', () => {
    expect(report.constants.VFIO_DEVICE_GET_REGION_INFO).toBe((0x3b << 8) | 108);
    expect(report.constants.VFIO_REGION_TYPE_PCI_VENDOR_TYPE).toBe(0x80000000);
    expect(report.constants.VFIO_PCI_OFFSET_MASK).toBe(2 ** 40 - 1);
  });

  it('lists every struct of STRUCT_LAYOUTS with its size and field offsets', () => {
    expect(Object.keys(report.structs)).toEqual(Object.keys(STRUCT_LAYOUTS).sort());
    for (const layout of Object.values(STRUCT_LAYOUTS)) {
      const s = report.structs[layout.name];
      expect(s.size, layout.name).toBe(layout.size);
      expect(Object.keys(s.fields).sort()).toEqual(Object.keys(layout.fields).sort());
      for (const [field, f] of Object.entries(layout.fields)) expect(s.fields[field]).toBe(f.offset);
    }
  });

  it('includes vfio_region_info exactly as linux/vfio.h lays it out', () => {
    expect(report.structs.vfio_region_info).toEqual({
      size: 32,
      fields: { argsz: 0, flags: 4, index: 8, cap_offset: 12, size: 16, offset: 24 },
    });
  });

  it('sorts the keys of constants, structs and every struct fields', () => {
    expect(isSorted(Object.keys(report.constants))).toBe(true);
    expect(isSorted(Object.keys(report.structs))).toBe(true);
    for (const [name, s] of Object.entries(report.structs))
      expect(isSorted(Object.keys(s.fields)), name).toBe(true);
  });

  it('names the items newer than Linux 6.1, sorted', () => {
    expect(report.newerThan61).toEqual([...C.NEWER_THAN_6_1].sort());
    expect(isSorted(report.newerThan61)).toBe(true);
    expect(report.newerThan61).toContain('vfio_precopy_info');
    expect(report.newerThan61).toContain('VFIO_MIG_GET_PRECOPY_INFO');
  });

  it('returns a fresh report each call, so a caller cannot change the next one', () => {
    const first = abiReport();
    first.constants.VFIO_BASE = 0;
    first.structs.vfio_region_info.fields.argsz = 99;
    first.newerThan61.push('x');
    expect(abiReport()).toEqual(report);
  });
});

describe('formatAbiReport', () => {
  const report = abiReport();
  const text = formatAbiReport(report);

  it('round-trips through JSON', () => {
    expect(JSON.parse(text)).toEqual(report);
  });

  it('is two-space pretty JSON ending in exactly one newline', () => {
    expect(text.endsWith('}\n')).toBe(true);
    expect(text.endsWith('\n\n')).toBe(false);
    expect(text.split('\n')[1]).toBe('  "constants": {');
    expect(text).toContain('\n  "header": "linux/vfio.h"\n}\n');
  });

  it('prints the same text whatever order the report was built in', () => {
    const reversed: AbiReport = {
      header: report.header,
      newerThan61: [...report.newerThan61].reverse(),
      structs: Object.fromEntries(
        Object.entries(report.structs)
          .reverse()
          .map(([n, s]) => [
            n,
            { fields: Object.fromEntries(Object.entries(s.fields).reverse()), size: s.size },
          ]),
      ),
      constants: Object.fromEntries(Object.entries(report.constants).reverse()),
    };
    expect(formatAbiReport(reversed)).toBe(text);
  });

  it('rejects a constant that JSON cannot carry exactly', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 1.5, 2 ** 60]) {
      const r = { ...report, constants: { ...report.constants, VFIO_BASE: bad } };
      expectVfioError(() => formatAbiReport(r), /constant VFIO_BASE/);
    }
    const quoted = { ...report, constants: { VFIO_BASE: '100' as unknown as number } };
    expectVfioError(() => formatAbiReport(quoted), /constant VFIO_BASE is "100"/);
    const nan = { ...report, constants: { VFIO_BASE: Number.NaN } };
    expectVfioError(() => formatAbiReport(nan), /constant VFIO_BASE is NaN, not an integer/);
  });

  it('rejects a negative or fractional size or offset', () => {
    const negative = { ...report, structs: { s: { size: 8, fields: { a: -4 } } } };
    expectVfioError(() => formatAbiReport(negative), /offset of s\.a is -4/);
    const fractional = { ...report, structs: { s: { size: 8.5, fields: {} } } };
    expectVfioError(() => formatAbiReport(fractional), /size of struct s is 8\.5/);
  });

  it('rejects a struct without fields, a foreign header and a bad newerThan61', () => {
    const noFields = { ...report, structs: { s: { size: 8 } } } as unknown as AbiReport;
    expectVfioError(() => formatAbiReport(noFields), /struct s has no fields object/);
    const header = { ...report, header: 'linux/kvm.h' } as unknown as AbiReport;
    expectVfioError(() => formatAbiReport(header), /header is "linux\/kvm.h"/);
    const newer = { ...report, newerThan61: [1] } as unknown as AbiReport;
    expectVfioError(() => formatAbiReport(newer), /newerThan61/);
    expectVfioError(() => formatAbiReport(null as unknown as AbiReport), /not an object/);
    expectVfioError(() => formatAbiReport({ ...report, constants: [] } as unknown as AbiReport), /constants/);
  });

  it('keeps a key named __proto__ as a key', () => {
    const constants = JSON.parse('{"__proto__": 1, "VFIO_X": 2}') as Record<string, number>;
    const out = JSON.parse(formatAbiReport({ ...report, constants }));
    expect(Object.keys(out.constants)).toEqual(['VFIO_X', '__proto__']);
  });
});

describe('formatAbiReport properties', () => {
  const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,15}$/);
  const offset = fc.nat({ max: 0xffff });
  const validReport: fc.Arbitrary<AbiReport> = fc.record({
    constants: fc.dictionary(name, fc.maxSafeInteger()),
    structs: fc.dictionary(name, fc.record({ size: offset, fields: fc.dictionary(name, offset) })),
    newerThan61: fc.array(name),
    header: fc.constant('linux/vfio.h' as const),
  });

  it('round-trips any valid report through JSON, sorted and ending in a newline', () => {
    fc.assert(
      fc.property(validReport, (r) => {
        const out = formatAbiReport(r);
        const back = JSON.parse(out) as AbiReport;
        expect(out.endsWith('\n')).toBe(true);
        expect(back.constants).toEqual(r.constants);
        expect(back.structs).toEqual(r.structs);
        expect(back.newerThan61).toEqual([...new Set(r.newerThan61)].sort());
        expect(isSorted(Object.keys(back.constants))).toBe(true);
        expect(formatAbiReport(back)).toBe(out);
      }),
    );
  });

  it('never throws anything but VfioError, whatever it is given', () => {
    const junk = fc.oneof(
      fc.anything(),
      fc.record({
        constants: fc.oneof(fc.anything(), fc.dictionary(name, fc.anything())),
        structs: fc.oneof(fc.anything(), fc.dictionary(name, fc.anything())),
        newerThan61: fc.anything(),
        header: fc.oneof(fc.constant('linux/vfio.h'), fc.anything()),
      }),
    );
    fc.assert(
      fc.property(junk, (value) => {
        try {
          expect(typeof formatAbiReport(value as AbiReport)).toBe('string');
        } catch (err) {
          expect(err).toBeInstanceOf(VfioError);
        }
      }),
    );
  });
});
