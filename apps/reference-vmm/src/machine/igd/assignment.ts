/**
 * The VMM's half of Intel IGD assignment, as QEMU's hw/vfio/igd.c does it (vfio_probe_igd_config_quirk,
 * vfio_probe_igd_bar0_quirk, vfio_pci_igd_opregion_init, the legacy-mode setup). The VMM knows an
 * IGD by what vfio-pci shows of it, never by which plugin made it: an Intel display-class
 * function whose REGION_INFO lists a region of type VFIO_REGION_TYPE_PCI_VENDOR_TYPE | 0x8086,
 * subtype IGD_OPREGION, and IGD_HOST_CFG as vfio-pci gives a physical IGD (a mediated vGPU with
 * only a virtual OpRegion is one when asked, as x-igd-opregion=on does). Then it
 * - publishes the OpRegion region's bytes as fw_cfg etc/igd-opregion and the stolen-memory size
 *   (GMS by generation, or the GMS override) as etc/igd-bdsm-size;
 * - emulates ASLS and BDSM in its view of config space (both start at 0 and take the firmware's
 *   writes), and GGC read-only when GMS is overridden;
 * - mirrors BDSM (gen >= 6) and the overridden GGC into BAR0 at 0x1080c0 / 0x108040;
 * - in legacy mode only, copies the host bridge's revision and subsystem IDs into the machine's
 *   host bridge and puts an LPC bridge with the host LPC's IDs at 00:1f.0.
 */
import {
  formatPciAddress,
  hex,
  type Logger,
  leBytes,
  type PciAddress,
  VFIO_PCI_NUM_REGIONS,
  VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG,
  VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG,
  VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION,
  VFIO_REGION_TYPE_PCI_VENDOR_TYPE,
  VfioError,
} from '@vfiokit/core';
import {
  PCI_CLASS_REVISION,
  PCI_DEVICE_ID,
  PCI_REVISION_ID,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
  VFIO_REGION_INFO_CAP_TYPE,
} from '@vfiokit/core/abi';
import { type DeviceFile, type ResolvedRegion, toVfioError } from '@vfiokit/core/host';
import {
  IGD_ASLS,
  IGD_BDSM_MMIO_OFFSET,
  IGD_GGC_MMIO_OFFSET,
  IGD_GMCH,
  IGD_GMCH_VGA_DISABLE,
  igdBdsmRegister,
  igdGeneration,
  igdOverrideGms,
  igdStolenMemorySize,
} from '@vfiokit/hw';
import type { AccessHandler, AccessSize } from '../address-map.js';
import { EmulatedConfig } from '../emulated-config.js';
import type { FwCfg } from '../fw-cfg.js';
import type { HostBridge } from '../host-bridge.js';
import { LpcBridge, type LpcIdentity } from './lpc-bridge.js';

// linux include/linux/pci_ids.h PCI_VENDOR_ID_INTEL
export const PCI_VENDOR_ID_INTEL = 0x8086;
// linux include/linux/pci_ids.h PCI_BASE_CLASS_DISPLAY, PCI_CLASS_DISPLAY_VGA
export const PCI_BASE_CLASS_DISPLAY = 0x03;
export const PCI_CLASS_DISPLAY_VGA = 0x0300;
/** The region type of vfio-pci's IGD regions (linux drivers/vfio/pci/vfio_pci_igd.c). */
export const IGD_REGION_TYPE = (VFIO_REGION_TYPE_PCI_VENDOR_TYPE | PCI_VENDOR_ID_INTEL) >>> 0;
/** fw_cfg files QEMU's igd.c publishes for the guest firmware. */
export const FW_CFG_IGD_OPREGION = 'etc/igd-opregion';
export const FW_CFG_IGD_BDSM_SIZE = 'etc/igd-bdsm-size';
/** Where legacy mode needs the IGD and puts the LPC bridge (qemu igd.c PCI_DEVFN(0x2, 0), PCI_DEVFN(0x1f, 0)). */
export const IGD_SLOT = { device: 0x02, function: 0 } as const;
export const LPC_SLOT = { device: 0x1f, function: 0 } as const;

