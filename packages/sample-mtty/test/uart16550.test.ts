import { VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  UART_DLL,
  UART_DLM,
  UART_FCR,
  UART_FCR_CLEAR_RCVR,
  UART_FCR_ENABLE_FIFO,
  UART_FIFO_SIZE,
  UART_IER,
  UART_IER_MSI,
  UART_IER_RDI,
  UART_IER_RLSI,
  UART_IER_THRI,
  UART_IIR,
  UART_LCR,
  UART_LCR_DLAB,
  UART_LSR,
  UART_LSR_DR,
  UART_LSR_OE,
  UART_LSR_TEMT,
  UART_LSR_THRE,
  UART_MCR,
  UART_MCR_LOOP,
  UART_MSR,
  UART_RX,
  UART_SCR,
  UART_STATE_SIZE,
  UART_TX,
  Uart16550,
  type UartHost,
} from '../src/uart16550.js';

/** A host with a hand-driven timer: `fire()` runs the pending character timeout. */
function timerHost() {
  const host = {
    changes: 0,
    pending: undefined as (() => void) | undefined,
    lastNs: 0,
    interruptChanged() {
      host.changes++;
    },
    schedule(ns: number, fn: () => void) {
      host.lastNs = ns;
      host.pending = fn;
      return () => {
        if (host.pending === fn) host.pending = undefined;
      };
    },
    fire() {
      const fn = host.pending;
      host.pending = undefined;
      fn?.();
    },
  } satisfies UartHost & Record<string, unknown>;
  return host;
}

function send(uart: Uart16550, text: string): void {
  for (const ch of text) uart.writeRegister(UART_TX, ch.charCodeAt(0));
}

function receive(uart: Uart16550): string {
  let out = '';
  while (uart.readRegister(UART_LSR) & UART_LSR_DR) out += String.fromCharCode(uart.readRegister(UART_RX));
  return out;
}

describe('Uart16550 registers', () => {
  it('comes out of reset with no interrupt, an empty transmitter and a peer on the modem lines', () => {
    const uart = new Uart16550();
    expect(uart.readRegister(UART_IIR)).toBe(0x01);
    expect(uart.readRegister(UART_LSR)).toBe(UART_LSR_THRE | UART_LSR_TEMT);
    expect(uart.readRegister(UART_IER)).toBe(0);
    expect(uart.readRegister(UART_LCR)).toBe(0);
    expect(uart.readRegister(UART_MSR)).toBe(0xb0); // CTS, DSR, DCD
  });

  it('keeps IER to its four defined bits, as the 8250 driver probe expects', () => {
    const uart = new Uart16550();
    uart.writeRegister(UART_IER, 0xff);
    expect(uart.readRegister(UART_IER)).toBe(0x0f);
    uart.writeRegister(UART_IER, 0);
    expect(uart.readRegister(UART_IER)).toBe(0);
  });

  it('reads and writes the divisor latch at offsets 0 and 1 while LCR.DLAB is set, without touching THR or IER', () => {
    const uart = new Uart16550();
    uart.writeRegister(UART_IER, UART_IER_RDI);
    uart.writeRegister(UART_LCR, UART_LCR_DLAB | 0x03);
    uart.writeRegister(UART_DLL, 0x0c);
    uart.writeRegister(UART_DLM, 0x01);
    expect(uart.readRegister(UART_DLL)).toBe(0x0c);
    expect(uart.readRegister(UART_DLM)).toBe(0x01);
    expect(uart.readRegister(UART_LSR) & UART_LSR_DR).toBe(0);
    uart.writeRegister(UART_LCR, 0x03);
    expect(uart.readRegister(UART_IER)).toBe(UART_IER_RDI);
    expect(uart.readRegister(UART_LCR)).toBe(0x03);
    uart.writeRegister(UART_LCR, UART_LCR_DLAB);
    expect(uart.readRegister(UART_DLL) | (uart.readRegister(UART_DLM) << 8)).toBe(0x010c);
  });

  it('echoes what is written to THR back on RBR, in order, and reports DR until the FIFO is empty', () => {
    const uart = new Uart16550();
    uart.writeRegister(UART_FCR, UART_FCR_ENABLE_FIFO);
    send(uart, 'hello');
    expect(uart.readRegister(UART_LSR)).toBe(UART_LSR_DR);
    expect(receive(uart)).toBe('hello');
    expect(uart.readRegister(UART_LSR)).toBe(UART_LSR_THRE | UART_LSR_TEMT);
    expect(uart.readRegister(UART_RX)).toBe(0);
  });

  it('keeps the scratch register', () => {
    const uart = new Uart16550();
    uart.writeRegister(UART_SCR, 0x5a);
    expect(uart.readRegister(UART_SCR)).toBe(0x5a);
  });

  it('sets IIR bits 7:6 only while the FIFOs are enabled', () => {
    const uart = new Uart16550();
    expect(uart.readRegister(UART_IIR) & 0xc0).toBe(0);
    uart.writeRegister(UART_FCR, UART_FCR_ENABLE_FIFO);
    expect(uart.readRegister(UART_IIR)).toBe(0xc1);
    uart.writeRegister(UART_FCR, 0);
    expect(uart.readRegister(UART_IIR)).toBe(0x01);
  });

  it('clears the FIFO on FCR clear bits and when the FIFO enable bit changes', () => {
    const uart = new Uart16550();
    uart.writeRegister(UART_FCR, UART_FCR_ENABLE_FIFO);
    send(uart, 'abc');
    uart.writeRegister(UART_FCR, UART_FCR_ENABLE_FIFO | UART_FCR_CLEAR_RCVR);
    expect(uart.readRegister(UART_LSR) & UART_LSR_DR).toBe(0);
    send(uart, 'abc');
    uart.writeRegister(UART_FCR, 0);
    expect(uart.readRegister(UART_LSR) & UART_LSR_DR).toBe(0);
  });

  it('mirrors RTS, DTR, OUT1 and OUT2 on CTS, DSR, RI and DCD in loopback, as the 8250 probe tests (0x90)', () => {
    const uart = new Uart16550();
    uart.writeRegister(UART_MCR, UART_MCR_LOOP | 0x0a);
    expect(uart.readRegister(UART_MSR) & 0xf0).toBe(0x90);
    uart.writeRegister(UART_MCR, UART_MCR_LOOP | 0x0f);
    expect(uart.readRegister(UART_MSR) & 0xf0).toBe(0xf0);
    uart.writeRegister(UART_MCR, UART_MCR_LOOP);
    expect(uart.readRegister(UART_MSR) & 0xf0).toBe(0);
  });

  it('sets the MSR delta bits when the modem lines change and clears them on an MSR read', () => {
    const uart = new Uart16550();
    uart.writeRegister(UART_MCR, UART_MCR_LOOP | 0x04); // RI follows OUT1
    uart.readRegister(UART_MSR);
    uart.writeRegister(UART_MCR, UART_MCR_LOOP | 0x03); // CTS, DSR rise; RI falls; DCD unchanged (0)
    expect(uart.readRegister(UART_MSR)).toBe(0x30 | 0x01 | 0x02 | 0x04);
    expect(uart.readRegister(UART_MSR)).toBe(0x30);
  });

  it('keeps MCR to its five defined bits', () => {
    const uart = new Uart16550();
    uart.writeRegister(UART_MCR, 0xff);
    expect(uart.readRegister(UART_MCR)).toBe(0x1f);
  });
});

