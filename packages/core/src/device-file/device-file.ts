/**
 * DeviceFile: an open VFIO device file. It takes raw requests (an ioctl number and its
 * argument bytes; reads and writes at device-file offsets) and answers as vfio-pci does, with
 * the kernel's argsz, capability-chain, bounds and SET_IRQS rules applied once, here, for
 * every plugin. Typed methods offer the same operations to in-process users (the reference
 * VMM, the vfio-user server); both roads share one implementation of each rule.
 *
 * This file holds the lifecycle, the one guarded path every region access takes, mmap, reset
 * and the migration operations. Its parts: region-table.ts (regions and their counters),
 * region-port.ts (one region's accesses for a caller that makes many),
 * access-errors.ts (the words of every refusal), ioctl-info.ts, ioctl-irqs.ts and
 * ioctl-features.ts (the ioctl decoders), irq-state.ts (interrupt state), function-lifecycle.ts
 * (what vfio-pci does to a physical function at first open and last close).
 */

import {
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_QUERY_GFX_PLANE,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_MIG_GET_PRECOPY_INFO,
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY,
  VFIO_PCI_CONFIG_REGION_INDEX,
} from '../abi/constants.js';
import { PAGE_SIZE } from '../bytes.js';
import type { DeviceContext, Logger } from '../contract/context.js';
import type { DeviceInfo, IrqInfo, RegionMapping, VfioDevice } from '../contract/device.js';
import { MigState, type PrecopyInfo } from '../contract/migration.js';
import { toVfioError, type VfioError } from '../errors.js';
import { MigrationController } from '../migration/controller.js';
import {
  alreadyOpenError,
  asyncHandlerError,
  closedMigrationError,
  fileAccessError,
  mmapAlignError,
  mmapOutsideError,
  mmapPlace,
  noIrqError,
  noRegionError,
  noResetError,
  notMmappableError,
  notOpenError,
  regionAccessError,
  unknownIoctlError,
} from './access-errors.js';
import { type DeviceHost, type IoctlScope, needMigration } from './device-host.js';
import { FunctionLifecycle } from './function-lifecycle.js';
import { ioctlFeature, ioctlPrecopyInfo } from './ioctl-features.js';
import { ioctlGetInfo, ioctlGetIrqInfo, ioctlGetRegionInfo, ioctlQueryGfxPlane } from './ioctl-info.js';
import { ioctlSetIrqs } from './ioctl-irqs.js';
import { type IrqCounters, type IrqSetRequest, IrqState } from './irq-state.js';
import { RegionPort } from './region-port.js';
import {
  insideMmapArea,
  isMmappable,
  type RegionCounters,
  RegionTable,
  type ResolvedRegion,
} from './region-table.js';

export type { DeviceHost, DmaLogging } from './device-host.js';
export { irqInfoFlags } from './ioctl-info.js';
export { RegionPort } from './region-port.js';
export type { RegionCounters, ResolvedRegion } from './region-table.js';

/** States in which a migration data stream stays open. */
const STREAM_STATES = new Set([
  MigState.STOP_COPY,
  MigState.PRE_COPY,
  MigState.PRE_COPY_P2P,
  MigState.RESUMING,
]);

/** The result of a raw ioctl: the return value (0, a new fd, or -errno) and the argument bytes as the caller sees them after the call. */
export interface IoctlResult {
  readonly ret: number;
  readonly out: Uint8Array;
  readonly error?: VfioError;
}

/** Devices with an open DeviceFile: removal of an open device is refused (EBUSY), as mdev does. */
const openDevices = new WeakSet<VfioDevice>();

export function isDeviceOpen(device: VfioDevice): boolean {
  return openDevices.has(device);
}

/**
 * Each migrating device's one controller, made when its first device file is and shared by every
 * file of the device after: the migration state is the device's, as the kernel keeps it with the
 * device (mtty's mdev_state->state, set RUNNING once, in mtty_init_dev; mlx5vf's
 * mvdev->mig_state), so a file opened after another was closed in STOP_COPY finds STOP_COPY.
 */
