/**
 * Built-in host profiles. The PCI IDs are real (pci.ids; the IGD IDs match the machines the
 * shared VBT fixtures come from). No real config-space dump of these machines is in shared/, so
 * revisions, subsystem IDs, GGC, BDSM and ASLS are illustrative values of the right shape: GGC
 * with GGCLCK (bit 0) and GGMS 8 MiB (bits 7..6 = 3), BDSM 1 MiB aligned with its lock bit set.
 */
import { VfioError } from '@vfiokit/core';
import { IGD_ASLS, IGD_GMCH, igdBdsmRegister, igdGeneration } from '@vfiokit/hw';
import {
  IGD_DEFAULT_APERTURE_SIZE,
  IGD_DEFAULT_IO_SIZE,
  IGD_DEFAULT_MMIO_SIZE,
  PCI_CLASS_BRIDGE_HOST,
  PCI_CLASS_BRIDGE_ISA,
  PCI_CLASS_DISPLAY_VGA,
  PCI_VENDOR_ID_INTEL,
} from '../igd/constants.js';
import type { HostProfile, IgdBarSizes, PciIds } from './types.js';

const intel = (deviceId: number, revision: number, classCode: number): PciIds => ({
  vendorId: PCI_VENDOR_ID_INTEL,
  deviceId,
  subsystemVendorId: PCI_VENDOR_ID_INTEL,
  subsystemId: deviceId,
  revision,
  classCode,
});

export const HOST_PROFILES: Readonly<Record<string, HostProfile>> = Object.freeze({
  'skylake-hd530': {
    name: 'skylake-hd530',
    description: 'Skylake-S desktop: HD Graphics 530 (8086:1912), host bridge 8086:191f, Z170 LPC 8086:a145',
    provenance:
      'IDs real (pci.ids; 8086:1912 is the IGD of the rikka0w0 OpRegion dump); revision, subsystem, GGC, BDSM and ASLS illustrative',
    igd: {
      ...intel(0x1912, 0x06, PCI_CLASS_DISPLAY_VGA),
      ggc: 0x01c1,
      bdsm: 0x8b000001,
      asls: 0x8a0f3018,
      configSize: 4096,
    },
    hostBridge: { ...intel(0x191f, 0x07, PCI_CLASS_BRIDGE_HOST), configSize: 4096 },
    lpcBridge: { ...intel(0xa145, 0x31, PCI_CLASS_BRIDGE_ISA), configSize: 256 },
  },
  'kabylake-hd620': {
    name: 'kabylake-hd620',
    description:
      'Kaby Lake-U laptop: HD Graphics 620 (8086:5916), host bridge 8086:5904, Sunrise Point-LP LPC 8086:9d58',
    provenance:
      'IDs real (pci.ids; 8086:5916 is the IGD of the heijligen/tuxedo VBT); revision, subsystem, GGC, BDSM and ASLS illustrative',
    igd: {
      ...intel(0x5916, 0x02, PCI_CLASS_DISPLAY_VGA),
      ggc: 0x02c1,
      bdsm: 0x7b800001,
      asls: 0x7a5ad018,
      configSize: 4096,
    },
    hostBridge: { ...intel(0x5904, 0x02, PCI_CLASS_BRIDGE_HOST), configSize: 4096 },
    lpcBridge: { ...intel(0x9d58, 0x21, PCI_CLASS_BRIDGE_ISA), configSize: 256 },
  },
  'tigerlake-iris-xe': {
    name: 'tigerlake-iris-xe',
    description: 'Tiger Lake-UP3: Iris Xe (8086:9a49), host bridge 8086:9a14, Tiger Lake-LP LPC 8086:a082',
    provenance:
      'IDs real (pci.ids; Tiger Lake-UP3 as the coreboot volteer VBT); revision, subsystem, GGC, BDSM and ASLS illustrative',
    igd: {
      ...intel(0x9a49, 0x01, PCI_CLASS_DISPLAY_VGA),
      ggc: 0x02c1,
      bdsm: 0x7c000001,
      asls: 0x6a8b6018,
      configSize: 4096,
    },
    hostBridge: { ...intel(0x9a14, 0x01, PCI_CLASS_BRIDGE_HOST), configSize: 4096 },
    lpcBridge: { ...intel(0xa082, 0x20, PCI_CLASS_BRIDGE_ISA), configSize: 256 },
  },
});

export const DEFAULT_PROFILE = 'skylake-hd530';

export function hostProfile(profile: string | HostProfile): HostProfile {
  if (typeof profile !== 'string') return profile;
  const p = HOST_PROFILES[profile];
  if (!p) {
    throw new VfioError('EINVAL', `there is no built-in host profile "${profile}".`, {
      hint: `Known profiles: ${Object.keys(HOST_PROFILES).join(', ')}.`,
    });
  }
  return p;
}

export function profileBars(profile: HostProfile): IgdBarSizes {
  return {
    mmio: profile.bars?.mmio ?? IGD_DEFAULT_MMIO_SIZE,
    aperture: profile.bars?.aperture ?? IGD_DEFAULT_APERTURE_SIZE,
    io: profile.bars?.io ?? IGD_DEFAULT_IO_SIZE,
  };
}

/** A type-0 config image with the header identity of `ids` (other bytes 0). */
export function configImage(ids: PciIds, size: 256 | 4096): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  dv.setUint16(0x00, ids.vendorId, true); // linux/pci_regs.h PCI_VENDOR_ID
  dv.setUint16(0x02, ids.deviceId, true); // PCI_DEVICE_ID
  dv.setUint32(0x08, ((ids.classCode << 8) | ids.revision) >>> 0, true); // PCI_CLASS_REVISION
  dv.setUint16(0x2c, ids.subsystemVendorId, true); // PCI_SUBSYSTEM_VENDOR_ID
  dv.setUint16(0x2e, ids.subsystemId, true); // PCI_SUBSYSTEM_ID
  return b;
}

/** The IGD's config image of a profile: identity plus GGC, BDSM (by generation) and ASLS. */
export function igdConfigImage(profile: HostProfile): Uint8Array {
  const { igd } = profile;
  const b = configImage(igd, igd.configSize);
  const dv = new DataView(b.buffer);
  dv.setUint16(IGD_GMCH, igd.ggc, true);
  const bdsm = igdBdsmRegister(igdGeneration(igd.deviceId));
  dv.setUint32(bdsm.offset, igd.bdsm >>> 0, true);
  if (bdsm.size === 8) dv.setUint32(bdsm.offset + 4, Math.floor(igd.bdsm / 2 ** 32) >>> 0, true);
  dv.setUint32(IGD_ASLS, igd.asls >>> 0, true);
  return b;
}
