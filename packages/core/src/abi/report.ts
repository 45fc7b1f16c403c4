/**
 * The ABI report: every `VFIO_*` constant and every struct layout this package encodes, as
 * canonical JSON. A vendor diffs it against the linux/vfio.h of the kernel they ship on
 * (`vfiokit-conformance --abi-report`); test/abi-header.test.ts proves it against the
 * machine's header.
 */

import { VfioError } from '../errors.js';
import * as C from './constants.js';
import { STRUCT_LAYOUTS } from './layout.js';

export interface AbiStructReport {
  /** sizeof(struct X), flexible array members excluded as C does. */
  size: number;
  /** offsetof(struct X, field) for every field, keyed by the C field name. */
  fields: Record<string, number>;
}

export interface AbiReport {
  /** Every numeric `VFIO_*` export of abi/constants.ts, keyed by its C name. */
  constants: Record<string, number>;
  /** Every struct of STRUCT_LAYOUTS, keyed by its C name (without `struct`). */
  structs: Record<string, AbiStructReport>;
  /** Constants and structs a Linux 6.1 header does not define (mainline 6.2+). */
  newerThan61: string[];
  header: 'linux/vfio.h';
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function sortedRecord<T>(entries: Iterable<[string, T]>): Record<string, T> {
  const out: Record<string, T> = {};
  // defineProperty, not assignment: a key named `__proto__` stays a key.
  for (const [key, value] of [...entries].sort((a, b) => byName(a[0], b[0]))) {
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** The ABI this package encodes, with every key sorted so that two reports diff line by line. */
export function abiReport(): AbiReport {
  const constants = sortedRecord(
    Object.entries(C).filter(
      (entry): entry is [string, number] => entry[0].startsWith('VFIO_') && typeof entry[1] === 'number',
    ),
  );
  const structs = sortedRecord(
    Object.values(STRUCT_LAYOUTS).map((layout): [string, AbiStructReport] => [
      layout.name,
      {
        size: layout.size,
        fields: sortedRecord(
          Object.entries(layout.fields).map(([field, f]): [string, number] => [field, f.offset]),
        ),
      },
    ]),
  );
  const newer = new Set(C.NEWER_THAN_6_1);
  for (const layout of Object.values(STRUCT_LAYOUTS)) if (layout.newerThan61) newer.add(layout.name);
  return { constants, structs, newerThan61: [...newer].sort(byName), header: 'linux/vfio.h' };
}

function invalid(what: string): VfioError {
  return new VfioError('EINVAL', `the ABI report is malformed: ${what}.`, {
    hint: 'Format a report made by abiReport(), or one parsed from its JSON without changes.',
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) return Array.isArray(value) ? 'a list' : 'an object';
  return String(value);
}

function checkInteger(value: unknown, where: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalid(`${where} is ${describe(value)}, not an integer >= ${min}`);
  }
  return value;
}

/**
 * The report as pretty JSON with a trailing newline. Keys are sorted here too, so the text is
 * the same whatever order the report was built in. Throws VfioError EINVAL on a value JSON
 * cannot carry exactly (a non-integer, NaN, a struct without fields).
 */
export function formatAbiReport(report: AbiReport): string {
  if (!isRecord(report)) throw invalid('the report is not an object');
  if (report.header !== 'linux/vfio.h') throw invalid(`header is ${describe(report.header)}`);
  if (!isRecord(report.constants)) throw invalid('constants is not an object');
  if (!isRecord(report.structs)) throw invalid('structs is not an object');
  if (!Array.isArray(report.newerThan61) || report.newerThan61.some((n) => typeof n !== 'string')) {
    throw invalid('newerThan61 is not a list of names');
  }
  const constants = sortedRecord(
    Object.entries(report.constants).map(([name, value]): [string, number] => [
      name,
      // Negative values are legal C constants even though vfio.h has none today.
      checkInteger(value, `constant ${name}`, Number.MIN_SAFE_INTEGER),
    ]),
  );
  const structs = sortedRecord(
    Object.entries(report.structs).map(([name, s]): [string, AbiStructReport] => {
      if (!isRecord(s) || !isRecord(s.fields)) throw invalid(`struct ${name} has no fields object`);
      return [
        name,
        {
          size: checkInteger(s.size, `size of struct ${name}`, 0),
          fields: sortedRecord(
            Object.entries(s.fields).map(([field, offset]): [string, number] => [
              field,
              checkInteger(offset, `offset of ${name}.${field}`, 0),
            ]),
          ),
        },
      ];
    }),
  );
  const canonical: AbiReport = {
    constants,
    structs,
    newerThan61: [...new Set(report.newerThan61)].sort(byName),
    header: report.header,
  };
  return `${JSON.stringify(canonical, null, 2)}\n`;
}
