/**
 * What vfio-pci does to a physical function (a device whose `driver` is 'vfio-pci') when its
 * device file is first opened and last closed (drivers/vfio/pci/vfio_pci_core.c):
 * - vfio_pci_core_enable: bus mastering off, a reset when the function can be reset, then the
 *   config header saved (pci_save_state: its 16 dwords);
 * - vfio_pci_core_disable, once the interrupts are off (freeing the vectors clears the MSI and MSI-X
 *   enable bits, pci_msi_shutdown / pci_msix_shutdown): COMMAND = INTX_DISABLE, a reset when the
 *   function can be reset, then the saved header written back (pci_restore_state). A function
 *   without a reset still gets its header back: the next user finds the config registers as the
 *   first found them, though what lies behind the BARs stays as the last user left it.
 * The restore walks dwords 15..10, then 9..4 (the BARs before COMMAND), then 3..0, and writes only
 * a dword that reads differently (pci_restore_config_space, pci_restore_config_dword). The kernel's
 * "needs reset" bookkeeping for a later bus reset has no counterpart: there is no bus to reset here.
 */

import { VFIO_PCI_CONFIG_REGION_INDEX } from '../abi/constants.js';
import type { Logger } from '../contract/context.js';
import type { VfioDevice } from '../contract/device.js';
import { toVfioError } from '../errors.js';
import {
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CFG_SPACE_SIZE,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_MASTER,
  PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
} from '../pci/constants.js';
import { CapabilityWalk, type ConfigReader } from '../pci/walk.js';
import { giveValueBytes, takeValueBytes } from '../value-bytes.js';

/** The dwords of a type 0 header (pci_save_state saves 16). */
const HEADER_DWORDS = 16;

/** pci_restore_config_space for a normal header: dword ranges [start, end], each walked downwards. */
const RESTORE_RANGES: readonly (readonly [number, number])[] = [
  [10, 15],
  [4, 9],
  [0, 3],
];

export class FunctionLifecycle implements ConfigReader {
  private readonly saved = new Uint32Array(HEADER_DWORDS);
  private hasSaved = false;

  constructor(
    private readonly device: VfioDevice,
    private readonly canReset: boolean,
    /** The config region's size: a header (64 bytes) at least, or nothing here touches config space. */
    private readonly configSize: number,
    /** The device file's reset (the device's, and the migration state's). */
    private readonly reset: () => void,
    private readonly log: Logger,
  ) {}

  /** The first open, after the device's open(): vfio_pci_core_enable's part. */
  enable(): void {
    if (this.configSize < HEADER_DWORDS * 4) {
      if (this.canReset) this.step('resetting the function at open', this.reset);
      return;
    }
    this.step('turning bus mastering off at open', () => {
      const cmd = this.read(PCI_COMMAND) & 0xffff;
      if (cmd & PCI_COMMAND_MASTER) this.writeCommand(cmd & ~PCI_COMMAND_MASTER);
    });
    if (this.canReset) this.step('resetting the function at open', this.reset);
    this.hasSaved = false;
    this.step('saving the config header at open', () => {
      for (let i = 0; i < HEADER_DWORDS; i++) this.saved[i] = this.read(i * 4);
      this.hasSaved = true;
    });
  }

  /** The last close, after the interrupts are off and before the device's close(): vfio_pci_core_disable's part. */
  disable(): void {
    if (this.configSize < HEADER_DWORDS * 4) {
      if (this.canReset) this.step('resetting the function at close', this.reset);
      return;
    }
    this.step('turning MSI and MSI-X off at close', () => this.msiOff());
    this.step('writing COMMAND at close', () => this.writeCommand(PCI_COMMAND_INTX_DISABLE));
    if (this.canReset) this.step('resetting the function at close', this.reset);
    if (!this.hasSaved) return;
    this.step('restoring the config header at close', () => {
      for (const [start, end] of RESTORE_RANGES) {
        for (let i = end; i >= start; i--) {
          const want = this.saved[i];
          if (this.read(i * 4) !== want) this.write(i * 4, want);
        }
      }
    });
    this.hasSaved = false;
  }

  /** One step; a failure is logged and the rest goes on, as the kernel goes on past a failed save or reset. */
  private step(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      const e = toVfioError(err, { device: this.device.name });
      this.log.warn(`${this.device.name}: ${what} failed, going on without it: ${e.message}`);
    }
  }

  /** The enable bits of the MSI and MSI-X capabilities cleared where set. */
  private msiOff(): void {
    const walk = new CapabilityWalk().begin(this, Math.min(this.configSize, PCI_CFG_SPACE_SIZE));
    while (walk.next()) {
      const flags =
        walk.id === PCI_CAP_ID_MSI
          ? { at: walk.offset + PCI_MSI_FLAGS, enable: PCI_MSI_FLAGS_ENABLE }
          : walk.id === PCI_CAP_ID_MSIX
            ? { at: walk.offset + PCI_MSIX_FLAGS, enable: PCI_MSIX_FLAGS_ENABLE }
            : undefined;
      if (flags === undefined) continue;
      const value = this.configRead(flags.at, 2);
      if (value & flags.enable) this.writeWord(flags.at, value & ~flags.enable);
    }
  }

  /** ConfigReader for the capability walk: a config read of the device through value bytes. */
  configRead(offset: number, size: 1 | 2 | 4): number {
    const s = takeValueBytes();
    this.device.read(VFIO_PCI_CONFIG_REGION_INDEX, offset, s.of(size));
    giveValueBytes(s);
    return s.get(size);
  }

  private configWrite(offset: number, size: 2 | 4, value: number): void {
    const s = takeValueBytes();
    this.device.write(VFIO_PCI_CONFIG_REGION_INDEX, offset, s.set(size, value));
    giveValueBytes(s);
  }

  private read(offset: number): number {
    return this.configRead(offset, 4);
  }

  private write(offset: number, value: number): void {
    this.configWrite(offset, 4, value);
  }

  private writeCommand(value: number): void {
    this.writeWord(PCI_COMMAND, value);
  }

  private writeWord(offset: number, value: number): void {
    this.configWrite(offset, 2, value);
  }
}
