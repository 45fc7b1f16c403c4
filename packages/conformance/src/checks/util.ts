/**
 * The raw road to a device: ioctls built from core's codecs and sent through the file's ioctl,
 * region accesses at the offsets REGION_INFO reports (never computed), and config-space helpers.
 */
import { VFIO_PCI_CONFIG_REGION_INDEX, VfioError } from '@vfiokit/core';
import {
  type DeviceInfoStruct,
  decodeDeviceInfo,
  decodeIrqInfo,
  decodeRegionInfo,
  decodeRegionInfoStruct,
  ERRNO,
  encodeDeviceFeature,
  encodeDeviceInfo,
  encodeIrqInfo,
  encodeIrqSet,
  encodeRegionInfoStruct,
  errnoName,
  type IrqInfoStruct,
  type RawCap,
  type RegionCap,
  type RegionInfoStruct,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_REGION_INFO_FLAG_CAPS,
  vfio_device_info,
  vfio_irq_info,
  vfio_irq_set,
  vfio_region_info,
} from '@vfiokit/core/abi';
import type { IoctlResult } from '@vfiokit/core/host';
import type { CheckContext, ConformanceFile, PluginModel } from '../types.js';

export const REGION_NAMES = ['BAR0', 'BAR1', 'BAR2', 'BAR3', 'BAR4', 'BAR5', 'ROM', 'CONFIG', 'VGA'];

export function regionName(index: number): string {
  return REGION_NAMES[index] ?? `device-specific ${index}`;
}

/** `-22 (EINVAL)` or `0`. */
export function describeRet(ret: number): string {
  if (ret >= 0) return String(ret);
  const name = errnoName(-ret);
  return name ? `${ret} (${name})` : String(ret);
}

