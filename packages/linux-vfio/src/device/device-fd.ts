/**
 * VfioDeviceFd: an open kernel VFIO device fd, typed. Device, region and IRQ info are asked
 * once and cached (regions with their capability chains, through the argsz grow-and-retry the
 * kernel asks for); region accesses are pread/pwrite at the offset REGION_INFO gave; SET_IRQS
 * takes eventfds. The raw ioctl stays available for callers that need the kernel's own answer.
 * Shape after rust-vmm vfio-ioctls' VfioDevice.
 */
import { VfioError } from '@vfiokit/core';
import {
  type DeviceInfoStruct,
  decodeDeviceInfo,
  decodeIrqInfo,
  decodeRegionInfo,
  decodeRegionInfoStruct,
  ERRNO,
  encodeDeviceInfo,
  encodeIrqInfo,
  encodeIrqSet,
  encodeRegionInfoStruct,
  type IrqInfoStruct,
  type RawCap,
  type RegionCap,
  type RegionInfoStruct,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_REGION_INFO_FLAG_CAPS,
  vfio_device_info,
  vfio_irq_info,
  vfio_irq_set,
  vfio_region_info,
} from '@vfiokit/core/abi';
import { errnoError, type HostSystem, ioctlError } from '../host/system.js';

export interface KernelRegion extends RegionInfoStruct {
  readonly caps: readonly (RegionCap | RawCap)[];
}

/** The longest capability chain accepted from a region (the kernel's are a few hundred bytes). */
const MAX_REGION_INFO = 64 * 1024 - 1;

export class VfioDeviceFd {
  readonly name: string;
  readonly #system: HostSystem;
  #fd: number;
  #info: DeviceInfoStruct | undefined;
  readonly #regions = new Map<number, KernelRegion | null>();
  readonly #irqs = new Map<number, IrqInfoStruct | null>();
  readonly #mappings = new Set<ArrayBuffer>();

  constructor(system: HostSystem, fd: number, name: string) {
    this.#system = system;
    this.#fd = fd;
    this.name = name;
  }

