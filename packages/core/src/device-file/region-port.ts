/**
 * RegionPort: one region of an open DeviceFile for a caller that accesses it again and again (a
 * VMM's trapped BAR part, a vfio-user session's region). Its read() and write() are the file's
 * readRegion() and writeRegion() at its index, with the one-test check (open, bounds, permission)
 * against its own limit and the access counted in its own fields: no lookup by region index on
 * the way to the handler, whose cost is most of what the core adds to a trapped access. Anything
 * the one test does not let through goes to the file's own path, which refuses it (or serves it)
 * with the same errors and counters; a handler's failure is the file's to name and count.
 */
import type { ValueSize, VfioDevice } from '../contract/device.js';
import { VfioError } from '../errors.js';
import { giveValueBytes, takeValueBytes } from '../value-bytes.js';
import type { DeviceFile } from './device-file.js';

/** The device's value road, when it has both halves. */
type ValueDevice = Required<Pick<VfioDevice, 'readValue' | 'writeValue'>>;

export class RegionPort {
  /** The region's size when the file is open and the region allows reads (writes), else 0: set by the file. */
  readLimit = 0;
  writeLimit = 0;
  /** The accesses served through this port (the file adds them to its region's counters). */
  reads = 0;
  writes = 0;
  bytesRead = 0;
  bytesWritten = 0;

  /** The device, when it answers value accesses itself (else they go through its read()/write()). */
  private readonly valueDevice: ValueDevice | undefined;
  /** Made by DeviceFile.regionPort(), one per region. */
  constructor(
    private readonly file: DeviceFile,
    private readonly device: VfioDevice,
    readonly index: number,
  ) {
    this.valueDevice =
      typeof device.readValue === 'function' && typeof device.writeValue === 'function'
        ? (device as ValueDevice)
        : undefined;
  }

  /**
   * read() of `size` (1, 2 or 4) bytes as their little-endian value: the same checks, counters
   * and errors, and the device's readValue() answers when it has one (no bytes in between: the
   * road of a VMM's trapped MMIO read). Anything else is read() into bytes of the port's.
   */
  readValue(offset: number, size: ValueSize): number {
    const dev = this.valueDevice;
    if (
      !(
        dev !== undefined &&
        (size === 4 || size === 2 || size === 1) &&
        offset >>> 0 === offset &&
        offset + size <= this.readLimit
      )
    )
      return this.readValueBytes(offset, size);
    let v: number;
    try {
      const ret: unknown = dev.readValue(this.index, offset, size);
      if (typeof ret !== 'number') refuseValue(this.file, this.index, offset, ret);
      v = ret;
    } catch (err) {
      throw this.file.handlerFailed(err, this.index, offset);
    }
    this.reads++;
    this.bytesRead += size;
    return size === 4 ? v >>> 0 : v & (size === 2 ? 0xffff : 0xff);
  }

  /** write() of the low `size` (1, 2 or 4) bytes of `value`, readValue()'s twin. */
  writeValue(offset: number, size: ValueSize, value: number): void {
    const dev = this.valueDevice;
    if (
      !(
        dev !== undefined &&
        (size === 4 || size === 2 || size === 1) &&
        offset >>> 0 === offset &&
        offset + size <= this.writeLimit
      )
    ) {
      this.writeValueBytes(offset, size, value);
      return;
    }
    const v = size === 4 ? value >>> 0 : value & (size === 2 ? 0xffff : 0xff);
    try {
      const ret: unknown = dev.writeValue(this.index, offset, size, v);
      if (ret !== undefined) this.file.refuseThenable(true, this.index, offset, ret);
    } catch (err) {
      throw this.file.handlerFailed(err, this.index, offset);
    }
    this.writes++;
    this.bytesWritten += size;
  }

  /**
   * readValue() through read(): a device without the value road, or an access the one test
   * refused. The bytes are the current depth's (value-bytes.ts): an access the device makes
   * meanwhile cannot change them.
   */
  private readValueBytes(offset: number, size: ValueSize): number {
    this.checkValueSize(size, offset);
    const s = takeValueBytes();
    this.read(offset, s.of(size));
    giveValueBytes(s);
    return s.get(size);
  }

  private writeValueBytes(offset: number, size: ValueSize, value: number): void {
    this.checkValueSize(size, offset);
    const s = takeValueBytes();
    this.write(offset, s.set(size, value));
    giveValueBytes(s);
  }

  private checkValueSize(size: number, offset: number): void {
    if (size === 4 || size === 2 || size === 1) return;
    throw new VfioError('EINVAL', `a value access of ${String(size)} bytes; one is 1, 2 or 4 bytes.`, {
      device: this.file.name,
      region: this.index,
      offset,
      hint: 'Make a wider or odd-sized access with read() or write().',
    });
  }

  /** DeviceFile.readRegion(index, offset, dst). */
  read(offset: number, dst: Uint8Array): number {
    const n = dst.length;
    if (!(n > 0 && offset >>> 0 === offset && offset + n <= this.readLimit))
      return this.file.readRegion(this.index, offset, dst);
    try {
      // As in readRegion(): a handler's result is looked at, never awaited.
      const ret: unknown = this.device.read(this.index, offset, dst);
      if (ret !== undefined) this.file.refuseThenable(false, this.index, offset, ret);
    } catch (err) {
      throw this.file.handlerFailed(err, this.index, offset);
    }
    this.reads++;
    this.bytesRead += n;
    return n;
  }

  /** DeviceFile.writeRegion(index, offset, src). */
  write(offset: number, src: Uint8Array): number {
    const n = src.length;
    if (!(n > 0 && offset >>> 0 === offset && offset + n <= this.writeLimit))
      return this.file.writeRegion(this.index, offset, src);
    try {
      const ret: unknown = this.device.write(this.index, offset, src);
      if (ret !== undefined) this.file.refuseThenable(true, this.index, offset, ret);
    } catch (err) {
      throw this.file.handlerFailed(err, this.index, offset);
    }
    this.writes++;
    this.bytesWritten += n;
    return n;
  }
}

/**
 * A device's readValue() answered no number: a thenable (an async handler, refused as read()
 * refuses one) or a bug. Throws; the port's caller makes it the handler's failure, counted.
 */
function refuseValue(file: DeviceFile, index: number, offset: number, ret: unknown): never {
  file.refuseThenable(false, index, offset, ret);
  throw new TypeError(`readValue answered ${ret === null ? 'null' : typeof ret}, not a number`);
}