/** The IGD's device-specific regions, found by type and subtype. */
export interface IgdRegions {
  readonly opRegion: ResolvedRegion;
  readonly hostCfg: ResolvedRegion | undefined;
  readonly lpcCfg: ResolvedRegion | undefined;
}

/** QEMU's vfio_get_dev_region_info: the first region past the fixed ones with this type and subtype. */
export function findVendorRegion(
  file: DeviceFile,
  type: number,
  subtype: number,
): ResolvedRegion | undefined {
  const n = file.deviceInfo().numRegions;
  for (let i = VFIO_PCI_NUM_REGIONS; i < n; i++) {
    let r: ResolvedRegion;
    try {
      r = file.regionInfo(i);
    } catch {
      continue;
    }
    for (const c of r.caps) {
      if (c.id === VFIO_REGION_INFO_CAP_TYPE && 'type' in c && c.type >>> 0 === type && c.subtype === subtype)
        return r;
    }
  }
  return undefined;
}

/** The IGD regions of a function that is an Intel display device with an OpRegion region; else undefined. */
export function findIgdRegions(
  file: DeviceFile,
  vendorId: number,
  classCode: number,
): IgdRegions | undefined {
  if (vendorId !== PCI_VENDOR_ID_INTEL || classCode >>> 16 !== PCI_BASE_CLASS_DISPLAY) return undefined;
  const opRegion = findVendorRegion(file, IGD_REGION_TYPE, VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION);
  if (opRegion === undefined) return undefined;
  return {
    opRegion,
    hostCfg: findVendorRegion(file, IGD_REGION_TYPE, VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG),
    lpcCfg: findVendorRegion(file, IGD_REGION_TYPE, VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG),
  };
}

/** What the assignment needs of the function (a VfioPciFunction). */
export interface IgdFunction {
  readonly file: DeviceFile;
  readonly slot: PciAddress;
  readonly label: string;
  readonly configSize: number;
  emulatedConfig: EmulatedConfig | undefined;
  deviceConfigRead(offset: number, size: AccessSize): number;
  configRead(offset: number, size: AccessSize): number;
  configWrite(offset: number, size: AccessSize, value: number): void;
  interceptBar(
    index: number,
    offset: number,
    wrap: (inner: AccessHandler, partOffset: number) => AccessHandler,
  ): boolean;
}

/** What the assignment needs of the machine. */
export interface IgdMachine {
  readonly fwCfg: FwCfg;
  readonly hostBridge: HostBridge;
  readonly log: Logger;
  /** The device was attached after the guest booted (QEMU refuses legacy mode for a hot-plugged IGD). */
  readonly hotplugged: boolean;
  /** Whether bus 0 slot 1f.0 is free for the LPC bridge. */
  lpcSlotFree(): boolean;
  /** Put the LPC bridge at 00:1f.0, or take it away (undefined). */
  placeLpcBridge(bridge: LpcBridge | undefined): void;
}

/** Options of the IGD assignment (QEMU's x-igd-* properties). */
export interface IgdAssignmentOptions {
  /**
   * x-igd-opregion: treat a device that shows an OpRegion region but no host-bridge region (a
   * GVT-g vGPU, whose OpRegion is virtual) as an IGD too. A passthrough IGD shows both and is
   * treated so without asking, as QEMU does for a physical IGD but not for an mdev.
   */
  readonly opRegion?: boolean;
  /** x-igd-gms: replace GMS in the guest's GGC (and the stolen size with it). */
  readonly gms?: number;
  /** x-igd-legacy-mode: 'auto' (default) applies legacy mode when every condition holds; 'off' never. */
  readonly legacyMode?: 'auto' | 'off';
}

export interface IgdEmulatedRegister {
  readonly name: 'ASLS' | 'BDSM' | 'GGC';
  readonly offset: number;
  readonly size: 4 | 8;
  readonly writable: boolean;
}

