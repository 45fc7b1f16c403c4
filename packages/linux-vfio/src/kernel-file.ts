/**
 * KernelDeviceFile: a kernel VFIO device fd on the raw road the conformance suite drives. An
 * ioctl goes to the kernel with its argument bytes and comes back with the kernel's return
 * value or -errno; reads and writes are pread/pwrite at the offsets the caller gives; mmap is
 * mmap of the device fd; the migration stream is the data fd the kernel handed out. Nothing is
 * checked or answered here in the kernel's place, with one exception, for the safety of this
 * process: requests outside the VFIO device set, and DMA-logging features whose argument holds
 * a user pointer, are not sent (they answer ENOTTY and EFAULT with a sentence that says so).
 */
import { type DeviceInfo, type ErrnoName, type RegionMapping, VfioError } from '@vfiokit/core';
import {
  decodeDeviceFeature,
  decodeMigState,
  errnoName,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_MASK,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_GFX_DMABUF,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_IOEVENTFD,
  VFIO_DEVICE_QUERY_GFX_PLANE,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_MIG_GET_PRECOPY_INFO,
  VFIO_REGION_INFO_FLAG_WRITE,
  vfio_device_feature,
  vfio_device_feature_mig_state,
} from '@vfiokit/core/abi';
import type { IoctlResult } from '@vfiokit/core/host';
import type { OpenedDevice } from './device/open.js';
import type { HostSystem } from './host/system.js';

/**
 * The device ioctls whose arguments are self-contained structs (no user pointers inside), so the
 * kernel only reads and writes inside the copy it is given. VFIO_DEVICE_PCI_HOT_RESET resets a
 * whole bus and is left out; so are the cdev and group ioctls, which are not device-file requests.
 */
const FORWARDED = new Set([
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_GET_PCI_HOT_RESET_INFO,
  VFIO_DEVICE_QUERY_GFX_PLANE,
  VFIO_DEVICE_GET_GFX_DMABUF,
  VFIO_DEVICE_IOEVENTFD,
  VFIO_DEVICE_FEATURE,
]);

/** DMA logging START and REPORT carry a user pointer (ranges_ptr, bitmap): only their PROBE is sent. */
const POINTER_FEATURES = new Set([
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
]);

function errorOf(ret: number, what: string, device: string): VfioError {
  const name: ErrnoName = errnoName(-ret) ?? 'EIO';
  return new VfioError(name, `the kernel answered ${what} with ${errnoName(-ret) ?? `errno ${-ret}`}.`, {
    device,
  });
}

export class KernelDeviceFile {
  readonly name: string;
  readonly #system: HostSystem;
  readonly #opener: () => OpenedDevice;
  #opened: OpenedDevice | undefined;
  #dataFd = -1;

  /** `opener` opens the device (see openVfioDevice); it runs at open(). */
  constructor(system: HostSystem, name: string, opener: () => OpenedDevice) {
    this.#system = system;
    this.name = name;
    this.#opener = opener;
  }

