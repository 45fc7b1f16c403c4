/** Config space (region 7): identity, the capability list, and BAR sizing against REGION_INFO. */
import {
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_ROM_REGION_INDEX,
  walkCapabilities,
  walkExtendedCapabilities,
} from '@vfiokit/core';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CFG_SPACE_SIZE,
  PCI_CLASS_REVISION,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_MASK,
  PCI_HEADER_TYPE_NORMAL,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS_MASK,
  PCI_STD_HEADER_SIZEOF,
  PCI_STD_NUM_BARS,
  PCI_VENDOR_ID,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
} from '@vfiokit/core/abi';
import type { CheckContext, ConformanceCheck } from '../types.js';
import {
  ConfigAccess,
  describeError,
  type FullRegionInfo,
  getDeviceInfo,
  getRegionInfo,
  hex,
  regionName,
} from './util.js';

/**
 * Config access for a check, or a skip when region 7 cannot be used at all. A region smaller
 * than a PCI header (the kernel's mtty sample reports 0xff bytes) is a failure of config.header
 * only: the other checks go on with the bytes there are, so one defect does not hide others.
 */
export function openConfig(ctx: CheckContext): ConfigAccess {
  let cfg: ConfigAccess;
  try {
    cfg = ConfigAccess.open(ctx.file);
  } catch (err) {
    ctx.fail({
      region: VFIO_PCI_CONFIG_REGION_INDEX,
      problem: 'GET_REGION_INFO of the config region failed',
      expected: 'region info',
      actual: describeError(err),
    });
    return ctx.skip('the config region is unusable.');
  }
  if (cfg.size < PCI_STD_HEADER_SIZEOF) {
    ctx.fail({
      region: VFIO_PCI_CONFIG_REGION_INDEX,
      problem: 'the config region is smaller than the standard header',
      expected: `size >= ${PCI_STD_HEADER_SIZEOF}`,
      actual: `size ${cfg.size}`,
    });
    return ctx.skip('the config region is too small to check.');
  }
  if (cfg.size < PCI_CFG_SPACE_SIZE)
    ctx.note(
      `the config region has ${cfg.size} bytes, fewer than a PCI function's ${PCI_CFG_SPACE_SIZE} (config.header fails it)`,
    );
  return cfg;
}

/** PCI base classes that exist (PCI Code and ID Assignment spec: 0x00-0x13, 0x40 coprocessor, 0xff unassigned). */
function plausibleBaseClass(base: number): boolean {
  return base <= 0x13 || base === 0x40 || base === 0xff;
}

interface SizedBar {
  kind: 'none' | 'io' | 'mem32' | 'mem64';
  prefetchable: boolean;
  size: number;
}

