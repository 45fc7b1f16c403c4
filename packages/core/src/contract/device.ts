/**
 * The device half of the contract: what `struct vfio_device_ops` is in the kernel, typed.
 * A plugin implements VfioDevice (usually through PciDeviceModel); the core's DeviceFile turns
 * it into the binary device API and enforces every rule the kernel enforces, so a device never
 * sees argsz, never sees an out-of-range access and never parses SET_IRQS itself.
 */
import type { DeviceContext } from './context.js';
import type { MigrationOps } from './migration.js';

/** One directly mappable window of a region, relative to the region's start (VFIO_REGION_INFO_CAP_SPARSE_MMAP). */
export interface MmapArea {
  readonly offset: number;
  readonly size: number;
}

export interface RegionTypeCap {
  /** VFIO_REGION_TYPE_*; for PCI vendor regions `VFIO_REGION_TYPE_PCI_VENDOR_TYPE | vendor`. */
  readonly type: number;
  readonly subtype: number;
}

/** What VFIO_DEVICE_GET_REGION_INFO reports for one region. */
export interface RegionInfo {
  readonly index: number;
  /** Size in bytes; 0 means the region is not implemented (an unused BAR, no ROM, no VGA). */
  readonly size: number;
  readonly read: boolean;
  readonly write: boolean;
  /**
   * VFIO_REGION_INFO_FLAG_MMAP. Without `sparseMmap` the whole region may be mmapped; with it,
   * only the listed areas.
   */
  readonly mmap: boolean;
  /** File offset of the region in the device fd; defaults to `index << 40` as vfio-pci does. */
  readonly offset?: number;
  readonly sparseMmap?: readonly MmapArea[];
  readonly type?: RegionTypeCap;
  /** VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: the MSI-X table and PBA in this BAR may be mmapped. */
  readonly msixMappable?: boolean;
}

/** What VFIO_DEVICE_GET_IRQ_INFO reports for one IRQ index. */
export interface IrqInfo {
  readonly index: number;
  readonly count: number;
  readonly eventfd: boolean;
  readonly maskable: boolean;
  readonly automasked: boolean;
  readonly noresize: boolean;
}

export interface DeviceInfo {
  /** VFIO_DEVICE_FLAGS_RESET: reset() works. */
  readonly reset: boolean;
  /** Number of region indexes (at least VFIO_PCI_NUM_REGIONS for a vfio-pci device). */
  readonly numRegions: number;
  /** Number of IRQ indexes (VFIO_PCI_NUM_IRQS for a vfio-pci device). */
  readonly numIrqs: number;
}

/**
 * Memory that both the device and its user can map: the backing of an mmappable region. In
 * process it is an ArrayBuffer view; over vfio-user it is a memfd whose fd travels with
 * REGION_INFO replies.
 */
export interface SharedMemory {
  readonly size: number;
  readonly bytes: Uint8Array;
  /** A file descriptor for the same memory, when it lives in a memfd (vfio-user needs one). */
  readonly fd?: number;
  /**
   * Give `length` bytes at `offset` back without reading them: afterwards they read as zero
   * through every mapping and whole pages among them hold no memory (a memfd punches a hole).
   * Absent when the memory cannot do this; the owner then zeroes what it wrote.
   */
  discard?(offset: number, length: number): void;
}

/** A mapping of part of a region, returned by mmap. */
export interface RegionMapping {
  readonly memory: SharedMemory;
  /** Offset of the mapping inside `memory`. */
  readonly memoryOffset: number;
  readonly size: number;
}

/** DRM plane types (include/drm/drm_plane.h). */
export const DRM_PLANE_TYPE_OVERLAY = 0;
export const DRM_PLANE_TYPE_PRIMARY = 1;
export const DRM_PLANE_TYPE_CURSOR = 2;

/** struct vfio_device_gfx_plane_info, output half. A disabled plane has drmFormat 0 and size 0. */
export interface GfxPlaneInfo {
  readonly drmPlaneType: number;
  readonly drmFormat: number;
  readonly drmFormatMod: bigint;
  readonly width: number;
  readonly height: number;
  readonly stride: number;
  readonly size: number;
  readonly xPos: number;
  readonly yPos: number;
  readonly xHot: number;
  readonly yHot: number;
  /** region_index (REGION planes) or dmabuf_id (DMABUF planes). */
  readonly id: number;
}

