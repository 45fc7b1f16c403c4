/**
 * RegionPort: one region of an open DeviceFile for a caller that accesses it again and again (a
 * VMM's trapped BAR part, a vfio-user session's region). Its read() and write() are the file's
 * readRegion() and writeRegion() at its index, with the one-test check (open, bounds, permission)
 * against its own limit and the access counted in its own fields: no lookup by region index on
 * the way to the handler, whose cost is most of what the core adds to a trapped access. Anything
 * the one test does not let through goes to the file's own path, which refuses it (or serves it)
 * with the same errors and counters; a handler's failure is the file's to name and count.
 */
import type { VfioDevice } from '../contract/device.js';
import type { DeviceFile } from './device-file.js';

export class RegionPort {
  /** The region's size when the file is open and the region allows reads (writes), else 0: set by the file. */
  readLimit = 0;
  writeLimit = 0;
  /** The accesses served through this port (the file adds them to its region's counters). */
  reads = 0;
  writes = 0;
  bytesRead = 0;
  bytesWritten = 0;

  /** Made by DeviceFile.regionPort(), one per region. */
  constructor(
    private readonly file: DeviceFile,
    private readonly device: VfioDevice,
    readonly index: number,
  ) {}

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
