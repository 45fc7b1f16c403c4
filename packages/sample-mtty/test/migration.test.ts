import { MigState, VFIO_PCI_CONFIG_REGION_INDEX, VfioError } from '@vfiokit/core';
import {
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY,
  vfioPciIndexToOffset,
} from '@vfiokit/core/abi';
import type { DeviceFile } from '@vfiokit/core/host';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MTTY_HEADER_SIZE, MTTY_MAGIC } from '../src/migration.js';
import {
  UART_DLL,
  UART_DLM,
  UART_FCR,
  UART_IER,
  UART_IER_RDI,
  UART_LCR,
  UART_LSR,
  UART_RX,
  UART_SCR,
  UART_TX,
} from '../src/uart16550.js';
import { type OpenDevice, openMtty, UUID_B } from './helpers.js';

function readAll(file: DeviceFile): Uint8Array {
  const parts: number[] = [];
  for (;;) {
    const chunk = file.migrationRead(7); // small chunks to cross the header boundary
    if (chunk.length === 0) break;
    parts.push(...chunk);
  }
  return Uint8Array.from(parts);
}

function configBytes(d: OpenDevice): Uint8Array {
  const b = new Uint8Array(256);
  d.file.read(vfioPciIndexToOffset(VFIO_PCI_CONFIG_REGION_INDEX), b);
  return b;
}

/** A source with programmed BARs, divisor, line settings and bytes waiting in both FIFOs. */
function busySource(): OpenDevice {
  const src = openMtty('mtty-2');
  src.cfgWrite32(0x10, 0xc000);
  src.cfgWrite32(0x14, 0xc008);
  src.cfgWrite32(0x04, 0x1);
  for (const bar of [0, 1]) {
    src.barWrite(bar, UART_LCR, 0x83);
    src.barWrite(bar, UART_DLL, 0x0c + bar);
    src.barWrite(bar, UART_DLM, 0);
    src.barWrite(bar, UART_LCR, 0x03);
    src.barWrite(bar, UART_FCR, 0xc1);
    src.barWrite(bar, UART_IER, UART_IER_RDI);
    src.barWrite(bar, UART_SCR, 0x50 + bar);
    for (const ch of bar ? 'dual' : 'port') src.barWrite(bar, UART_TX, ch.charCodeAt(0));
  }
  return src;
}

function save(src: OpenDevice): Uint8Array {
  src.file.setMigrationState(MigState.STOP_COPY);
  const stream = readAll(src.file);
  src.file.setMigrationState(MigState.STOP);
  return stream;
}

/** Feed `stream` to a fresh device of `typeId`; returns the device and the error of RESUMING → STOP, if any. */
function resume(stream: Uint8Array, typeId: 'mtty-1' | 'mtty-2' = 'mtty-2') {
  const dst = openMtty(typeId, UUID_B);
  dst.file.setMigrationState(MigState.RESUMING);
  let writeError: unknown;
  try {
    for (let at = 0; at < stream.length; at += 10) dst.file.migrationWrite(stream.subarray(at, at + 10));
  } catch (err) {
    writeError = err;
  }
  let stopError: unknown;
  try {
    dst.file.setMigrationState(MigState.STOP);
  } catch (err) {
    stopError = err;
  }
  return { dst, writeError, stopError };
}