export interface IgdMirror {
  readonly bar: 0;
  readonly offset: number;
  readonly size: number;
  readonly config: number;
  /** Whether the mirror sits in BAR0 (false when BAR0 is too small or missing). */
  readonly installed: boolean;
}

/** The result of the guest firmware step (filled in by the machine after it ran). */
export interface IgdFirmwareReport {
  readonly ok: boolean;
  readonly summary: string;
  readonly opRegionAddress?: number;
  readonly opRegionSize?: number;
  readonly stolenBase?: number;
  readonly stolenSize?: number;
  readonly error?: string;
}

export interface IgdReport {
  readonly slot: string;
  readonly label: string;
  readonly deviceId: number;
  readonly generation: number;
  readonly regions: {
    readonly opRegion: { readonly index: number; readonly offset: number; readonly size: number };
    readonly hostCfg: { readonly index: number; readonly size: number } | null;
    readonly lpcCfg: { readonly index: number; readonly size: number } | null;
  };
  readonly fwCfg: readonly { readonly name: string; readonly size: number; readonly select: number }[];
  readonly ggc: number;
  readonly gmsOverride: number | null;
  readonly stolenBytes: number;
  /** Emulated registers with the value the guest reads now. */
  readonly emulated: readonly (IgdEmulatedRegister & { readonly value: number })[];
  readonly mirrors: readonly IgdMirror[];
  readonly legacyMode: {
    readonly enabled: boolean;
    /** Why it is on, or which condition failed. */
    readonly reason: string;
    readonly hostBridge: {
      readonly revision: number;
      readonly subsystemVendorId: number;
      readonly subsystemId: number;
    } | null;
    readonly lpcBridge: (LpcIdentity & { readonly slot: string }) | null;
  };
  /** The guest firmware step (null before it ran). */
  readonly firmware: IgdFirmwareReport | null;
}

/** A window of BAR0 that reads and writes config space through the guest's view (QEMU's config mirror quirk). */
class ConfigMirror implements AccessHandler {
  constructor(
    private readonly inner: AccessHandler,
    private readonly partOffset: number,
    private readonly fn: IgdFunction,
    private readonly start: number,
    private readonly end: number,
    private readonly config: number,
  ) {}

  read(offset: number, size: AccessSize): number {
    const a = this.partOffset + offset;
    if (a >= this.start && a + size <= this.end)
      return this.fn.configRead(this.config + (a - this.start), size);
    if (a + size <= this.start || a >= this.end) return this.inner.read(offset, size);
    let v = this.inner.read(offset, size);
    for (let i = 0; i < size; i++) {
      const b = a + i;
      if (b < this.start || b >= this.end) continue;
      const byte = this.fn.configRead(this.config + (b - this.start), 1);
      v = (v & ~(0xff << (8 * i))) | (byte << (8 * i));
    }
    return v >>> 0;
  }

  write(offset: number, size: AccessSize, value: number): void {
    const a = this.partOffset + offset;
    if (a >= this.start && a + size <= this.end) {
      this.fn.configWrite(this.config + (a - this.start), size, value);
      return;
    }
    this.inner.write(offset, size, value);
    for (let i = 0; i < size; i++) {
      const b = a + i;
      if (b >= this.start && b < this.end)
        this.fn.configWrite(this.config + (b - this.start), 1, (value >>> (8 * i)) & 0xff);
    }
  }
}

function sameSlot(a: PciAddress, b: { device: number; function: number }): boolean {
  return a.bus === 0 && a.device === b.device && a.function === b.function;
}

export class IgdAssignment {
  readonly slot: PciAddress;
  readonly deviceId: number;
  readonly generation: number;
  readonly ggc: number;
  readonly stolenBytes: number;
  readonly opRegion: Uint8Array;
  readonly emulated: readonly IgdEmulatedRegister[];
  readonly mirrors: readonly IgdMirror[];
  readonly legacy: { readonly enabled: boolean; readonly reason: string };
  firmware: IgdFirmwareReport | undefined;
  private readonly config: EmulatedConfig;
  private readonly hostIds:
    | { revision: Uint8Array; subsystemVendorId: Uint8Array; subsystemId: Uint8Array }
    | undefined;
  private readonly lpc: LpcBridge | undefined;

