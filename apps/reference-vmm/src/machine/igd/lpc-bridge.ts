/**
 * The ISA/LPC bridge QEMU creates at 00:1f.0 for IGD legacy mode (hw/vfio/igd.c
 * "vfio-pci-igd-lpc-bridge"): an emulated function with no BARs whose vendor, device, revision
 * and subsystem IDs are the host LPC bridge's, because the IGD's VBIOS and driver check them.
 */
import { ConfigSpace, PCI_REVISION_ID } from '@vfiokit/core';
import { type AccessSize, allOnes } from '../address-map.js';
import type { ConfigTarget } from '../host-bridge.js';

// qemu include/hw/pci/pci_ids.h: PCI_CLASS_BRIDGE_ISA 0x0601 (prog-if 0)
export const PCI_CLASS_BRIDGE_ISA = 0x060100;

export interface LpcIdentity {
  readonly vendorId: number;
  readonly deviceId: number;
  /** The two bytes at PCI_REVISION_ID: revision and programming interface (QEMU copies both). */
  readonly revision: number;
  readonly progIf: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
}

export class LpcBridge implements ConfigTarget {
  readonly config: ConfigSpace;

  constructor(readonly identity: LpcIdentity) {
    this.config = new ConfigSpace({
      name: 'igd-lpc-bridge',
      identity: {
        vendorId: identity.vendorId,
        deviceId: identity.deviceId,
        subsystemVendorId: identity.subsystemVendorId,
        subsystemId: identity.subsystemId,
        classCode: PCI_CLASS_BRIDGE_ISA,
        revision: identity.revision,
      },
    });
    this.applyProgIf();
  }

  configRead(offset: number, size: AccessSize): number {
    const c = this.config;
    if (offset + size > c.size) return allOnes(size);
    return size === 4 ? c.readU32(offset) : size === 2 ? c.readU16(offset) : c.readU8(offset);
  }

  configWrite(offset: number, size: AccessSize, value: number): void {
    const c = this.config;
    if (offset + size > c.size) return;
    if (size === 4) c.writeU32(offset, value);
    else if (size === 2) c.writeU16(offset, value);
    else c.writeU8(offset, value);
  }

  reset(): void {
    this.config.reset();
    this.applyProgIf();
  }

  private applyProgIf(): void {
    this.config.setRaw(PCI_REVISION_ID + 1, new Uint8Array([this.identity.progIf]));
  }
}