describe('mtty migration v2', () => {
  it('offers STOP_COPY | P2P | PRE_COPY as mtty.c does', () => {
    const { file } = openMtty('mtty-1');
    expect(file.migrationCaps()).toBe(
      VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
    );
  });

  it('starts the stream with mtty.c header: magic 0x7e9d09898c3e2c4e, version 1.0, ports, flags 0', () => {
    const src = busySource();
    const stream = save(src);
    const view = new DataView(stream.buffer);
    expect(view.getBigUint64(0, true)).toBe(0x7e9d09898c3e2c4en);
    expect([
      view.getUint32(8, true),
      view.getUint32(12, true),
      view.getUint32(16, true),
      view.getUint32(20, true),
    ]).toEqual([1, 0, 2, 0]);
    expect(stream.length).toBe(src.device.migration.stopCopySize());
  });

  it('round-trips config space, UART registers and FIFO contents through STOP_COPY and RESUMING', () => {
    const src = busySource();
    const stream = save(src);
    const { dst, writeError, stopError } = resume(stream);
    expect(writeError).toBeUndefined();
    expect(stopError).toBeUndefined();
    expect(configBytes(dst)).toEqual(configBytes(src));
    dst.file.setMigrationState(MigState.RUNNING);
    src.file.setMigrationState(MigState.RUNNING);
    for (const bar of [0, 1]) {
      for (const reg of [UART_IER, UART_LCR, UART_SCR, 2, 4, 6])
        expect(dst.barRead(bar, reg)).toBe(src.barRead(bar, reg));
      dst.barWrite(bar, UART_LCR, 0x83);
      expect(dst.barRead(bar, UART_DLL)).toBe(0x0c + bar);
      dst.barWrite(bar, UART_LCR, 0x03);
      let text = '';
      while (dst.barRead(bar, UART_LSR) & 1) text += String.fromCharCode(dst.barRead(bar, UART_RX));
      expect(text).toBe(bar ? 'dual' : 'port');
    }
  });

  it('offers only the header in PRE_COPY, then the rest on the same stream in STOP_COPY', () => {
    const src = busySource();
    src.file.setMigrationState(MigState.PRE_COPY);
    expect(src.file.precopyInfo()).toEqual({ initialBytes: MTTY_HEADER_SIZE, dirtyBytes: 0 });
    const header = src.file.migrationRead(1 << 20);
    expect(header.length).toBe(MTTY_HEADER_SIZE);
    expect(src.file.precopyInfo().initialBytes).toBe(0);
    expect(() => src.file.migrationRead(100)).toThrow(expect.objectContaining({ code: 'ENOMSG' }));
    src.file.setMigrationState(MigState.STOP_COPY);
    const rest = readAll(src.file);
    const stream = new Uint8Array([...header, ...rest]);
    expect(stream.length).toBe(src.device.migration.stopCopySize());
    const { dst, stopError } = resume(stream);
    expect(stopError).toBeUndefined();
    expect(configBytes(dst)).toEqual(configBytes(src));
  });

  it('walks RUNNING → PRE_COPY_P2P → STOP_COPY → STOP → RUNNING', () => {
    const { file } = openMtty('mtty-1');
    expect(file.setMigrationState(MigState.PRE_COPY_P2P)).toBeGreaterThanOrEqual(0);
    file.setMigrationState(MigState.STOP_COPY);
    expect(readAll(file).length).toBeGreaterThan(MTTY_HEADER_SIZE);
    file.setMigrationState(MigState.RUNNING);
    expect(file.migrationState).toBe(MigState.RUNNING);
  });

  it('rejects a stream with a wrong magic on write and again at RESUMING → STOP, leaving the device in ERROR', () => {
    const stream = save(busySource());
    stream[0] ^= 0xff;
    const { dst, writeError, stopError } = resume(stream);
    expect(writeError).toBeInstanceOf(VfioError);
    expect((writeError as VfioError).code).toBe('EINVAL');
    expect((writeError as VfioError).message).toMatch(/magic/);
    expect((stopError as VfioError).code).toBe('EINVAL');
    expect(dst.file.migrationState).toBe(MigState.ERROR);
  });

  it('rejects another version, non-zero flags, and a stream saved from a card with another number of ports', () => {
    const good = save(busySource());
    for (const [offset, value, pattern] of [
      [8, 2, /version 2\.0/],
      [12, 1, /version 1\.1/],
      [20, 1, /flags/],
      [16, 1, /1 port\(s\) but this device has 2/],
    ] as const) {
      const stream = good.slice();
      new DataView(stream.buffer).setUint32(offset, value, true);
      const { writeError, stopError } = resume(stream);
      expect((writeError as VfioError).message).toMatch(pattern);
      expect((stopError as VfioError).code).toBe('EINVAL');
    }
    const single = resume(good, 'mtty-1');
    expect((single.writeError as VfioError).code).toBe('EINVAL');
    expect((single.stopError as VfioError).code).toBe('EINVAL');
  });

  it('rejects a truncated stream at RESUMING → STOP with EINVAL naming the lengths', () => {
    const stream = save(busySource());
    const { dst, writeError, stopError } = resume(stream.subarray(0, stream.length - 1));
    expect(writeError).toBeUndefined();
    expect(stopError).toBeInstanceOf(VfioError);
    expect((stopError as VfioError).message).toMatch(
      new RegExp(`after ${stream.length - 1} of ${stream.length} bytes`),
    );
    expect(dst.file.migrationState).toBe(MigState.ERROR);
  });

  it('rejects an empty stream and one that stops inside the header', () => {
    const stream = save(busySource());
    for (const cut of [0, 5, MTTY_HEADER_SIZE - 1]) {
      const { stopError } = resume(stream.subarray(0, cut));
      expect((stopError as VfioError).code).toBe('EINVAL');
    }
  });

  it('rejects bytes beyond the end of the state', () => {
    const stream = save(busySource());
    const dst = openMtty('mtty-2', UUID_B);
    dst.file.setMigrationState(MigState.RESUMING);
    dst.file.migrationWrite(stream);
    expect(() => dst.file.migrationWrite(Uint8Array.of(0))).toThrow(/longer than the 332 bytes/);
    dst.file.setMigrationState(MigState.STOP); // the refused byte was not taken; the stream is complete
    expect(dst.file.migrationState).toBe(MigState.STOP);
    const whole = resume(new Uint8Array([...stream, 0])); // the last 10-byte chunk runs past the end
    expect((whole.writeError as VfioError).message).toMatch(/longer than/);
    expect((whole.stopError as VfioError).message).toMatch(/ended after/);
  });

  it('rejects an impossible UART state in a stream with a valid header, and leaves the config space as it was', () => {
    const stream = save(busySource());
    stream[MTTY_HEADER_SIZE + 256 + 9] = 17; // port 0 FIFO count
    const { dst, stopError } = resume(stream);
    expect((stopError as VfioError).message).toMatch(/port 0: FIFO count 17/);
    expect(dst.cfgRead32(0x10)).toBe(1);
  });

  it('rejects a config space of another device', () => {
    const stream = save(busySource());
    stream[MTTY_HEADER_SIZE] = 0x86; // vendor id byte
    const { stopError } = resume(stream);
    expect((stopError as VfioError).code).toBe('EINVAL');
  });

  it('answers any corruption of the stream with a VfioError or a faithful load, never another exception', () => {
    const good = save(busySource());
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: good.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (at, flip) => {
          const stream = good.slice();
          stream[at] ^= flip;
          const { writeError, stopError } = resume(stream);
          for (const err of [writeError, stopError])
            if (err !== undefined) expect(err).toBeInstanceOf(VfioError);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('uses the magic constant of mtty.c', () => {
    expect(MTTY_MAGIC).toBe(0x7e9d09898c3e2c4en);
  });
});