/** A plane with nothing on it: QUERY_GFX_PLANE's answer for a disabled plane (drm_format and size 0). */
export function disabledGfxPlane(drmPlaneType: number, id = 0): GfxPlaneInfo {
  return {
    drmPlaneType,
    drmFormat: 0,
    drmFormatMod: 0n,
    width: 0,
    height: 0,
    stride: 0,
    size: 0,
    xPos: 0,
    yPos: 0,
    xHot: 0,
    yHot: 0,
    id,
  };
}

export interface GfxDisplay {
  /** Which kinds of plane the device offers (QEMU probes DMABUF first, then REGION). */
  readonly kinds: { readonly dmabuf: boolean; readonly region: boolean };
  queryPlane(kind: 'dmabuf' | 'region', drmPlaneType: number): GfxPlaneInfo;
}

/**
 * Which kernel driver a device stands for, which decides what opening and closing its file do:
 * - `'mdev'` (the default): an instance of an mdev parent. The last close drops the interrupt
 *   triggers and nothing else (samples/vfio-mdev/mtty.c mtty_close; kvmgt.c
 *   intel_vgpu_close_device): config space and device state stay until a reset or removal, which
 *   is why a VMM resets its devices at power-on (QEMU's system reset).
 * - `'vfio-pci'`: a physical function bound to vfio-pci (vfio_pci_core.c). The first open resets
 *   it and saves its config header; the last close turns its interrupts off, writes COMMAND =
 *   INTX_DISABLE, resets it and restores the saved header (vfio_pci_core_enable / _disable).
 *   Without a reset the close still restores the header, so the next user finds the config
 *   registers as the first found them, though the rest of the device state stays.
 */
export type DeviceDriver = 'mdev' | 'vfio-pci';

/** The sizes of an access made as a value (readValue/writeValue): a byte, a word, a dword. */
export type ValueSize = 1 | 2 | 4;

/**
 * A device instance: the kernel's vfio_device_ops, typed.
 *
 * The core guarantees to the device: `read`/`write` are called only for a region that exists,
 * is readable (writable), with `offset + length <= size`; `open` precedes any access and
 * `close` follows the last; `reset` is called only if `info().reset`; SET_IRQS never reaches the
 * device (the core keeps interrupt state and tells the device through `irqsChanged`).
 */
export interface VfioDevice {
  /** The instance name: the UUID for a mediated device, a PCI address for a passthrough one. */
  readonly name: string;
  info(): DeviceInfo;
  /** undefined: no such region (EINVAL). */
  regionInfo(index: number): RegionInfo | undefined;
  /** undefined: no such IRQ index (EINVAL, as GVT-g answers); count 0 is also allowed. */
  irqInfo(index: number): IrqInfo | undefined;
  open(ctx: DeviceContext): void;
  close(): void;
  read(index: number, offset: number, dst: Uint8Array): void;
  write(index: number, offset: number, src: Uint8Array): void;
  /**
   * Optional: a read of `size` bytes as their little-endian value, the same access as read()
   * into `size` bytes (same guarantees), for a caller that wants the number (a VMM's trapped
   * MMIO, as QEMU's MemoryRegionOps.read answers one): no bytes between the register and the
   * guest. Bits above `size` bytes are ignored. Without it the core reads through read().
   */
  readValue?(index: number, offset: number, size: ValueSize): number;
  /** Optional: write() of `size` bytes holding `value` (its low `size` bytes), as readValue() is read(). */
  writeValue?(index: number, offset: number, size: ValueSize, value: number): void;
  /** Map part of an mmappable region; only asked for ranges inside a region's mmap areas. */
  mmap?(index: number, offset: number, size: number): RegionMapping;
  reset?(): void;
  /** What opening and closing the device file do (see DeviceDriver); `'mdev'` when absent. */
  readonly driver?: DeviceDriver;
  /** Interrupt configuration changed through SET_IRQS: `count` vectors of `index` now have a trigger. */
  irqsChanged?(index: number, count: number): void;
  readonly migration?: MigrationOps;
  readonly display?: GfxDisplay;
}
