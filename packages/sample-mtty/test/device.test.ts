import {
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_BAR1_REGION_INDEX,
  VFIO_PCI_BAR2_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_REQ_IRQ_INDEX,
  VfioError,
} from '@vfiokit/core';
import { vfioPciIndexToOffset } from '@vfiokit/core/abi';
import { describe, expect, it } from 'vitest';
import {
  UART_FCR,
  UART_IER,
  UART_IER_RDI,
  UART_IER_THRI,
  UART_IIR,
  UART_LSR,
  UART_RX,
  UART_SCR,
  UART_TX,
} from '../src/uart16550.js';
import { openMtty } from './helpers.js';

describe('mtty PCI identity and BARs seen through DeviceFile', () => {
  it('shows the WCH CH352 identity of mtty.c: 4348:3253, the same subsystem, class 07/00/02, revision 0x10, INTA#', () => {
    const { cfgRead32 } = openMtty('mtty-1');
    expect(cfgRead32(0x00)).toBe(0x32534348);
    expect(cfgRead32(0x08)).toBe(0x07000210);
    expect(cfgRead32(0x2c)).toBe(0x32534348);
    expect((cfgRead32(0x0c) >>> 16) & 0xff).toBe(0); // header type 0
    expect(cfgRead32(0x34) & 0xff).toBe(0); // no capability list
    expect((cfgRead32(0x04) >>> 16) & 0x10).toBe(0); // STATUS.CAP_LIST clear
    expect((cfgRead32(0x3c) >>> 8) & 0xff).toBe(1); // interrupt pin INTA#
  });

  it('keeps mtty.c vendor bytes at 0x40 and "PCI Serial/UART" at 0x60', () => {
    const { cfgRead32, file } = openMtty('mtty-1');
    expect(cfgRead32(0x40)).toBe(0x80000023);
    const text = new Uint8Array(15);
    file.read(vfioPciIndexToOffset(VFIO_PCI_CONFIG_REGION_INDEX) + 0x60, text);
    expect(new TextDecoder().decode(text)).toBe('PCI Serial/UART');
  });

  it('sizes BAR0 as an 8-byte I/O BAR and takes an address', () => {
    const { cfgRead32, cfgWrite32 } = openMtty('mtty-1');
    expect(cfgRead32(0x10)).toBe(0x1);
    cfgWrite32(0x10, 0xffffffff);
    expect(cfgRead32(0x10)).toBe(0xfffffff9);
    cfgWrite32(0x10, 0xc000);
    expect(cfgRead32(0x10)).toBe(0xc001);
  });

  it('gives a single-port card one I/O BAR and a dual-port card two, and reports them as 8-byte read/write regions', () => {
    const single = openMtty('mtty-1');
    expect(single.file.regionInfo(VFIO_PCI_BAR0_REGION_INDEX)).toMatchObject({
      size: 8,
      read: true,
      write: true,
      mmap: false,
    });
    expect(single.file.regionInfo(VFIO_PCI_BAR1_REGION_INDEX).size).toBe(0);
    single.cfgWrite32(0x14, 0xffffffff);
    expect(single.cfgRead32(0x14)).toBe(0);
    const dual = openMtty('mtty-2');
    expect(dual.file.regionInfo(VFIO_PCI_BAR1_REGION_INDEX)).toMatchObject({
      size: 8,
      read: true,
      write: true,
    });
    expect(dual.file.regionInfo(VFIO_PCI_BAR2_REGION_INDEX).size).toBe(0);
    dual.cfgWrite32(0x14, 0xffffffff);
    expect(dual.cfgRead32(0x14)).toBe(0xfffffff9);
    expect(dual.file.regionInfo(VFIO_PCI_CONFIG_REGION_INDEX).size).toBe(256);
  });

  it('refuses an access past the 8-byte BAR with EINVAL', () => {
    const { file } = openMtty('mtty-1');
    expect(() => file.read(vfioPciIndexToOffset(0) + 7, new Uint8Array(2))).toThrow(VfioError);
  });

  it('reports INTx (maskable, automasked), MSI with count 0 for lack of an MSI capability, and EINVAL for MSI-X, ERR, REQ', () => {
    const { file } = openMtty('mtty-1');
    expect(file.irqInfo(VFIO_PCI_INTX_IRQ_INDEX)).toMatchObject({
      count: 1,
      eventfd: true,
      maskable: true,
      automasked: true,
    });
    expect(file.irqInfo(VFIO_PCI_MSI_IRQ_INDEX).count).toBe(0);
    for (const index of [VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_ERR_IRQ_INDEX, VFIO_PCI_REQ_IRQ_INDEX]) {
      expect(() => file.irqInfo(index)).toThrow(/no IRQ index/);
    }
  });
});