/** Write all ones, read the mask back, restore: what a VMM does to size a BAR. */
function sizeBar(cfg: ConfigAccess, index: number): SizedBar {
  const off = PCI_BASE_ADDRESS_0 + 4 * index;
  const orig = cfg.readU32(off);
  cfg.writeU32(off, 0xffffffff);
  const mask = cfg.readU32(off);
  cfg.writeU32(off, orig);
  if (mask === 0) return { kind: 'none', prefetchable: false, size: 0 };
  if (mask & PCI_BASE_ADDRESS_SPACE_IO) {
    let m = (mask & ~0x3) >>> 0;
    // I/O BARs may implement only the low 16 bits (PCI spec 6.2.5.1); the upper ones read 0.
    if ((m & 0xffff0000) === 0) m = (m | 0xffff0000) >>> 0;
    return { kind: 'io', prefetchable: false, size: m === 0 ? 0 : (~m + 1) >>> 0 };
  }
  const prefetchable = (mask & 0x8) !== 0;
  const lo = (mask & ~0xf) >>> 0;
  if (
    (mask & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64 &&
    index + 1 < PCI_STD_NUM_BARS
  ) {
    const origHi = cfg.readU32(off + 4);
    cfg.writeU32(off + 4, 0xffffffff);
    const hi = cfg.readU32(off + 4);
    cfg.writeU32(off + 4, origHi);
    const mask64 = (BigInt(hi) << 32n) | BigInt(lo);
    if (mask64 === 0n) return { kind: 'mem64', prefetchable, size: 0 };
    return { kind: 'mem64', prefetchable, size: Number((~mask64 & 0xffffffffffffffffn) + 1n) };
  }
  return { kind: 'mem32', prefetchable, size: lo === 0 ? 0 : (~lo + 1) >>> 0 };
}

function regionOrFail(ctx: CheckContext, index: number): FullRegionInfo | undefined {
  try {
    return getRegionInfo(ctx.file, index);
  } catch (err) {
    ctx.fail({
      region: index,
      problem: `GET_REGION_INFO of ${regionName(index)} failed`,
      expected: 'region info',
      actual: describeError(err),
    });
    return undefined;
  }
}

export const configChecks: readonly ConformanceCheck[] = [
  {
    id: 'config.header',
    title: 'config space has a real vendor ID, a plausible class code and a type-0 header',
    run(ctx) {
      const cfg = openConfig(ctx);
      const r = cfg.region;
      if (cfg.size < PCI_CFG_SPACE_SIZE) {
        ctx.fail({
          region: VFIO_PCI_CONFIG_REGION_INDEX,
          problem: 'the config region is smaller than a PCI header',
          expected: `size >= ${PCI_CFG_SPACE_SIZE}`,
          actual: `size ${cfg.size}`,
        });
      }
      if (
        (r.flags & (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)) !==
        (VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE)
      ) {
        ctx.fail({
          region: VFIO_PCI_CONFIG_REGION_INDEX,
          problem: 'the config region is not readable and writable',
          expected: 'READ and WRITE flags',
          actual: `flags ${hex(r.flags)}`,
        });
      }
      const vendor = cfg.readU16(PCI_VENDOR_ID);
      if (vendor === 0xffff || vendor === 0) {
        ctx.fail({
          region: VFIO_PCI_CONFIG_REGION_INDEX,
          offset: PCI_VENDOR_ID,
          problem: 'the vendor ID says no device is there',
          expected: 'a vendor ID other than 0x0000 and 0xffff',
          actual: hex(vendor),
        });
      }
      const classCode = cfg.readU32(PCI_CLASS_REVISION) >>> 8;
      if (!plausibleBaseClass(classCode >>> 16)) {
        ctx.fail({
          region: VFIO_PCI_CONFIG_REGION_INDEX,
          offset: PCI_CLASS_REVISION + 1,
          problem: 'the class code has a base class that does not exist',
          expected: 'base class 0x00-0x13, 0x40 or 0xff',
          actual: `class code ${hex(classCode)}`,
        });
      }
      const headerType = cfg.readU8(PCI_HEADER_TYPE) & PCI_HEADER_TYPE_MASK;
      if (headerType !== PCI_HEADER_TYPE_NORMAL) {
        ctx.fail({
          region: VFIO_PCI_CONFIG_REGION_INDEX,
          offset: PCI_HEADER_TYPE,
          problem: 'the header type is not a normal (type 0) header',
          expected: '0',
          actual: String(headerType),
        });
      }
    },
  },
  {
    id: 'config.capabilities',
    title: 'the capability lists terminate without loops and stay inside config space',
    run(ctx) {
      const cfg = openConfig(ctx);
      const bytes = cfg.snapshot();
      const std = walkCapabilities((o) => bytes[o] ?? 0, bytes.length);
      if (!std.ok) {
        ctx.fail({
          region: VFIO_PCI_CONFIG_REGION_INDEX,
          offset: std.from,
          problem: `the capability list is broken (${std.reason})`,
          expected: 'a list of aligned pointers at or above 0x40 ending with 0',
          actual: `pointer at ${hex(std.from)} is ${hex(std.at)}`,
        });
      }
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const ext = walkExtendedCapabilities(
        (o) => (o + 4 <= bytes.length ? dv.getUint32(o, true) : 0),
        bytes.length,
      );
      if (!ext.ok) {
        ctx.fail({
          region: VFIO_PCI_CONFIG_REGION_INDEX,
          offset: ext.from,
          problem: `the extended capability list is broken (${ext.reason})`,
          expected: 'a list of aligned pointers at or above 0x100 ending with 0',
          actual: `next of the header at ${hex(ext.from)} is ${hex(ext.at)}`,
        });
      }
    },
  },
  {
    id: 'config.bar-sizing',
    title: 'BAR sizing through config space matches each BAR region in size and flags',
    run(ctx) {
      const cfg = openConfig(ctx);
      const { info } = getDeviceInfo(ctx.file);
      if (!info) return ctx.skip('DEVICE_GET_INFO failed (reported by device.info).');
      for (let i = 0; i < PCI_STD_NUM_BARS; i++) {
        const bar = sizeBar(cfg, i);
        const region = regionOrFail(ctx, i);
        if (!region) continue;
        if (region.size !== bar.size) {
          ctx.fail({
            region: i,
            offset: PCI_BASE_ADDRESS_0 + 4 * i,
            problem: `the size of ${regionName(i)} from sizing the BAR differs from its REGION_INFO size`,
            expected: `REGION_INFO size ${hex(bar.size)} (a ${bar.kind} BAR of ${hex(bar.size)} bytes)`,
            actual: `REGION_INFO size ${hex(region.size)}`,
          });
        }
        if (bar.size > 0) {
          const rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
          if ((region.flags & rw) !== rw) {
            ctx.fail({
              region: i,
              problem: `${regionName(i)} is an implemented BAR but its region is not readable and writable`,
              expected: 'READ and WRITE flags',
              actual: `flags ${hex(region.flags)}`,
            });
          }
          if (bar.kind === 'io' && region.flags & VFIO_REGION_INFO_FLAG_MMAP) {
            ctx.fail({
              region: i,
              problem: `${regionName(i)} is an I/O BAR but its region claims MMAP`,
              expected: 'no MMAP flag for I/O space',
              actual: `flags ${hex(region.flags)}`,
            });
          }
        }
        if (bar.kind === 'mem64') {
          const upper = regionOrFail(ctx, i + 1);
          if (upper && upper.size !== 0) {
            ctx.fail({
              region: i + 1,
              offset: PCI_BASE_ADDRESS_0 + 4 * (i + 1),
              problem: `${regionName(i + 1)} is the upper half of 64-bit ${regionName(i)} but its region has a size`,
              expected: 'size 0',
              actual: `size ${hex(upper.size)}`,
            });
          }
          i++;
        }
      }
      // The expansion ROM: the enable bit stays clear while sizing.
      const orig = cfg.readU32(PCI_ROM_ADDRESS);
      cfg.writeU32(PCI_ROM_ADDRESS, PCI_ROM_ADDRESS_MASK);
      const m = (cfg.readU32(PCI_ROM_ADDRESS) & PCI_ROM_ADDRESS_MASK) >>> 0;
      cfg.writeU32(PCI_ROM_ADDRESS, orig);
      const romSize = m === 0 ? 0 : (~m + 1) >>> 0;
      const rom =
        info.numRegions > VFIO_PCI_ROM_REGION_INDEX
          ? regionOrFail(ctx, VFIO_PCI_ROM_REGION_INDEX)
          : undefined;
      if (rom && rom.size !== romSize) {
        ctx.fail({
          region: VFIO_PCI_ROM_REGION_INDEX,
          offset: PCI_ROM_ADDRESS,
          problem: 'the ROM size from sizing the ROM BAR differs from the ROM region size',
          expected: `REGION_INFO size ${hex(romSize)}`,
          actual: `REGION_INFO size ${hex(rom.size)}`,
        });
      }
    },
  },
];
