/**
 * LinuxVfioDevice: a kernel VFIO device behind the same VfioDevice contract as a plugin's
 * instance or a vfio-user client device, so the reference VMM attaches it (`vfio:<device>`),
 * lspci prints it and `vfiokit serve --vfio` serves it over vfio-user.
 *
 * What crosses to the kernel: region reads and writes (pread/pwrite at the offsets REGION_INFO
 * gave), mmap of the mappable areas, RESET, SET_IRQS with real eventfds whenever the local device
 * file's interrupt setup changes, and DMA mapping of guest memory (at IOVA 0 = guest physical
 * address 0, the VMM's identity IOMMU view) when the device opens. Device, region and IRQ info
 * are read once from the kernel when it opens. Without guest memory of its own (served over
 * vfio-user), the host's IOVA mappings are mirrored into the kernel's IOMMU instead.
 *
 * INTx: the kernel masks INTx when it fires (AUTOMASKED) and so does the local device file in
 * front of this device. The kernel's line is unmasked again at the guest's next access to a BAR,
 * as QEMU's vfio_intx_eoi does without KVM: an interrupt handler reaches the device to clear its
 * cause, and an unmask before that would only fire again at once.
 */
import {
  type DeviceContext,
  type DeviceInfo,
  type IrqInfo,
  type MmapArea,
  type RegionInfo,
  type RegionMapping,
  type SharedMemory,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_ROM_REGION_INDEX,
  type VfioDevice,
  VfioError,
} from '@vfiokit/core';
import {
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
} from '@vfiokit/core/abi';
import type { KernelRegion } from './device/device-fd.js';
import { type OpenedDevice, type OpenOptions, openVfioDevice } from './device/open.js';
import { type HostEventfd, type HostSystem, linuxSystem } from './host/system.js';
import { IOMMU_PAGE } from './iommu/dma.js';

export interface LinuxVfioDeviceOptions extends OpenOptions {
  readonly system?: HostSystem;
  /**
   * Guest memory, DMA-mapped read/write at IOVA 0 while the device is open. Its bytes must be
   * page-aligned memory of this process (a memfd mapping, as the VMM allocates for such devices).
   */
  readonly guestMemory?: SharedMemory;
}

function regionInfoOf(r: KernelRegion): RegionInfo {
  let sparse: MmapArea[] | undefined;
  let type: { type: number; subtype: number } | undefined;
  let msixMappable = false;
  for (const c of r.caps) {
    if (c.id === VFIO_REGION_INFO_CAP_SPARSE_MMAP && 'areas' in c) sparse = c.areas.map((a) => ({ ...a }));
    else if (c.id === VFIO_REGION_INFO_CAP_TYPE && 'type' in c) type = { type: c.type, subtype: c.subtype };
    else if (c.id === VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) msixMappable = true;
  }
  return {
    index: r.index,
    size: r.size,
    read: (r.flags & VFIO_REGION_INFO_FLAG_READ) !== 0,
    write: (r.flags & VFIO_REGION_INFO_FLAG_WRITE) !== 0,
    mmap: (r.flags & VFIO_REGION_INFO_FLAG_MMAP) !== 0,
    offset: r.offset,
    ...(sparse ? { sparseMmap: sparse } : {}),
    ...(type ? { type } : {}),
    ...(msixMappable ? { msixMappable } : {}),
  };
}

export class LinuxVfioDevice implements VfioDevice {
  readonly name: string;
  readonly #opened: OpenedDevice;
  readonly #system: HostSystem;
  readonly #guest: SharedMemory | undefined;
  readonly #info: DeviceInfo;
  readonly #regions: (RegionInfo | undefined)[] = [];
  readonly #kernelRegions: (KernelRegion | undefined)[] = [];
  readonly #irqs: (IrqInfo | undefined)[] = [];
  readonly #eventfds = new Map<number, HostEventfd[]>();
  readonly #mappings = new Set<ArrayBuffer>();
  #ctx: DeviceContext | undefined;
  #dmaMapped = 0;
  #unwatch: (() => void) | undefined;
  /** Mappings mirrored from the host's DMA space (serving over vfio-user): iova -> size. */
  readonly #mirrored = new Map<number, number>();
  #intxUnmaskDue = false;
  #disposed = false;

