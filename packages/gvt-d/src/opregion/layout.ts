/**
 * IGD OpRegion layout. Sources: linux drivers/gpu/drm/i915/display/intel_opregion.c,
 * drivers/vfio/pci/vfio_pci_igd.c, coreboot src/drivers/intel/gma/opregion.h
 * (shared/reference/gvt-d-opregion.md §4.1, §4.2).
 */

/** Region name used in error messages. */
export const OPREGION_REGION = 'IGD OpRegion';

export const OPREGION_SIGNATURE = 'IntelGraphicsMem'; // 16 bytes @0x00 (vfio_pci_igd.c)
export const OPREGION_SIZE = 0x2000; // 8 KiB: header + five mailboxes (vfio_pci_igd.c OPREGION_SIZE)
export const OPREGION_SIZE_UNIT = 1024; // the size field counts KiB (vfio_pci_igd.c)

// Header (0x000–0x0FF) — intel_opregion.c struct opregion_header
export const OPR_OFF_SIGNATURE = 0x00;
export const OPR_OFF_SIZE = 0x10; // u32, KiB
export const OPR_OFF_OVER = 0x14; // bytes: reserved, revision, minor, major
export const OPR_OFF_OVER_REVISION = 0x15;
export const OPR_OFF_OVER_MINOR = 0x16;
export const OPR_OFF_OVER_MAJOR = 0x17;
export const OPR_OFF_BIOS_VER = 0x18; // [32]
export const OPR_BIOS_VER_SIZE = 32;
export const OPR_OFF_VBIOS_VER = 0x38; // [16]
export const OPR_VBIOS_VER_SIZE = 16;
export const OPR_OFF_DRIVER_VER = 0x48; // [16]
export const OPR_DRIVER_VER_SIZE = 16;
export const OPR_OFF_MBOXES = 0x58; // u32 bitmask
export const OPR_OFF_DRIVER_MODEL = 0x5c; // u32
export const OPR_OFF_PCON = 0x60; // u32 platform configuration
export const OPR_OFF_DVER = 0x64; // [32]
export const OPR_DVER_SIZE = 32;

// mboxes bits (reference §4.2; i915 MBOX_*; bit 3 named in QEMU/coreboot/GVT)
export const MBOX_ACPI = 1 << 0;
export const MBOX_SWSCI = 1 << 1;
export const MBOX_ASLE = 1 << 2;
export const MBOX_VBT = 1 << 3;
export const MBOX_ASLE_EXT = 1 << 4;
export const MBOX_BACKLIGHT = 1 << 5; // OpRegion 3.x

// pcon bit 13: headless (OpRegion >= 2.3, i915)
export const PCON_HEADLESS = 1 << 13;

// Mailbox 1 — public ACPI (0x100–0x1FF). clid @0x1AC and cdck @0x1B0 are given by the reference;
// the others follow from i915's struct opregion_acpi field order (u32 drdy, csts, cevt, 20 reserved
// bytes, u32 didl[8], cpdl[8], cadl[8], nadl[8], aslp, tidx, chpd) [derived, checked against the
// rikka0w0 Skylake dump's decode].
export const OPR_MBOX1 = 0x100;
export const ACPI_OFF_DRDY = 0x100;
export const ACPI_OFF_CSTS = 0x104;
export const ACPI_OFF_CEVT = 0x108;
export const ACPI_OFF_DIDL = 0x120;
export const ACPI_OFF_CPDL = 0x140;
export const ACPI_OFF_CADL = 0x160;
export const ACPI_OFF_NADL = 0x180;
export const ACPI_DISPLAY_LIST_LENGTH = 8;
export const ACPI_OFF_ASLP = 0x1a0;
export const ACPI_OFF_TIDX = 0x1a4;
export const ACPI_OFF_CHPD = 0x1a8;
export const ACPI_OFF_CLID = 0x1ac;
export const ACPI_OFF_CDCK = 0x1b0;

// Mailbox 2 — SWSCI (0x200–0x2FF)
export const OPR_MBOX2 = 0x200;
export const SWSCI_OFF_SCIC = 0x200;
export const SWSCI_OFF_PARM = 0x204;
export const SWSCI_OFF_DSLP = 0x208;

// Mailbox 3 — ASLE (0x300–0x3FF) — intel_opregion.c struct opregion_asle
export const OPR_MBOX3 = 0x300;
export const ASLE_OFF_ARDY = 0x300;
export const ASLE_OFF_ASLC = 0x304;
export const ASLE_OFF_TCHE = 0x308;
export const ASLE_OFF_ALSI = 0x30c;
export const ASLE_OFF_BCLP = 0x310;
export const ASLE_OFF_PFIT = 0x314;
export const ASLE_OFF_CBLV = 0x318;
export const ASLE_OFF_BCLM = 0x31c; // u16[20]
export const ASLE_BCLM_LENGTH = 20;
export const ASLE_OFF_CPFM = 0x344;
export const ASLE_OFF_EPFM = 0x348;
export const ASLE_OFF_PLUT = 0x34c; // u8[74]
export const ASLE_PLUT_SIZE = 74;
export const ASLE_OFF_PFMB = 0x396;
export const ASLE_OFF_CDDV = 0x39a;
export const ASLE_OFF_PCFT = 0x39e;
export const ASLE_OFF_SROT = 0x3a2;
export const ASLE_OFF_IUER = 0x3a6;
export const ASLE_OFF_FDSS = 0x3aa; // u64
export const ASLE_OFF_FDSP = 0x3b2;
export const ASLE_OFF_STAT = 0x3b6;
export const ASLE_OFF_RVDA = 0x3ba; // u64: raw (extended) VBT address
export const ASLE_OFF_RVDS = 0x3c2; // u32: raw VBT size

// Mailbox 4 — VBT (0x400–0x1BFF), Mailbox 5 — ASLE_EXT (0x1C00–0x1FFF)
export const OPR_MBOX4 = 0x400;
export const OPR_MBOX5 = 0x1c00;
/** Mailbox 4 capacity with mailbox 5 present (0x1C00 - 0x400) and without (0x2000 - 0x400). */
export const MBOX4_SIZE_WITH_MBOX5 = OPR_MBOX5 - OPR_MBOX4;
export const MBOX4_SIZE_WITHOUT_MBOX5 = OPREGION_SIZE - OPR_MBOX4;
export const ASLE_EXT_OFF_PHED = 0x1c00;
export const ASLE_EXT_OFF_BDDC = 0x1c04; // EDID [256]
export const ASLE_EXT_BDDC_SIZE = 256;

/** RVDA/RVDS are honoured from OpRegion 2.0 (vfio_pci_igd.c, i915). */
export const OPREGION_VERSION_RVDA = 0x0200; // major << 8 | minor
/** From 2.1 RVDA is relative to the OpRegion base; in 2.0 it is a physical address. */
export const OPREGION_VERSION_RVDA_RELATIVE = 0x0201;