describe('Uart16550 FIFO, overrun and interrupts', () => {
  it('raises the received-data interrupt only when the FIFO reaches the FCR trigger level (1, 4, 8, 14)', () => {
    for (const [bits, level] of [
      [0x00, 1],
      [0x40, 4],
      [0x80, 8],
      [0xc0, 14],
    ] as const) {
      const uart = new Uart16550();
      uart.writeRegister(UART_FCR, UART_FCR_ENABLE_FIFO | bits);
      uart.writeRegister(UART_IER, UART_IER_RDI);
      send(uart, 'x'.repeat(level - 1));
      expect(uart.readRegister(UART_IIR), `level ${level}`).toBe(0xc1);
      expect(uart.interruptPending).toBe(false);
      send(uart, 'x');
      expect(uart.readRegister(UART_IIR), `level ${level}`).toBe(0xc4);
      expect(uart.interruptPending).toBe(true);
      uart.readRegister(UART_RX);
      expect(uart.readRegister(UART_IIR), `level ${level}`).toBe(0xc1); // one below the level again
    }
  });

  it('raises the character timeout after four character times when data sits below the trigger level', () => {
    const host = timerHost();
    const uart = new Uart16550();
    uart.host = host;
    uart.writeRegister(UART_LCR, 0x03); // 8N1: 10 bits a character
    uart.writeRegister(UART_FCR, UART_FCR_ENABLE_FIFO | 0x80); // trigger at 8
    uart.writeRegister(UART_IER, UART_IER_RDI);
    send(uart, 'abc');
    expect(uart.readRegister(UART_IIR)).toBe(0xc1);
    expect(host.lastNs).toBe(Math.ceil((4 * 10 * 1e9) / 115200));
    host.fire();
    expect(uart.readRegister(UART_IIR)).toBe(0xcc);
    expect(host.changes).toBeGreaterThan(0);
    uart.readRegister(UART_RX);
    expect(uart.readRegister(UART_IIR)).toBe(0xc1);
    expect(receive(uart)).toBe('bc');
    host.fire();
    expect(uart.readRegister(UART_IIR)).toBe(0xc1);
  });

  it('sets OE and drops the byte when a 17th byte reaches the full FIFO; reading LSR clears OE', () => {
    const uart = new Uart16550();
    uart.writeRegister(UART_FCR, UART_FCR_ENABLE_FIFO);
    const text = 'ABCDEFGHIJKLMNOPQ';
    send(uart, text);
    expect(uart.readRegister(UART_LSR)).toBe(UART_LSR_DR | UART_LSR_OE);
    expect(uart.readRegister(UART_LSR)).toBe(UART_LSR_DR);
    expect(receive(uart)).toBe(text.slice(0, UART_FIFO_SIZE));
  });

  it('holds one byte with the FIFOs off, and a second byte overruns it (16450 mode)', () => {
    const uart = new Uart16550();
    send(uart, 'ab');
    expect(uart.readRegister(UART_LSR)).toBe(UART_LSR_DR | UART_LSR_OE);
    expect(receive(uart)).toBe('b');
  });

  it('orders IIR as line status, received data, THR empty, modem status', () => {
    const uart = new Uart16550();
    uart.writeRegister(UART_FCR, UART_FCR_ENABLE_FIFO);
    uart.writeRegister(UART_MCR, UART_MCR_LOOP | 0x02); // a CTS change: modem status pending
    expect(uart.readRegister(UART_IIR)).toBe(0xc1); // nothing enabled yet
    uart.writeRegister(UART_IER, UART_IER_RDI | UART_IER_THRI | UART_IER_RLSI | UART_IER_MSI);
    expect(uart.readRegister(UART_IIR)).toBe(0xc2); // FIFO empty: THR empty beats modem status
    send(uart, 'x'.repeat(17));
    expect(uart.readRegister(UART_IIR)).toBe(0xc6); // overrun: line status first
    uart.readRegister(UART_LSR);
    expect(uart.readRegister(UART_IIR)).toBe(0xc4); // then received data
    receive(uart);
    expect(uart.readRegister(UART_IIR)).toBe(0xc2); // then THR empty
    uart.writeRegister(UART_IER, UART_IER_MSI);
    expect(uart.readRegister(UART_IIR)).toBe(0xc0); // then modem status
    uart.readRegister(UART_MSR);
    expect(uart.readRegister(UART_IIR)).toBe(0xc1);
  });

  it('tells its host after every register access through the BAR handler', () => {
    const host = timerHost();
    const uart = new Uart16550();
    uart.host = host;
    uart.write(UART_IER, Uint8Array.of(UART_IER_THRI));
    const dst = new Uint8Array(1);
    uart.read(UART_IIR, dst);
    expect(dst[0]).toBe(0x02);
    expect(host.changes).toBe(2);
  });
});

