/**
 * Proves the ABI tables (abi/constants.ts, abi/layout.ts) against the machine's
 * /usr/include/linux/vfio.h: one C probe, generated from the ABI report, compiled once with gcc
 * and run, prints every constant, struct size, field offset, field width and signedness.
 *
 * Items a Linux 6.1 header does not have (NEWER_THAN_6_1) are probed with #ifdef; where the
 * header lacks them they are compared with their documented mainline value below, and the test
 * output says so.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as C from '../src/abi/constants.js';
import { type FieldType, STRUCT_LAYOUTS, type StructLayout } from '../src/abi/layout.js';
import { abiReport } from '../src/abi/report.js';
import { VfioError } from '../src/errors.js';

const HEADER_PATH = '/usr/include/linux/vfio.h';

// Mainline include/uapi/linux/vfio.h (Linux 6.2+): the values of the items a 6.1 header lacks.
const MAINLINE_CONSTANTS: Readonly<Record<string, number>> = {
  VFIO_MIG_GET_PRECOPY_INFO: (0x3b << 8) | (100 + 21), // _IO(VFIO_TYPE, VFIO_BASE + 21)
  VFIO_MIGRATION_PRE_COPY: 1 << 2,
  VFIO_DEVICE_STATE_PRE_COPY: 6, // enum vfio_device_mig_state
  VFIO_DEVICE_STATE_PRE_COPY_P2P: 7,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: 9,
};

type DocumentedStruct = { size: number; fields: Record<string, [offset: number, type: FieldType]> };

// Mainline include/uapi/linux/vfio.h (Linux 6.2+); __aligned_u64 members are 'u64'.
const MAINLINE_STRUCTS: Readonly<Record<string, DocumentedStruct>> = {
  vfio_precopy_info: {
    size: 24,
    fields: { argsz: [0, 'u32'], flags: [4, 'u32'], initial_bytes: [8, 'u64'], dirty_bytes: [16, 'u64'] },
  },
  vfio_device_feature_mig_data_size: { size: 8, fields: { stop_copy_length: [0, 'u64'] } },
};

/**
 * The macro whose presence shows that the header has a newer item. Enum members and structs
 * cannot be tested with #ifdef, so each is tied to a macro that arrived in the same mainline
 * change; a macro constant stands for itself.
 */
const PRESENCE_MACRO: Readonly<Record<string, string>> = {
  VFIO_DEVICE_STATE_PRE_COPY: 'VFIO_MIGRATION_PRE_COPY',
  VFIO_DEVICE_STATE_PRE_COPY_P2P: 'VFIO_MIGRATION_PRE_COPY',
  vfio_precopy_info: 'VFIO_MIG_GET_PRECOPY_INFO',
  vfio_device_feature_mig_data_size: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE',
};

/**
 * Kernel-internal definitions that no uapi header carries: include/linux/vfio_pci_core.h
 * (drivers/vfio/pci/vfio_pci_private.h before Linux 5.15). The probe restates them in C.
 */
const KERNEL_PRIVATE_C = [
  '#ifndef VFIO_PCI_OFFSET_SHIFT',
  '#define VFIO_PCI_OFFSET_SHIFT 40',
  '#endif',
  '#ifndef VFIO_PCI_OFFSET_MASK',
  '#define VFIO_PCI_OFFSET_MASK (((__u64)1 << 40) - 1)',
  '#endif',
  '#ifndef VFIO_PCI_INDEX_TO_OFFSET',
  '#define VFIO_PCI_INDEX_TO_OFFSET(index) ((__u64)(index) << 40)',
  '#endif',
  '#ifndef VFIO_PCI_OFFSET_TO_INDEX',
  '#define VFIO_PCI_OFFSET_TO_INDEX(off) ((off) >> 40)',
  '#endif',
];
const KERNEL_PRIVATE = new Set(['VFIO_PCI_OFFSET_SHIFT', 'VFIO_PCI_OFFSET_MASK']);

/**
 * Constants the header writes as an int expression that overflows into the sign bit
 * (`(1 << 31)`) and that the ABI carries in a __u32 field (vfio_region_info_cap_type.type).
 */
