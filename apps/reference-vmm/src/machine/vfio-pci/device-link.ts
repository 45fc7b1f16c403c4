/**
 * What every part of an assigned function (BARs, MSI, MSI-X, INTx) reaches the device and the
 * machine through: the device file's config region, SET_IRQS, the machine's interrupt
 * controller, and one way to record a fault. QEMU's parts of hw/vfio/pci.c share the same few
 * services through their VFIOPCIDevice.
 */
import {
  formatPciAddress,
  type Logger,
  type PciAddress,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VfioError,
} from '@vfiokit/core';
import { type DeviceFile, type IrqSetRequest, type RegionPort, toVfioError } from '@vfiokit/core/host';
import { type AccessSize, type AddressMap, allOnes, hexOf } from '../address-map.js';
import type { InterruptController, InterruptSource } from '../interrupt-controller.js';
import { MSI_WINDOW_BASE, MSI_WINDOW_SIZE } from '../layout.js';

/** An error that one guest access (or one VMM operation) on a device ran into. */
export interface MachineError {
  readonly device: string;
  readonly slot: string;
  readonly region?: number;
  readonly offset?: number;
  readonly operation: string;
  readonly code: string;
  readonly message: string;
}

/** What the machine gives each function. */
export interface FunctionHost {
  readonly memory: AddressMap;
  readonly io: AddressMap;
  readonly irq: InterruptController;
  readonly log: Logger;
  recordError(error: MachineError): void;
  /** Whether other functions share this function's slot (the multi-function bit of function 0). */
  slotIsMultifunction(device: number): boolean;
}

/**
 * INTx, MSI and MSI-X are exclusive (QEMU's vfio_disable_interrupts): what MSI and MSI-X ask of
 * the function that holds all three when the guest turns them on or off.
 */
export interface InterruptModes {
  /** Before `mode` is enabled: the other modes off. */
  enter(mode: 'msi' | 'msix'): void;
  /** MSI or MSI-X went off, or failed to come on: INTx is enabled again. */
  leave(): void;
}

/** Slot names of bus 0 (`0000:00:dd.f`), made once each. */
const slotNames: string[] = [];

/** formatPciAddress of a slot, kept once made for the 256 functions of bus 0. */
export function slotNameOf(slot: PciAddress): string {
  const onBus0 =
    slot.bus === 0 &&
    Number.isInteger(slot.device) &&
    slot.device >= 0 &&
    slot.device < 32 &&
    Number.isInteger(slot.function) &&
    slot.function >= 0 &&
    slot.function < 8;
  if (!onBus0) return formatPciAddress(slot);
  const key = slot.device * 8 + slot.function;
  let name = slotNames[key];
  if (name === undefined) {
    name = formatPciAddress(slot);
    slotNames[key] = name;
  }
  return name;
}

export class DeviceLink {
  /** VFIO_DEVICE_SET_IRQS calls made, refused ones included (for the report). */
  setIrqsCalls = 0;
  /** The config region, accessed as values (as QEMU's vfio_pci_read_config preads a register). */
  private readonly config: RegionPort;

  constructor(
    readonly file: DeviceFile,
    readonly host: FunctionHost,
    readonly label: string,
    readonly slotName: string,
    readonly source: InterruptSource,
  ) {
    this.config = file.regionPort(VFIO_PCI_CONFIG_REGION_INDEX);
  }

  /** Read the device's config region; a failing read answers all-ones and is recorded. */
  configRead(offset: number, size: AccessSize): number {
    try {
      return this.config.readValue(offset, size);
    } catch (err) {
      this.fault(err, 'config read', VFIO_PCI_CONFIG_REGION_INDEX, offset);
      return allOnes(size);
    }
  }

  /** Write the device's config region; false (and recorded) when the device refused. */
  configWrite(offset: number, size: AccessSize, value: number): boolean {
    try {
      this.config.writeValue(offset, size, value);
    } catch (err) {
      this.fault(err, 'config write', VFIO_PCI_CONFIG_REGION_INDEX, offset);
      return false;
    }
    return true;
  }

  /** Something the device refused or failed: logged and recorded, the guest goes on. */
  fault(err: unknown, operation: string, region: number, offset: number): void {
    const e = toVfioError(err, { device: this.file.name, region, offset });
    this.host.log.error(`${this.slotName} ${this.label}: ${operation} failed: ${e.message}`);
    this.host.recordError({
      device: this.label,
      slot: this.slotName,
      region,
      offset,
      operation,
      code: e.code,
      message: e.message,
    });
  }

  /** VFIO_DEVICE_SET_IRQS; a refusal is recorded as a fault and answered false. */
  setIrqs(operation: string, req: IrqSetRequest): boolean {
    this.setIrqsCalls++;
    try {
      this.file.setIrqs(req);
      return true;
    } catch (err) {
      this.fault(err, operation, -1, 0);
      return false;
    }
  }

  /** How many vectors IRQ index `index` offers; 0 when the device answers no IRQ_INFO. */
  irqCount(index: number): number {
    try {
      return this.file.irqInfo(index).count;
    } catch {
      return 0;
    }
  }

  /** A vector at the interrupt controller, from this function. */
  deliver(vector: number): void {
    this.host.irq.deliver(vector, this.source);
  }

  /** An MSI or MSI-X message: a write of `data` to `address`, which the local APIC takes in its window. */
  message(address: number, data: number, what: string): void {
    if (address >= MSI_WINDOW_BASE && address < MSI_WINDOW_BASE + MSI_WINDOW_SIZE) {
      this.host.irq.deliver(data & 0xff, this.source);
      return;
    }
    this.fault(
      new VfioError('EFAULT', `${what} message goes to ${hexOf(address)}, outside the MSI window.`, {
        hint: `Program the message address to 0x${MSI_WINDOW_BASE.toString(16)}.`,
      }),
      what,
      -1,
      0,
    );
  }
}