const migrations = new WeakMap<VfioDevice, MigrationController>();

function migrationOf(device: VfioDevice, log: Logger): MigrationController | undefined {
  const ops = device.migration;
  if (!ops) return undefined;
  let m = migrations.get(device);
  if (m === undefined) {
    // The log of the device's first file takes a stream's close() that throws.
    m = new MigrationController(device.name, ops, log);
    migrations.set(device, m);
  }
  return m;
}

export class DeviceFile {
  readonly name: string;
  private readonly info: DeviceInfo;
  private readonly table: RegionTable;
  /** The table's regions by index, held here too: the access path reads it on every access. */
  private readonly regions: readonly ResolvedRegion[];
  /** The table's per-index limits (size if the file is open and the region allows the access, else 0), held here too. */
  private readonly readLimit: Float64Array;
  private readonly writeLimit: Float64Array;
  /** The ports handed out by regionPort(), by region index. */
  private readonly ports: (RegionPort | undefined)[];
  private readonly irqInfos: (IrqInfo | undefined)[];
  private readonly irqs: IrqState;
  private readonly migration: MigrationController | undefined;
  /** A vfio-pci function's reset and saved header at first open and last close; undefined for an mdev. */
  private readonly lifecycle: FunctionLifecycle | undefined;
  /** What the ioctl decoders see of this file. */
  private readonly scope: IoctlScope;
  private isOpen = false;
  private nextDataFd = 1000;
  private dataFd = -1;

