/**
 * The guest side of mtty: what Linux's 8250_pci + 8250 core do with a CH352 port, acting only
 * through the guest's view (port I/O at the BAR the probe assigned, and the INTx vector).
 * It binds by PCI ID, checks each port the way serial8250's autoconfig does (scratch register,
 * loopback MSR test, FIFO detection), programs 115200 8N1, sends a line and reads it back,
 * and checks that the receive interrupt arrived.
 */
import type { GuestDriver, GuestDriverResult, GuestView, ProbedDevice } from '@vfiokit/core';
import { MTTY_DEVICE_ID, MTTY_VENDOR_ID } from './mtty-device.js';
import {
  UART_DLL,
  UART_DLM,
  UART_FCR,
  UART_FCR_CLEAR_RCVR,
  UART_FCR_CLEAR_XMIT,
  UART_FCR_ENABLE_FIFO,
  UART_IER,
  UART_IER_RDI,
  UART_IIR,
  UART_IIR_FIFO_ENABLED,
  UART_LCR,
  UART_LCR_DLAB,
  UART_LSR,
  UART_LSR_DR,
  UART_MCR,
  UART_MCR_LOOP,
  UART_MCR_OUT2,
  UART_MSR,
  UART_RX,
  UART_SCR,
  UART_TX,
} from './uart16550.js';

/** The line each port sends and expects back. */
export const MTTY_TEST_LINE = 'hello from the guest\n';

/** 8250: 1.8432 MHz / 16 / 115200 = divisor 1. */
const DIVISOR_115200 = 1;
/** LCR 8N1: 8 data bits (0x03), one stop bit, no parity. */
const LCR_8N1 = 0x03;

function checkPort(guest: GuestView, base: number): string | undefined {
  // serial8250 autoconfig: the scratch register holds what is written.
  guest.ioWrite(base + UART_SCR, 1, 0xa5);
  if (guest.ioRead(base + UART_SCR, 1) !== 0xa5) return 'the scratch register does not hold 0xa5';
  // autoconfig's loopback test: MCR loop with OUT2|RTS... (0x1a) must show CTS|DCD in MSR (0x90).
  const savedMcr = guest.ioRead(base + UART_MCR, 1);
  guest.ioWrite(base + UART_MCR, 1, UART_MCR_LOOP | 0x0a);
  const msr = guest.ioRead(base + UART_MSR, 1) & 0xf0;
  guest.ioWrite(base + UART_MCR, 1, savedMcr);
  if (msr !== 0x90) return `the loopback test read MSR 0x${msr.toString(16)}, expected 0x90`;
  // FIFO detection: IIR bits 7:6 both set once FCR enables the FIFOs (a 16550A).
  guest.ioWrite(base + UART_FCR, 1, UART_FCR_ENABLE_FIFO);
  if ((guest.ioRead(base + UART_IIR, 1) & UART_IIR_FIFO_ENABLED) !== UART_IIR_FIFO_ENABLED)
    return 'no 16550A FIFO';
  return undefined;
}

async function exercisePort(
  guest: GuestView,
  base: number,
  vector: number | undefined,
): Promise<string | undefined> {
  const problem = checkPort(guest, base);
  if (problem) return problem;
  guest.ioWrite(base + UART_LCR, 1, UART_LCR_DLAB);
  guest.ioWrite(base + UART_DLL, 1, DIVISOR_115200 & 0xff);
  guest.ioWrite(base + UART_DLM, 1, DIVISOR_115200 >> 8);
  guest.ioWrite(base + UART_LCR, 1, LCR_8N1);
  guest.ioWrite(base + UART_FCR, 1, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT);
  guest.ioWrite(base + UART_MCR, 1, UART_MCR_OUT2); // OUT2 gates the interrupt line on PC serial ports
  guest.ioWrite(base + UART_IER, 1, UART_IER_RDI);
  const before = vector === undefined ? 0 : guest.interrupts.count(vector);
  const sent = new TextEncoder().encode(MTTY_TEST_LINE);
  const got: number[] = [];
  // The FIFO holds 16 bytes: send in chunks and drain what comes back, as the 8250 driver's
  // interrupt handler would.
  for (let i = 0; i < sent.length; i += 8) {
    for (const byte of sent.subarray(i, i + 8)) guest.ioWrite(base + UART_TX, 1, byte);
    if (vector !== undefined) {
      await guest.interrupts.waitFor(vector, before + 1, 1000);
    }
    while (guest.ioRead(base + UART_LSR, 1) & UART_LSR_DR) got.push(guest.ioRead(base + UART_RX, 1));
    if (vector !== undefined) guest.interrupts.eoi(vector);
  }
  guest.ioWrite(base + UART_IER, 1, 0);
  const echoed = new TextDecoder().decode(Uint8Array.from(got));
  if (echoed !== MTTY_TEST_LINE)
    return `sent ${JSON.stringify(MTTY_TEST_LINE)} and read back ${JSON.stringify(echoed)}`;
  if (vector !== undefined && guest.interrupts.count(vector) === before)
    return 'no receive interrupt arrived';
  return undefined;
}

export const mttyGuestDriver: GuestDriver = {
  name: 'mtty-8250',
  matches: (d: ProbedDevice) => d.vendorId === MTTY_VENDOR_ID && d.deviceId === MTTY_DEVICE_ID,
  async run(guest: GuestView, device: ProbedDevice): Promise<GuestDriverResult> {
    const ports = device.bars.filter((b) => b.kind === 'io' && b.address !== 0);
    if (ports.length === 0)
      return { ok: false, summary: 'no I/O BAR was assigned, so the ports cannot be reached' };
    const vector = device.interrupts.kind === 'intx' ? device.interrupts.vectors[0] : undefined;
    const facts: Record<string, unknown> = { ports: ports.length, irq: device.interrupts.kind };
    for (const bar of ports) {
      const problem = await exercisePort(guest, bar.address, vector);
      const label = `ttyS@0x${bar.address.toString(16)}`;
      if (problem) return { ok: false, summary: `${label}: ${problem}`, facts };
      facts[label] = 'echo ok';
    }
    return {
      ok: true,
      summary: `${ports.length} 16550A port(s) at 115200 8N1 echoed ${JSON.stringify(MTTY_TEST_LINE.trim())}`,
      facts,
    };
  },
};
