/**
 * The shapes a configuration space is described and read back in: the identity and options it is
 * built from, BAR and ROM definitions, the decoded MSI/MSI-X state, placed capabilities.
 * ConfigSpace (config-space.ts) re-exports them.
 */

export interface PciIdentity {
  vendorId: number;
  deviceId: number;
  subsystemVendorId: number;
  subsystemId: number;
  /** 24 bits: base class << 16 | subclass << 8 | programming interface. */
  classCode: number;
  revision: number;
  /** Type 0 only; bit 7 (multi-function) may be set. Default 0. */
  headerType?: number;
  /** 0 for none, 1..4 for INTA#..INTD#. Default 0. */
  interruptPin?: 0 | 1 | 2 | 3 | 4;
}

export interface ConfigSpaceOptions {
  identity: PciIdentity;
  /** 256 for conventional PCI, 4096 for PCI Express (extended capabilities). Default 256. */
  size?: 256 | 4096;
  /** The device's name, for error messages. */
  name?: string;
}

export type BarKind = 'mem32' | 'mem64' | 'io';

export interface BarDefinition {
  /** 0..5; a 64-bit BAR also takes index + 1. */
  index: number;
  kind: BarKind;
  /** Bytes, a power of two: io 4..256, mem32 16..2^31, mem64 16..2^63. */
  size: number;
  prefetchable?: boolean;
}

export interface BarSpec {
  index: number;
  kind: BarKind;
  size: number;
  prefetchable: boolean;
}

export interface RomState {
  size: number;
  enabled: boolean;
  /** The programmed base (bits 31..11). */
  address: number;
}

export interface MsiState {
  offset: number;
  enabled: boolean;
  /**
   * Vectors granted by Multiple Message Enable. A guest may write a value above Multiple
   * Message Capable (the spec leaves that undefined); it is clamped to the capable count here.
   */
  vectorsEnabled: number;
  /** Vectors the capability offers (Multiple Message Capable). */
  vectorsCapable: number;
  addr64: boolean;
  /** The message address; exact up to 2^53. */
  address: number;
  data: number;
  perVectorMask: boolean;
  /** 0 without per-vector masking. */
  maskBits: number;
  /** 0 without per-vector masking. */
  pendingBits: number;
}

export interface MsixState {
  offset: number;
  enabled: boolean;
  functionMask: boolean;
  tableSize: number;
  tableBar: number;
  tableOffset: number;
  pbaBar: number;
  pbaOffset: number;
}

export interface PlacedCapability {
  id: number;
  offset: number;
  length: number;
}

export interface PlacedExtendedCapability extends PlacedCapability {
  version: number;
}

export interface FieldMasks {
  writeMask?: Uint8Array;
  rw1cMask?: Uint8Array;
}

/**
 * Called after every guest write with the range written. It must finish before it returns: one
 * that returns a Promise (an async listener) has the guest's access refused (see write()).
 */
export type ConfigWriteListener = (offset: number, length: number) => void;
