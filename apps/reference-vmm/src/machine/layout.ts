/**
 * The guest-physical and I/O port layout of the reference machine: a Q35-like PC. The numbers
 * are the machine's own "firmware tables": the guest's probe learns the PCI windows from here
 * as Linux learns them from ACPI _CRS and MCFG.
 */

/** A window of addresses, [base, limit] inclusive as PCI windows are written. */
export interface AddressWindow {
  readonly base: number;
  readonly limit: number;
}

export interface PciWindows {
  /** 32-bit memory window: non-64-bit memory BARs go here. */
  readonly mmio32: AddressWindow;
  /** 64-bit memory window above 4 GiB: 64-bit memory BARs go here. */
  readonly mmio64: AddressWindow;
  /** I/O port window for I/O BARs. */
  readonly io: AddressWindow;
}

/** Default guest RAM: 256 MiB. */
export const DEFAULT_RAM_SIZE = 256 * 1024 * 1024;
// QEMU hw/pci-host/q35.h MCH_HOST_BRIDGE_PCIEXBAR_DEFAULT: ECAM (MMCONFIG) at 0xb0000000
export const ECAM_BASE = 0xb000_0000;
// PCI Express Base 3.0 §7.2.2: ECAM gives each bus 1 MiB (32 devices × 8 functions × 4 KiB)
export const ECAM_BUS_SIZE = 0x10_0000;
/** RAM ends where ECAM starts, below the 3 GiB the PCI hole begins at. */
export const MAX_RAM_SIZE = ECAM_BASE;
export const MMIO32_WINDOW: AddressWindow = Object.freeze({ base: 0xc000_0000, limit: 0xfebf_ffff });
// Intel SDM vol. 3 §11.11.1: MSI writes target 0xFEExxxxx (the local APIC range)
export const MSI_WINDOW_BASE = 0xfee0_0000;
export const MSI_WINDOW_SIZE = 0x10_0000;
/** The 64-bit window: from 4 GiB up to 512 GiB. */
export const MMIO64_WINDOW: AddressWindow = Object.freeze({ base: 0x1_0000_0000, limit: 0x7f_ffff_ffff });
/** The I/O port window QEMU's firmware hands to PCI devices (SeaBIOS/OVMF use 0xc000-0xffff). */
export const IO_WINDOW: AddressWindow = Object.freeze({ base: 0xc000, limit: 0xffff });
/** The whole 16-bit x86 I/O port space. */
export const IO_SPACE_SIZE = 0x1_0000;
// PCI Local Bus Specification 3.0 §3.2.2.3.2: configuration mechanism #1 ports
export const PCI_CONFIG_ADDRESS_PORT = 0xcf8;
export const PCI_CONFIG_DATA_PORT = 0xcfc;
/** CONFIG_ADDRESS bit 31 enables the configuration cycle. */
export const PCI_CONFIG_ADDRESS_ENABLE = 0x8000_0000;

export const PCI_WINDOWS: PciWindows = Object.freeze({
  mmio32: MMIO32_WINDOW,
  mmio64: MMIO64_WINDOW,
  io: IO_WINDOW,
});

/** The ECAM address of a function's config register on bus 0. */
export function ecamAddress(device: number, fn: number, offset: number): number {
  return ECAM_BASE + device * 0x8000 + fn * 0x1000 + offset;
}

// x86: vectors 0-31 are exceptions; the first usable external vector is 0x20, the last 0xfe
export const FIRST_VECTOR = 0x20;
export const LAST_VECTOR = 0xfe;
/** Vectors 0x20-0x23 carry the four PCI INTx lines (PIRQA-D), as an IOAPIC route would. */
export const INTX_VECTOR_BASE = 0x20;
export const INTX_LINES = 4;
/** MSI and MSI-X vectors are allocated from here up to LAST_VECTOR. */
export const FIRST_MSI_VECTOR = INTX_VECTOR_BASE + INTX_LINES;
