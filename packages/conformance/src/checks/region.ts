/** GET_REGION_INFO: argsz and capability-chain rules, sparse areas, mmap, types, offsets, bounds. */
import { VFIO_PCI_NUM_REGIONS, VfioError } from '@vfiokit/core';
import {
  decodeRegionInfo,
  decodeRegionInfoStruct,
  ERRNO,
  VFIO_PCI_VGA_REGION_INDEX,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  vfio_region_info,
} from '@vfiokit/core/abi';
import { IOMMU_PAGE_SIZE } from '@vfiokit/core/host';
import type { CheckContext, ConformanceCheck, ConformanceFile } from '../types.js';
import {
  describeError,
  describeRet,
  EINVAL,
  type FullRegionInfo,
  getDeviceInfo,
  getRegionInfo,
  getRegionInfoRaw,
  hex,
  regionName,
} from './util.js';

function numRegions(ctx: CheckContext): number {
  const { info } = getDeviceInfo(ctx.file);
  if (!info) return ctx.skip('DEVICE_GET_INFO failed (reported by device.info).');
  return info.numRegions;
}

/** Every region's full info; an index whose info cannot be read is a failure of this check. */
function regions(ctx: CheckContext): FullRegionInfo[] {
  const n = numRegions(ctx);
  const out: FullRegionInfo[] = [];
  for (let i = 0; i < n; i++) {
    try {
      out.push(getRegionInfo(ctx.file, i));
    } catch (err) {
      // vfio-pci answers EINVAL for the VGA region of a device that has no VGA (vdev->has_vga).
      if (i === VFIO_PCI_VGA_REGION_INDEX && err instanceof VfioError && err.errno === ERRNO.EINVAL) {
        ctx.note('the VGA region answers EINVAL, as vfio-pci does for a device without VGA');
        continue;
      }
      ctx.fail({
        region: i,
        problem: `GET_REGION_INFO of ${regionName(i)} failed`,
        expected: 'region info',
        actual: describeError(err),
      });
    }
  }
  return out;
}

function sparseAreas(r: FullRegionInfo): readonly { offset: number; size: number }[] | undefined {
  for (const c of r.caps) if (c.id === VFIO_REGION_INFO_CAP_SPARSE_MMAP && 'areas' in c) return c.areas;
  return undefined;
}

/** undefined when the access was refused with EINVAL or EFAULT or moved at most `most` bytes; else what happened. */
function refusedOrShort(attempt: () => number, most: number): string | undefined {
  try {
    const moved = attempt();
    return moved <= most ? undefined : `${moved} bytes moved`;
  } catch (err) {
    if (err instanceof VfioError && (err.errno === ERRNO.EINVAL || err.errno === ERRNO.EFAULT))
      return undefined;
    return describeError(err);
  }
}

function expectEinval(what: () => unknown): string | undefined {
  try {
    what();
    return 'the access succeeded';
  } catch (err) {
    if (err instanceof VfioError && err.errno === ERRNO.EINVAL) return undefined;
    return describeError(err);
  }
}

function mmapError(file: ConformanceFile, offset: number, size: number): string | undefined {
  try {
    const m = file.mmap(offset, size);
    if (m.size !== size) return `a mapping of ${m.size} bytes instead of ${size}`;
    if (m.memoryOffset < 0 || m.memoryOffset + m.size > m.memory.bytes.length) {
      return `a mapping at ${m.memoryOffset} of ${m.size} bytes outside its ${m.memory.bytes.length}-byte memory`;
    }
    return undefined;
  } catch (err) {
    return describeError(err);
  }
}