  get fd(): number {
    if (this.#fd < 0) throw new VfioError('EBADF', `the VFIO device fd of ${this.name} is closed.`);
    return this.#fd;
  }

  get open(): boolean {
    return this.#fd >= 0;
  }

  /** The raw ioctl: the kernel's return value or -errno, with `arg` as the kernel left it. */
  ioctl(request: number, arg: Uint8Array): number {
    return this.#system.ioctl(this.fd, request, arg);
  }

  /** VFIO_DEVICE_GET_INFO, once. */
  info(): DeviceInfoStruct {
    if (this.#info) return this.#info;
    const arg = encodeDeviceInfo({
      argsz: vfio_device_info.size,
      flags: 0,
      numRegions: 0,
      numIrqs: 0,
      capOffset: 0,
    });
    const ret = this.ioctl(VFIO_DEVICE_GET_INFO, arg);
    if (ret < 0) throw this.#error(ret, 'VFIO_DEVICE_GET_INFO');
    this.#info = decodeDeviceInfo(arg);
    return this.#info;
  }

  /** VFIO_DEVICE_GET_REGION_INFO with its capability chain, once per index; undefined for EINVAL (no such region). */
  region(index: number): KernelRegion | undefined {
    const cached = this.#regions.get(index);
    if (cached !== undefined) return cached ?? undefined;
    let argsz = vfio_region_info.size;
    for (let attempt = 0; attempt < 3; attempt++) {
      const arg = new Uint8Array(argsz);
      encodeRegionInfoStruct({ argsz, flags: 0, index, capOffset: 0, size: 0, offset: 0 }, arg);
      const ret = this.ioctl(VFIO_DEVICE_GET_REGION_INFO, arg);
      if (ret === -ERRNO.EINVAL) {
        this.#regions.set(index, null);
        return undefined;
      }
      if (ret < 0) throw this.#error(ret, `VFIO_DEVICE_GET_REGION_INFO of region ${index}`);
      const head = decodeRegionInfoStruct(arg);
      if (head.flags & VFIO_REGION_INFO_FLAG_CAPS && head.argsz > argsz) {
        if (head.argsz > MAX_REGION_INFO)
          throw new VfioError('E2BIG', `region ${index} asks for ${head.argsz} bytes of capabilities.`, {
            device: this.name,
          });
        argsz = head.argsz;
        continue;
      }
      const region: KernelRegion =
        head.flags & VFIO_REGION_INFO_FLAG_CAPS && head.capOffset !== 0
          ? decodeRegionInfo(arg)
          : { ...head, caps: [] };
      this.#regions.set(index, region);
      return region;
    }
    throw new VfioError('EPROTO', `region ${index} kept asking for a larger argsz.`, { device: this.name });
  }

  /** Every region of the device, by index (an index the kernel refuses is left out). */
  regions(): KernelRegion[] {
    const out: KernelRegion[] = [];
    for (let i = 0; i < this.info().numRegions; i++) {
      const r = this.region(i);
      if (r) out.push(r);
    }
    return out;
  }

  /** VFIO_DEVICE_GET_IRQ_INFO, once per index; undefined for EINVAL (no such index). */
  irq(index: number): IrqInfoStruct | undefined {
    const cached = this.#irqs.get(index);
    if (cached !== undefined) return cached ?? undefined;
    const arg = encodeIrqInfo({ argsz: vfio_irq_info.size, flags: 0, index, count: 0 });
    const ret = this.ioctl(VFIO_DEVICE_GET_IRQ_INFO, arg);
    if (ret === -ERRNO.EINVAL) {
      this.#irqs.set(index, null);
      return undefined;
    }
    if (ret < 0) throw this.#error(ret, `VFIO_DEVICE_GET_IRQ_INFO of index ${index}`);
    const info = decodeIrqInfo(arg);
    this.#irqs.set(index, info);
    return info;
  }

  /** pread at a device-file offset: the bytes read, fewer when the kernel cut the access short (vfio-pci at a BAR's end). */
  read(offset: number, dst: Uint8Array): number {
    try {
      return this.#system.pread(this.fd, dst, offset);
    } catch (err) {
      throw this.#placed(err, offset);
    }
  }

  /** pwrite at a device-file offset: the bytes written, fewer when the kernel cut the access short. */
  write(offset: number, src: Uint8Array): number {
    try {
      return this.#system.pwrite(this.fd, src, offset);
    } catch (err) {
      throw this.#placed(err, offset);
    }
  }

  /** read() of all of `dst`: a short read is an error (EIO). */
  readAll(offset: number, dst: Uint8Array): void {
    const n = this.read(offset, dst);
    if (n !== dst.length)
      throw new VfioError('EIO', `the kernel read ${n} of ${dst.length} bytes.`, {
        device: this.name,
        offset,
      });
  }

  /** write() of all of `src`: a short write is an error (EIO). */
  writeAll(offset: number, src: Uint8Array): void {
    const n = this.write(offset, src);
    if (n !== src.length)
      throw new VfioError('EIO', `the kernel wrote ${n} of ${src.length} bytes.`, {
        device: this.name,
        offset,
      });
  }

  /**
   * Map `size` bytes at a device-file offset (the region's offset plus an area's). The mapping
   * ends at close() at the latest: the kernel keeps the device, and its group, open while a
   * mapping of it exists.
   */
  mmap(offset: number, size: number, writable = true): ArrayBuffer {
    const buffer = this.#system.mmap(this.fd, size, offset, writable);
    this.#mappings.add(buffer);
    return buffer;
  }

  /** End a mapping made by mmap() now (its buffer is detached). */
  munmap(buffer: ArrayBuffer): void {
    if (!this.#mappings.delete(buffer)) return;
    this.#system.munmap(buffer);
  }

  /** VFIO_DEVICE_SET_IRQS: the kernel's return value or -errno. */
  setIrqs(
    flags: number,
    index: number,
    start: number,
    count: number,
    data: Uint8Array = new Uint8Array(0),
  ): number {
    const arg = encodeIrqSet({
      argsz: vfio_irq_set.size + data.byteLength,
      flags,
      index,
      start,
      count,
      data,
    });
    return this.ioctl(VFIO_DEVICE_SET_IRQS, arg);
  }

  /** Give vectors start.. of `index` these eventfds (-1 leaves a vector without one). */
  setEventfds(index: number, start: number, fds: readonly number[]): void {
    const data = new Uint8Array(fds.length * 4);
    const dv = new DataView(data.buffer);
    for (let i = 0; i < fds.length; i++) dv.setInt32(i * 4, fds[i], true);
    const ret = this.setIrqs(
      VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
      index,
      start,
      fds.length,
      data,
    );
    if (ret < 0) throw this.#error(ret, `SET_IRQS EVENTFD | TRIGGER of IRQ index ${index}`, { irq: index });
  }

  /** DATA_NONE | TRIGGER with count 0: the index loses every trigger. */
  disableIrq(index: number): void {
    const ret = this.setIrqs(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, index, 0, 0);
    if (ret < 0) throw this.#error(ret, `disabling IRQ index ${index}`, { irq: index });
  }

  /** DATA_NONE | UNMASK of one vector (INTx after it fired: AUTOMASKED). */
  unmaskIrq(index: number, vector = 0): void {
    const ret = this.setIrqs(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, index, vector, 1);
    if (ret < 0) throw this.#error(ret, `unmasking vector ${vector} of IRQ index ${index}`, { irq: index });
  }

  /** DATA_NONE | MASK of one vector. */
  maskIrq(index: number, vector = 0): void {
    const ret = this.setIrqs(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, index, vector, 1);
    if (ret < 0) throw this.#error(ret, `masking vector ${vector} of IRQ index ${index}`, { irq: index });
  }

  /** VFIO_DEVICE_RESET. */
  reset(): void {
    const ret = this.ioctl(VFIO_DEVICE_RESET, new Uint8Array(0));
    if (ret < 0) throw this.#error(ret, 'VFIO_DEVICE_RESET');
  }

  close(): void {
    if (this.#fd < 0) return;
    for (const b of this.#mappings) this.#system.munmap(b);
    this.#mappings.clear();
    const fd = this.#fd;
    this.#fd = -1;
    this.#system.close(fd);
  }

  #error(ret: number, what: string, place: { irq?: number } = {}): VfioError {
    return ioctlError(ret, what).at({ device: this.name, ...place });
  }

  #placed(err: unknown, offset: number): VfioError {
    const e = errnoError(err, 'the access');
    return new VfioError(e.code, `the kernel refused the access (${e.code}).`, { device: this.name, offset });
  }
}
