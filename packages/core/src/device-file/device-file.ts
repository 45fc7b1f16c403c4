/**
 * DeviceFile: an open VFIO device file. It takes raw requests (an ioctl number and its
 * argument bytes; reads and writes at device-file offsets) and answers as vfio-pci does, with
 * the kernel's argsz, capability-chain, bounds and SET_IRQS rules applied once, here, for
 * every plugin. Typed methods offer the same operations to in-process users (the reference
 * VMM, the vfio-user server); both roads share one implementation of each rule.
 */

import {
  decodeDeviceFeature,
  decodeDeviceInfo,
  decodeDmaLoggingControl,
  decodeDmaLoggingReport,
  decodeGfxPlaneInfo,
  decodeIrqInfo,
  decodeIrqSet,
  decodeMigState,
  decodeRegionInfoStruct,
  encodeDeviceInfo,
  encodeGfxPlaneInfo,
  encodeIrqInfo,
  encodeMigState,
  encodePrecopyInfo,
  encodeRegionCaps,
  encodeRegionInfoStruct,
  getU64,
  type RegionCap,
  regionCapsSize,
  setU64,
} from '../abi/codecs.js';
import {
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MASK,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_QUERY_GFX_PLANE,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_GFX_PLANE_TYPE_DMABUF,
  VFIO_GFX_PLANE_TYPE_PROBE,
  VFIO_GFX_PLANE_TYPE_REGION,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_IRQ_SET_DATA_TYPE_MASK,
  VFIO_MIG_GET_PRECOPY_INFO,
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  vfioPciIndexToOffset,
} from '../abi/constants.js';
import {
  vfio_device_feature,
  vfio_device_feature_dma_logging_control,
  vfio_device_feature_dma_logging_range,
  vfio_device_feature_dma_logging_report,
  vfio_device_feature_mig_data_size,
  vfio_device_feature_mig_state,
  vfio_device_feature_migration,
  vfio_device_gfx_plane_info,
  vfio_device_info,
  vfio_irq_info,
  vfio_irq_set,
  vfio_region_info,
} from '../abi/layout.js';
import type { Clock, DeviceContext, DirtyLog, DmaSpace, Logger } from '../contract/context.js';
import type { DeviceInfo, IrqInfo, RegionInfo, RegionMapping, VfioDevice } from '../contract/device.js';
import { MigState, type PrecopyInfo } from '../contract/migration.js';
import { toVfioError, VfioError } from '../errors.js';
import { IOMMU_PAGE_SIZE } from '../memory/page.js';
import { MigrationController } from '../migration/controller.js';
import { type IrqCounters, type IrqSetRequest, IrqState, type IrqTrigger } from './irq-state.js';

const PAGE_SIZE = IOMMU_PAGE_SIZE;

/** States in which a migration data stream stays open. */
const STREAM_STATES = new Set([
  MigState.STOP_COPY,
  MigState.PRE_COPY,
  MigState.PRE_COPY_P2P,
  MigState.RESUMING,
]);

/** VFIO_DEVICE_FEATURE_DMA_LOGGING_*: the host's dirty tracker for this device's DMA. */
export interface DmaLogging {
  start(pageSize: number, ranges: readonly { iova: number; length: number }[]): void;
  stop(): void;
  report(iova: number, length: number, pageSize: number): Uint8Array;
}

/** What the host gives a DeviceFile: the services an open device may use. */
export interface DeviceHost {
  readonly dma: DmaSpace;
  readonly dirty: DirtyLog;
  readonly clock: Clock;
  readonly log: Logger;
  /** Turn an eventfd number from SET_IRQS into a trigger; throw VfioError EBADF for an unknown fd. */
  resolveEventfd?(fd: number): IrqTrigger;
  readonly dmaLogging?: DmaLogging;
}

/** The result of a raw ioctl: the return value (0, a new fd, or -errno) and the argument bytes as the caller sees them after the call. */
export interface IoctlResult {
  readonly ret: number;
  readonly out: Uint8Array;
  readonly error?: VfioError;
}

/** A region with its file offset resolved, as the dispatcher routes accesses. */
export interface ResolvedRegion extends RegionInfo {
  readonly offset: number;
  readonly flags: number;
  readonly caps: readonly RegionCap[];
}

/** Access counters per region index. */
export interface RegionCounters {
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
  errors: number;
}

/** The capability chain of a region without capabilities (shared, never written). */
const NO_CAPS: readonly RegionCap[] = Object.freeze([]);

/** Devices with an open DeviceFile: removal of an open device is refused (EBUSY), as mdev does. */
const openDevices = new WeakSet<VfioDevice>();

export function isDeviceOpen(device: VfioDevice): boolean {
  return openDevices.has(device);
}