describe('Uart16550 state save and load', () => {
  const op = fc.oneof(
    fc.record({
      write: fc.constant(true),
      reg: fc.integer({ min: 0, max: 7 }),
      value: fc.integer({ min: 0, max: 255 }),
    }),
    fc.record({ write: fc.constant(false), reg: fc.integer({ min: 0, max: 7 }), value: fc.constant(0) }),
  );

  function replay(ops: { write: boolean; reg: number; value: number }[]): Uart16550 {
    const uart = new Uart16550();
    for (const o of ops) {
      if (o.write) uart.writeRegister(o.reg, o.value);
      else uart.readRegister(o.reg);
    }
    return uart;
  }

  it('round-trips any reachable state, and the loaded UART behaves like the original', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.array(op, { maxLength: 20 }), (ops, after) => {
        const a = replay(ops);
        const state = new Uint8Array(UART_STATE_SIZE);
        a.saveState(state);
        expect(Uart16550.checkState(state)).toBeUndefined();
        const b = new Uart16550();
        b.loadState(state);
        const again = new Uint8Array(UART_STATE_SIZE);
        b.saveState(again);
        expect(again).toEqual(state);
        for (const o of after) {
          if (o.write) {
            a.writeRegister(o.reg, o.value);
            b.writeRegister(o.reg, o.value);
          } else expect(b.readRegister(o.reg)).toBe(a.readRegister(o.reg));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses states a 16550 cannot be in with EINVAL and leaves the UART unchanged', () => {
    const uart = new Uart16550();
    uart.writeRegister(UART_SCR, 0x42);
    const good = new Uint8Array(UART_STATE_SIZE);
    uart.saveState(good);
    const bad: [number, number][] = [
      [0, 0x10], // IER bit 4
      [2, 0x20], // MCR bit 5
      [4, 0x02], // FCR bits set while the FIFO is off
      [4, 0x11], // FCR reserved bit
      [7, 0x04], // unknown flag
      [8, 0x10], // MSR delta field with line bits
      [9, 2], // two bytes with the FIFO off
    ];
    for (const [offset, value] of bad) {
      const state = good.slice();
      state[offset] = value;
      expect(() => uart.loadState(state), `byte ${offset} = ${value}`).toThrow(VfioError);
      expect(uart.readRegister(UART_SCR)).toBe(0x42);
    }
    const full = good.slice();
    full[4] = UART_FCR_ENABLE_FIFO;
    full[9] = 17;
    expect(() => uart.loadState(full)).toThrow(/FIFO count 17/);
    expect(() => uart.loadState(good.subarray(0, 5))).toThrow(VfioError);
  });

  it('never throws anything but VfioError for arbitrary state bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: UART_STATE_SIZE + 4 }), (bytes) => {
        const uart = new Uart16550();
        try {
          uart.loadState(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(VfioError);
          return;
        }
        const out = new Uint8Array(UART_STATE_SIZE);
        uart.saveState(out);
        expect(out.subarray(0, 10)).toEqual(bytes.subarray(0, 10));
      }),
      { numRuns: 500 },
    );
  });
});