  open(): void {
    if (this.#opened) throw new VfioError('EBUSY', 'the device is already open.', { device: this.name });
    this.#opened = this.#opener();
  }

  close(): void {
    this.#closeStream();
    const o = this.#opened;
    this.#opened = undefined;
    o?.close();
  }

  get opened(): boolean {
    return this.#opened !== undefined;
  }

  /** The open device, with its IOMMU context. */
  get device(): OpenedDevice {
    if (!this.#opened)
      throw new VfioError('EBADF', 'the device is not open.', { device: this.name, hint: 'Open it first.' });
    return this.#opened;
  }

  ioctl(request: number, arg: Uint8Array): IoctlResult {
    const out = arg.slice();
    const refusal = this.#refusal(request, out);
    if (refusal) return { ret: -refusal.errno, out, error: refusal };
    const isPrecopy = request === VFIO_MIG_GET_PRECOPY_INFO;
    if (isPrecopy && this.#dataFd < 0) {
      const error = new VfioError(
        'EBADF',
        'there is no migration data fd to ask VFIO_MIG_GET_PRECOPY_INFO on.',
        {
          device: this.name,
          hint: 'It is an ioctl of the data fd a PRE_COPY transition returns.',
        },
      );
      return { ret: -error.errno, out, error };
    }
    let ret: number;
    try {
      // SAFETY: `out` is a copy; the addon runs the ioctl on a larger private copy of it.
      ret = isPrecopy
        ? this.#system.ioctl(this.#dataFd, request, out)
        : this.device.device.ioctl(request, out);
    } catch (err) {
      const error = err instanceof VfioError ? err : new VfioError('EIO', String(err), { device: this.name });
      return { ret: -error.errno, out, error };
    }
    if (ret < 0) return { ret, out, error: errorOf(ret, `ioctl 0x${request.toString(16)}`, this.name) };
    if (request === VFIO_DEVICE_FEATURE) this.#adoptDataFd(out);
    return { ret, out };
  }

  /** pread: the bytes the kernel moved (fewer when it cut the access short). */
  read(offset: number, dst: Uint8Array): number {
    return this.device.device.read(offset, dst);
  }

  /** pwrite: the bytes the kernel moved. */
  write(offset: number, src: Uint8Array): number {
    return this.device.device.write(offset, src);
  }

  mmap(offset: number, length: number): RegionMapping {
    const d = this.device.device;
    // A region without the WRITE flag maps read-only: vfio-pci refuses a writable mapping of it.
    const region = d.regions().find((r) => offset >= r.offset && offset < r.offset + r.size);
    const writable = region === undefined || (region.flags & VFIO_REGION_INFO_FLAG_WRITE) !== 0;
    const bytes = new Uint8Array(d.mmap(offset, length, writable));
    return { memory: { size: bytes.length, bytes }, memoryOffset: 0, size: bytes.length };
  }

  reset(): void {
    this.device.device.reset();
  }

  deviceInfo(): DeviceInfo {
    const i = this.device.device.info();
    return { reset: (i.flags & VFIO_DEVICE_FLAGS_RESET) !== 0, numRegions: i.numRegions, numIrqs: i.numIrqs };
  }

  /** read() on the migration data fd the kernel returned with the last MIG_DEVICE_STATE SET. */
  migrationRead(max: number): Uint8Array {
    const fd = this.#requireStream();
    const buf = new Uint8Array(max);
    const n = this.#system.read(fd, buf);
    return buf.subarray(0, n);
  }

  /** write() of the whole chunk on the migration data fd. */
  migrationWrite(chunk: Uint8Array): void {
    const fd = this.#requireStream();
    for (let at = 0; at < chunk.length; ) {
      const n = this.#system.write(fd, chunk.subarray(at));
      if (n <= 0) throw new VfioError('EIO', `the migration data fd took ${n} bytes.`, { device: this.name });
      at += n;
    }
  }

  #requireStream(): number {
    if (this.#dataFd < 0)
      throw new VfioError('EBADF', 'there is no migration data fd open.', {
        device: this.name,
        hint: 'Move the device to STOP_COPY, PRE_COPY or RESUMING first.',
      });
    return this.#dataFd;
  }

  /** A MIG_DEVICE_STATE SET that returned a data fd: it becomes the stream (the previous one is closed). */
  #adoptDataFd(out: Uint8Array): void {
    if (out.length < vfio_device_feature.size + vfio_device_feature_mig_state.size) return;
    const { flags, data } = decodeDeviceFeature(out);
    if ((flags & VFIO_DEVICE_FEATURE_MASK) !== VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE) return;
    if (!(flags & VFIO_DEVICE_FEATURE_SET) || flags & VFIO_DEVICE_FEATURE_PROBE) return;
    const { dataFd } = decodeMigState(data);
    if (dataFd < 0) return;
    this.#closeStream();
    this.#dataFd = dataFd;
  }

  #closeStream(): void {
    if (this.#dataFd < 0) return;
    const fd = this.#dataFd;
    this.#dataFd = -1;
    try {
      this.#system.close(fd);
    } catch {
      // the kernel already let go of it
    }
  }

  #refusal(request: number, out: Uint8Array): VfioError | undefined {
    if (!FORWARDED.has(request) && request !== VFIO_MIG_GET_PRECOPY_INFO) {
      return new VfioError(
        'ENOTTY',
        `ioctl 0x${request.toString(16)} was not sent to the kernel: only the VFIO device ioctls, whose arguments hold no pointers, are.`,
        { device: this.name },
      );
    }
    if (request === VFIO_DEVICE_FEATURE && out.length >= vfio_device_feature.size) {
      const flags = new DataView(out.buffer, out.byteOffset, out.byteLength).getUint32(4, true);
      const feature = flags & VFIO_DEVICE_FEATURE_MASK;
      if (POINTER_FEATURES.has(feature) && !(flags & VFIO_DEVICE_FEATURE_PROBE)) {
        return new VfioError(
          'EFAULT',
          `VFIO_DEVICE_FEATURE ${feature} (DMA logging) was not sent to the kernel: its argument holds a user pointer.`,
          { device: this.name, hint: 'Only its PROBE is sent from this road.' },
        );
      }
    }
    return undefined;
  }
}