  constructor(
    private readonly fn: IgdFunction,
    readonly regions: IgdRegions,
    private readonly machine: IgdMachine,
    private readonly options: IgdAssignmentOptions = {},
  ) {
    this.slot = fn.slot;
    const file = fn.file;
    const classCode = fn.deviceConfigRead(PCI_CLASS_REVISION, 4) >>> 8;
    this.deviceId = fn.deviceConfigRead(PCI_DEVICE_ID, 2);
    const gen = igdGeneration(this.deviceId);
    this.generation = gen;
    const hostGgc = fn.deviceConfigRead(IGD_GMCH, 4);
    const ggc = options.gms === undefined ? hostGgc : igdOverrideGms(gen, options.gms, hostGgc, fn.label);
    this.ggc = ggc;

    // vfio_pci_igd_opregion_init: the whole OpRegion region, read at its REGION_INFO offset
    const op = regions.opRegion;
    this.opRegion = new Uint8Array(op.size);
    try {
      file.read(op.offset, this.opRegion);
    } catch (err) {
      const e = toVfioError(err, { device: fn.label, region: op.index });
      throw new VfioError(
        e.code,
        `reading the IGD OpRegion (region ${op.index}, ${op.size} bytes) failed: ${e.problem}`,
        {
          device: fn.label,
          region: op.index,
          hint: 'The OpRegion region must be readable whole; check the device.',
          cause: err,
        },
      );
    }

    const config = new EmulatedConfig(fn.configSize);
    const emulated: IgdEmulatedRegister[] = [{ name: 'ASLS', offset: IGD_ASLS, size: 4, writable: true }];
    config.emulate(IGD_ASLS, leBytes(0, 4), true);
    const mirrors: { offset: number; size: number; config: number }[] = [];
    if (options.gms !== undefined) {
      // GMCH is read-only and emulated with the overridden GMS
      config.emulate(IGD_GMCH, leBytes(ggc, 4), false);
      emulated.push({ name: 'GGC', offset: IGD_GMCH, size: 4, writable: false });
      mirrors.push({ offset: IGD_GGC_MMIO_OFFSET, size: 2, config: IGD_GMCH });
    }
    const bdsm = igdBdsmRegister(gen);
    if (gen > 0) {
      // BDSM is read-write and emulated, starting at 0: the firmware writes its reserved base
      config.emulate(bdsm.offset, leBytes(0, bdsm.size), true);
      emulated.push({ name: 'BDSM', offset: bdsm.offset, size: bdsm.size, writable: true });
    }
    if (gen >= 6) mirrors.push({ offset: IGD_BDSM_MMIO_OFFSET, size: bdsm.size, config: bdsm.offset });
    this.emulated = emulated;
    this.config = config;
    fn.emulatedConfig = config;
    this.mirrors = mirrors.map((m) => ({
      bar: 0 as const,
      ...m,
      installed: fn.interceptBar(
        0,
        m.offset,
        (inner, partOffset) => new ConfigMirror(inner, partOffset, fn, m.offset, m.offset + m.size, m.config),
      ),
    }));

    this.stolenBytes = igdStolenMemorySize(gen, ggc);
    const fw = machine.fwCfg;
    fw.addFile(FW_CFG_IGD_OPREGION, this.opRegion);
    const size = new Uint8Array(8);
    new DataView(size.buffer).setBigUint64(0, BigInt(this.stolenBytes), true);
    fw.addFile(FW_CFG_IGD_BDSM_SIZE, size);

    const refusal = this.legacyRefusal(classCode, gen, ggc);
    if (refusal !== undefined) {
      this.legacy = { enabled: false, reason: refusal };
      machine.log.info(`${fn.label}: IGD legacy mode is off: ${refusal}`);
      return;
    }
    const host = regions.hostCfg as ResolvedRegion;
    const lpc = regions.lpcCfg as ResolvedRegion;
    const readBytes = (r: ResolvedRegion, at: number, n: number) => {
      const b = new Uint8Array(n);
      file.read(r.offset + at, b);
      return b;
    };
    // igd_host_bridge_infos: revision (2 bytes from PCI_REVISION_ID), subsystem vendor and ID
    this.hostIds = {
      revision: readBytes(host, PCI_REVISION_ID, 2),
      subsystemVendorId: readBytes(host, PCI_SUBSYSTEM_VENDOR_ID, 2),
      subsystemId: readBytes(host, PCI_SUBSYSTEM_ID, 2),
    };
    // igd_lpc_bridge_infos: vendor, device, revision, subsystem vendor and ID
    const u16 = (b: Uint8Array) => b[0] | (b[1] << 8);
    const rev = readBytes(lpc, PCI_REVISION_ID, 2);
    this.lpc = new LpcBridge({
      vendorId: u16(readBytes(lpc, PCI_VENDOR_ID, 2)),
      deviceId: u16(readBytes(lpc, PCI_DEVICE_ID, 2)),
      revision: rev[0],
      progIf: rev[1],
      subsystemVendorId: u16(readBytes(lpc, PCI_SUBSYSTEM_VENDOR_ID, 2)),
      subsystemId: u16(readBytes(lpc, PCI_SUBSYSTEM_ID, 2)),
    });
    this.applyHostIds();
    machine.placeLpcBridge(this.lpc);
    this.legacy = {
      enabled: true,
      reason:
        'every condition holds: VGA class, generation 6 to 9, VGA not disabled in GGC, 00:1f.0 free for the LPC bridge, the IGD at 00:02.0 from boot, host and LPC bridge regions present',
    };
    machine.log.info(`${fn.label}: IGD legacy mode is on (LPC bridge at 00:1f.0)`);
  }