  private constructor(opened: OpenedDevice, system: HostSystem, guest: SharedMemory | undefined) {
    this.#opened = opened;
    this.#system = system;
    this.#guest = guest;
    this.name = opened.host.name;
    const d = opened.device;
    const info = d.info();
    this.#info = {
      reset: (info.flags & VFIO_DEVICE_FLAGS_RESET) !== 0,
      numRegions: info.numRegions,
      numIrqs: info.numIrqs,
    };
    for (let i = 0; i < info.numRegions; i++) {
      const r = d.region(i);
      this.#kernelRegions[i] = r;
      this.#regions[i] = r ? regionInfoOf(r) : undefined;
    }
    for (let i = 0; i < info.numIrqs; i++) {
      const q = d.irq(i);
      this.#irqs[i] = q && {
        index: i,
        count: q.count,
        eventfd: (q.flags & VFIO_IRQ_INFO_EVENTFD) !== 0,
        maskable: (q.flags & VFIO_IRQ_INFO_MASKABLE) !== 0,
        automasked: (q.flags & VFIO_IRQ_INFO_AUTOMASKED) !== 0,
        noresize: (q.flags & VFIO_IRQ_INFO_NORESIZE) !== 0,
      };
    }
  }

  /** Open the kernel device `spec` names (a sysfs path, a PCI address or an mdev UUID). */
  static open(spec: string, opts: LinuxVfioDeviceOptions = {}): LinuxVfioDevice {
    const system = opts.system ?? linuxSystem();
    const opened = openVfioDevice(system, spec, opts.iommu ? { iommu: opts.iommu } : {});
    try {
      return new LinuxVfioDevice(opened, system, opts.guestMemory);
    } catch (err) {
      opened.close();
      throw err;
    }
  }

  /** The open kernel device and its IOMMU context (for callers that need the raw fd). */
  get kernel(): OpenedDevice {
    return this.#opened;
  }

  info(): DeviceInfo {
    return this.#info;
  }

  regionInfo(index: number): RegionInfo | undefined {
    return this.#regions[index];
  }

  irqInfo(index: number): IrqInfo | undefined {
    return this.#irqs[index];
  }

  open(ctx: DeviceContext): void {
    this.#ctx = ctx;
    const g = this.#guest;
    if (!g) {
      // No guest memory of its own (served over vfio-user): the host's IOVA mappings, the
      // client's DMA_MAPs, are mirrored into the kernel's IOMMU as they come and go.
      this.#unwatch = ctx.dma.watch?.({
        mapped: (m) => {
          if (m.remote) {
            ctx.log.warn(
              `${this.name}: DMA at IOVA 0x${m.iova.toString(16)} is not in this process (a DMA_MAP without an fd), so the kernel device cannot reach it.`,
            );
            return;
          }
          this.#opened.dma.map({
            iova: m.iova,
            size: m.size,
            memory: m.memory,
            read: m.read,
            write: m.write,
          });
          this.#mirrored.set(m.iova, m.size);
        },
        unmapped: (iova, size) => {
          if (!this.#mirrored.delete(iova)) return;
          this.#opened.dma.unmap(iova, size);
        },
      });
      return;
    }
    const size = g.size - (g.size % IOMMU_PAGE);
    if (size === 0) return;
    this.#opened.dma.map({ iova: 0, size, memory: g.bytes.subarray(0, size), read: true, write: true });
    this.#dmaMapped = size;
  }

  close(): void {
    for (const index of [...this.#eventfds.keys()]) this.#release(index, true);
    for (const b of this.#mappings) this.#opened.device.munmap(b);
    this.#mappings.clear();
    this.#unwatch?.();
    this.#unwatch = undefined;
    for (const [iova, size] of this.#mirrored) {
      try {
        this.#opened.dma.unmap(iova, size);
      } catch {
        // closing the IOMMU context drops it anyway
      }
    }
    this.#mirrored.clear();
    if (this.#dmaMapped) {
      try {
        this.#opened.dma.unmap(0, this.#dmaMapped);
      } catch (err) {
        this.#ctx?.log.warn(`unmapping guest memory from ${this.name} failed: ${(err as Error).message}`);
      }
      this.#dmaMapped = 0;
    }
    this.#ctx = undefined;
  }

  /** Close the kernel device and its IOMMU context: the end of this object. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.close();
    this.#opened.close();
  }

  #region(index: number): KernelRegion {
    const r = this.#kernelRegions[index];
    if (!r)
      throw new VfioError('EINVAL', `there is no region ${index}.`, { device: this.name, region: index });
    return r;
  }

  /** A BAR access is the guest's interrupt handler reaching the device: INTx may fire again. */
  #eoi(index: number): void {
    if (!this.#intxUnmaskDue || index >= VFIO_PCI_ROM_REGION_INDEX) return;
    this.#intxUnmaskDue = false;
    try {
      this.#opened.device.unmaskIrq(VFIO_PCI_INTX_IRQ_INDEX);
    } catch (err) {
      this.#ctx?.log.warn(`unmasking INTx of ${this.name} failed: ${(err as Error).message}`);
    }
  }

  read(index: number, offset: number, dst: Uint8Array): void {
    this.#eoi(index);
    this.#opened.device.readAll(this.#region(index).offset + offset, dst);
  }

  write(index: number, offset: number, src: Uint8Array): void {
    this.#eoi(index);
    this.#opened.device.writeAll(this.#region(index).offset + offset, src);
  }

  /** A mapping of `size` bytes at `offset` in region `index` (inside one of its mmap areas; the core checked). */
  mmap(index: number, offset: number, size: number): RegionMapping {
    const r = this.#region(index);
    const buffer = this.#opened.device.mmap(
      r.offset + offset,
      size,
      (r.flags & VFIO_REGION_INFO_FLAG_WRITE) !== 0,
    );
    this.#mappings.add(buffer);
    return { memory: { size, bytes: new Uint8Array(buffer) }, memoryOffset: 0, size };
  }

  reset(): void {
    this.#opened.device.reset();
  }

  /** The local device file gave `count` vectors of `index` a trigger: the kernel gets eventfds for them. */
  irqsChanged(index: number, count: number): void {
    // A new vector count needs the index disabled first (vfio-pci enables MSI with all its vectors at once).
    this.#release(index, true);
    if (count === 0) return;
    const fresh: HostEventfd[] = [];
    try {
      for (let v = 0; v < count; v++) fresh.push(this.#system.createEventfd());
      this.#opened.device.setEventfds(
        index,
        0,
        fresh.map((e) => e.fd),
      );
    } catch (err) {
      for (const e of fresh) e.close();
      throw err;
    }
    this.#eventfds.set(index, fresh);
    fresh.forEach((e, vector) => {
      e.onSignal(() => this.#interrupt(index, vector));
    });
  }

  /** Close the eventfds of `index`; with `disable`, tell the kernel first. */
  #release(index: number, disable: boolean): void {
    const list = this.#eventfds.get(index);
    if (!list) return;
    this.#eventfds.delete(index);
    if (disable) {
      try {
        this.#opened.device.disableIrq(index);
      } catch (err) {
        this.#ctx?.log.warn(`disabling IRQ index ${index} of ${this.name} failed: ${(err as Error).message}`);
      }
    }
    for (const e of list) e.close();
  }

  #interrupt(index: number, vector: number): void {
    if (index === VFIO_PCI_INTX_IRQ_INDEX) this.#intxUnmaskDue = true;
    this.#ctx?.irq.trigger(index, vector);
  }
}