const U32_CARRIED = new Set(['VFIO_REGION_TYPE_PCI_VENDOR_TYPE']);

// linux/vfio.h: every ioctl is _IO(VFIO_TYPE, VFIO_BASE + n); n as the header documents it.
const IOCTL_NR: Readonly<Record<string, number>> = {
  VFIO_GET_API_VERSION: 0,
  VFIO_CHECK_EXTENSION: 1,
  VFIO_SET_IOMMU: 2,
  VFIO_GROUP_GET_STATUS: 3,
  VFIO_GROUP_SET_CONTAINER: 4,
  VFIO_GROUP_UNSET_CONTAINER: 5,
  VFIO_GROUP_GET_DEVICE_FD: 6,
  VFIO_DEVICE_GET_INFO: 7,
  VFIO_DEVICE_GET_REGION_INFO: 8,
  VFIO_DEVICE_GET_IRQ_INFO: 9,
  VFIO_DEVICE_SET_IRQS: 10,
  VFIO_DEVICE_RESET: 11,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: 12,
  VFIO_DEVICE_PCI_HOT_RESET: 13,
  VFIO_DEVICE_QUERY_GFX_PLANE: 14,
  VFIO_DEVICE_GET_GFX_DMABUF: 15,
  VFIO_DEVICE_IOEVENTFD: 16,
  VFIO_DEVICE_FEATURE: 17,
  VFIO_MIG_GET_PRECOPY_INFO: 21,
  VFIO_IOMMU_GET_INFO: 12,
  VFIO_IOMMU_MAP_DMA: 13,
  VFIO_IOMMU_UNMAP_DMA: 14,
  VFIO_IOMMU_DIRTY_PAGES: 17,
};

/** Region indexes whose file offset is probed: the fixed vfio-pci ones and device-specific ones. */
const PROBED_INDEXES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 255, 4095];

const SCALAR_SIZE: Readonly<Record<string, number>> = { u8: 1, u16: 2, u32: 4, s32: 4, u64: 8 };

interface ProbedStruct {
  size: number;
  offsets: Map<string, number>;
  widths: Map<string, number>;
  signed: Map<string, boolean>;
}

interface Probe {
  /** e.g. "6.1.187", from linux/version.h when the machine has it. */
  linuxVersion: string | undefined;
  constants: Map<string, bigint | 'absent'>;
  ioctls: Map<string, bigint>;
  structs: Map<string, ProbedStruct | 'absent'>;
  indexToOffset: Map<number, bigint>;
  offsetToIndex: Map<number, bigint>;
}

const report = abiReport();
const isScalar = (type: FieldType): boolean => type !== 'header' && type !== 'array';

