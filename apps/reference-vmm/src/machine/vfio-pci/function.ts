/**
 * One assigned device as the VMM sees it, the way QEMU's hw/vfio/pci.c sees a vfio-pci device:
 * config space is the device's config region (at the offset REGION_INFO gives); config writes
 * are watched so that BARs are (re)mapped when COMMAND or a BAR changes (bars.ts), and MSI and
 * MSI-X are routed with SET_IRQS when the guest enables them (msi.ts, msix.ts); INTx is a
 * level-triggered, automasked line unmasked at EOI (intx.ts). This class composes those parts:
 * it finds the capabilities, sends config accesses to the part they concern, keeps the three
 * interrupt modes exclusive, and resets and shuts the function down.
 */
import {
  CapabilityWalk,
  type PciAddress,
  type RegionMapping,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VfioError,
} from '@vfiokit/core';
import {
  PCI_BASE_ADDRESS_0,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_MFD,
  PCI_INTERRUPT_PIN,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_STD_NUM_BARS,
} from '@vfiokit/core/abi';
import type { DeviceFile } from '@vfiokit/core/host';
import { type AccessHandler, type AccessSize, allOnes } from '../address-map.js';
import type { EmulatedConfig } from '../emulated-config.js';
import type { InterruptSource } from '../interrupt-controller.js';
import type { BarPart } from './bar-split.js';
import { type BarState, Bars } from './bars.js';
import { overlaps } from './bytes.js';
import { giveImage, takeImage } from './config-image.js';
import { DeviceLink, type FunctionHost, type InterruptModes, slotNameOf } from './device-link.js';
import { Intx } from './intx.js';
import { Msi } from './msi.js';
import { Msix, type MsixSnapshot } from './msix.js';

export type InterruptMode = 'msix' | 'msi' | 'intx' | 'none';

/** The walk of a function's capabilities at construction: it reads a ConfigImage, never a device, so one serves all. */
const CAPABILITY_WALK = new CapabilityWalk();

export interface VfioPciFunctionOptions {
  readonly file: DeviceFile;
  readonly slot: PciAddress;
  readonly label: string;
  readonly host: FunctionHost;
  readonly source: InterruptSource;
}

/** vfio_disable_interrupts: entering MSI or MSI-X turns the other modes off; leaving brings INTx back. */
class ModeSwitch implements InterruptModes {
  constructor(
    private readonly intx: Intx,
    private readonly msi: Msi | undefined,
    private readonly msix: Msix | undefined,
  ) {}

  enter(mode: 'msi' | 'msix'): void {
    this.intx.disable();
    if (mode === 'msi' && this.msix?.enabled) this.msix.disable();
    if (mode === 'msix' && this.msi?.enabled) this.msi.disable();
  }

  leave(): void {
    this.intx.enable();
  }
}

export class VfioPciFunction {
  readonly file: DeviceFile;
  readonly slot: PciAddress;
  readonly label: string;
  readonly slotName: string;
  readonly source: InterruptSource;
  readonly configOffset: number;
  readonly configSize: number;
  readonly bars: BarState[];
  readonly pin: number;
  readonly mappings: RegionMapping[];
  private readonly host: FunctionHost;
  private readonly link: DeviceLink;
  private readonly barMap: Bars;
  private readonly intx: Intx;
  private readonly msi: Msi | undefined;
  private readonly msix: Msix | undefined;
  private readonly modes: ModeSwitch;
  /** Config bytes the VMM answers itself (QEMU's emulated_config_bits), e.g. an IGD's ASLS and BDSM. */
  emulatedConfig: EmulatedConfig | undefined = undefined;

