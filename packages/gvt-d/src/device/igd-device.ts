/**
 * The assigned IGD as vfio-pci exposes it (linux drivers/vfio/pci/vfio_pci_igd.c and
 * vfio_pci_config.c), built from IgdHostFacts:
 * - identity of the host IGD; config space shaped like a real Skylake-and-later IGD: vendor
 *   capability at 0x40, PCI Express (root-complex integrated endpoint) at 0x70, MSI (1 vector) at
 *   0xac, power management at 0xd0, INTA;
 * - BAR0 (GTTMMADR, 64-bit) trapped: the hardware mirrors of GGC at 0x108040 and BDSM at
 *   0x1080c0 (the registers qemu hw/vfio/igd.c intercepts) read the config values; the rest of
 *   the MMIO and GTT is not simulated (reads 0, writes dropped); BAR2 (GMADR, 64-bit
 *   prefetchable) is shared memory the user may mmap; BAR4 is the IOBAR index/data pair into BAR0;
 * - config: ASLS (0xfc) virtualised as vfio-pci does (PCI_CAP_ID_INVALID_VIRT: every bit
 *   writable, the host value at open, writes never reach hardware). GGC (0x50) and BDSM (0x5c, or
 *   the qword at 0xc0 from gen 11) are not virtualised by vfio-pci: they read the host values and
 *   writes reach hardware, where firmware has locked them, so they read back unchanged. The
 *   guest-facing emulation (ASLS and BDSM start at 0 and take the firmware's writes) is QEMU's,
 *   done by the VMM: see igdAssignmentPlan;
 * - device-specific regions: 9 the OpRegion (presentOpRegion), 10 the host bridge's config,
 *   11 the LPC bridge's config, all read-only with type VFIO_REGION_TYPE_PCI_VENDOR_TYPE | 0x8086.
 *   With ASLS 0 (no OpRegion) there are none (vfio_pci_igd_opregion_init returns -ENODEV, which
 *   vfio-pci ignores); without a host bridge there is no region 10 or 11; without an LPC bridge no 11.
 */
import {
  allocateDeviceMemory,
  ConfigSpace,
  type ExtraRegion,
  leBytes,
  msiCapability,
  PciDeviceModel,
  type PluginHost,
  pciExpressCapability,
  powerManagementCapability,
  type RegionHandler,
  VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG,
  VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG,
  VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION,
  VFIO_REGION_TYPE_PCI_VENDOR_TYPE,
  VfioError,
  vendorCapability,
} from '@vfiokit/core';
import {
  IGD_ASLS,
  IGD_BDSM_MMIO_OFFSET,
  IGD_GGC_MMIO_OFFSET,
  IGD_GMCH,
  IGD_GMCH_SIZE,
  igdBdsmRegister,
} from '@vfiokit/hw';
import { identityFromConfig, igdRegisters } from '../host/facts.js';
import type { IgdHostFacts } from '../host/types.js';
import {
  IGD_BAR_APERTURE,
  IGD_BAR_IO,
  IGD_BAR_MMIO,
  IGD_IOBAR_DATA,
  IGD_IOBAR_INDEX,
  IGD_REGION_HOST_CFG,
  IGD_REGION_LPC_CFG,
  IGD_REGION_OPREGION,
  PCI_CLASS_BRIDGE_HOST,
  PCI_CLASS_BRIDGE_ISA,
  PCI_VENDOR_ID_INTEL,
} from '../igd/constants.js';
import { type OpRegionView, presentOpRegion } from './opregion-view.js';

/** VFIO_REGION_TYPE_PCI_VENDOR_TYPE | PCI_VENDOR_ID_INTEL as an unsigned 32-bit value (vfio_pci_igd.c). */
export const IGD_REGION_TYPE = (VFIO_REGION_TYPE_PCI_VENDOR_TYPE | PCI_VENDOR_ID_INTEL) >>> 0;

// Config offsets where the capabilities of a real Skylake-and-later IGD sit (lspci -v of 8086:1912)
const CAP_VENDOR_AT = 0x40;
const CAP_PCIE_AT = 0x70;
const CAP_MSI_AT = 0xac;
const CAP_PM_AT = 0xd0;
const VENDOR_CAP_BODY = 9; // the IGD's vendor capability is 12 bytes (0x40..0x4b)

export interface IgdDeviceOptions {
  /** The device's name (its PCI address). Default 0000:00:02.0. */
  readonly name?: string;
  /** Where the aperture's memory comes from (the plugin host's allocator: a memfd under vfio-user). */
  readonly host?: Pick<PluginHost, 'allocateMemory'>;
}