/** The C probe: one printf per fact, every line `kind name [field] value`. */
function probeSource(): string {
  const out = [
    '#include <stddef.h>',
    '#include <stdio.h>',
    '#include <linux/ioctl.h>',
    '#include <linux/types.h>',
    '#include <linux/vfio.h>',
    '#if defined(__has_include)',
    '#if __has_include(<linux/version.h>)',
    '#include <linux/version.h>',
    '#endif',
    '#endif',
    ...KERNEL_PRIVATE_C,
    '#define MEMBER_IS_SIGNED(s, f) ((__typeof__(((struct s *)0)->f))-1 < 0)',
    'int main(void) {',
    '#ifdef LINUX_VERSION_CODE',
    '  printf("version %d\\n", LINUX_VERSION_CODE);',
    '#endif',
  ];
  const guarded = (item: string, lines: string[]): string[] => {
    if (!C.NEWER_THAN_6_1.has(item)) return lines;
    const macro = PRESENCE_MACRO[item] ?? item;
    return [`#ifdef ${macro}`, ...lines, '#else', `  printf("absent ${item}\\n");`, '#endif'];
  };
  for (const name of Object.keys(report.constants)) {
    const expr = U32_CARRIED.has(name) ? `(long long)(__u32)(${name})` : `(long long)(${name})`;
    out.push(...guarded(name, [`  printf("const ${name} %lld\\n", ${expr});`]));
  }
  for (const [name, n] of Object.entries(IOCTL_NR)) {
    out.push(`  printf("ioctl ${name} %lld\\n", (long long)_IO(';', 100 + ${n}));`);
  }
  for (const name of Object.keys(report.structs)) {
    const layout = STRUCT_LAYOUTS[name];
    const lines = [`  printf("size ${name} %zu\\n", sizeof(struct ${name}));`];
    for (const [field, f] of Object.entries(layout.fields)) {
      lines.push(`  printf("offset ${name} ${field} %zu\\n", offsetof(struct ${name}, ${field}));`);
      if (f.type === 'array') continue;
      lines.push(`  printf("width ${name} ${field} %zu\\n", sizeof(((struct ${name} *)0)->${field}));`);
      if (isScalar(f.type)) {
        lines.push(`  printf("signed ${name} ${field} %d\\n", (int)MEMBER_IS_SIGNED(${name}, ${field}));`);
      }
    }
    out.push(...guarded(name, lines));
  }
  for (const index of PROBED_INDEXES) {
    out.push(
      `  printf("index2offset ${index} %llu\\n", (unsigned long long)VFIO_PCI_INDEX_TO_OFFSET(${index}));`,
    );
    out.push(
      `  printf("offset2index ${index} %llu\\n", (unsigned long long)VFIO_PCI_OFFSET_TO_INDEX(VFIO_PCI_INDEX_TO_OFFSET(${index}) | VFIO_PCI_OFFSET_MASK));`,
    );
  }
  out.push('  return 0;', '}', '');
  return out.join('\n');
}

function parseProbe(text: string): Probe {
  const probe: Probe = {
    linuxVersion: undefined,
    constants: new Map(),
    ioctls: new Map(),
    structs: new Map(),
    indexToOffset: new Map(),
    offsetToIndex: new Map(),
  };
  const struct = (name: string): ProbedStruct => {
    const s = probe.structs.get(name);
    if (s === undefined || s === 'absent')
      throw new Error(`probe printed a field of ${name} before its size`);
    return s;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const w = line.split(' ');
    const [kind, a, b] = w;
    if (kind === 'version' && w.length === 2) {
      const code = Number(a);
      probe.linuxVersion = `${code >> 16}.${(code >> 8) & 0xff}.${code & 0xff}`;
    } else if (kind === 'absent' && w.length === 2) {
      if (a in STRUCT_LAYOUTS) probe.structs.set(a, 'absent');
      else probe.constants.set(a, 'absent');
    } else if (kind === 'const' && w.length === 3) probe.constants.set(a, BigInt(b));
    else if (kind === 'ioctl' && w.length === 3) probe.ioctls.set(a, BigInt(b));
    else if (kind === 'size' && w.length === 3) {
      probe.structs.set(a, { size: Number(b), offsets: new Map(), widths: new Map(), signed: new Map() });
    } else if (kind === 'offset' && w.length === 4) struct(a).offsets.set(b, Number(w[3]));
    else if (kind === 'width' && w.length === 4) struct(a).widths.set(b, Number(w[3]));
    else if (kind === 'signed' && w.length === 4) struct(a).signed.set(b, w[3] === '1');
    else if (kind === 'index2offset' && w.length === 3) probe.indexToOffset.set(Number(a), BigInt(b));
    else if (kind === 'offset2index' && w.length === 3) probe.offsetToIndex.set(Number(a), BigInt(b));
    else
      throw new Error(`the ABI probe printed a line this test does not understand: ${JSON.stringify(line)}`);
  }
  return probe;
}

function firstLines(text: string, n: number): string {
  return text.split('\n').slice(0, n).join('\n');
}

