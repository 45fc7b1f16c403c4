/**
 * One mtty instance: a WCH CH352-compatible PCI serial card with one or two 16550 ports, each
 * in its own 8-byte I/O BAR, sharing INTA#. The device is a PciDeviceModel: a config space
 * built once, a handler per BAR, and INTx raised when a UART asks for an interrupt.
 */
import {
  type BarBacking,
  ConfigSpace,
  PciDeviceModel,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_REQ_IRQ_INDEX,
} from '@vfiokit/core';
import { MttyMigration } from './migration.js';
import { Uart16550, type UartHost } from './uart16550.js';

// samples/vfio-mdev/mtty.c mtty_create_config_space: vendor/device dword 0x32534348, the same as
// subsystem; pci_ids.h PCI_VENDOR_ID_WCH 0x4348, PCI_DEVICE_ID_WCH_CH352_1S 0x3253
export const MTTY_VENDOR_ID = 0x4348;
export const MTTY_DEVICE_ID = 0x3253;
/** mtty.c: base class 07 (simple communication), subclass 00 (serial), prog-if 02 (16550). */
export const MTTY_CLASS_CODE = 0x070002;
/** mtty.c: revision 0x10. */
export const MTTY_REVISION = 0x10;
/** mtty.c MTTY_IO_BAR_SIZE. */
export const MTTY_IO_BAR_SIZE = 8;

/** mtty.c: the vendor-specific bytes at 0x40..0x4f and the string "PCI Serial/UART" at 0x60. */
const VENDOR_BYTES = Uint8Array.of(0x23, 0, 0, 0x80, 0x23, 0, 0, 0, 0x23, 0, 0, 0, 0x23, 0, 0, 0);
const VENDOR_STRING = new TextEncoder().encode('PCI Serial/UART');

export type MttyPorts = 1 | 2;

/**
 * The config space of an mtty card. mtty.c keeps 0xff bytes; a conventional PCI function has
 * 256, which is what we build. mtty powers on with COMMAND.IO set; here the power-on COMMAND is
 * 0, as on real hardware, and the guest's firmware enables I/O decode.
 */
export function mttyConfigSpace(ports: MttyPorts, name?: string): ConfigSpace {
  const config = new ConfigSpace({
    ...(name !== undefined ? { name } : {}),
    identity: {
      vendorId: MTTY_VENDOR_ID,
      deviceId: MTTY_DEVICE_ID,
      subsystemVendorId: MTTY_VENDOR_ID,
      subsystemId: MTTY_DEVICE_ID,
      classCode: MTTY_CLASS_CODE,
      revision: MTTY_REVISION,
      interruptPin: 1, // mtty.c: INTA#
    },
  });
  for (let bar = 0; bar < ports; bar++) config.defineBar({ index: bar, kind: 'io', size: MTTY_IO_BAR_SIZE });
  config.defineField(0x40, VENDOR_BYTES);
  config.defineField(0x60, VENDOR_STRING);
  return config;
}

export class MttyDevice extends PciDeviceModel implements UartHost {
  readonly ports: readonly Uart16550[];
  declare readonly migration: MttyMigration;
  /** The level of INTA# as last signalled: an interrupt goes out when it rises. */
  private intxAsserted = false;

  constructor(name: string, ports: MttyPorts) {
    const uarts = Array.from({ length: ports }, () => new Uart16550());
    const bars: Partial<Record<0 | 1, BarBacking>> = { 0: { handler: uarts[0] } };
    if (ports === 2) bars[1] = { handler: uarts[1] };
    super({
      name,
      config: mttyConfigSpace(ports, name),
      bars,
      // mtty_get_irq_info answers INTx and MSI (count 1) and EINVAL for the rest. mtty's config
      // space has no MSI capability, so a guest can never enable MSI; we report MSI as the config
      // space says (count 0) to keep IRQ info consistent with the capabilities, and keep the
      // EINVAL answers for MSI-X, ERR and REQ.
      irqs: {
        [VFIO_PCI_MSIX_IRQ_INDEX]: null,
        [VFIO_PCI_ERR_IRQ_INDEX]: null,
        [VFIO_PCI_REQ_IRQ_INDEX]: null,
      },
    });
    this.ports = uarts;
    for (const uart of uarts) uart.host = this;
    this.migration = new MttyMigration(this);
  }

  /** UartHost: follow the OR of the ports' interrupt requests on INTA#. */
  interruptChanged(): void {
    let pending = false;
    for (let i = 0; i < this.ports.length; i++) pending ||= this.ports[i].interruptPending;
    if (pending === this.intxAsserted) return;
    this.intxAsserted = pending;
    if (pending) this.raiseInterrupt();
    else this.lowerIntx();
  }

  /** UartHost: character timeouts run on the host's clock while the device is open. */
  schedule(ns: number, fn: () => void): () => void {
    return this.isOpen ? this.ctx.clock.schedule(ns, fn) : noop;
  }

  /** After a migration load: take the line level from the restored ports without signalling (the device is stopped). */
  syncInterruptLine(): void {
    let pending = false;
    for (const uart of this.ports) pending ||= uart.interruptPending;
    this.intxAsserted = pending;
    this.config.setInterruptStatus(pending);
  }

  protected override onReset(): void {
    for (const uart of this.ports) uart.reset();
    this.intxAsserted = false;
    this.migration.reset();
  }

  protected override onClose(): void {
    for (const uart of this.ports) uart.stopTimer();
  }

  /** A trigger attached to INTx while the line is already up gets the interrupt it would have missed. */
  protected override onIrqsChanged(index: number, count: number): void {
    if (index === VFIO_PCI_INTX_IRQ_INDEX && count > 0 && this.intxAsserted) this.raiseIntx();
  }
}

function noop(): void {}
