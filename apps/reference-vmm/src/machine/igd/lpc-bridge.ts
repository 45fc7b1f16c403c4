/**
 * The ISA/LPC bridge QEMU creates at 00:1f.0 for IGD legacy mode (hw/vfio/igd.c
 * "vfio-pci-igd-lpc-bridge"): an emulated function with no BARs whose vendor, device, revision
 * and subsystem IDs are the host LPC bridge's, because the IGD's VBIOS and driver check them.
 */
import { ConfigSpace } from '@vfiokit/core';
import { PCI_REVISION_ID } from '@vfiokit/core/abi';
import { EmulatedFunction } from '../emulated-function.js';

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

export class LpcBridge extends EmulatedFunction {
  constructor(readonly identity: LpcIdentity) {
    super(
      new ConfigSpace({
        name: 'igd-lpc-bridge',
        identity: {
          vendorId: identity.vendorId,
          deviceId: identity.deviceId,
          subsystemVendorId: identity.subsystemVendorId,
          subsystemId: identity.subsystemId,
          classCode: PCI_CLASS_BRIDGE_ISA,
          revision: identity.revision,
        },
      }),
    );
    this.applyProgIf();
  }

  override reset(): void {
    super.reset();
    this.applyProgIf();
  }

  private applyProgIf(): void {
    this.config.setRaw(PCI_REVISION_ID + 1, new Uint8Array([this.identity.progIf]));
  }
}
