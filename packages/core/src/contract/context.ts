/**
 * The host half of the contract: what an open device may use. In the kernel these are
 * vfio_dma_rw / vfio_pin_pages, eventfd_signal, the dirty-page tracker and the clock; here the
 * host (the reference VMM, the vfio-user server, a test) provides them.
 */

/**
 * Device DMA through the IOMMU: addresses are IOVAs mapped by VFIO_IOMMU_MAP_DMA. An access
 * that is not entirely inside mappings with the needed permission throws VfioError EFAULT and
 * touches nothing.
 */
export interface DmaSpace {
  read(iova: number, dst: Uint8Array): void;
  write(iova: number, src: Uint8Array): void;
  /**
   * Pin `length` bytes at `iova` (vfio_pin_pages) and return a view of them that stays valid
   * until unpinned or until the mapping is removed (then `onUnmap` is called first, as the
   * kernel's dma_unmap callback). Writes through a pinned view are the device's to mark dirty.
   */
  pin(iova: number, length: number, write: boolean): PinnedRange;
  /**
   * The same read for hosts whose guest memory is not all in this process (a vfio-user DMA_MAP
   * without an fd is reached only by DMA_READ messages): resolves once `dst` is filled, rejects
   * with VfioError EFAULT as `read` does. Where it exists, it works for every mapping; the
   * synchronous `read` throws EFAULT for a mapping it cannot reach and says to use this.
   */
  readAsync?(iova: number, dst: Uint8Array): Promise<void>;
  /**
   * The IOVA mappings themselves, as they come and go, for a device that does its own DMA (a
   * kernel device behind a real IOMMU mirrors them there): `mapped` runs for every mapping there
   * is now and every later one, `unmapped` before one goes. Returns a function that stops it.
   */
  watch?(listener: IommuListener): () => void;
  /** The asynchronous `write` (vfio-user DMA_WRITE messages for mappings without an fd). */
  writeAsync?(iova: number, src: Uint8Array): Promise<void>;
}

/** A mapping as DmaSpace.watch reports it: `memory` is empty for one this process cannot reach (remote). */
export interface IommuMapping {
  readonly iova: number;
  readonly size: number;
  readonly read: boolean;
  readonly write: boolean;
  /** Exactly the mapped bytes. */
  readonly memory: Uint8Array;
  readonly remote: boolean;
}

export interface IommuListener {
  mapped(mapping: IommuMapping): void;
  unmapped(iova: number, size: number): void;
}

export interface PinnedRange {
  readonly iova: number;
  readonly length: number;
  /** The guest memory behind the pin, when the host has it in this process. */
  readonly bytes: Uint8Array | undefined;
  unpin(): void;
  /** Called when the IOVA range is unmapped under the pin; the device must drop its view. */
  onUnmap?: () => void;
}

/** Interrupt signalling: the device raises vectors; the host delivers them as SET_IRQS configured. */
export interface IrqSignals {
  /**
   * Raise `vector` of IRQ `index`. The core applies masking (a masked INTx stays pending) and
   * AUTOMASKED; an index without a trigger drops the interrupt and counts it.
   */
  trigger(index: number, vector?: number): void;
  /**
   * The device's level-triggered line (INTx) went low: an interrupt held back by a mask is
   * dropped, so unmasking does not deliver a stale one (vfio-pci re-checks the line on unmask).
   */
  lower(index: number, vector?: number): void;
  /** Whether SET_IRQS gave `index` at least one trigger. */
  enabled(index: number): boolean;
}

/** Dirty-page logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_*): DMA writes are logged for the device. */
export interface DirtyLog {
  /** Record that the device wrote `length` bytes at `iova` outside DmaSpace.write (a pinned view, say). */
  markDirty(iova: number, length: number): void;
}

export interface Clock {
  /** Monotonic time in nanoseconds. */
  now(): number;
  /** Run `fn` after `ns` nanoseconds of this clock; returns a cancel function. */
  schedule(ns: number, fn: () => void): () => void;
}

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface DeviceContext {
  /** The device's name, for messages. */
  readonly device: string;
  readonly dma: DmaSpace;
  readonly irq: IrqSignals;
  readonly dirty: DirtyLog;
  readonly clock: Clock;
  readonly log: Logger;
}
