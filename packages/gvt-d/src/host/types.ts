/**
 * Where the host's IGD facts come from: a fixture (a file or bytes plus a host profile) or a real
 * Linux host (sysfs and debugfs). The device is built from IgdHostFacts alone.
 */
import type { IgdGeneration } from '@vfiokit/hw';

export interface IgdIdentity {
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number;
  subsystemId: number;
  revision: number;
  /** 24 bits: base << 16 | sub << 8 | prog-if (0x030000 for a VGA IGD). */
  classCode: number;
  /** The IGD's config space (256 or 4096 bytes). GGC, BDSM and ASLS are read from it. */
  config: Uint8Array;
}

export interface IgdBarSizes {
  /** BAR0 GTTMMADR: MMIO registers and GTT (64-bit). */
  mmio: number;
  /** BAR2 GMADR: the graphics aperture (64-bit prefetchable). */
  aperture: number;
  /** BAR4 IOBAR. */
  io: number;
}

export interface IgdHostFacts {
  /** What the facts came from, for messages (`fixture skylake-hd530`, `linux 0000:00:02.0`). */
  source: string;
  igd: IgdIdentity;
  /** Config bytes of the host bridge 00:00.0 (256 or 4096); empty when there is none. */
  hostBridge: Uint8Array;
  /** Config bytes of the LPC/ISA bridge 00:1f.0 (256 or 4096); empty when there is none. */
  lpcBridge: Uint8Array;
  /**
   * The host OpRegion as it sits in memory at ASLS: at least the 8 KiB header and mailboxes; for
   * a 2.1+ OpRegion with RVDA/RVDS, through RVDA + RVDS.
   */
  opRegion: Uint8Array;
  /**
   * The RVDS bytes at RVDA when they are not inside `opRegion` (an OpRegion 2.0, whose RVDA is a
   * host physical address, or a Linux host where i915 dumps the VBT separately).
   */
  extendedVbt?: Uint8Array;
  /** Data stolen memory in bytes, from GGC and the generation (qemu igd_stolen_memory_size). */
  stolenBytes: number;
  /** From the device ID (qemu igd_gen); -1 for an unknown IGD. */
  generation: IgdGeneration;
  bars: IgdBarSizes;
}

export interface IgdHostSource {
  /** One line for logs: where the facts come from. */
  describe(): string;
  /** Read the facts; throws VfioError with a sentence saying what is missing. */
  load(): IgdHostFacts;
}

/** The PCI identity of one function in a host profile. */
export interface PciIds {
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number;
  subsystemId: number;
  revision: number;
  classCode: number;
}

/** A host described by IDs and register values, for fixture sources. */
export interface HostProfile {
  name: string;
  description: string;
  /** Which values come from a real machine and which are illustrative. */
  provenance: string;
  igd: PciIds & {
    /** GGC (config 0x50). */
    ggc: number;
    /** BDSM as the host firmware left it (base | lock bit 0); 0x5c or 0xc0 by generation. */
    bdsm: number;
    /** ASLS (config 0xfc): the host physical address of the OpRegion. */
    asls: number;
    configSize: 256 | 4096;
  };
  hostBridge: PciIds & { configSize: 256 | 4096 };
  lpcBridge: PciIds & { configSize: 256 | 4096 };
  bars?: Partial<IgdBarSizes>;
}