export const regionChecks: readonly ConformanceCheck[] = [
  {
    id: 'region.argsz',
    title: 'GET_REGION_INFO refuses argsz below 32 and an index at or past num_regions',
    run(ctx) {
      const n = numRegions(ctx);
      for (let i = 0; i < n; i++) {
        const r = getRegionInfoRaw(ctx.file, i, vfio_region_info.size - 1, vfio_region_info.size);
        if (r.ret !== EINVAL) {
          ctx.fail({
            region: i,
            problem: 'GET_REGION_INFO with argsz 31 was not refused',
            expected: describeRet(EINVAL),
            actual: describeRet(r.ret),
          });
        }
      }
      for (const index of [n, n + 1, 0xffffffff]) {
        const r = getRegionInfoRaw(ctx.file, index, vfio_region_info.size);
        if (r.ret !== EINVAL) {
          ctx.fail({
            region: index,
            problem: `GET_REGION_INFO of unknown index ${index} (num_regions ${n}) was not refused`,
            expected: describeRet(EINVAL),
            actual: describeRet(r.ret),
          });
        }
      }
    },
  },
  {
    id: 'region.caps-chain',
    title:
      'a short argsz gets FLAG_CAPS, the size needed and cap_offset 0; that size gets a well-formed chain',
    run(ctx) {
      const n = numRegions(ctx);
      for (let i = 0; i < n; i++) {
        const small = getRegionInfoRaw(ctx.file, i, vfio_region_info.size);
        if (small.ret === EINVAL && i === VFIO_PCI_VGA_REGION_INDEX) {
          ctx.note('the VGA region answers EINVAL, as vfio-pci does for a device without VGA');
          continue;
        }
        if (small.ret !== 0) {
          ctx.fail({
            region: i,
            problem: 'GET_REGION_INFO failed',
            expected: '0',
            actual: `${describeRet(small.ret)}${small.error ? `: ${small.error.message}` : ''}`,
          });
          continue;
        }
        const s = decodeRegionInfoStruct(small.out);
        if (s.index !== i)
          ctx.fail({
            region: i,
            problem: 'the index in the answer changed',
            expected: String(i),
            actual: String(s.index),
          });
        // A big buffer shows whether the region has capabilities at all.
        const big = getRegionInfoRaw(ctx.file, i, 4096);
        const b = big.ret === 0 ? decodeRegionInfoStruct(big.out) : undefined;
        const hasCaps = b !== undefined && (b.flags & VFIO_REGION_INFO_FLAG_CAPS) !== 0;
        if (!hasCaps) {
          if (s.capOffset !== 0)
            ctx.fail({
              region: i,
              problem: 'cap_offset is set without capabilities',
              expected: '0',
              actual: String(s.capOffset),
            });
          continue;
        }
        if (!(s.flags & VFIO_REGION_INFO_FLAG_CAPS)) {
          ctx.fail({
            region: i,
            problem: 'a 32-byte argsz answer lacks FLAG_CAPS although the region has capabilities',
            expected: 'FLAG_CAPS set',
            actual: `flags 0x${s.flags.toString(16)}`,
          });
        }
        if (s.capOffset !== 0) {
          ctx.fail({
            region: i,
            problem: 'a 32-byte argsz answer points at a capability chain that cannot fit',
            expected: 'cap_offset 0',
            actual: `cap_offset ${s.capOffset}`,
          });
        }
        if (s.argsz <= vfio_region_info.size) {
          ctx.fail({
            region: i,
            problem: 'argsz was not raised to the size the capabilities need',
            expected: `argsz > ${vfio_region_info.size}`,
            actual: `argsz ${s.argsz}`,
          });
          continue;
        }
        const exact = getRegionInfoRaw(ctx.file, i, s.argsz);
        if (exact.ret !== 0) {
          ctx.fail({
            region: i,
            problem: `GET_REGION_INFO with the reported argsz ${s.argsz} failed`,
            expected: '0',
            actual: describeRet(exact.ret),
          });
          continue;
        }
        let full: ReturnType<typeof decodeRegionInfo>;
        try {
          full = decodeRegionInfo(exact.out);
        } catch (err) {
          ctx.fail({
            region: i,
            problem: 'the capability chain is malformed (loop, or outside the buffer)',
            expected: 'a chain inside argsz ending with next 0',
            actual: describeError(err),
          });
          continue;
        }
        if (full.capOffset === 0) {
          ctx.fail({
            region: i,
            problem: `the reported argsz ${s.argsz} still does not get the chain`,
            expected: `cap_offset >= ${vfio_region_info.size}`,
            actual: 'cap_offset 0',
          });
        } else if (full.capOffset < vfio_region_info.size) {
          ctx.fail({
            region: i,
            problem: 'cap_offset points into the fixed struct',
            expected: `>= ${vfio_region_info.size}`,
            actual: String(full.capOffset),
          });
        }
        if (
          full.size !== s.size ||
          full.offset !== s.offset ||
          (full.flags & ~VFIO_REGION_INFO_FLAG_CAPS) !== (s.flags & ~VFIO_REGION_INFO_FLAG_CAPS)
        ) {
          ctx.fail({
            region: i,
            problem: 'size, offset or flags change with argsz',
            expected: `size ${s.size}, offset ${hex(s.offset)}, flags ${hex(s.flags)}`,
            actual: `size ${full.size}, offset ${hex(full.offset)}, flags ${hex(full.flags)}`,
          });
        }
        for (const cap of full.caps) {
          if ('raw' in cap)
            ctx.fail({
              region: i,
              problem: `unknown capability id ${cap.id} in the chain`,
              expected: 'SPARSE_MMAP, TYPE or MSIX_MAPPABLE',
              actual: `id ${cap.id}`,
            });
        }
      }
    },
  },
  {
    id: 'region.sparse-areas',
    title: 'sparse mmap areas lie inside the region, page aligned, sorted and not overlapping',
    run(ctx) {
      for (const r of regions(ctx)) {
        const areas = sparseAreas(r);
        if (!areas) continue;
        if (!(r.flags & VFIO_REGION_INFO_FLAG_MMAP)) {
          ctx.fail({
            region: r.index,
            problem: 'a sparse-mmap capability on a region without the MMAP flag',
            expected: 'MMAP flag set',
            actual: `flags ${hex(r.flags)}`,
          });
        }
        let prevEnd = -1;
        areas.forEach((a, k) => {
          if (a.offset % IOMMU_PAGE_SIZE !== 0 || a.size % IOMMU_PAGE_SIZE !== 0) {
            ctx.fail({
              region: r.index,
              offset: a.offset,
              problem: `sparse area ${k} is not page aligned`,
              expected: `offset and size multiples of ${IOMMU_PAGE_SIZE}`,
              actual: `offset ${hex(a.offset)}, size ${hex(a.size)}`,
            });
          }
          if (a.size === 0) {
            ctx.fail({
              region: r.index,
              offset: a.offset,
              problem: `sparse area ${k} is empty`,
              expected: 'size > 0',
              actual: 'size 0',
            });
          }
          if (a.offset + a.size > r.size) {
            ctx.fail({
              region: r.index,
              offset: a.offset,
              problem: `sparse area ${k} ends past the region`,
              expected: `end <= ${hex(r.size)}`,
              actual: `end ${hex(a.offset + a.size)}`,
            });
          }
          if (a.offset < prevEnd) {
            const overlap = k > 0 && a.offset >= areas[k - 1].offset;
            ctx.fail({
              region: r.index,
              offset: a.offset,
              problem: overlap
                ? `sparse area ${k} overlaps area ${k - 1}`
                : `sparse area ${k} is not sorted after area ${k - 1}`,
              expected: `offset >= ${hex(prevEnd)}`,
              actual: `offset ${hex(a.offset)}`,
            });
          }
          prevEnd = Math.max(prevEnd, a.offset + a.size);
        });
      }
    },
  },
  {
    id: 'region.mmap',
    title: 'the MMAP flag is set if and only if mmap of the region (or each sparse area) works',
    run(ctx) {
      for (const r of regions(ctx)) {
        if (r.size === 0) continue;
        if (r.flags & VFIO_REGION_INFO_FLAG_MMAP) {
          const areas = sparseAreas(r) ?? [{ offset: 0, size: r.size }];
          areas.forEach((a, k) => {
            if (a.size === 0 || a.offset % IOMMU_PAGE_SIZE !== 0 || a.size % IOMMU_PAGE_SIZE !== 0) return; // region.sparse-areas
            const err = mmapError(ctx.file, r.offset + a.offset, a.size);
            if (err) {
              ctx.fail({
                region: r.index,
                offset: a.offset,
                problem: `the MMAP flag is set but mapping area ${k} fails`,
                expected: `a ${a.size}-byte mapping`,
                actual: err,
              });
            }
          });
        } else {
          const size = Math.max(IOMMU_PAGE_SIZE, Math.floor(r.size / IOMMU_PAGE_SIZE) * IOMMU_PAGE_SIZE);
          const err = mmapError(ctx.file, r.offset, size);
          if (err === undefined) {
            ctx.fail({
              region: r.index,
              offset: 0,
              problem: 'mmap works on a region without the MMAP flag',
              expected: 'EINVAL',
              actual: 'a mapping',
            });
          } else if (!err.startsWith('EINVAL')) {
            ctx.fail({
              region: r.index,
              offset: 0,
              problem: 'mmap of a region without the MMAP flag must fail with EINVAL',
              expected: 'EINVAL',
              actual: err,
            });
          }
        }
      }
    },
  },
  {
    id: 'region.type-cap',
    title: 'every device-specific region (index 9 and up) carries a TYPE capability',
    run(ctx) {
      for (const r of regions(ctx)) {
        if (r.index < VFIO_PCI_NUM_REGIONS) continue;
        if (!r.caps.some((c) => c.id === VFIO_REGION_INFO_CAP_TYPE)) {
          ctx.fail({
            region: r.index,
            problem: 'a device-specific region has no TYPE capability',
            expected: 'VFIO_REGION_INFO_CAP_TYPE in the chain',
            actual: r.caps.length ? `capabilities ${r.caps.map((c) => c.id).join(', ')}` : 'no capabilities',
          });
        }
      }
    },
  },
  {
    id: 'region.offsets',
    title: 'regions do not overlap in the device file (an alias must have the same offset and size)',
    run(ctx) {
      const rs = regions(ctx).filter((r) => r.size > 0);
      for (let a = 0; a < rs.length; a++) {
        for (let b = a + 1; b < rs.length; b++) {
          const x = rs[a];
          const y = rs[b];
          if (x.offset === y.offset && x.size === y.size) {
            ctx.note(
              `regions ${x.index} and ${y.index} alias the same ${x.size} bytes at ${hex(x.offset)} (allowed, as mdpy does)`,
            );
            continue;
          }
          if (x.offset < y.offset + y.size && y.offset < x.offset + x.size) {
            ctx.fail({
              region: y.index,
              offset: y.offset,
              problem: `${regionName(y.index)} overlaps ${regionName(x.index)} in the file-offset space`,
              expected: `no byte of [${hex(y.offset)}, ${hex(y.offset + y.size)}) inside [${hex(x.offset)}, ${hex(x.offset + x.size)})`,
              actual: 'the ranges overlap',
            });
          }
        }
      }
    },
  },
  {
    id: 'region.bounds',
    title:
      'an access past a region moves no byte beyond it (refused, or cut short at the end), and one whose offset + count overflows is refused',
    run(ctx) {
      for (const r of regions(ctx)) {
        if (r.size === 0) continue;
        const readable = (r.flags & VFIO_REGION_INFO_FLAG_READ) !== 0;
        const writable = (r.flags & VFIO_REGION_INFO_FLAG_WRITE) !== 0;
        const n = Math.min(4, r.size);
        const past = r.offset + r.size - n + 1;
        // [what, attempt, the most bytes it may move]: vfio-pci refuses config space past its
        // end (EFAULT) and cuts a BAR access short at the BAR's end (vfio_pci_bar_rw); either
        // is fine, moving a byte beyond the region is not.
        const attempts: [string, () => number, number][] = [];
        if (readable) {
          attempts.push([
            `a ${n}-byte read ending one byte past the end`,
            () => ctx.file.read(past, new Uint8Array(n)),
            n - 1,
          ]);
          attempts.push([
            'a read whose offset + count overflows',
            () => ctx.file.read(Number.MAX_SAFE_INTEGER - 1, new Uint8Array(8)),
            0,
          ]);
        }
        if (writable) {
          attempts.push([
            `a ${n}-byte write ending one byte past the end`,
            () => ctx.file.write(past, new Uint8Array(n)),
            n - 1,
          ]);
          attempts.push([
            'a write whose offset + count overflows',
            () => ctx.file.write(Number.MAX_SAFE_INTEGER - 1, new Uint8Array(8)),
            0,
          ]);
        }
        if (readable && r.size <= 1 << 20) {
          attempts.push([
            'a read of the whole region plus one byte',
            () => ctx.file.read(r.offset, new Uint8Array(r.size + 1)),
            r.size,
          ]);
        }
        for (const [what, attempt, most] of attempts) {
          const err = refusedOrShort(attempt, most);
          if (err)
            ctx.fail({
              region: r.index,
              offset: r.size,
              problem: `${what} was not refused`,
              expected: most > 0 ? `EINVAL, EFAULT or at most ${most} bytes moved` : 'EINVAL or EFAULT',
              actual: err,
            });
        }
      }
    },
  },
  {
    id: 'region.access-flags',
    title: 'reads of a write-only region and writes of a read-only region are refused',
    run(ctx) {
      for (const r of regions(ctx)) {
        if (r.size === 0) continue;
        if (!(r.flags & VFIO_REGION_INFO_FLAG_READ)) {
          const err = expectEinval(() => ctx.file.read(r.offset, new Uint8Array(1)));
          if (err)
            ctx.fail({
              region: r.index,
              offset: 0,
              problem: 'a read of a region without the READ flag was not refused',
              expected: 'EINVAL',
              actual: err,
            });
        }
        if (!(r.flags & VFIO_REGION_INFO_FLAG_WRITE)) {
          const err = expectEinval(() => ctx.file.write(r.offset, new Uint8Array(1)));
          if (err)
            ctx.fail({
              region: r.index,
              offset: 0,
              problem: 'a write of a region without the WRITE flag was not refused',
              expected: 'EINVAL',
              actual: err,
            });
        }
      }
    },
  },
];