describe('mtty serial ports through DeviceFile', () => {
  it('echoes what the guest writes to THR back on RBR', () => {
    const { barRead, barWrite } = openMtty('mtty-1');
    barWrite(0, UART_FCR, 0x01);
    for (const ch of 'ok') barWrite(0, UART_TX, ch.charCodeAt(0));
    expect(String.fromCharCode(barRead(0, UART_RX), barRead(0, UART_RX))).toBe('ok');
    expect(barRead(0, UART_LSR)).toBe(0x60);
  });

  it('keeps the two ports of a dual card apart', () => {
    const { barRead, barWrite } = openMtty('mtty-2');
    barWrite(0, UART_TX, 0x41);
    barWrite(1, UART_SCR, 0x77);
    expect(barRead(1, UART_LSR) & 1).toBe(0);
    expect(barRead(0, UART_RX)).toBe(0x41);
    expect(barRead(0, UART_SCR)).toBe(0);
    expect(barRead(1, UART_SCR)).toBe(0x77);
  });

  it('signals INTx when a port asks for an interrupt, holds it while automasked and delivers it on unmask', () => {
    const { host, file, device, barRead, barWrite, cfgRead32 } = openMtty('mtty-2');
    const fd = host.createEventfd();
    file.setIrqs({
      action: 'trigger',
      index: 0,
      start: 0,
      count: 1,
      data: 'eventfd',
      triggers: [host.resolveEventfd(fd)],
    });
    const efd = host.eventfd(fd)!;
    barWrite(1, UART_IER, UART_IER_RDI);
    expect(efd.count).toBe(0);
    barWrite(1, UART_TX, 0x31);
    expect(efd.count).toBe(1);
    expect((cfgRead32(0x04) >>> 16) & 0x08).toBe(0x08); // STATUS.INTERRUPT
    expect(barRead(1, UART_IIR)).toBe(0x04);
    barRead(1, UART_RX);
    expect((cfgRead32(0x04) >>> 16) & 0x08).toBe(0); // the line went down
    barWrite(1, UART_TX, 0x32); // up again while automasked: held
    expect(efd.count).toBe(1);
    file.setIrqs({ action: 'unmask', index: 0, start: 0, count: 1, data: 'none' });
    expect(efd.count).toBe(2);
    expect(device.ports[1].interruptPending).toBe(true);
  });

  it('does not signal while COMMAND.INTX_DISABLE is set, but still shows STATUS.INTERRUPT', () => {
    const { host, file, barWrite, cfgRead32, cfgWrite32 } = openMtty('mtty-1');
    const fd = host.createEventfd();
    file.setIrqs({
      action: 'trigger',
      index: 0,
      start: 0,
      count: 1,
      data: 'eventfd',
      triggers: [host.resolveEventfd(fd)],
    });
    cfgWrite32(0x04, 0x401);
    barWrite(0, UART_IER, UART_IER_THRI);
    expect(host.eventfd(fd)!.count).toBe(0);
    expect((cfgRead32(0x04) >>> 16) & 0x08).toBe(0x08);
  });

  it('signals an interrupt raised before INTx had a trigger once the trigger is attached', () => {
    const { host, file, barWrite } = openMtty('mtty-1');
    barWrite(0, UART_IER, UART_IER_THRI);
    const fd = host.createEventfd();
    file.setIrqs({
      action: 'trigger',
      index: 0,
      start: 0,
      count: 1,
      data: 'eventfd',
      triggers: [host.resolveEventfd(fd)],
    });
    expect(host.eventfd(fd)!.count).toBe(1);
  });

  it('fires the character timeout on the host clock', () => {
    const { host, file, barRead, barWrite } = openMtty('mtty-1');
    const fd = host.createEventfd();
    file.setIrqs({
      action: 'trigger',
      index: 0,
      start: 0,
      count: 1,
      data: 'eventfd',
      triggers: [host.resolveEventfd(fd)],
    });
    barWrite(0, UART_FCR, 0xc1); // trigger level 14
    barWrite(0, UART_IER, UART_IER_RDI);
    barWrite(0, UART_TX, 0x61);
    expect(host.eventfd(fd)!.count).toBe(0);
    host.clock.advance(1_000_000_000);
    expect(host.eventfd(fd)!.count).toBe(1);
    expect(barRead(0, UART_IIR)).toBe(0xcc);
  });

  it('returns the ports and config space to power-on state on VFIO_DEVICE_RESET', () => {
    const { file, barRead, barWrite, cfgRead32, cfgWrite32 } = openMtty('mtty-1');
    cfgWrite32(0x10, 0xc000);
    barWrite(0, UART_SCR, 0x12);
    barWrite(0, UART_IER, UART_IER_THRI);
    barWrite(0, UART_TX, 0x33);
    file.reset();
    expect(cfgRead32(0x10)).toBe(1);
    expect((cfgRead32(0x04) >>> 16) & 0x08).toBe(0);
    expect(barRead(0, UART_SCR)).toBe(0);
    expect(barRead(0, UART_IER)).toBe(0);
    expect(barRead(0, UART_LSR)).toBe(0x60);
  });
});
