/**
 * A 16550A UART as mtty models it: eight byte-wide registers in an I/O BAR, and a loopback
 * FIFO, so every byte written to THR comes back on RBR. Register behaviour follows the
 * National Semiconductor PC16550D datasheet where mtty.c simplifies (trigger levels, the
 * character timeout, MCR loopback on MSR, OE cleared by reading LSR).
 */
import { VfioError } from '@vfiokit/core';

// Register offsets, include/uapi/linux/serial_reg.h
export const UART_RX = 0; // RBR (read, DLAB=0)
export const UART_TX = 0; // THR (write, DLAB=0)
export const UART_DLL = 0; // divisor latch low (DLAB=1)
export const UART_IER = 1;
export const UART_DLM = 1; // divisor latch high (DLAB=1)
export const UART_IIR = 2; // read
export const UART_FCR = 2; // write
export const UART_LCR = 3;
export const UART_MCR = 4;
export const UART_LSR = 5;
export const UART_MSR = 6;
export const UART_SCR = 7;

// Register bits, include/uapi/linux/serial_reg.h
export const UART_IER_RDI = 0x01;
export const UART_IER_THRI = 0x02;
export const UART_IER_RLSI = 0x04;
export const UART_IER_MSI = 0x08;
export const UART_IIR_NO_INT = 0x01;
export const UART_IIR_MSI = 0x00;
export const UART_IIR_THRI = 0x02;
export const UART_IIR_RDI = 0x04;
export const UART_IIR_RLSI = 0x06;
export const UART_IIR_RX_TIMEOUT = 0x0c;
export const UART_IIR_FIFO_ENABLED = 0xc0; // PC16550D: IIR bits 7:6 set while FCR bit 0 is set
export const UART_FCR_ENABLE_FIFO = 0x01;
export const UART_FCR_CLEAR_RCVR = 0x02;
export const UART_FCR_CLEAR_XMIT = 0x04;
export const UART_FCR_TRIGGER_MASK = 0xc0;
export const UART_LCR_DLAB = 0x80;
export const UART_MCR_DTR = 0x01;
export const UART_MCR_RTS = 0x02;
export const UART_MCR_OUT1 = 0x04;
export const UART_MCR_OUT2 = 0x08;
export const UART_MCR_LOOP = 0x10;
export const UART_LSR_DR = 0x01;
export const UART_LSR_OE = 0x02;
export const UART_LSR_THRE = 0x20;
export const UART_LSR_TEMT = 0x40;
export const UART_MSR_DCTS = 0x01;
export const UART_MSR_DDSR = 0x02;
export const UART_MSR_TERI = 0x04;
export const UART_MSR_DDCD = 0x08;
export const UART_MSR_CTS = 0x10;
export const UART_MSR_DSR = 0x20;
export const UART_MSR_RI = 0x40;
export const UART_MSR_DCD = 0x80;

/** mtty.c MAX_FIFO_SIZE; the 16550's receive FIFO depth. */
export const UART_FIFO_SIZE = 16;
/** PC16550D: FCR bits 7:6 select a receive trigger of 1, 4, 8 or 14 bytes. */
const TRIGGER_LEVELS = [1, 4, 8, 14] as const;
/** The PC UART clock 1.8432 MHz / 16: the baud rate at divisor 1. */
const BASE_BAUD = 115200;
/** PC16550D: the character timeout fires after four character times without FIFO activity. */
const TIMEOUT_CHARS = 4;
/** What the modem lines read outside loopback: a peer that is there (mtty.c reports CTS, DSR and DCD). */
const PEER_LINES = UART_MSR_CTS | UART_MSR_DSR | UART_MSR_DCD;

/** Bytes of one port's state in a migration stream (see saveState). */
export const UART_STATE_SIZE = 10 + UART_FIFO_SIZE;

/** What the UART needs from the device it sits in. */
export interface UartHost {
  /** Called after anything that may have changed `interruptPending`. */
  interruptChanged(): void;
  /** Run `fn` after `ns` nanoseconds; returns a cancel function. */
  schedule(ns: number, fn: () => void): () => void;
}