/** Compiles and runs the probe once; any failure is a VfioError that says what to install or fix. */
function runProbe(): Probe {
  if (!existsSync(HEADER_PATH)) {
    throw new VfioError('ENOENT', `${HEADER_PATH} is missing, so the ABI tables cannot be proven.`, {
      hint: 'Install the kernel UAPI headers (apt-get install linux-libc-dev); CI always has them.',
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'vfiokit-abi-'));
  try {
    const source = join(dir, 'probe.c');
    const binary = join(dir, 'probe');
    writeFileSync(source, probeSource());
    try {
      execFileSync('gcc', ['-std=gnu11', '-O0', '-o', binary, source], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      if (e.code === 'ENOENT') {
        throw new VfioError(
          'ENOENT',
          'gcc was not found on PATH; the ABI test compiles a C probe against linux/vfio.h.',
          {
            hint: 'Install it (apt-get install gcc); CI always has it.',
          },
        );
      }
      throw new VfioError(
        'EIO',
        `gcc could not compile the ABI probe against ${HEADER_PATH}:\n${firstLines(String(e.stderr ?? e.message), 30)}\n`,
        {
          hint: 'An undeclared name means constants.ts or layout.ts has an item this header lacks: fix the name, or list it in NEWER_THAN_6_1 with its documented mainline value.',
        },
      );
    }
    return parseProbe(execFileSync(binary, { encoding: 'utf8' }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Compiled once while the file is collected, so that test names can say what each item was
// checked against; a failure is kept and thrown by every test.
let probed: Probe | undefined;
let probeError: unknown;
try {
  probed = runProbe();
} catch (err) {
  probeError = err;
}

function header(): Probe {
  if (probed === undefined) throw probeError;
  return probed;
}

const headerName = (): string =>
  probed?.linuxVersion === undefined ? HEADER_PATH : `${HEADER_PATH} (Linux ${probed.linuxVersion})`;

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/** Every way a struct layout differs from what the probe (or the documented layout) says. */
function compareStruct(layout: StructLayout, probe: Probe): { mismatches: string[]; documented: boolean } {
  const name = layout.name;
  const found = probe.structs.get(name);
  const mismatches: string[] = [];
  if (found === undefined) return { mismatches: [`struct ${name} was not probed`], documented: false };
  if (found === 'absent') {
    const doc = MAINLINE_STRUCTS[name];
    if (doc === undefined) {
      return {
        mismatches: [`struct ${name} is not in the header and has no documented layout`],
        documented: true,
      };
    }
    if (layout.size !== doc.size)
      mismatches.push(`sizeof(struct ${name}): ours ${layout.size}, documented ${doc.size}`);
    const names = new Set([...Object.keys(layout.fields), ...Object.keys(doc.fields)]);
    for (const field of names) {
      const ours = layout.fields[field];
      const theirs = doc.fields[field];
      if (ours === undefined) mismatches.push(`${name}.${field}: documented, missing from layout.ts`);
      else if (theirs === undefined) mismatches.push(`${name}.${field}: in layout.ts, not documented`);
      else if (ours.offset !== theirs[0] || ours.type !== theirs[1]) {
        mismatches.push(
          `${name}.${field}: ours ${ours.type} at ${ours.offset}, documented ${theirs[1]} at ${theirs[0]}`,
        );
      }
    }
    return { mismatches, documented: true };
  }
  if (layout.size !== found.size)
    mismatches.push(`sizeof(struct ${name}): ours ${layout.size}, header ${found.size}`);
  for (const [field, f] of Object.entries(layout.fields)) {
    const offset = found.offsets.get(field);
    if (offset !== f.offset)
      mismatches.push(`offsetof(${name}, ${field}): ours ${f.offset}, header ${offset}`);
    if (f.type === 'array') continue;
    const width = found.widths.get(field);
    const want = f.type === 'header' ? STRUCT_LAYOUTS.vfio_info_cap_header.size : SCALAR_SIZE[f.type];
    if (width !== want)
      mismatches.push(`sizeof(${name}.${field}): ours ${f.type} (${want}), header ${width}`);
    if (isScalar(f.type) && found.signed.get(field) !== (f.type === 's32')) {
      mismatches.push(
        `${name}.${field}: ours ${f.type}, header is ${found.signed.get(field) ? 'signed' : 'unsigned'}`,
      );
    }
  }
  return { mismatches, documented: false };
}

/** Every constant that differs from the header, and the ones checked against documented values. */
function compareConstants(
  constants: Record<string, number>,
  probe: Probe,
): { mismatches: string[]; documented: string[] } {
  const mismatches: string[] = [];
  const documented: string[] = [];
  for (const [name, value] of Object.entries(constants)) {
    const found = probe.constants.get(name);
    if (found === undefined) mismatches.push(`${name}: not probed`);
    else if (found === 'absent') {
      documented.push(name);
      const doc = MAINLINE_CONSTANTS[name];
      if (doc === undefined) mismatches.push(`${name}: not in the header and no documented mainline value`);
      else if (doc !== value) mismatches.push(`${name}: ours ${hex(value)}, documented mainline ${hex(doc)}`);
    } else if (found !== BigInt(value)) {
      const what = KERNEL_PRIVATE.has(name) ? 'kernel definition' : 'header';
      mismatches.push(`${name}: ours ${hex(value)}, ${what} ${hex(found)}`);
    }
  }
  return { mismatches, documented };
}

function say(documented: string[], what: string): void {
  if (documented.length === 0) return;
  console.info(
    `${headerName()} is older than these ${what}; each was checked against its documented mainline ` +
      `(include/uapi/linux/vfio.h) value instead: ${documented.join(', ')}`,
  );
}

describe(`ABI tables against ${headerName()}`, () => {
  it('compiles and runs one C probe against the header', () => {
    const probe = header();
    expect(probe.structs.size).toBe(Object.keys(report.structs).length);
    expect(probe.constants.size).toBe(Object.keys(report.constants).length);
  });

  it('every VFIO_* constant equals the header (newer ones: the documented mainline value)', () => {
    const { mismatches, documented } = compareConstants(report.constants, header());
    say(documented, 'constants');
    expect(mismatches, `constants that differ from ${headerName()}:\n${mismatches.join('\n')}`).toEqual([]);
  });

  it('only NEWER_THAN_6_1 constants are missing from the header', () => {
    const { documented } = compareConstants(report.constants, header());
    expect(documented.filter((n) => !C.NEWER_THAN_6_1.has(n))).toEqual([]);
  });

  for (const layout of Object.values(STRUCT_LAYOUTS)) {
    const absent = probed?.structs.get(layout.name) === 'absent';
    const against = absent
      ? 'its documented mainline layout (the header is older and lacks it)'
      : 'sizeof/offsetof/member widths in the header';
    it(`struct ${layout.name} matches ${against}`, () => {
      const { mismatches, documented } = compareStruct(layout, header());
      if (documented) say([`struct ${layout.name}`], 'structs');
      expect(mismatches, `struct ${layout.name} differs:\n${mismatches.join('\n')}`).toEqual([]);
    });
  }

  it('every ioctl constant equals _IO(";", 100 + n) as the C preprocessor computes it', () => {
    const probe = header();
    const mismatches: string[] = [];
    for (const [name, n] of Object.entries(IOCTL_NR)) {
      const ours = report.constants[name];
      const c = probe.ioctls.get(name);
      if (ours === undefined) mismatches.push(`${name} (nr ${n}) is not exported by constants.ts`);
      else if (c !== BigInt(ours)) mismatches.push(`${name}: ours ${hex(ours)}, _IO(';', 100 + ${n}) = ${c}`);
    }
    expect(mismatches).toEqual([]);
  });

  it('every constant that has the shape of a VFIO ioctl is in the ioctl table', () => {
    const shaped = Object.entries(report.constants)
      .filter(([, v]) => v >> 8 === C.VFIO_TYPE && (v & 0xff) >= C.VFIO_BASE && v <= 0xffff)
      .map(([name]) => name);
    expect(shaped.filter((name) => !(name in IOCTL_NR))).toEqual([]);
    expect(shaped.length).toBe(Object.keys(IOCTL_NR).length);
  });

  it('vfioPciIndexToOffset equals the kernel VFIO_PCI_INDEX_TO_OFFSET ((u64)index << 40)', () => {
    const probe = header();
    for (const index of PROBED_INDEXES) {
      expect(BigInt(C.vfioPciIndexToOffset(index)), `index ${index}`).toBe(probe.indexToOffset.get(index));
    }
  });

  it('vfioPciOffsetToIndex equals VFIO_PCI_OFFSET_TO_INDEX at the last byte of every probed region', () => {
    const probe = header();
    for (const index of PROBED_INDEXES) {
      const last = C.vfioPciIndexToOffset(index) + C.VFIO_PCI_OFFSET_MASK;
      expect(BigInt(C.vfioPciOffsetToIndex(last)), `index ${index}`).toBe(probe.offsetToIndex.get(index));
    }
  });
});

describe('the documented mainline table', () => {
  it('has a value for every NEWER_THAN_6_1 item', () => {
    const missing = [...C.NEWER_THAN_6_1].filter(
      (n) => !(n in MAINLINE_CONSTANTS) && !(n in MAINLINE_STRUCTS),
    );
    expect(missing).toEqual([]);
  });

  it('names only items that constants.ts or layout.ts define', () => {
    const unknown = [...Object.keys(MAINLINE_CONSTANTS), ...Object.keys(MAINLINE_STRUCTS)].filter(
      (n) => !(n in report.constants) && !(n in report.structs),
    );
    expect(unknown).toEqual([]);
  });

  it('marks a struct newerThan61 in layout.ts exactly when NEWER_THAN_6_1 lists it', () => {
    for (const layout of Object.values(STRUCT_LAYOUTS)) {
      expect(layout.newerThan61 === true, layout.name).toBe(C.NEWER_THAN_6_1.has(layout.name));
    }
  });
});

describe('the comparison itself', () => {
  it('flags a wrong size, offset, member width and signedness', () => {
    const real = STRUCT_LAYOUTS.vfio_device_ioeventfd;
    const wrong: StructLayout = {
      ...real,
      size: 40,
      fields: {
        ...real.fields,
        offset: { offset: 12, type: 'u64' },
        data: { offset: 16, type: 'u32' },
        fd: { offset: 24, type: 'u32' },
      },
    };
    const { mismatches } = compareStruct(wrong, header());
    expect(mismatches).toHaveLength(4);
    expect(mismatches.join('\n')).toMatch(/sizeof\(struct vfio_device_ioeventfd\): ours 40, header 32/);
    expect(mismatches.join('\n')).toMatch(/offsetof\(vfio_device_ioeventfd, offset\): ours 12, header 8/);
    expect(mismatches.join('\n')).toMatch(/sizeof\(vfio_device_ioeventfd.data\): ours u32 \(4\), header 8/);
    expect(mismatches.join('\n')).toMatch(/vfio_device_ioeventfd.fd: ours u32, header is signed/);
  });

  it('flags a wrong constant and a newer constant that differs from its documented value', () => {
    const { mismatches } = compareConstants(
      {
        VFIO_DEVICE_FLAGS_PCI: 4,
        VFIO_REGION_TYPE_PCI_VENDOR_TYPE: 0x80000000,
        VFIO_MIG_GET_PRECOPY_INFO: 0x3b78,
      },
      header(),
    );
    expect(mismatches.some((m) => m.startsWith('VFIO_DEVICE_FLAGS_PCI: ours 0x4, header 0x2'))).toBe(true);
    expect(mismatches.some((m) => m.startsWith('VFIO_REGION_TYPE_PCI_VENDOR_TYPE'))).toBe(false);
    const precopy =
      header().constants.get('VFIO_MIG_GET_PRECOPY_INFO') === 'absent' ? 'documented mainline' : 'header';
    expect(mismatches).toContain(`VFIO_MIG_GET_PRECOPY_INFO: ours 0x3b78, ${precopy} 0x3b79`);
  });

  it('flags a newer struct that differs from its documented layout when the header lacks it', () => {
    const real = STRUCT_LAYOUTS.vfio_precopy_info;
    const wrong: StructLayout = {
      ...real,
      fields: { ...real.fields, dirty_bytes: { offset: 12, type: 'u64' } },
    };
    const { mismatches } = compareStruct(wrong, header());
    expect(mismatches).toHaveLength(1);
    expect(mismatches[0]).toMatch(/dirty_bytes/);
  });
});
