/**
 * The host's DMA service for one device: reads and writes through an IovaMap (the kernel's
 * vfio_dma_rw), page pinning with the dma_unmap callback (vfio_pin_pages, and the type1
 * VFIO_IOMMU_NOTIFY_DMA_UNMAP notifier that must make the driver unpin), and dirty logging of
 * device writes (VFIO_DEVICE_FEATURE_DMA_LOGGING_*).
 */
import { hex } from '../bytes.js';
import type { DirtyLog, DmaSpace, IommuListener, PinnedRange } from '../contract/context.js';
import { VfioError } from '../errors.js';
import type { DirtyTracker } from './dirty.js';
import { type DmaMapping, IovaMap } from './iova-map.js';

/**
 * How the host reaches guest memory that is not in this process (mappings made with
 * `remote: true`): vfio-user DMA_READ / DMA_WRITE messages to the client. Each call covers a
 * range inside one remote mapping.
 */
export interface RemoteDma {
  read(iova: number, dst: Uint8Array): Promise<void>;
  write(iova: number, src: Uint8Array): Promise<void>;
}

export interface HostDmaOptions {
  /** The IOMMU mappings; a fresh empty map when omitted. */
  readonly map?: IovaMap;
  /** The device's DMA log; device writes are marked in it while it runs. */
  readonly dirty?: DirtyTracker;
  /** The device name, for error messages. */
  readonly device?: string;
  /** How readAsync/writeAsync reach remote mappings; without it they fault there with EFAULT. */
  readonly remote?: RemoteDma;
}

class Pin implements PinnedRange {
  onUnmap?: () => void;
  #owner: Set<Pin> | undefined;

  constructor(
    owner: Set<Pin>,
    readonly iova: number,
    readonly length: number,
    readonly write: boolean,
    readonly bytes: Uint8Array,
  ) {
    this.#owner = owner;
  }

  get pinned(): boolean {
    return this.#owner !== undefined;
  }

  unpin(): void {
    const owner = this.#owner;
    this.#owner = undefined;
    owner?.delete(this);
  }
}

export class HostDma implements DmaSpace, DirtyLog {
  readonly map: IovaMap;
  readonly dirty: DirtyTracker | undefined;
  readonly #device: string | undefined;
  readonly #remote: RemoteDma | undefined;
  /** The pins held, made at the first pin (a HostDma is made for every attached device). */
  #pins: Set<Pin> | undefined;
  /**
   * Unmaps matter only to pins, so the map is followed from the first pin on (a VMM makes a
   * HostDma for every device it attaches, and most never pin). Undefined until then.
   */
  #stopListening: (() => void) | undefined;
  #disposed = false;

  constructor(options: HostDmaOptions = {}) {
    this.map = options.map ?? new IovaMap();
    this.dirty = options.dirty;
    this.#device = options.device;
    this.#remote = options.remote;
  }

  /** DmaSpace.watch: the map's mappings now and as they change. */
  watch(listener: IommuListener): () => void {
    const report = (m: DmaMapping) =>
      listener.mapped({
        iova: m.iova,
        size: m.size,
        read: m.read,
        write: m.write,
        memory: m.remote ? m.memory : m.memory.subarray(m.memoryOffset, m.memoryOffset + m.size),
        remote: m.remote,
      });
    for (const m of this.map.mappings()) report(m);
    const stopMap = this.map.onMap(report);
    const stopUnmap = this.map.onUnmap((iova, size) => listener.unmapped(iova, size));
    return () => {
      stopMap();
      stopUnmap();
    };
  }

  /** Number of live pins. */
  get pinCount(): number {
    return this.#pins?.size ?? 0;
  }

  read(iova: number, dst: Uint8Array): void {
    try {
      this.map.read(iova, dst);
    } catch (err) {
      throw this.#placed(err);
    }
  }

  write(iova: number, src: Uint8Array): void {
    try {
      this.map.write(iova, src);
    } catch (err) {
      throw this.#placed(err);
    }
    if (this.dirty?.started) this.dirty.markDirty(iova, src.length);
  }

  /**
   * DMA read that also reaches remote mappings. The whole range is checked first (covered,
   * readable, remote parts reachable): on a fault nothing is copied and nothing is sent.
   */
  async readAsync(iova: number, dst: Uint8Array): Promise<void> {
    const pieces = this.#pieces(iova, dst.length, false);
    if (pieces === undefined) {
      this.read(iova, dst);
      return;
    }
    let pos = 0;
    for (const p of pieces) {
      const part = dst.subarray(pos, pos + p.length);
      if (p.remote) await this.#remote!.read(p.iova, part);
      else this.read(p.iova, part);
      pos += p.length;
    }
  }