export function describeError(err: unknown): string {
  if (err instanceof VfioError) return err.message;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** An ioctl that never lets an exception out: a thrown one is reported as ret NaN with the error. */
export function ioctl(
  file: ConformanceFile,
  request: number,
  arg: Uint8Array,
): IoctlResult & { thrown?: unknown } {
  try {
    return file.ioctl(request, arg);
  } catch (thrown) {
    return { ret: Number.NaN, out: arg, thrown };
  }
}

export const EINVAL = -ERRNO.EINVAL;

export function getDeviceInfo(
  file: ConformanceFile,
  argsz = vfio_device_info.size,
): { ret: number; info?: DeviceInfoStruct } {
  const arg = encodeDeviceInfo({ argsz, flags: 0, numRegions: 0, numIrqs: 0, capOffset: 0 });
  const r = ioctl(file, VFIO_DEVICE_GET_INFO, arg);
  return r.ret === 0 ? { ret: 0, info: decodeDeviceInfo(r.out) } : { ret: r.ret };
}

/** GET_REGION_INFO with a buffer of `bufferSize` bytes (default: argsz). */
export function getRegionInfoRaw(
  file: ConformanceFile,
  index: number,
  argsz: number,
  bufferSize = Math.max(argsz, vfio_region_info.size),
): IoctlResult {
  const arg = new Uint8Array(bufferSize);
  encodeRegionInfoStruct({ argsz, flags: 0, index, capOffset: 0, size: 0, offset: 0 }, arg);
  return ioctl(file, VFIO_DEVICE_GET_REGION_INFO, arg);
}

export interface FullRegionInfo extends RegionInfoStruct {
  caps: (RegionCap | RawCap)[];
}

/**
 * What a careful client does: ask with the bare struct, and when FLAG_CAPS says there is more,
 * ask again with the argsz the device reported. Throws a VfioError when a step fails.
 */
export function getRegionInfo(file: ConformanceFile, index: number): FullRegionInfo {
  const first = getRegionInfoRaw(file, index, vfio_region_info.size);
  if (first.ret !== 0) {
    throw first.error ?? new VfioError('EIO', `GET_REGION_INFO ${index} answered ${describeRet(first.ret)}.`);
  }
  const s = decodeRegionInfoStruct(first.out);
  if (!(s.flags & VFIO_REGION_INFO_FLAG_CAPS) || s.argsz <= vfio_region_info.size) return { ...s, caps: [] };
  const second = getRegionInfoRaw(file, index, s.argsz);
  if (second.ret !== 0) {
    throw (
      second.error ?? new VfioError('EIO', `GET_REGION_INFO ${index} answered ${describeRet(second.ret)}.`)
    );
  }
  return decodeRegionInfo(second.out);
}

/** Region info of every index, for checks that need the map; an index that fails is left out. */
export function allRegions(file: ConformanceFile, numRegions: number): FullRegionInfo[] {
  const out: FullRegionInfo[] = [];
  for (let i = 0; i < numRegions; i++) {
    try {
      out.push(getRegionInfo(file, i));
    } catch {
      // Reported by the region checks.
    }
  }
  return out;
}

export function getIrqInfo(
  file: ConformanceFile,
  index: number,
  argsz = vfio_irq_info.size,
): { ret: number; info?: IrqInfoStruct } {
  const arg = encodeIrqInfo({ argsz, flags: 0, index, count: 0 });
  const r = ioctl(file, VFIO_DEVICE_GET_IRQ_INFO, arg);
  return r.ret === 0 ? { ret: 0, info: decodeIrqInfo(r.out) } : { ret: r.ret };
}

export interface IrqSetArgs {
  argsz?: number;
  flags: number;
  index: number;
  start: number;
  count: number;
  data?: Uint8Array;
}

export function setIrqs(file: ConformanceFile, a: IrqSetArgs): IoctlResult & { thrown?: unknown } {
  const data = a.data ?? new Uint8Array(0);
  const arg = encodeIrqSet({
    argsz: a.argsz ?? vfio_irq_set.size + data.byteLength,
    flags: a.flags,
    index: a.index,
    start: a.start,
    count: a.count,
    data,
  });
  return ioctl(file, VFIO_DEVICE_SET_IRQS, arg);
}

export function eventfdData(fds: readonly number[]): Uint8Array {
  const data = new Uint8Array(fds.length * 4);
  const dv = new DataView(data.buffer);
  for (let i = 0; i < fds.length; i++) dv.setInt32(i * 4, fds[i], true);
  return data;
}

/** VFIO_DEVICE_FEATURE with `payload` after the 8-byte header. */
export function deviceFeature(
  file: ConformanceFile,
  flags: number,
  payload: Uint8Array,
): IoctlResult & { thrown?: unknown } {
  return ioctl(
    file,
    VFIO_DEVICE_FEATURE,
    encodeDeviceFeature({ argsz: 8 + payload.byteLength, flags, data: payload }),
  );
}

/** Config space through region 7, at the offset its REGION_INFO gives. */
export class ConfigAccess {
  constructor(
    private readonly file: ConformanceFile,
    readonly region: RegionInfoStruct,
  ) {}

  static open(file: ConformanceFile): ConfigAccess {
    return new ConfigAccess(file, getRegionInfo(file, VFIO_PCI_CONFIG_REGION_INDEX));
  }

  get size(): number {
    return this.region.size;
  }

  read(offset: number, length: number): Uint8Array {
    const dst = new Uint8Array(length);
    this.file.read(this.region.offset + offset, dst);
    return dst;
  }

  write(offset: number, src: Uint8Array): void {
    this.file.write(this.region.offset + offset, src);
  }

  readU8(offset: number): number {
    return this.read(offset, 1)[0];
  }

  readU16(offset: number): number {
    const b = this.read(offset, 2);
    return b[0] | (b[1] << 8);
  }

  readU32(offset: number): number {
    const b = this.read(offset, 4);
    return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
  }

  writeU16(offset: number, value: number): void {
    this.write(offset, new Uint8Array([value & 0xff, (value >>> 8) & 0xff]));
  }

  writeU32(offset: number, value: number): void {
    this.write(
      offset,
      new Uint8Array([value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff]),
    );
  }

  /** The whole of config space (up to 4096 bytes), read in 4-byte pieces as vfio-pci users do. */
  snapshot(): Uint8Array {
    const size = Math.min(this.size, 4096);
    const out = new Uint8Array(size);
    for (let off = 0; off < size; off += 4) {
      const n = Math.min(4, size - off);
      out.set(this.read(off, n), off);
    }
    return out;
  }
}

/** hex() of @vfiokit/core, for the checks that import it from here. */
export { hex } from '@vfiokit/core';

/** First offset where two byte arrays differ, or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** The plugin side of the device, or a skip: the check is about a TypeScript plugin's parent or device model. */
export function pluginModel(ctx: CheckContext, what: string): PluginModel {
  return ctx.model ?? ctx.skip(`${what} applies to a TypeScript plugin, not to a kernel device.`);
}