  constructor(opts: VfioPciFunctionOptions) {
    this.file = opts.file;
    this.slot = opts.slot;
    this.label = opts.label;
    this.host = opts.host;
    this.source = opts.source;
    this.slotName = slotNameOf(opts.slot);
    const config = this.file.regionInfo(VFIO_PCI_CONFIG_REGION_INDEX);
    if (config.size < PCI_CFG_SPACE_SIZE) {
      throw new VfioError(
        'EINVAL',
        `the config region is ${config.size} bytes, less than a PCI header needs.`,
        {
          device: this.file.name,
          region: VFIO_PCI_CONFIG_REGION_INDEX,
          hint: 'A vfio-pci device reports at least 256 bytes of config space in region 7.',
        },
      );
    }
    this.configOffset = config.offset;
    this.configSize = config.size;
    const link = new DeviceLink(this.file, this.host, this.label, this.slotName, this.source);
    this.link = link;
    // What the VMM learns of the function it reads from one copy of its config space.
    const image = takeImage(link);
    try {
      this.pin = image.configRead(PCI_INTERRUPT_PIN, 1) & 0xff;
      this.intx = new Intx(link, this.pin, this.slot.device);
      // The first MSI and MSI-X capabilities, in one walk of the standard list; -1 for an absent one.
      let msiAt = -1;
      let msixAt = -1;
      const walk = CAPABILITY_WALK.begin(image, this.configSize);
      while ((msiAt < 0 || msixAt < 0) && walk.next()) {
        if (walk.id === PCI_CAP_ID_MSI && msiAt < 0) msiAt = walk.offset;
        else if (walk.id === PCI_CAP_ID_MSIX && msixAt < 0) msixAt = walk.offset;
      }
      this.msi = msiAt >= 0 ? new Msi(link, msiAt, image) : undefined;
      this.msix = msixAt >= 0 ? new Msix(link, msixAt, image) : undefined;
      this.modes = new ModeSwitch(this.intx, this.msi, this.msix);
      this.barMap = new Bars(link, this.msix, image);
    } finally {
      giveImage(image);
    }
    this.bars = this.barMap.list;
    this.mappings = this.barMap.mappings;
    // QEMU's vfio_realize ends with INTx enabled when the device has a pin; here the reset the
    // machine gives every function it plugs (see reset()) enables it, as vfio_pci_post_reset does.
  }

  // ---- config space ----------------------------------------------------------------------------

  /** A guest config read (ECAM or 0xCF8/0xCFC). Beyond the config region: all-ones. */
  configRead(offset: number, size: AccessSize): number {
    if (offset + size > this.configSize) return allOnes(size);
    let value = this.link.configRead(offset, size);
    if (offset <= PCI_HEADER_TYPE && offset + size > PCI_HEADER_TYPE && this.slot.function === 0) {
      // QEMU sets the multi-function bit of function 0 itself when the slot holds more functions.
      const shift = (PCI_HEADER_TYPE - offset) * 8;
      const mfd = this.host.slotIsMultifunction(this.slot.device) ? PCI_HEADER_TYPE_MFD : 0;
      value = ((value & ~(PCI_HEADER_TYPE_MFD << shift)) | (mfd << shift)) >>> 0;
    }
    const emulated = this.emulatedConfig;
    if (emulated?.covers(offset, size)) value = emulated.merge(offset, size, value);
    return value;
  }

  /** A guest config write: to the device, then the VMM reacts as vfio_pci_write_config does. */
  configWrite(offset: number, size: AccessSize, value: number): void {
    if (offset + size > this.configSize) return;
    // vfio_pci_write_config: the write goes to the device whole; emulated bits are kept here too
    const emulated = this.emulatedConfig;
    if (emulated?.covers(offset, size)) emulated.write(offset, size, value);
    if (!this.link.configWrite(offset, size, value)) return;
    const end = offset + size;
    if (overlaps(offset, end, PCI_COMMAND, PCI_COMMAND + 2)) this.barMap.commandWritten();
    else if (overlaps(offset, end, PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_0 + 4 * PCI_STD_NUM_BARS))
      this.barMap.barWritten(offset, end);
    const msi = this.msi;
    if (msi && overlaps(offset, end, msi.capOffset, msi.capOffset + msi.length))
      msi.configWritten(this.modes);
    const msix = this.msix;
    if (msix && overlaps(offset, end, msix.capOffset + PCI_MSIX_FLAGS, msix.capOffset + PCI_MSIX_FLAGS + 2))
      msix.configWritten(this.modes);
  }

  /** Read the device's config region; a failing read answers all-ones and is recorded. */
  deviceConfigRead(offset: number, size: AccessSize): number {
    return this.link.configRead(offset, size);
  }

  /** A guest access the device refused or failed: logged and recorded, the guest goes on. */
  accessFault(err: unknown, operation: string, region: number, offset: number): void {
    this.link.fault(err, operation, region, offset);
  }

  // ---- BARs ----------------------------------------------------------------------------------

  /** Re-read COMMAND and every BAR and (re)map what changed (QEMU's pci_update_mappings). */
  updateBars(): void {
    this.barMap.updateAll();
  }

  unmapAll(): void {
    this.barMap.unmapAll();
  }

  /**
   * Put a handler in front of the part of BAR `index` that holds `offset` (QEMU's BAR quirks, such
   * as the IGD's config mirrors): `wrap` gets the part's handler and the part's offset in the BAR.
   * A mapped BAR is mapped again with it. False when the BAR has no part holding `offset`.
   */
  interceptBar(
    index: number,
    offset: number,
    wrap: (inner: AccessHandler, partOffset: number) => AccessHandler,
  ): boolean {
    return this.barMap.intercept(index, offset, wrap);
  }