  /** DMA write that also reaches remote mappings; marked dirty once it completed. */
  async writeAsync(iova: number, src: Uint8Array): Promise<void> {
    const pieces = this.#pieces(iova, src.length, true);
    if (pieces === undefined) {
      this.write(iova, src);
      return;
    }
    let pos = 0;
    for (const p of pieces) {
      const part = src.subarray(pos, pos + p.length);
      if (p.remote) {
        await this.#remote!.write(p.iova, part);
        if (this.dirty?.started) this.dirty.markDirty(p.iova, p.length);
      } else this.write(p.iova, part);
      pos += p.length;
    }
  }

  /**
   * The range split at remote mappings, or undefined when none is involved (then the
   * synchronous path answers, faults included). Throws EFAULT when a remote part cannot be
   * reached or the range is not covered.
   */
  #pieces(
    iova: number,
    length: number,
    write: boolean,
  ): { iova: number; length: number; remote: boolean }[] | undefined {
    if (!Number.isSafeInteger(iova) || iova < 0 || !Number.isSafeInteger(length) || length <= 0)
      return undefined;
    const pieces: { iova: number; length: number; remote: boolean }[] = [];
    let anyRemote = false;
    let addr = iova;
    const end = iova + length;
    while (addr < end) {
      const m = this.map.find(addr);
      // A hole or a permission fault: let the synchronous path name it.
      if (m === undefined || !(write ? m.write : m.read)) return undefined;
      const n = Math.min(end, m.iova + m.size) - addr;
      const last = pieces[pieces.length - 1];
      if (last !== undefined && last.remote === m.remote && !m.remote) last.length += n;
      else pieces.push({ iova: addr, length: n, remote: m.remote });
      anyRemote ||= m.remote;
      addr += n;
    }
    if (!anyRemote) return undefined;
    if (this.#remote === undefined) {
      throw new VfioError(
        'EFAULT',
        `DMA ${write ? 'write' : 'read'} of ${length} bytes at IOVA ${hex(iova)} reaches memory mapped without an fd, and this host has no way to reach it.`,
        { device: this.#device, hint: 'Map guest memory with an fd, or give HostDma a remote transport.' },
      );
    }
    return pieces;
  }

  markDirty(iova: number, length: number): void {
    this.dirty?.markDirty(iova, length);
  }

  /**
   * Pin [iova, iova + length) and return a view of it. The range must lie inside one mapping
   * that allows the access (write pins need WRITE, read pins READ); EFAULT otherwise. When the
   * mapping is unmapped, the pin's `onUnmap` runs first and the pin is then dropped.
   */
  pin(iova: number, length: number, write: boolean): PinnedRange {
    // vfio_pin_pages: no pages → -EINVAL.
    if (!Number.isSafeInteger(length) || length <= 0) {
      throw new VfioError('EINVAL', `cannot pin ${String(length)} bytes at IOVA ${String(iova)}.`, {
        device: this.#device,
        hint: 'Pin at least one byte.',
      });
    }
    const bytes = this.map.translate(iova, length, write);
    if (bytes === undefined) {
      const where = Number.isSafeInteger(iova) && iova >= 0 ? hex(iova) : String(iova);
      throw new VfioError(
        'EFAULT',
        `cannot pin ${length} bytes at IOVA ${where} for ${write ? 'writing' : 'reading'}: the range is not inside one mapping that allows it.`,
        {
          device: this.#device,
          hint: 'Pin within a single VFIO_IOMMU_MAP_DMA mapping with the needed permission, or split the pin.',
        },
      );
    }
    let pins = this.#pins;
    if (pins === undefined) {
      pins = new Set();
      this.#pins = pins;
    }
    const pin = new Pin(pins, iova, length, write, bytes);
    pins.add(pin);
    if (this.#stopListening === undefined && !this.#disposed)
      this.#stopListening = this.map.onUnmap((iova, size) => this.#invalidate(iova, size));
    return pin;
  }

  /** Stop following the map's unmaps and drop every pin (without callbacks): the device is closing. */
  dispose(): void {
    this.#disposed = true;
    this.#stopListening?.();
    this.#stopListening = undefined;
    const pins = this.#pins;
    if (pins !== undefined && pins.size > 0) for (const pin of [...pins]) pin.unpin();
  }

  /** A mapping is going: every pin inside it hears about it first, then is dropped. */
  #invalidate(iova: number, size: number): void {
    const end = iova + size;
    let failure: unknown;
    let failed = false;
    const pins = this.#pins;
    if (pins === undefined) return;
    for (const pin of [...pins]) {
      if (pin.iova >= end || pin.iova + pin.length <= iova) continue;
      try {
        pin.onUnmap?.();
      } catch (err) {
        if (!failed) {
          failed = true;
          failure = err;
        }
      }
      pin.unpin();
    }
    if (failed) throw this.#placed(failure);
  }

  #placed(err: unknown): unknown {
    if (err instanceof VfioError && this.#device !== undefined) return err.at({ device: this.#device });
    return err;
  }
}