function readOnlyRegion(index: number, subtype: number, bytes: Uint8Array): ExtraRegion {
  const handler: RegionHandler = {
    read: (offset, dst) => dst.set(bytes.subarray(offset, offset + dst.length)),
    write: (offset) => {
      throw new VfioError('EINVAL', 'the region is read-only.', { region: index, offset });
    },
  };
  return {
    index,
    size: bytes.length,
    type: { type: IGD_REGION_TYPE, subtype },
    read: true,
    write: false,
    handler,
  };
}

function checkBridge(bytes: Uint8Array, what: string, classCode: number, className: string): void {
  if (bytes.length !== 256 && bytes.length !== 4096) {
    throw new VfioError('EINVAL', `the ${what} config is ${bytes.length} bytes, not 256 or 4096.`, {
      hint: 'Give the whole config space of the bridge.',
    });
  }
  const id = identityFromConfig(bytes);
  if (id.vendorId !== PCI_VENDOR_ID_INTEL || id.classCode !== classCode) {
    throw new VfioError(
      'EINVAL',
      `the ${what} is ${id.vendorId.toString(16).padStart(4, '0')}:${id.deviceId.toString(16).padStart(4, '0')} class 0x${id.classCode.toString(16).padStart(6, '0')}; vfio-pci requires an Intel ${className} (class 0x${classCode.toString(16).padStart(6, '0')}).`,
      { hint: 'vfio_pci_igd_cfg_init refuses the device open in this case; fix the host profile.' },
    );
  }
}

/** The device-specific regions vfio-pci would register for these facts, and the ASLS value it shows. */
export function igdRegions(facts: IgdHostFacts): {
  regions: ExtraRegion[];
  opRegion: OpRegionView | undefined;
  asls: number;
} {
  const { asls } = igdRegisters(facts.igd);
  // vfio_pci_igd_opregion_init: ASLS 0 or all ones means no OpRegion (-ENODEV, ignored by vfio-pci)
  if (asls === 0 || asls === 0xffffffff) return { regions: [], opRegion: undefined, asls };
  const view = presentOpRegion(facts.opRegion, facts.extendedVbt);
  // The kernel leaves in vconfig the address it mapped last: RVDA (2.0) or ASLS + RVDA (2.1+).
  let shownAsls = asls;
  if (view.extendedVbtSize > 0) {
    const dv = new DataView(facts.opRegion.buffer, facts.opRegion.byteOffset, facts.opRegion.byteLength);
    const rvdaLo = dv.getUint32(0x3ba, true); // vfio_pci_igd.c OPREGION_RVDA
    shownAsls = view.hostVersion === 0x0200 ? rvdaLo : (asls + rvdaLo) >>> 0;
  }
  const regions = [readOnlyRegion(IGD_REGION_OPREGION, VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION, view.bytes)];
  if (facts.hostBridge.length > 0) {
    checkBridge(facts.hostBridge, 'host bridge 00:00.0', PCI_CLASS_BRIDGE_HOST, 'host bridge');
    regions.push(
      readOnlyRegion(IGD_REGION_HOST_CFG, VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG, facts.hostBridge),
    );
    if (facts.lpcBridge.length > 0) {
      checkBridge(facts.lpcBridge, 'LPC bridge 00:1f.0', PCI_CLASS_BRIDGE_ISA, 'ISA bridge');
      regions.push(
        readOnlyRegion(IGD_REGION_LPC_CFG, VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG, facts.lpcBridge),
      );
    }
  }
  return { regions, opRegion: view, asls: shownAsls };
}

export function igdConfigSpace(facts: IgdHostFacts, name: string, asls: number): ConfigSpace {
  const { igd } = facts;
  const config = new ConfigSpace({
    identity: {
      vendorId: igd.vendorId,
      deviceId: igd.deviceId,
      subsystemVendorId: igd.subsystemVendorId,
      subsystemId: igd.subsystemId,
      classCode: igd.classCode,
      revision: igd.revision,
      interruptPin: 1,
    },
    size: 4096,
    name,
  });
  config.defineBar({ index: IGD_BAR_MMIO, kind: 'mem64', size: facts.bars.mmio });
  config.defineBar({ index: IGD_BAR_APERTURE, kind: 'mem64', size: facts.bars.aperture, prefetchable: true });
  config.defineBar({ index: IGD_BAR_IO, kind: 'io', size: facts.bars.io });
  const vendorBody = new Uint8Array(VENDOR_CAP_BODY);
  if (igd.config[CAP_VENDOR_AT] === 0x09 && igd.config.length >= CAP_VENDOR_AT + 3 + VENDOR_CAP_BODY) {
    vendorBody.set(igd.config.subarray(CAP_VENDOR_AT + 3, CAP_VENDOR_AT + 3 + VENDOR_CAP_BODY));
  }
  config.addCapability(vendorCapability(vendorBody), CAP_VENDOR_AT);
  const regs = igdRegisters(igd);
  config.defineField(IGD_GMCH, leBytes(regs.ggc, IGD_GMCH_SIZE));
  const bdsm = igdBdsmRegister(facts.generation);
  config.defineField(bdsm.offset, leBytes(regs.bdsm, bdsm.size));
  config.addCapability(pciExpressCapability({ type: 'rc-integrated' }), CAP_PCIE_AT);
  config.addCapability(msiCapability({ vectors: 1, addr64: false, perVectorMask: false }), CAP_MSI_AT);
  config.addCapability(powerManagementCapability(), CAP_PM_AT);
  const virtualised = asls !== 0 && asls !== 0xffffffff;
  config.defineField(
    IGD_ASLS,
    leBytes(asls, 4),
    virtualised ? { writeMask: new Uint8Array([0xff, 0xff, 0xff, 0xff]) } : {},
  );
  return config;
}