  /** Parts of each BAR with their guest accesses, for the report. */
  barParts(bar: BarState): (BarPart & { reads: number; writes: number })[] {
    return this.barMap.parts(bar);
  }

  // ---- interrupts --------------------------------------------------------------------------------

  get interruptMode(): InterruptMode {
    if (this.msix?.enabled) return 'msix';
    if (this.msi?.enabled) return 'msi';
    return this.intx.on ? 'intx' : 'none';
  }

  get intxEnabled(): boolean {
    return this.intx.on;
  }

  intxVector(): number {
    return this.intx.vector;
  }

  /** vfio_intx_enable: one eventfd on INTx vector 0. */
  enableIntx(): void {
    this.intx.enable();
  }

  disableIntx(): void {
    this.intx.disable();
  }

  /** vfio_intx_eoi: the guest ended the interrupt, so unmask the automasked line. */
  eoi(vector: number): void {
    this.intx.eoi(vector);
  }

  /** Every interrupt route off (reset, hot-remove). */
  disableInterrupts(): void {
    if (this.msix?.enabled) this.msix.disable();
    if (this.msi?.enabled) this.msi.disable();
    this.intx.disable();
  }

  /** VFIO_DEVICE_SET_IRQS calls made for this function (for the report). */
  get setIrqsCalls(): number {
    return this.link.setIrqsCalls;
  }

  /** MSI-X messages held in the PBA because their vector was masked. */
  get msixPendingSet(): number {
    return this.msix?.pendingSet ?? 0;
  }

  /** The MSI-X table as the VMM keeps it: entry i's address, data and mask; the PBA bits. */
  msixSnapshot(): MsixSnapshot | undefined {
    return this.msix?.snapshot();
  }

  // ---- reset and shutdown --------------------------------------------------------------------

  /**
   * System reset as QEMU's vfio_pci_reset, at power-on (the machine plugs the function), at a
   * hot-add and at a machine reset. vfio_pci_pre_reset: interrupts off, BARs unmapped, COMMAND's
   * I/O, memory, bus master and INTx-disable bits cleared on the device. Then VFIO_DEVICE_RESET
   * when the device offers it; a device that offers none (an mdev without a reset, where QEMU's
   * bus reset fails too) keeps whatever lies behind its BARs, and QEMU only warns.
   * vfio_pci_post_reset: INTx enabled again, the BAR registers written 0 on the device (QEMU
   * writes all six; a BAR the device does not implement reads 0 whatever is written). Then
   * the VMM's own copies go back to their power-on state (QEMU's msi_reset / msix_reset: MSI-X
   * entries masked). Returns whether the device itself was reset.
   */
  reset(): boolean {
    this.disableInterrupts();
    this.unmapAll();
    const link = this.link;
    const command = link.configRead(PCI_COMMAND, 2);
    const stop = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE;
    if (command & stop) link.configWrite(PCI_COMMAND, 2, command & ~stop);
    let resetDone = false;
    if (this.file.deviceInfo().reset) {
      try {
        this.file.reset();
        resetDone = true;
      } catch (err) {
        link.fault(err, 'reset', -1, 0);
      }
    } else {
      this.host.log.warn(
        `${this.slotName} ${this.label}: the device offers no VFIO_DEVICE_RESET, so only its COMMAND, BAR, MSI and MSI-X control registers are put back; the rest of its state is kept.`,
      );
      // QEMU keeps MSI and MSI-X enable in its own copy of config space, which msi_reset and
      // msix_reset clear; here the guest reads them from the device, so they are cleared there.
      if (this.msi) this.clearBits(this.msi.capOffset + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE);
      if (this.msix)
        this.clearBits(this.msix.capOffset + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    }
    this.barMap.zeroRegisters();
    this.msix?.reset();
    this.msi?.reset();
    this.updateBars();
    this.intx.enable();
    return resetDone;
  }

  /** Clear `bits` of the 16-bit config register at `offset` on the device, where set. */
  private clearBits(offset: number, bits: number): void {
    const value = this.link.configRead(offset, 2);
    if (value & bits) this.link.configWrite(offset, 2, value & ~bits);
  }

  /**
   * The machine shuts down: its address maps go with it (they drop every BAR range in one sweep,
   * see isBarRange), and closing the device file turns every interrupt index off, as releasing a
   * vfio device fd does. The function only forgets its mappings and routes; each part keeps the
   * accesses it counted.
   */
  shutdown(): void {
    this.barMap.forget();
    if (this.msix) this.msix.enabled = false;
    this.msi?.forget();
    this.intx.on = false;
  }
}