export class DeviceFile {
  readonly name: string;
  private readonly info: DeviceInfo;
  private readonly regions: ResolvedRegion[] = [];
  private readonly irqInfos: (IrqInfo | undefined)[] = [];
  private readonly irqs: IrqState;
  private readonly migration: MigrationController | undefined;
  /** Made at a region's first access (or look): most regions of a device are never accessed. */
  private readonly counters: (RegionCounters | undefined)[] = [];
  /** The fast path: regions at vfio-pci's default offsets, looked up by index. */
  private readonly byShift: ResolvedRegion[] = [];
  private isOpen = false;
  private nextDataFd = 1000;
  private dataFd = -1;

  constructor(
    readonly device: VfioDevice,
    private readonly host: DeviceHost,
  ) {
    this.name = device.name;
    this.info = device.info();
    for (let i = 0; i < this.info.numRegions; i++) {
      const r = device.regionInfo(i);
      const resolved = r && !isAbsent(r) ? resolveRegion(r, i) : absentRegion(i);
      this.regions.push(resolved);
      if (resolved.offset === defaultOffset(i)) this.byShift[i] = resolved;
    }
    for (let i = 0; i < this.info.numIrqs; i++) this.irqInfos.push(device.irqInfo(i));
    this.irqs = new IrqState(this.name, this.irqInfos);
    this.irqs.setChangeListener((index, count) => this.device.irqsChanged?.(index, count));
    this.migration = device.migration ? new MigrationController(this.name, device.migration) : undefined;
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  open(): void {
    if (this.isOpen || openDevices.has(this.device)) {
      throw new VfioError('EBUSY', 'the device is already open.', {
        device: this.name,
        hint: 'A device file is opened once; close it before opening it again.',
      });
    }
    const ctx: DeviceContext = {
      device: this.name,
      dma: this.host.dma,
      dirty: this.host.dirty,
      clock: this.host.clock,
      log: this.host.log,
      // Bound methods: the plugin may call them detached from the object.
      irq: {
        trigger: this.irqs.trigger.bind(this.irqs),
        lower: this.irqs.lower.bind(this.irqs),
        enabled: this.irqs.enabled.bind(this.irqs),
      },
    };
    try {
      this.device.open(ctx);
    } catch (err) {
      throw toVfioError(err, { device: this.name });
    }
    this.isOpen = true;
    openDevices.add(this.device);
  }

  close(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    openDevices.delete(this.device);
    this.irqs.disableAll();
    this.dataFd = -1;
    try {
      this.device.close();
    } catch (err) {
      this.host.log.error(toVfioError(err, { device: this.name }).message);
    }
  }

  get opened(): boolean {
    return this.isOpen;
  }

  // ---- typed operations --------------------------------------------------------------------

  deviceInfo(): DeviceInfo {
    return this.info;
  }

  /** REGION_INFO for `index`, its offset resolved; EINVAL for an index the device lacks. */
  regionInfo(index: number): ResolvedRegion {
    const r = this.regions[index];
    if (!Number.isInteger(index) || !r) {
      throw new VfioError(
        'EINVAL',
        `there is no region ${index}; the device has ${this.regions.length} region indexes.`,
        {
          device: this.name,
          region: index,
          hint: 'Ask DEVICE_GET_INFO for num_regions.',
        },
      );
    }
    return r;
  }

  irqInfo(index: number): IrqInfo {
    const info = Number.isInteger(index) ? this.irqInfos[index] : undefined;
    if (!info) {
      throw new VfioError('EINVAL', `there is no IRQ index ${index}.`, {
        device: this.name,
        irq: index,
        hint: `The device has ${this.info.numIrqs} IRQ indexes; ask GET_IRQ_INFO for each.`,
      });
    }
    return info;
  }

  irqCounters(index: number): IrqCounters | undefined {
    return this.irqs.counters(index);
  }

  irqEnabled(index: number): boolean {
    return this.irqs.enabled(index);
  }

  regionCounters(index: number): RegionCounters | undefined {
    if (!Number.isInteger(index) || index < 0 || index >= this.regions.length) return undefined;
    return this.countersOf(index);
  }

  /** The counters of region `index` (a valid index), made on first use. */
  private countersOf(index: number): RegionCounters {
    let c = this.counters[index];
    if (c === undefined) {
      c = { reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, errors: 0 };
      this.counters[index] = c;
    }
    return c;
  }

  /** Find the region that holds file offset `offset`. */
  private lookup(offset: number): ResolvedRegion | undefined {
    const fast = this.byShift[Math.floor(offset / 1099511627776)];
    if (fast !== undefined && offset >= fast.offset && offset < fast.offset + fast.size) return fast;
    for (const r of this.regions)
      if (r.size > 0 && offset >= r.offset && offset < r.offset + r.size) return r;
    return undefined;
  }

  /** pread on the device file. Throws VfioError; never a partial access. */
  read(offset: number, dst: Uint8Array): number {
    const r = this.lookup(offset);
    if (r === undefined) throw this.rejectAccess('read', offset, dst.length);
    return this.readRegion(r.index, offset - r.offset, dst);
  }

  /** pwrite on the device file. Throws VfioError; never a partial access. */
  write(offset: number, src: Uint8Array): number {
    const r = this.lookup(offset);
    if (r === undefined) throw this.rejectAccess('write', offset, src.length);
    return this.writeRegion(r.index, offset - r.offset, src);
  }

  /**
   * pread at `offset` inside region `index`: read() at the region's file offset plus `offset`, with
   * the same checks, counters and errors, for a caller that knows the region (a VMM's config and
   * trapped BAR accesses). It skips the file-offset lookup, and its arguments stay small integers
   * (a file offset is `index << 40`, a number the engine boxes when it crosses a call).
   */
  readRegion(index: number, offset: number, dst: Uint8Array): number {
    const n = dst.length;
    const r = this.regions[index];
    if (
      r === undefined ||
      !this.isOpen ||
      n === 0 ||
      !Number.isInteger(offset) ||
      offset < 0 ||
      offset + n > r.size ||
      !r.read
    ) {
      throw this.rejectRegionAccess('read', index, offset, n, r);
    }
    const c = this.countersOf(index);
    try {
      this.device.read(index, offset, dst);
    } catch (err) {
      c.errors++;
      throw toVfioError(err, { device: this.name, region: index, offset });
    }
    c.reads++;
    c.bytesRead += n;
    return n;
  }

  /** pwrite at `offset` inside region `index`: write() without the file-offset lookup (see readRegion). */
  writeRegion(index: number, offset: number, src: Uint8Array): number {
    const n = src.length;
    const r = this.regions[index];
    if (
      r === undefined ||
      !this.isOpen ||
      n === 0 ||
      !Number.isInteger(offset) ||
      offset < 0 ||
      offset + n > r.size ||
      !r.write
    ) {
      throw this.rejectRegionAccess('write', index, offset, n, r);
    }
    const c = this.countersOf(index);
    try {
      this.device.write(index, offset, src);
    } catch (err) {
      c.errors++;
      throw toVfioError(err, { device: this.name, region: index, offset });
    }
    c.writes++;
    c.bytesWritten += n;
    return n;
  }

  /** The error of a refused readRegion/writeRegion, in the words read()/write() use. */
  private rejectRegionAccess(
    what: 'read' | 'write',
    index: number,
    offset: number,
    n: number,
    region: ResolvedRegion | undefined,
  ): VfioError {
    // As for read() and write(), a region of size 0 is no region at all.
    const r = region !== undefined && region.size > 0 ? region : undefined;
    if (r) this.countersOf(r.index).errors++;
    if (!this.isOpen) {
      return new VfioError('EBADF', `${what} on a device that is not open.`, {
        device: this.name,
        hint: 'Open the device first.',
      });
    }
    if (!r) {
      return new VfioError(
        'EINVAL',
        `${what} of ${n} bytes in region ${index}, which the device does not implement (it has ${this.regions.length} region indexes).`,
        { device: this.name, hint: 'Use a region whose REGION_INFO reports a size.' },
      );
    }
    if (!Number.isSafeInteger(offset) || offset < 0) {
      return new VfioError(
        'EINVAL',
        `${what} at offset ${offset} of region ${index} is not a valid offset.`,
        {
          device: this.name,
          region: index,
        },
      );
    }
    if (n === 0) {
      return new VfioError('EINVAL', `${what} of 0 bytes.`, {
        device: this.name,
        hint: 'Access at least one byte.',
      });
    }
    if (what === 'read' ? !r.read : !r.write) {
      return new VfioError(
        'EINVAL',
        `region ${r.index} is ${r.read ? 'read-only' : 'write-only'}, so a ${what} is refused.`,
        {
          device: this.name,
          region: r.index,
          offset,
          hint: 'Check the READ and WRITE flags that REGION_INFO reports.',
        },
      );
    }
    return new VfioError('EINVAL', `${what} of ${n} bytes runs past the end of the ${r.size}-byte region.`, {
      device: this.name,
      region: r.index,
      offset,
      hint: 'Use the offset and size that REGION_INFO reports for the region, and keep the access inside it.',
    });
  }

  /** A file offset in no region (the region-relative checks are readRegion's and writeRegion's). */
  private rejectAccess(what: 'read' | 'write', offset: number, n: number): VfioError {
    if (!this.isOpen) {
      return new VfioError('EBADF', `${what} on a device that is not open.`, {
        device: this.name,
        hint: 'Open the device first.',
      });
    }
    if (!Number.isSafeInteger(offset) || offset < 0) {
      return new VfioError('EINVAL', `${what} at file offset ${offset} is not a valid offset.`, {
        device: this.name,
      });
    }
    return new VfioError(
      'EINVAL',
      `${what} of ${n} bytes at file offset 0x${offset.toString(16)} is in no region.`,
      {
        device: this.name,
        hint: 'Use the offset and size that REGION_INFO reports for the region, and keep the access inside it.',
      },
    );
  }

  /** mmap of `length` bytes at file offset `offset`: page aligned, inside one mmap area of an MMAP region. */
  mmap(offset: number, length: number): RegionMapping {
    const r = this.lookup(offset);
    if (!r || !(r.flags & VFIO_REGION_INFO_FLAG_MMAP) || !this.device.mmap) {
      throw new VfioError('EINVAL', 'mmap of a region that is not mmappable.', {
        ...mmapPlace(this.name, r, offset),
        hint: 'Only regions whose REGION_INFO has VFIO_REGION_INFO_FLAG_MMAP can be mapped; trap the others.',
      });
    }
    const rel = offset - r.offset;
    if (rel % PAGE_SIZE !== 0 || length % PAGE_SIZE !== 0 || length === 0) {
      throw new VfioError('EINVAL', `mmap of ${length} bytes at 0x${rel.toString(16)} is not page aligned.`, {
        ...mmapPlace(this.name, r, offset),
        hint: 'Offsets and lengths of a mapping are multiples of 4096.',
      });
    }
    if (!insideMmapArea(r, rel, length)) {
      const place = mmapPlace(this.name, r, offset);
      throw new VfioError(
        'EINVAL',
        `mmap of 0x${length.toString(16)} bytes at 0x${rel.toString(16)} is outside every mmap area.`,
        {
          ...place,
          hint: "Map only the areas listed in the region's sparse-mmap capability.",
        },
      );
    }
    try {
      return this.device.mmap(r.index, rel, length);
    } catch (err) {
      throw toVfioError(err, mmapPlace(this.name, r, offset));
    }
  }

  /** VFIO_DEVICE_SET_IRQS after validation. */
  setIrqs(req: IrqSetRequest): void {
    this.irqInfo(req.index);
    this.irqs.set(req);
  }

  /** VFIO_DEVICE_RESET: EINVAL where the device does not report VFIO_DEVICE_FLAGS_RESET. */
  reset(): void {
    if (!this.info.reset || !this.device.reset) {
      throw new VfioError('EINVAL', 'the device cannot be reset (VFIO_DEVICE_FLAGS_RESET is not set).', {
        device: this.name,
        hint: 'Check DEVICE_GET_INFO flags before asking for a reset.',
      });
    }
    try {
      this.device.reset();
    } catch (err) {
      throw toVfioError(err, { device: this.name });
    }
    this.migration?.reset();
    this.dataFd = -1;
  }

  // ---- migration ---------------------------------------------------------------------------

  migrationCaps(): number {
    const m = this.device.migration;
    if (!m) return 0;
    return (
      VFIO_MIGRATION_STOP_COPY |
      (m.caps.p2p ? VFIO_MIGRATION_P2P : 0) |
      (m.caps.preCopy ? VFIO_MIGRATION_PRE_COPY : 0)
    );
  }

  private needMigration(): MigrationController {
    if (!this.migration) {
      throw new VfioError('ENOTTY', 'the device does not support migration.', {
        device: this.name,
        hint: 'VFIO_DEVICE_FEATURE_MIGRATION with PROBE tells whether a device migrates.',
      });
    }
    return this.migration;
  }

  get migrationState(): MigState {
    return this.needMigration().state;
  }

  /** MIG_DEVICE_STATE SET: returns the data fd number when the transition opened a stream, else -1. */
  setMigrationState(target: MigState): number {
    const stream = this.needMigration().setState(target);
    if (stream) this.dataFd = this.nextDataFd++;
    else if (!STREAM_STATES.has(target)) this.dataFd = -1;
    return stream ? this.dataFd : -1;
  }

  /** read() on the migration data fd. */
  migrationRead(max: number): Uint8Array {
    return this.needMigration().read(max);
  }

  /** write() on the migration data fd. */
  migrationWrite(chunk: Uint8Array): void {
    this.needMigration().write(chunk);
  }

  /** VFIO_MIG_GET_PRECOPY_INFO on the data fd. */
  precopyInfo(): PrecopyInfo {
    return this.needMigration().precopyInfo();
  }

  // ---- raw ioctls --------------------------------------------------------------------------

  /**
   * An ioctl on the device fd (or, for VFIO_MIG_GET_PRECOPY_INFO, on its migration data fd),
   * answered exactly as vfio-pci answers it. Never throws: errors come back as -errno.
   */
  ioctl(request: number, arg: Uint8Array): IoctlResult {
    const out = arg.slice();
    try {
      const ret = this.dispatch(request, out);
      return { ret, out };
    } catch (err) {
      const error = toVfioError(err, { device: this.name });
      return { ret: -error.errno, out, error };
    }
  }

  private dispatch(request: number, out: Uint8Array): number {
    switch (request) {
      case VFIO_DEVICE_GET_INFO:
        return this.ioctlGetInfo(out);
      case VFIO_DEVICE_GET_REGION_INFO:
        return this.ioctlGetRegionInfo(out);
      case VFIO_DEVICE_GET_IRQ_INFO:
        return this.ioctlGetIrqInfo(out);
      case VFIO_DEVICE_SET_IRQS:
        return this.ioctlSetIrqs(out);
      case VFIO_DEVICE_RESET:
        this.reset();
        return 0;
      case VFIO_DEVICE_FEATURE:
        return this.ioctlFeature(out);
      case VFIO_DEVICE_QUERY_GFX_PLANE:
        return this.ioctlQueryGfxPlane(out);
      case VFIO_MIG_GET_PRECOPY_INFO:
        return this.ioctlPrecopyInfo(out);
      default:
        throw new VfioError(
          'ENOTTY',
          `ioctl 0x${request.toString(16)} is not a VFIO device ioctl this device answers.`,
          {
            device: this.name,
            hint: 'See linux/vfio.h for the device ioctls.',
          },
        );
    }
  }

  private argszError(struct: string, argsz: number, minsz: number): VfioError {
    return new VfioError('EINVAL', `argsz ${argsz} is below the ${minsz} bytes of struct ${struct}.`, {
      device: this.name,
      hint: `Set argsz to at least ${minsz}.`,
    });
  }

  private ioctlGetInfo(out: Uint8Array): number {
    const minsz = vfio_device_info.size; // offsetofend(struct vfio_device_info, cap_offset)
    const s = decodeDeviceInfo(out);
    if (s.argsz < minsz) throw this.argszError('vfio_device_info', s.argsz, minsz);
    encodeDeviceInfo(
      {
        argsz: s.argsz,
        flags: VFIO_DEVICE_FLAGS_PCI | (this.info.reset ? VFIO_DEVICE_FLAGS_RESET : 0),
        numRegions: this.info.numRegions,
        numIrqs: this.info.numIrqs,
        capOffset: 0,
      },
      out,
    );
    return 0;
  }

  private ioctlGetRegionInfo(out: Uint8Array): number {
    const minsz = vfio_region_info.size; // offsetofend(struct vfio_region_info, offset)
    const s = decodeRegionInfoStruct(out);
    if (s.argsz < minsz) throw this.argszError('vfio_region_info', s.argsz, minsz);
    const r = this.regionInfo(s.index);
    const capsSize = regionCapsSize(r.caps);
    let flags = r.flags;
    let argsz = s.argsz;
    let capOffset = 0;
    if (capsSize > 0) {
      flags |= VFIO_REGION_INFO_FLAG_CAPS;
      const needed = vfio_region_info.size + capsSize;
      if (s.argsz < needed || out.byteLength < needed) {
        // vfio_pci_ioctl_get_region_info: report the size needed and no chain; the caller retries.
        argsz = needed;
      } else {
        capOffset = vfio_region_info.size;
        encodeRegionCaps(r.caps, out, capOffset);
      }
    }
    encodeRegionInfoStruct({ argsz, flags, index: r.index, capOffset, size: r.size, offset: r.offset }, out);
    return 0;
  }

  private ioctlGetIrqInfo(out: Uint8Array): number {
    const minsz = vfio_irq_info.size; // offsetofend(struct vfio_irq_info, count)
    const s = decodeIrqInfo(out);
    if (s.argsz < minsz) throw this.argszError('vfio_irq_info', s.argsz, minsz);
    if (s.index >= this.info.numIrqs) {
      throw new VfioError('EINVAL', `IRQ index ${s.index} is not below num_irqs ${this.info.numIrqs}.`, {
        device: this.name,
        irq: s.index,
      });
    }
    const info = this.irqInfo(s.index);
    encodeIrqInfo({ argsz: s.argsz, flags: irqInfoFlags(info), index: s.index, count: info.count }, out);
    return 0;
  }

  /** vfio_set_irqs_validate_and_prepare (drivers/vfio/vfio_main.c), then vfio_pci_set_irqs_ioctl. */
  private ioctlSetIrqs(out: Uint8Array): number {
    const minsz = vfio_irq_set.size; // offsetofend(struct vfio_irq_set, count)
    const s = decodeIrqSet(out);
    const place = { device: this.name, irq: s.index };
    if (s.argsz < minsz) throw this.argszError('vfio_irq_set', s.argsz, minsz);
    if (s.index >= this.info.numIrqs) {
      throw new VfioError(
        'EINVAL',
        `IRQ index ${s.index} is not below num_irqs ${this.info.numIrqs}.`,
        place,
      );
    }
    if (s.count >= 0xffffffff - s.start) {
      throw new VfioError('EINVAL', `start ${s.start} + count ${s.count} overflows.`, place);
    }
    if (s.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)) {
      throw new VfioError(
        'EINVAL',
        `flags 0x${s.flags.toString(16)} has bits outside the data and action masks.`,
        place,
      );
    }
    const num = this.irqInfos[s.index]?.count ?? 0;
    if (s.start >= num || s.start + s.count > num) {
      throw new VfioError(
        'EINVAL',
        `vectors ${s.start}..${s.start + s.count} are outside the ${num} of IRQ index ${s.index}.`,
        {
          ...place,
          hint: 'start and start + count must stay within the count GET_IRQ_INFO reports.',
        },
      );
    }
    const dataType = s.flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
    let elem: number;
    if (dataType === VFIO_IRQ_SET_DATA_NONE) elem = 0;
    else if (dataType === VFIO_IRQ_SET_DATA_BOOL) elem = 1;
    else if (dataType === VFIO_IRQ_SET_DATA_EVENTFD) elem = 4;
    else {
      throw new VfioError('EINVAL', 'SET_IRQS needs exactly one data type (NONE, BOOL or EVENTFD).', place);
    }
    if (elem > 0 && (s.argsz - minsz < s.count * elem || s.data.byteLength < s.count * elem)) {
      throw new VfioError(
        'EINVAL',
        `argsz ${s.argsz} does not hold ${s.count} data elements of ${elem} bytes.`,
        {
          ...place,
          hint: `argsz must be at least ${minsz + s.count * elem}.`,
        },
      );
    }
    const actionBits = s.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    const action =
      actionBits === VFIO_IRQ_SET_ACTION_MASK
        ? 'mask'
        : actionBits === VFIO_IRQ_SET_ACTION_UNMASK
          ? 'unmask'
          : actionBits === VFIO_IRQ_SET_ACTION_TRIGGER
            ? 'trigger'
            : undefined;
    if (!action) {
      // vfio_pci_set_irqs_ioctl finds no handler for zero or several actions.
      throw new VfioError('ENOTTY', 'SET_IRQS needs exactly one action (MASK, UNMASK or TRIGGER).', place);
    }
    const { start, count, index } = s;
    if (dataType === VFIO_IRQ_SET_DATA_NONE) this.setIrqs({ action, index, start, count, data: 'none' });
    else if (dataType === VFIO_IRQ_SET_DATA_BOOL) {
      this.setIrqs({ action, index, start, count, data: 'bool', values: s.data.slice(0, count) });
    } else {
      if (action !== 'trigger') {
        throw new VfioError('EINVAL', 'eventfd data goes only with ACTION_TRIGGER.', place);
      }
      const dv = new DataView(s.data.buffer, s.data.byteOffset, count * 4);
      const triggers: (IrqTrigger | null)[] = [];
      for (let i = 0; i < count; i++) {
        const fd = dv.getInt32(i * 4, true);
        if (fd === -1) triggers.push(null);
        else if (fd < 0 || !this.host.resolveEventfd) {
          throw new VfioError(
            'EBADF',
            `eventfd ${fd} for vector ${start + i} is not a valid file descriptor.`,
            place,
          );
        } else triggers.push(this.host.resolveEventfd(fd));
      }
      this.setIrqs({ action: 'trigger', index, start, count, data: 'eventfd', triggers });
    }
    return 0;
  }