  /**
   * QEMU's legacy-mode conditions, in its order; the first that fails, as a sentence. QEMU asks
   * for an i440fx machine because Q35 has its own LPC bridge at 00:1f.0; this machine has none,
   * so the condition is that 00:1f.0 is free. QEMU also wants a VBIOS ROM for the VBIOS to run;
   * this VMM runs no VBIOS, so a ROM is not asked for.
   */
  private legacyRefusal(classCode: number, gen: number, ggc: number): string | undefined {
    if (this.options.legacyMode === 'off') return 'legacy mode is switched off for this device';
    if (classCode >>> 8 !== PCI_CLASS_DISPLAY_VGA)
      return `the IGD's class is ${hex(classCode, 6)}, not VGA (0x030000)`;
    if (gen < 6 || gen > 9)
      return gen < 0
        ? `the IGD's device ID ${hex(this.deviceId, 4)} has no known generation; legacy mode needs generation 6 to 9`
        : `the IGD is generation ${gen}; legacy mode needs generation 6 to 9`;
    if (ggc & IGD_GMCH_VGA_DISABLE)
      return 'GGC bit 1 (IGD VGA disable) is set, so the IGD claims no VGA cycles';
    if (!sameSlot(this.slot, IGD_SLOT))
      return `the IGD sits at guest ${formatPciAddress(this.slot)}; legacy mode needs it at 00:02.0`;
    if (this.machine.hotplugged)
      return 'the IGD was hot-added after boot; legacy mode needs it present from boot';
    if (!this.machine.lpcSlotFree()) return 'slot 00:1f.0 is taken, so there is no room for the LPC bridge';
    if (this.regions.hostCfg === undefined)
      return 'the device has no IGD host-bridge config region (IGD_HOST_CFG)';
    if (this.regions.lpcCfg === undefined)
      return 'the device has no IGD LPC-bridge config region (IGD_LPC_CFG)';
    return undefined;
  }