export class Uart16550 {
  /** Set by the device; a UART without a host still works but has no character timeout. */
  host: UartHost | undefined;
  private ier = 0;
  private lcr = 0;
  private mcr = 0;
  private scr = 0;
  private fcr = 0;
  private divisor = 0;
  private readonly fifo = new Uint8Array(UART_FIFO_SIZE);
  private head = 0;
  private count = 0;
  private overrun = false;
  private timedOut = false;
  private lines = PEER_LINES;
  private deltas = 0;
  private cancelTimer: (() => void) | undefined;
  private readonly onTimer = (): void => {
    this.cancelTimer = undefined;
    if (this.count > 0) {
      this.timedOut = true;
      this.host?.interruptChanged();
    }
  };

  /** Master reset (PC16550D table: IER, IIR, FCR, LCR, MCR, LSR, MSR deltas cleared). */
  reset(): void {
    this.stopTimer();
    this.ier = this.lcr = this.mcr = this.scr = this.fcr = this.divisor = 0;
    this.head = this.count = 0;
    this.overrun = this.timedOut = false;
    this.lines = PEER_LINES;
    this.deltas = 0;
  }

  /** Cancel a pending character timeout (the device is closing). */
  stopTimer(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  // ---- the I/O BAR: one byte per register ----------------------------------------------------

  read(offset: number, dst: Uint8Array): void {
    for (let i = 0; i < dst.length; i++) dst[i] = this.readRegister(offset + i);
    this.host?.interruptChanged();
  }

  write(offset: number, src: Uint8Array): void {
    for (let i = 0; i < src.length; i++) this.writeRegister(offset + i, src[i]);
    this.host?.interruptChanged();
  }

  readRegister(offset: number): number {
    const dlab = (this.lcr & UART_LCR_DLAB) !== 0;
    switch (offset & 7) {
      case UART_RX:
        return dlab ? this.divisor & 0xff : this.popReceived();
      case UART_IER:
        return dlab ? this.divisor >>> 8 : this.ier;
      case UART_IIR:
        return this.iir();
      case UART_LCR:
        return this.lcr;
      case UART_MCR:
        return this.mcr;
      case UART_LSR: {
        const lsr = this.lsr();
        this.overrun = false; // PC16550D: OE is cleared when the CPU reads LSR
        return lsr;
      }
      case UART_MSR: {
        const msr = this.lines | this.deltas;
        this.deltas = 0; // PC16550D: delta bits are cleared when the CPU reads MSR
        return msr;
      }
      default:
        return this.scr;
    }
  }

  writeRegister(offset: number, value: number): void {
    const dlab = (this.lcr & UART_LCR_DLAB) !== 0;
    switch (offset & 7) {
      case UART_TX:
        if (dlab) this.divisor = (this.divisor & 0xff00) | value;
        else this.transmit(value);
        return;
      case UART_IER:
        if (dlab) this.divisor = (this.divisor & 0x00ff) | (value << 8);
        else this.ier = value & 0x0f; // bits 7:4 are always 0 on a 16550
        return;
      case UART_FCR:
        this.writeFcr(value);
        return;
      case UART_LCR:
        this.lcr = value;
        return;
      case UART_MCR:
        this.mcr = value & 0x1f; // bits 7:5 are always 0 on a 16550
        this.updateModemLines();
        return;
      case UART_SCR:
        this.scr = value;
        return;
      default:
        return; // LSR and MSR are read-only here (mtty.c ignores writes to both)
    }
  }

  // ---- interrupt output ----------------------------------------------------------------------

  /** IIR bit 0 clear: the UART asks for an interrupt. */
  get interruptPending(): boolean {
    return (this.iir() & UART_IIR_NO_INT) === 0;
  }

  /** IIR, highest priority first (PC16550D table 4): line status, received data or timeout, THR empty, modem status. */
  private iir(): number {
    const fifoBits = this.fifoEnabled ? UART_IIR_FIFO_ENABLED : 0;
    const ier = this.ier;
    if (ier & UART_IER_RLSI && this.overrun) return fifoBits | UART_IIR_RLSI;
    if (ier & UART_IER_RDI && this.count >= this.triggerLevel) return fifoBits | UART_IIR_RDI;
    if (ier & UART_IER_RDI && this.timedOut) return fifoBits | UART_IIR_RX_TIMEOUT;
    if (ier & UART_IER_THRI && this.count === 0) return fifoBits | UART_IIR_THRI;
    if (ier & UART_IER_MSI && this.deltas !== 0) return fifoBits | UART_IIR_MSI;
    return fifoBits | UART_IIR_NO_INT;
  }

  /** mtty.c: transmitter and receiver share the loopback FIFO, so THR is empty when the FIFO is. */
  private lsr(): number {
    let lsr = 0;
    if (this.count > 0) lsr |= UART_LSR_DR;
    else lsr |= UART_LSR_THRE | UART_LSR_TEMT;
    if (this.overrun) lsr |= UART_LSR_OE;
    return lsr;
  }

  private get fifoEnabled(): boolean {
    return (this.fcr & UART_FCR_ENABLE_FIFO) !== 0;
  }

  private get triggerLevel(): number {
    return this.fifoEnabled ? TRIGGER_LEVELS[this.fcr >>> 6] : 1;
  }

  // ---- the loopback FIFO ---------------------------------------------------------------------

  private transmit(byte: number): void {
    const depth = this.fifoEnabled ? UART_FIFO_SIZE : 1;
    if (this.count < depth) {
      this.fifo[(this.head + this.count) % UART_FIFO_SIZE] = byte;
      this.count++;
    } else {
      // PC16550D: a byte arriving at a full FIFO is lost (in 16450 mode it replaces RBR); OE is set
      if (!this.fifoEnabled) this.fifo[this.head] = byte;
      this.overrun = true;
    }
    this.armTimer();
  }

  private popReceived(): number {
    if (this.count === 0) return 0;
    const byte = this.fifo[this.head];
    this.head = (this.head + 1) % UART_FIFO_SIZE;
    this.count--;
    this.timedOut = false; // PC16550D: reading RBR clears the timeout interrupt and restarts the timer
    this.armTimer();
    return byte;
  }

  private writeFcr(value: number): void {
    const enable = value & UART_FCR_ENABLE_FIFO;
    // PC16550D: changing FCR bit 0 clears both FIFOs; bits 1 and 2 clear them and then clear themselves
    if (enable !== (this.fcr & UART_FCR_ENABLE_FIFO) || value & (UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT)) {
      this.head = this.count = 0;
      this.timedOut = false;
      this.stopTimer();
    }
    // PC16550D: the other FCR bits can be written only with bit 0 set; bits 5:4 are reserved
    this.fcr = enable ? value & (UART_FCR_TRIGGER_MASK | 0x08 | UART_FCR_ENABLE_FIFO) : 0;
  }

  /** Restart the character timeout: four character times after the last FIFO activity (FIFO mode only). */
  private armTimer(): void {
    this.stopTimer();
    if (!this.host || !this.fifoEnabled || this.count === 0) return;
    const bits = 1 + 5 + (this.lcr & 3) + ((this.lcr >>> 3) & 1) + 1 + ((this.lcr >>> 2) & 1); // start, data, parity, stop
    const ns = (TIMEOUT_CHARS * bits * Math.max(1, this.divisor) * 1e9) / BASE_BAUD;
    this.cancelTimer = this.host.schedule(Math.ceil(ns), this.onTimer);
  }

  /** PC16550D: in loopback CTS, DSR, RI and DCD follow RTS, DTR, OUT1 and OUT2; a change sets the delta bits. */
  private updateModemLines(): void {
    const m = this.mcr;
    const lines =
      m & UART_MCR_LOOP
        ? (m & UART_MCR_RTS ? UART_MSR_CTS : 0) |
          (m & UART_MCR_DTR ? UART_MSR_DSR : 0) |
          (m & UART_MCR_OUT1 ? UART_MSR_RI : 0) |
          (m & UART_MCR_OUT2 ? UART_MSR_DCD : 0)
        : PEER_LINES;
    const changed = lines ^ this.lines;
    if (changed & UART_MSR_CTS) this.deltas |= UART_MSR_DCTS;
    if (changed & UART_MSR_DSR) this.deltas |= UART_MSR_DDSR;
    if (changed & UART_MSR_DCD) this.deltas |= UART_MSR_DDCD;
    if (this.lines & UART_MSR_RI && !(lines & UART_MSR_RI)) this.deltas |= UART_MSR_TERI; // trailing edge only
    this.lines = lines;
  }

  // ---- migration -----------------------------------------------------------------------------

  /**
   * The port's state as UART_STATE_SIZE bytes: IER, LCR, MCR, SCR, FCR, DLL, DLM, flags (bit 0
   * overrun, bit 1 timeout), MSR deltas, FIFO count, then the FIFO bytes oldest first.
   */
  saveState(dst: Uint8Array): void {
    dst.fill(0, 0, UART_STATE_SIZE);
    dst[0] = this.ier;
    dst[1] = this.lcr;
    dst[2] = this.mcr;
    dst[3] = this.scr;
    dst[4] = this.fcr;
    dst[5] = this.divisor & 0xff;
    dst[6] = this.divisor >>> 8;
    dst[7] = (this.overrun ? 1 : 0) | (this.timedOut ? 2 : 0);
    dst[8] = this.deltas;
    dst[9] = this.count;
    for (let i = 0; i < this.count; i++) dst[10 + i] = this.fifo[(this.head + i) % UART_FIFO_SIZE];
  }

  /** What is wrong with a saved state, or undefined when it is one a 16550 can be in. */
  static checkState(src: Uint8Array): string | undefined {
    if (src.length < UART_STATE_SIZE) return `it has ${src.length} of ${UART_STATE_SIZE} bytes`;
    const fifoOn = (src[4] & UART_FCR_ENABLE_FIFO) !== 0;
    if (src[0] & 0xf0) return `IER 0x${src[0].toString(16)} has bits 7:4 set`;
    if (src[2] & 0xe0) return `MCR 0x${src[2].toString(16)} has bits 7:5 set`;
    if (src[4] & 0x36 || (!fifoOn && src[4] !== 0))
      return `FCR 0x${src[4].toString(16)} is not a value FCR can hold`;
    if (src[7] & ~3) return `flags 0x${src[7].toString(16)} has unknown bits`;
    if (src[8] & 0xf0) return `MSR deltas 0x${src[8].toString(16)} has bits 7:4 set`;
    if (src[9] > (fifoOn ? UART_FIFO_SIZE : 1)) return `FIFO count ${src[9]} exceeds the FIFO depth`;
    return undefined;
  }

  /** Load a state made by saveState; throws VfioError EINVAL (and changes nothing) for a state a 16550 cannot be in. */
  loadState(src: Uint8Array): void {
    const problem = Uart16550.checkState(src);
    if (problem !== undefined) {
      throw new VfioError('EINVAL', `the saved UART state is not valid: ${problem}.`, {
        hint: 'The migration stream is corrupted or comes from another device model.',
      });
    }
    this.stopTimer();
    this.ier = src[0];
    this.lcr = src[1];
    this.mcr = src[2];
    this.scr = src[3];
    this.fcr = src[4];
    this.divisor = src[5] | (src[6] << 8);
    this.overrun = (src[7] & 1) !== 0;
    this.timedOut = (src[7] & 2) !== 0;
    this.deltas = src[8];
    this.count = src[9];
    this.head = 0;
    this.fifo.fill(0);
    this.fifo.set(src.subarray(10, 10 + this.count));
    this.lines = PEER_LINES;
    const deltas = this.deltas;
    this.updateModemLines();
    this.deltas = deltas; // the lines follow MCR; the saved deltas stand as they were
    if (!this.timedOut) this.armTimer();
  }
}