  /** vfio_ioctl_device_feature and vfio_check_feature (drivers/vfio/vfio_main.c). */
  private ioctlFeature(out: Uint8Array): number {
    const minsz = vfio_device_feature.size;
    const s = decodeDeviceFeature(out);
    const place = { device: this.name };
    if (s.argsz < minsz) throw this.argszError('vfio_device_feature', s.argsz, minsz);
    if (
      s.flags &
      ~(
        VFIO_DEVICE_FEATURE_MASK |
        VFIO_DEVICE_FEATURE_SET |
        VFIO_DEVICE_FEATURE_GET |
        VFIO_DEVICE_FEATURE_PROBE
      )
    ) {
      throw new VfioError('EINVAL', `feature flags 0x${s.flags.toString(16)} has unknown bits.`, place);
    }
    const getSet = s.flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET);
    if (
      !(s.flags & VFIO_DEVICE_FEATURE_PROBE) &&
      getSet === (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)
    ) {
      throw new VfioError('EINVAL', 'GET and SET together need PROBE.', place);
    }
    const feature = s.flags & VFIO_DEVICE_FEATURE_MASK;
    const dataSize = s.argsz - minsz;
    const data = s.data;
    /** vfio_check_feature: 0 = probe answered, 1 = go on. */
    const check = (supported: number, featureMinsz: number): boolean => {
      if (s.flags & VFIO_DEVICE_FEATURE_PROBE) {
        if (getSet & ~supported)
          throw new VfioError('EINVAL', `feature ${feature} does not support that operation.`, place);
        return false;
      }
      if (!getSet) throw new VfioError('EINVAL', `feature ${feature} needs GET or SET.`, place);
      if (getSet & ~supported)
        throw new VfioError('EINVAL', `feature ${feature} does not support that operation.`, place);
      if (dataSize < featureMinsz || data.byteLength < featureMinsz) {
        throw new VfioError(
          'EINVAL',
          `feature ${feature} needs ${featureMinsz} bytes of data, argsz gives ${dataSize}.`,
          place,
        );
      }
      return true;
    };
    switch (feature) {
      case VFIO_DEVICE_FEATURE_MIGRATION: {
        this.needMigration();
        if (!check(VFIO_DEVICE_FEATURE_GET, vfio_device_feature_migration.size)) return 0;
        setU64(new DataView(data.buffer, data.byteOffset, 8), 0, this.migrationCaps());
        return 0;
      }
      case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: {
        const m = this.needMigration();
        if (!check(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET, vfio_device_feature_mig_state.size))
          return 0;
        if (getSet === VFIO_DEVICE_FEATURE_GET) {
          data.set(encodeMigState(m.state, -1));
          return 0;
        }
        const req = decodeMigState(data);
        const fd = this.setMigrationState(req.deviceState as MigState);
        data.set(encodeMigState(req.deviceState, fd));
        return 0;
      }
      case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: {
        this.needMigration();
        if (!check(VFIO_DEVICE_FEATURE_GET, vfio_device_feature_mig_data_size.size)) return 0;
        const size = this.device.migration?.stopCopySize?.() ?? 0;
        setU64(new DataView(data.buffer, data.byteOffset, 8), 0, size);
        return 0;
      }
      case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
      case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
      case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
        return this.dmaLoggingFeature(feature, check, data);
      default:
        throw new VfioError('ENOTTY', `device feature ${feature} is not supported.`, {
          ...place,
          hint: 'Probe a feature with VFIO_DEVICE_FEATURE_PROBE before using it.',
        });
    }
  }

  /**
   * DMA logging. In process there is no user memory for the kernel's `ranges` and `bitmap`
   * pointers, so (as vfio-user carries them) the ranges follow the control struct inline and
   * the report's bitmap follows the report struct in the argument bytes.
   */
  private dmaLoggingFeature(
    feature: number,
    check: (supported: number, minsz: number) => boolean,
    data: Uint8Array,
  ): number {
    const logging = this.host.dmaLogging;
    if (!logging) {
      throw new VfioError('ENOTTY', 'DMA logging is not available for this device.', { device: this.name });
    }
    if (feature === VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP) {
      if (!check(VFIO_DEVICE_FEATURE_SET, 0)) return 0;
      logging.stop();
      return 0;
    }
    if (feature === VFIO_DEVICE_FEATURE_DMA_LOGGING_START) {
      if (!check(VFIO_DEVICE_FEATURE_SET, vfio_device_feature_dma_logging_control.size)) return 0;
      const ctl = decodeDmaLoggingControl(data);
      const rsz = vfio_device_feature_dma_logging_range.size;
      const at = vfio_device_feature_dma_logging_control.size;
      if (data.byteLength < at + ctl.numRanges * rsz) {
        throw new VfioError('EINVAL', `${ctl.numRanges} logging ranges do not fit in the argument.`, {
          device: this.name,
        });
      }
      const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
      const ranges: { iova: number; length: number }[] = [];
      for (let i = 0; i < ctl.numRanges; i++) {
        ranges.push({
          iova: getU64(dv, at + i * rsz, 'iova'),
          length: getU64(dv, at + i * rsz + 8, 'length'),
        });
      }
      logging.start(ctl.pageSize, ranges);
      return 0;
    }
    if (!check(VFIO_DEVICE_FEATURE_GET, vfio_device_feature_dma_logging_report.size)) return 0;
    const rep = decodeDmaLoggingReport(data);
    const bitmap = logging.report(rep.iova, rep.length, rep.pageSize);
    const at = vfio_device_feature_dma_logging_report.size;
    if (data.byteLength < at + bitmap.byteLength) {
      throw new VfioError('EINVAL', `the report bitmap needs ${bitmap.byteLength} bytes after the struct.`, {
        device: this.name,
        hint: 'Make argsz cover the struct plus one bit per page, rounded up to 8 bytes.',
      });
    }
    data.set(bitmap, at);
    return 0;
  }

  private ioctlQueryGfxPlane(out: Uint8Array): number {
    const minsz = vfio_device_gfx_plane_info.fields.region_index.offset + 4;
    const s = decodeGfxPlaneInfo(out);
    if (s.argsz < minsz) throw this.argszError('vfio_device_gfx_plane_info', s.argsz, minsz);
    const display = this.device.display;
    const kind =
      s.flags & VFIO_GFX_PLANE_TYPE_DMABUF
        ? 'dmabuf'
        : s.flags & VFIO_GFX_PLANE_TYPE_REGION
          ? 'region'
          : undefined;
    if (!display || !kind || (kind === 'dmabuf' ? !display.kinds.dmabuf : !display.kinds.region)) {
      throw new VfioError('EINVAL', 'the device offers no display plane of that kind.', {
        device: this.name,
        hint: 'Probe DMABUF first, then REGION, as QEMU does.',
      });
    }
    if (s.flags & VFIO_GFX_PLANE_TYPE_PROBE) return 0;
    const p = display.queryPlane(kind, s.drmPlaneType);
    out.set(
      encodeGfxPlaneInfo({ ...p, argsz: s.argsz, flags: s.flags }).subarray(
        0,
        Math.min(out.byteLength, vfio_device_gfx_plane_info.size),
      ),
    );
    return 0;
  }

  private ioctlPrecopyInfo(out: Uint8Array): number {
    const info = this.precopyInfo();
    const bytes = encodePrecopyInfo(info.initialBytes, info.dirtyBytes);
    if (out.byteLength < bytes.byteLength) {
      throw new VfioError('EINVAL', `struct vfio_precopy_info needs ${bytes.byteLength} bytes.`, {
        device: this.name,
      });
    }
    const argsz = new DataView(out.buffer, out.byteOffset, 4).getUint32(0, true);
    if (argsz < bytes.byteLength) throw this.argszError('vfio_precopy_info', argsz, bytes.byteLength);
    out.set(bytes.subarray(8), 8);
    return 0;
  }
}