  private applyHostIds(): void {
    const ids = this.hostIds;
    if (ids === undefined) return;
    const c = this.machine.hostBridge.config;
    c.setRaw(PCI_REVISION_ID, ids.revision);
    c.setRaw(PCI_SUBSYSTEM_VENDOR_ID, ids.subsystemVendorId);
    c.setRaw(PCI_SUBSYSTEM_ID, ids.subsystemId);
  }

  /** After a machine reset: the host bridge got its own IDs back; legacy mode puts the host's in again. */
  reset(): void {
    this.firmware = undefined;
    this.applyHostIds();
    this.lpc?.reset();
  }

  /** Hot-remove: withdraw the fw_cfg files, the LPC bridge and the host bridge IDs. */
  remove(): void {
    this.machine.fwCfg.removeFile(FW_CFG_IGD_OPREGION);
    this.machine.fwCfg.removeFile(FW_CFG_IGD_BDSM_SIZE);
    if (this.lpc !== undefined) this.machine.placeLpcBridge(undefined);
    if (this.hostIds !== undefined) this.machine.hostBridge.reset();
  }

  /** The value the guest reads now from an emulated register. */
  registerValue(name: IgdEmulatedRegister['name']): number | undefined {
    const r = this.emulated.find((e) => e.name === name);
    return r === undefined ? undefined : this.config.read(r.offset, r.size);
  }

  report(): IgdReport {
    const r = this.regions;
    const hostIds = this.hostIds;
    const u16 = (b: Uint8Array) => b[0] | (b[1] << 8);
    return {
      slot: formatPciAddress(this.slot),
      label: this.fn.label,
      deviceId: this.deviceId,
      generation: this.generation,
      regions: {
        opRegion: { index: r.opRegion.index, offset: r.opRegion.offset, size: r.opRegion.size },
        hostCfg: r.hostCfg ? { index: r.hostCfg.index, size: r.hostCfg.size } : null,
        lpcCfg: r.lpcCfg ? { index: r.lpcCfg.index, size: r.lpcCfg.size } : null,
      },
      fwCfg: this.machine.fwCfg
        .files()
        .filter((f) => f.name === FW_CFG_IGD_OPREGION || f.name === FW_CFG_IGD_BDSM_SIZE),
      ggc: this.ggc,
      gmsOverride: this.options.gms ?? null,
      stolenBytes: this.stolenBytes,
      emulated: this.emulated.map((e) => ({ ...e, value: this.config.read(e.offset, e.size) })),
      mirrors: this.mirrors,
      legacyMode: {
        enabled: this.legacy.enabled,
        reason: this.legacy.reason,
        hostBridge: hostIds
          ? {
              revision: hostIds.revision[0],
              subsystemVendorId: u16(hostIds.subsystemVendorId),
              subsystemId: u16(hostIds.subsystemId),
            }
          : null,
        lpcBridge: this.lpc ? { slot: '0000:00:1f.0', ...this.lpc.identity } : null,
      },
      firmware: this.firmware ?? null,
    };
  }
}

/** Attach-time IGD setup: an IgdAssignment when the function is an IGD with an OpRegion region, else undefined. */
export function assignIgd(
  fn: IgdFunction,
  machine: IgdMachine,
  options: IgdAssignmentOptions = {},
): IgdAssignment | undefined {
  const vendorId = fn.deviceConfigRead(PCI_VENDOR_ID, 2);
  // Asked at every attach: a function of another vendor is no IGD, whatever its class.
  if (vendorId !== PCI_VENDOR_ID_INTEL) return undefined;
  const classCode = fn.deviceConfigRead(PCI_CLASS_REVISION, 4) >>> 8;
  const regions = findIgdRegions(fn.file, vendorId, classCode);
  if (regions === undefined) return undefined;
  if (regions.hostCfg === undefined && options.opRegion !== true) return undefined;
  return new IgdAssignment(fn, regions, machine, options);
}