/** The IGD at 00:02.0, passed through: see the file comment for what each part does. */
export class IgdPassthroughDevice extends PciDeviceModel {
  readonly facts: IgdHostFacts;
  /** The OpRegion region's view, or undefined when the host has no OpRegion. */
  readonly opRegion: OpRegionView | undefined;
  private readonly mirrors: readonly {
    readonly mmio: number;
    readonly config: number;
    readonly size: number;
  }[];
  private ioIndex = 0;
  private readonly ioScratch = new Uint8Array(8);
  private readonly ioView = new DataView(this.ioScratch.buffer);
  private readonly dataScratch = new Uint8Array(4);
  private readonly dataView = new DataView(this.dataScratch.buffer);

  constructor(facts: IgdHostFacts, options: IgdDeviceOptions = {}) {
    const name = options.name ?? '0000:00:02.0';
    const { regions, opRegion, asls } = igdRegions(facts);
    const config = igdConfigSpace(facts, name, asls);
    const mmio: RegionHandler = {
      read: (offset, dst) => this.readMmio(offset, dst),
      write: () => {},
    };
    const io: RegionHandler = {
      read: (offset, dst) => this.readIo(offset, dst),
      write: (offset, src) => this.writeIo(offset, src),
    };
    super({
      name,
      config,
      // The IGD is a physical function bound to vfio-pci: reset at first open and last close.
      driver: 'vfio-pci',
      bars: {
        [IGD_BAR_MMIO]: { handler: mmio },
        [IGD_BAR_APERTURE]: {
          memory: allocateDeviceMemory(options.host ?? {}, facts.bars.aperture, `${name} aperture`),
        },
        [IGD_BAR_IO]: { handler: io },
      },
      extraRegions: regions,
    });
    this.facts = facts;
    this.opRegion = opRegion;
    const bdsm = igdBdsmRegister(facts.generation);
    this.mirrors = [
      { mmio: IGD_GGC_MMIO_OFFSET, config: IGD_GMCH, size: IGD_GMCH_SIZE },
      { mmio: IGD_BDSM_MMIO_OFFSET, config: bdsm.offset, size: bdsm.size },
    ];
  }

  /** BAR0: zeros, except the GGC and BDSM mirrors, which read the live config bytes. */
  private readMmio(offset: number, dst: Uint8Array): void {
    dst.fill(0);
    const raw = this.config.raw;
    for (let m = 0; m < this.mirrors.length; m++) {
      const w = this.mirrors[m];
      const from = Math.max(offset, w.mmio);
      const to = Math.min(offset + dst.length, w.mmio + w.size);
      for (let a = from; a < to; a++) dst[a - offset] = raw[w.config + (a - w.mmio)];
    }
  }

  private readIo(offset: number, dst: Uint8Array): void {
    this.ioView.setUint32(IGD_IOBAR_INDEX, this.ioIndex, true);
    this.readMmio(this.ioIndex, this.dataScratch);
    this.ioView.setUint32(IGD_IOBAR_DATA, this.dataView.getUint32(0, true), true);
    for (let i = 0; i < dst.length; i++) {
      const a = offset + i;
      dst[i] = a < this.ioScratch.length ? this.ioScratch[a] : 0;
    }
  }

  private writeIo(offset: number, src: Uint8Array): void {
    // Bytes written to the index register change it; the data register writes BAR0, where
    // nothing is writable here.
    this.ioView.setUint32(IGD_IOBAR_INDEX, this.ioIndex, true);
    for (let i = 0; i < src.length; i++) {
      const a = offset + i;
      if (a < IGD_IOBAR_DATA) this.ioScratch[a] = src[i];
    }
    // An index past BAR0 is kept; the data register then reads 0 (no mirror lies there).
    this.ioIndex = this.ioView.getUint32(IGD_IOBAR_INDEX, true);
  }

  protected override onReset(): void {
    this.ioIndex = 0;
  }
}