export function irqInfoFlags(info: IrqInfo): number {
  return (
    (info.eventfd ? VFIO_IRQ_INFO_EVENTFD : 0) |
    (info.maskable ? VFIO_IRQ_INFO_MASKABLE : 0) |
    (info.automasked ? VFIO_IRQ_INFO_AUTOMASKED : 0) |
    (info.noresize ? VFIO_IRQ_INFO_NORESIZE : 0)
  );
}

/**
 * The region as the dispatcher keeps it: the plugin's RegionInfo with its file offset, REGION_INFO
 * flags and capability chain resolved. Built field by field (one object shape for every region,
 * no spread): a device file is opened for every attach, so this runs once per region per open.
 */
/** Where an mmap request points, for its error. */
function mmapPlace(
  device: string,
  r: ResolvedRegion | undefined,
  offset: number,
): { device: string; region: number | undefined; offset: number } {
  return { device, region: r?.index, offset: r ? offset - r.offset : offset };
}

/** Whether [rel, rel + length) lies inside one mmap area of `r` (all of it without sparse areas). */
function insideMmapArea(r: ResolvedRegion, rel: number, length: number): boolean {
  const areas = r.sparseMmap;
  if (areas === undefined) return rel >= 0 && rel + length <= r.size;
  for (const a of areas) if (rel >= a.offset && rel + length <= a.offset + a.size) return true;
  return false;
}

