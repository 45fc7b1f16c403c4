/**
 * The IGD's device-specific config registers and the BAR0 offsets that mirror them (qemu
 * hw/vfio/igd.c; linux drivers/vfio/pci/vfio_pci_igd.c; shared/reference/gvt-d-opregion.md §4.4).
 */

export const IGD_GMCH = 0x50; // qemu igd.c IGD_GMCH: Graphics Control (GGC), 2 bytes used
export const IGD_GMCH_SIZE = 2; // qemu igd.c: the BAR0 GGC mirror is 2 bytes
export const IGD_BDSM = 0x5c; // qemu igd.c IGD_BDSM: Base Data of Stolen Memory, 4 bytes, before gen 11
export const IGD_BDSM_GEN11 = 0xc0; // qemu igd.c IGD_BDSM_GEN11: 8 bytes from gen 11
export const IGD_ASLS = 0xfc; // qemu igd.c IGD_ASLS: the OpRegion's guest address (vfio_pci_igd.c OPREGION_PCI_ADDR)

// qemu hw/vfio/igd.c: GMCH bits
export const IGD_GMCH_VGA_DISABLE = 1 << 1;
export const IGD_GMCH_GEN6_GMS_SHIFT = 3;
export const IGD_GMCH_GEN6_GMS_MASK = 0x1f;
export const IGD_GMCH_GEN8_GMS_SHIFT = 8;
export const IGD_GMCH_GEN8_GMS_MASK = 0xff;

// qemu hw/vfio/igd.c vfio_probe_igd_bar0_quirk: where BAR0 mirrors GGC and BDSM
export const IGD_GGC_MMIO_OFFSET = 0x108040;
export const IGD_BDSM_MMIO_OFFSET = 0x1080c0;
