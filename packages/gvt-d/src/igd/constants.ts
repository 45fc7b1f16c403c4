/**
 * IGD facts outside the OpRegion: PCI identity constants and the IGD's device-specific config
 * registers. Sources: linux include/linux/pci_ids.h, qemu hw/vfio/igd.c,
 * linux drivers/vfio/pci/vfio_pci_igd.c (shared/reference/gvt-d-opregion.md §4.1, §4.4).
 */

export const PCI_VENDOR_ID_INTEL = 0x8086; // linux/pci_ids.h
/** 24-bit class codes (base << 16 | sub << 8 | prog-if). */
export const PCI_CLASS_DISPLAY_VGA = 0x030000; // linux/pci_ids.h PCI_CLASS_DISPLAY_VGA << 8
export const PCI_BASE_CLASS_DISPLAY = 0x03; // linux/pci_ids.h
export const PCI_CLASS_BRIDGE_HOST = 0x060000; // linux/pci_ids.h PCI_CLASS_BRIDGE_HOST << 8
export const PCI_CLASS_BRIDGE_ISA = 0x060100; // linux/pci_ids.h PCI_CLASS_BRIDGE_ISA << 8

/** The IGD's fixed address, and the bridges vfio_pci_igd.c reads (domain 0, bus 0). */
export const IGD_DEVFN = { device: 0x02, function: 0 } as const; // qemu hw/vfio/igd.c PCI_DEVFN(0x2, 0)
export const HOST_BRIDGE_DEVFN = { device: 0x00, function: 0 } as const; // vfio_pci_igd.c PCI_DEVFN(0, 0)
export const LPC_BRIDGE_DEVFN = { device: 0x1f, function: 0 } as const; // vfio_pci_igd.c PCI_DEVFN(0x1f, 0)

// The IGD's GGC, BDSM and ASLS registers and their BAR0 mirrors are hardware facts the VMM
// needs too: they live in @vfiokit/hw, and this package's entry re-exports them.

/**
 * BAR layout of the IGD (GTTMMADR, GMADR, IOBAR). Sizes are those of a Skylake GT2 as lspci
 * shows them: 16 MiB MMIO+GTT (64-bit), 256 MiB aperture (64-bit prefetchable), 64-byte I/O.
 */
export const IGD_BAR_MMIO = 0;
export const IGD_BAR_APERTURE = 2;
export const IGD_BAR_IO = 4;
export const IGD_DEFAULT_MMIO_SIZE = 16 << 20;
export const IGD_DEFAULT_APERTURE_SIZE = 256 << 20;
export const IGD_DEFAULT_IO_SIZE = 64;
/** IOBAR: an index register at 0 and a data register at 4 reach BAR0 (old qemu igd.c index/data quirk). */
export const IGD_IOBAR_INDEX = 0;
export const IGD_IOBAR_DATA = 4;

/** Device-specific region indexes as vfio-pci registers them (first free index is VFIO_PCI_NUM_REGIONS). */
export const IGD_REGION_OPREGION = 9;
export const IGD_REGION_HOST_CFG = 10;
export const IGD_REGION_LPC_CFG = 11;