  constructor(
    readonly device: VfioDevice,
    private readonly host: DeviceHost,
  ) {
    this.name = device.name;
    this.info = device.info();
    this.table = new RegionTable(device, this.info.numRegions);
    this.regions = this.table.regions;
    this.readLimit = this.table.readLimit;
    this.writeLimit = this.table.writeLimit;
    // Arrays of their exact size (grown from empty they would reserve 17 entries or more).
    this.ports = new Array(this.regions.length);
    const numIrqs = this.info.numIrqs;
    const irqInfos: (IrqInfo | undefined)[] = new Array(numIrqs > 0 ? Math.ceil(numIrqs) : 0);
    for (let i = 0; i < numIrqs; i++) irqInfos[i] = device.irqInfo(i);
    this.irqInfos = irqInfos;
    this.irqs = new IrqState(this.name, irqInfos);
    this.irqs.setChangeListener((index, count) => this.device.irqsChanged?.(index, count));
    this.migration = migrationOf(device, host.log);
    // Open and close as the kernel driver the device stands for (see DeviceDriver): vfio-pci
    // resets a function at first open and last close; an mdev parent only drops its interrupt
    // triggers at close (mtty.c mtty_close, kvmgt.c intel_vgpu_close_device).
    this.lifecycle =
      device.driver === 'vfio-pci'
        ? new FunctionLifecycle(
            device,
            this.info.reset && device.reset !== undefined,
            this.regions[VFIO_PCI_CONFIG_REGION_INDEX]?.size ?? 0,
            () => this.resetDevice(),
            host.log,
          )
        : undefined;
    this.scope = {
      name: this.name,
      file: this,
      device,
      host,
      info: this.info,
      irqInfos: this.irqInfos,
      migration: this.migration,
    };
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /**
   * Open the file. A device is open through one file at a time (EBUSY for a second): the kernel's
   * cdev path refuses a second open of an open device (vfio_df_open: open_count != 0 without a
   * group, EINVAL), and a group's second fd would share the first one's device and its migration
   * state, which is what the next file here finds.
   */
  open(): void {
    if (this.isOpen || openDevices.has(this.device)) throw alreadyOpenError(this.name);
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
    if (this.lifecycle) {
      this.lifecycle.enable();
      // A vfio-pci variant driver runs again at open, its reset or not: mlx5vf_pci_open_device
      // and hisi_acc_vfio_pci_open_device set RUNNING after vfio_pci_core_enable. An mdev keeps
      // the state its last user left (mtty has no open_device; only its reset says RUNNING).
      this.migration?.reset();
    }
    this.isOpen = true;
    this.table.setOpen(true);
    this.setPortLimits();
    openDevices.add(this.device);
  }

  close(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.table.setOpen(false);
    this.setPortLimits();
    openDevices.delete(this.device);
    this.irqs.disableAll();
    this.dataFd = -1;
    this.migration?.closeStream(this);
    this.lifecycle?.disable();
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
    if (!Number.isInteger(index) || !r) throw noRegionError(this.name, index, this.regions.length);
    return r;
  }

  irqInfo(index: number): IrqInfo {
    const info = Number.isInteger(index) ? this.irqInfos[index] : undefined;
    if (!info) throw noIrqError(this.name, index, this.info.numIrqs);
    return info;
  }

  irqCounters(index: number): IrqCounters | undefined {
    return this.irqs.counters(index);
  }

  irqEnabled(index: number): boolean {
    return this.irqs.enabled(index);
  }

  regionCounters(index: number): RegionCounters | undefined {
    const counters = this.table.countersFor(index);
    const port = this.ports[index];
    if (counters === undefined || port === undefined) return counters;
    counters.reads += port.reads;
    counters.writes += port.writes;
    counters.bytesRead += port.bytesRead;
    counters.bytesWritten += port.bytesWritten;
    return counters;
  }

  /**
   * Region `index` as a RegionPort: readRegion() and writeRegion() at that index for a caller that
   * makes many accesses to it (one port per region: asked again, the same one). EINVAL for an
   * index the device does not have.
   */
  regionPort(index: number): RegionPort {
    const r = Number.isInteger(index) ? this.regions[index] : undefined;
    if (r === undefined) throw noRegionError(this.name, index, this.regions.length);
    let port = this.ports[index];
    if (port === undefined) {
      port = new RegionPort(this, this.device, index);
      port.readLimit = this.readLimit[index];
      port.writeLimit = this.writeLimit[index];
      this.ports[index] = port;
    }
    return port;
  }

  /** The ports' limits follow the file's (open or closed). */
  private setPortLimits(): void {
    for (const port of this.ports) {
      if (port === undefined) continue;
      port.readLimit = this.readLimit[port.index];
      port.writeLimit = this.writeLimit[port.index];
    }
  }

  // ---- region access: one guarded path -----------------------------------------------------

  /** pread on the device file. Throws VfioError; never a partial access. */
  read(offset: number, dst: Uint8Array): number {
    const r = this.table.lookup(offset);
    if (r === undefined) throw this.refuseFileAccess('read', offset, dst.length);
    // A region's file offset is `index << 40`, so the difference is a float the engine would box
    // at every call on the way to the handler; as the int it almost always is, it crosses unboxed.
    const rel = offset - r.offset;
    const small = rel | 0;
    if (small === rel) return this.readRegion(r.index, small, dst);
    return this.readRegion(r.index, rel, dst);
  }

  /** pwrite on the device file. Throws VfioError; never a partial access. */
  write(offset: number, src: Uint8Array): number {
    const r = this.table.lookup(offset);
    if (r === undefined) throw this.refuseFileAccess('write', offset, src.length);
    const rel = offset - r.offset;
    const small = rel | 0;
    if (small === rel) return this.writeRegion(r.index, small, src);
    return this.writeRegion(r.index, rel, src);
  }

  /**
   * pread at `offset` inside region `index`: read() at the region's file offset plus `offset`, with
   * the same checks, counters and errors, for a caller that knows the region (a VMM's config and
   * trapped BAR accesses). It skips the file-offset lookup, and its arguments stay small integers
   * (a file offset is `index << 40`, a number the engine boxes when it crosses a call).
   *
   * The road of every region read (read() comes here too, writeRegion() is its twin for writes):
   * the device is open, the access is at least a byte, lies inside the region and is one the
   * region allows; then the plugin's handler, whose failure becomes a VfioError naming the place;
   * then the counters. Kept flat and small (the checks that refuse are out of line, shared by
   * both): no allocation, no closure on the way to the handler, and few enough bytes that the
   * engine inlines the whole road into a VMM's trapped access.
   */
  readRegion(index: number, offset: number, dst: Uint8Array): number {
    const n = dst.length;
    // The common access in one test: an offset below 2^32 (an integer, not negative), at least a
    // byte, ending inside a region that allows it on an open device (a limit of 0 — closed file,
    // region without the permission — or undefined beyond the table, fails). Anything else takes
    // the full check, which refuses or lets pass (an offset of 4 GiB or more in a larger region).
    if (!(n > 0 && offset >>> 0 === offset && offset + n <= this.readLimit[index]))
      this.checkAccess(false, index, offset, n);
    try {
      // Typed void, but a handler may be async: what it returns is looked at, never awaited.
      const ret: unknown = this.device.read(index, offset, dst);
      if (ret !== undefined) this.refuseThenable(false, index, offset, ret);
    } catch (err) {
      throw this.handlerFailed(err, index, offset);
    }
    this.table.countRead(index, n);
    return n;
  }

  /** pwrite at `offset` inside region `index`: write() without the file-offset lookup, readRegion()'s twin. */
  writeRegion(index: number, offset: number, src: Uint8Array): number {
    const n = src.length;
    if (!(n > 0 && offset >>> 0 === offset && offset + n <= this.writeLimit[index]))
      this.checkAccess(true, index, offset, n);
    try {
      const ret: unknown = this.device.write(index, offset, src);
      if (ret !== undefined) this.refuseThenable(true, index, offset, ret);
    } catch (err) {
      throw this.handlerFailed(err, index, offset);
    }
    this.table.countWrite(index, n);
    return n;
  }

  /**
   * The handler threw (or returned a thenable): the error names the place and counts against the
   * region. Out of readRegion() and writeRegion() so that the hot path stays small enough to inline into its callers.
   */
  /** @internal Also RegionPort's. */
  handlerFailed(err: unknown, index: number, offset: number): VfioError {
    this.table.countError(index);
    return toVfioError(err, { device: this.name, region: index, offset });
  }

  /** The full check of an access the one-test path did not let through: refuse it, or return. */
  private checkAccess(write: boolean, index: number, offset: number, n: number): void {
    const r = this.regions[index];
    if (
      r === undefined ||
      !this.isOpen ||
      n === 0 ||
      !Number.isInteger(offset) ||
      offset < 0 ||
      offset + n > r.size ||
      !(write ? r.write : r.read)
    ) {
      throw this.refuseRegionAccess(write ? 'write' : 'read', index, offset, n, r);
    }
  }

  /**
   * A handler returned something: a thenable (an async handler, a Promise) means the access had
   * not finished when it returned, so it is refused, and its later rejection is caught and logged
   * instead of reaching the process as an unhandled rejection.
   */
  /** @internal Also RegionPort's. */
  refuseThenable(write: boolean, index: number, offset: number, ret: unknown): void {
    const what = write ? 'write' : 'read';
    const then = (ret as { then?: unknown } | null)?.then;
    if (typeof then !== 'function') return;
    const log = this.host.log;
    const where = `device ${this.name}, region ${index}, offset 0x${offset.toString(16)}`;
    try {
      then.call(ret, undefined, (err: unknown) =>
        log.warn(
          `${where}: the Promise the ${what} handler returned rejected after the access was refused: ${err instanceof Error ? err.message : String(err)}`,
        ),
      );
    } catch {
      // A thenable whose then() throws is refused all the same.
    }
    throw asyncHandlerError(this.name, what, index, offset);
  }

  /** The error of a refused region access; the refusal counts against the region. */
  private refuseRegionAccess(
    what: 'read' | 'write',
    index: number,
    offset: number,
    n: number,
    region: ResolvedRegion | undefined,
  ): VfioError {
    // As for read() and write(), a region of size 0 is no region at all.
    const r = region !== undefined && region.size > 0 ? region : undefined;
    if (r) this.table.countError(r.index);
    if (!this.isOpen) return notOpenError(this.name, what);
    return regionAccessError(this.name, what, index, offset, n, r, this.regions.length);
  }

  /** A file offset in no region (the region-relative checks are readRegion()'s and writeRegion()'s). */
  private refuseFileAccess(what: 'read' | 'write', offset: number, n: number): VfioError {
    if (!this.isOpen) return notOpenError(this.name, what);
    return fileAccessError(this.name, what, offset, n);
  }

  /** mmap of `length` bytes at file offset `offset`: page aligned, inside one mmap area of an MMAP region. */
  mmap(offset: number, length: number): RegionMapping {
    const r = this.table.lookup(offset);
    if (!r || !isMmappable(r) || !this.device.mmap) throw notMmappableError(this.name, r, offset);
    const rel = offset - r.offset;
    if (rel % PAGE_SIZE !== 0 || length % PAGE_SIZE !== 0 || length === 0) {
      throw mmapAlignError(this.name, r, offset, length);
    }
    if (!insideMmapArea(r, rel, length)) throw mmapOutsideError(this.name, r, offset, length);
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
    if (!this.info.reset || !this.device.reset) throw noResetError(this.name);
    this.resetDevice();
  }

  /** The device's reset and what goes with it (migration back to RUNNING, no data fd). */
  private resetDevice(): void {
    try {
      this.device.reset?.();
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

  /** MIG_DEVICE_STATE GET: the device's state (kept across its files). */
  get migrationState(): MigState {
    return this.openMigration('MIG_DEVICE_STATE GET').state;
  }

  /** MIG_DEVICE_STATE SET: returns the data fd number when the transition opened a stream, else -1. */
  setMigrationState(target: MigState): number {
    const stream = this.openMigration('MIG_DEVICE_STATE SET').setState(target, this);
    if (stream) this.dataFd = this.nextDataFd++;
    else if (!STREAM_STATES.has(target)) this.dataFd = -1;
    return stream ? this.dataFd : -1;
  }

  /** read() on the migration data fd. */
  migrationRead(max: number): Uint8Array {
    return this.openMigration('a read of migration data').read(max);
  }

  /** write() on the migration data fd. */
  migrationWrite(chunk: Uint8Array): void {
    this.openMigration('a write of migration data').write(chunk);
  }

  /** VFIO_MIG_GET_PRECOPY_INFO on the data fd. */
  precopyInfo(): PrecopyInfo {
    return this.openMigration('VFIO_MIG_GET_PRECOPY_INFO').precopyInfo();
  }

  /**
   * The device's migration back to RUNNING without the device's reset, its stream dropped: what
   * libvfio-user does when its client goes away (do_device_reset at VFU_RESET_LOST_CONN sets
   * RUNNING after the reset callback, whether the device has one or not). ENOTTY for a device
   * that does not migrate.
   */
  migrationToRunning(): void {
    needMigration(this.scope).reset();
    this.dataFd = -1;
  }

  /**
   * The migration controller for an operation of this file: ENOTTY for a device that does not
   * migrate, EBADF on a file that is not open (the state is the device's now, and a closed file
   * must not move it under the file that has the device open).
   */
  private openMigration(what: string): MigrationController {
    const m = needMigration(this.scope);
    if (!this.isOpen) throw closedMigrationError(this.name, what);
    return m;
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
        return ioctlGetInfo(this.scope, out);
      case VFIO_DEVICE_GET_REGION_INFO:
        return ioctlGetRegionInfo(this.scope, out);
      case VFIO_DEVICE_GET_IRQ_INFO:
        return ioctlGetIrqInfo(this.scope, out);
      case VFIO_DEVICE_SET_IRQS:
        return ioctlSetIrqs(this.scope, out);
      case VFIO_DEVICE_RESET:
        this.reset();
        return 0;
      case VFIO_DEVICE_FEATURE:
        return ioctlFeature(this.scope, out);
      case VFIO_DEVICE_QUERY_GFX_PLANE:
        return ioctlQueryGfxPlane(this.scope, out);
      case VFIO_MIG_GET_PRECOPY_INFO:
        return ioctlPrecopyInfo(this.scope, out);
      default:
        throw unknownIoctlError(this.name, request);
    }
  }
}
