/**
 * The PCI host bridge at 00:00.0, emulated by the VMM itself: the identity of QEMU's Q35 MCH
 * and nothing else (no BARs, no interrupts). Its config space is core's ConfigSpace.
 */
import { ConfigSpace } from '@vfiokit/core';
import { EmulatedFunction } from './emulated-function.js';

export type { ConfigTarget } from './emulated-function.js';

// QEMU include/hw/pci/pci_ids.h: PCI_VENDOR_ID_INTEL 0x8086, PCI_DEVICE_ID_INTEL_Q35_MCH 0x29c0
export const Q35_MCH_VENDOR_ID = 0x8086;
export const Q35_MCH_DEVICE_ID = 0x29c0;
// QEMU include/hw/pci/pci_ids.h: PCI_CLASS_BRIDGE_HOST 0x0600 (prog-if 0)
export const PCI_CLASS_BRIDGE_HOST = 0x060000;
// QEMU include/hw/pci-host/q35.h: MCH_HOST_BRIDGE_REVISION_DEFAULT
export const Q35_MCH_REVISION = 0x00;

export class HostBridge extends EmulatedFunction {
  constructor() {
    super(
      new ConfigSpace({
        name: 'host-bridge',
        identity: {
          vendorId: Q35_MCH_VENDOR_ID,
          deviceId: Q35_MCH_DEVICE_ID,
          subsystemVendorId: 0,
          subsystemId: 0,
          classCode: PCI_CLASS_BRIDGE_HOST,
          revision: Q35_MCH_REVISION,
        },
      }),
    );
  }
}