/**
 * Whether `r` says no more than "not implemented": size 0, no access, at the default offset and
 * without optional fields. Such a region resolves to exactly what absentRegion() shares.
 */
function isAbsent(r: RegionInfo): boolean {
  return (
    r.size === 0 &&
    !r.read &&
    !r.write &&
    !r.mmap &&
    r.offset === undefined &&
    r.sparseMmap === undefined &&
    r.type === undefined &&
    r.msixMappable === undefined
  );
}

function resolveRegion(r: RegionInfo, index: number): ResolvedRegion {
  // Most regions carry no capability: they share the frozen empty chain.
  let caps: readonly RegionCap[] = NO_CAPS;
  if ((r.mmap && r.sparseMmap) || r.type || r.msixMappable) {
    const chain: RegionCap[] = [];
    if (r.mmap && r.sparseMmap) chain.push({ id: VFIO_REGION_INFO_CAP_SPARSE_MMAP, areas: r.sparseMmap });
    if (r.type) chain.push({ id: VFIO_REGION_INFO_CAP_TYPE, type: r.type.type, subtype: r.type.subtype });
    if (r.msixMappable) chain.push({ id: VFIO_REGION_INFO_CAP_MSIX_MAPPABLE });
    caps = chain;
  }
  const flags =
    (r.read ? VFIO_REGION_INFO_FLAG_READ : 0) |
    (r.write ? VFIO_REGION_INFO_FLAG_WRITE : 0) |
    (r.mmap ? VFIO_REGION_INFO_FLAG_MMAP : 0);
  const resolved: {
    -readonly [K in keyof ResolvedRegion]: ResolvedRegion[K];
  } = {
    index,
    size: r.size,
    read: r.read,
    write: r.write,
    mmap: r.mmap,
    offset: r.offset ?? defaultOffset(index),
    flags,
    caps,
  };
  // The optional fields are present only when the plugin gave them, as in its RegionInfo.
  if (r.sparseMmap !== undefined) resolved.sparseMmap = r.sparseMmap;
  if (r.type !== undefined) resolved.type = r.type;
  if (r.msixMappable !== undefined) resolved.msixMappable = r.msixMappable;
  return Object.freeze(resolved);
}

/** vfio-pci's file offset of each region index (`index << 40`), worked out once per index. */
const defaultOffsets: number[] = [];

function defaultOffset(index: number): number {
  let offset = defaultOffsets[index];
  if (offset === undefined) {
    offset = vfioPciIndexToOffset(index);
    if (Number.isInteger(index) && index >= 0 && index < 256) defaultOffsets[index] = offset;
  }
  return offset;
}

/** Regions that are not implemented, by index: frozen and alike for every device, so made once. */
const absentRegions: ResolvedRegion[] = [];

/** A region index the device does not implement (size 0) at vfio-pci's default offset. */
function absentRegion(index: number): ResolvedRegion {
  let r = absentRegions[index];
  if (r === undefined) {
    r = Object.freeze({
      index,
      size: 0,
      read: false,
      write: false,
      mmap: false,
      offset: defaultOffset(index),
      flags: 0,
      caps: NO_CAPS,
    });
    if (Number.isInteger(index) && index >= 0 && index < 256) absentRegions[index] = r;
  }
  return r;
}
