import { VfioError } from '@vfiokit/core';
import { PCI_COMMAND, PCI_COMMAND_IO, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY } from '@vfiokit/core/abi';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ECAM_BASE,
  IO_WINDOW,
  Machine,
  MMIO32_WINDOW,
  MMIO64_WINDOW,
  PCI_CONFIG_ADDRESS_PORT,
  PCI_CONFIG_DATA_PORT,
  Q35_MCH_DEVICE_ID,
} from '../src/machine/index.js';
import { slot, TestDevice, UART_CLASS, UART_DEVICE, UART_VENDOR, uartDevice } from './machine-fixtures.js';

let machine: Machine | undefined;
afterEach(() => {
  machine?.close();
  machine = undefined;
});

function boot(): Machine {
  machine = new Machine({ ramSize: 16 * 1024 * 1024 });
  return machine;
}

describe('PCI probe', () => {
  it('finds the Q35 host bridge at 00:00.0 with class 06/00/00', async () => {
    const m = boot();
    const found = await m.probe();
    expect(found[0]).toMatchObject({
      address: slot(0),
      vendorId: 0x8086,
      deviceId: Q35_MCH_DEVICE_ID,
      classCode: 0x060000,
      bars: [],
    });
    expect(found[0].interrupts.kind).toBe('none');
  });

  it('finds a UART card with its IDs, sizes its I/O BAR, assigns it in the I/O window and enables decode', async () => {
    const m = boot();
    const { model } = uartDevice();
    m.attach({ device: model, slot: slot(3), label: 'uart' });
    const found = await m.probe();
    const uart = found.find((d) => d.address.device === 3);
    expect(uart).toMatchObject({
      vendorId: UART_VENDOR,
      deviceId: UART_DEVICE,
      subsystemVendorId: UART_VENDOR,
      classCode: UART_CLASS,
      revision: 0x10,
      interruptPin: 1,
    });
    expect(uart?.bars).toHaveLength(1);
    const bar = uart?.bars[0];
    expect(bar).toMatchObject({ index: 0, kind: 'io', size: 8 });
    expect(bar?.address).toBeGreaterThanOrEqual(IO_WINDOW.base);
    expect((bar?.address ?? 1) % 8).toBe(0);
    const command = m.guest.configRead(slot(3), PCI_COMMAND, 2);
    expect(command & PCI_COMMAND_IO).toBeTruthy();
    expect(command & PCI_COMMAND_MASTER).toBeTruthy();
    expect(model.config.ioEnabled()).toBe(true);
    expect(uart?.interrupts).toEqual({ kind: 'intx', vectors: [m.guest.interrupts.intxVector(slot(3))] });
  });

  it('delivers I/O port writes to the UART BAR to the device handler', async () => {
    const m = boot();
    const { model, regs } = uartDevice();
    m.attach({ device: model, slot: slot(3), label: 'uart' });
    const [, uart] = await m.probe();
    const port = uart.bars[0].address;
    m.guest.ioWrite(port, 1, 0x41);
    m.guest.ioWrite(port + 3, 1, 0x83);
    expect(regs.written).toEqual([
      { offset: 0, bytes: [0x41] },
      { offset: 3, bytes: [0x83] },
    ]);
    expect(m.guest.ioRead(port + 3, 1)).toBe(0x83);
  });

  it('sizes a memory BAR and a 64-bit BAR into their windows with natural alignment', async () => {
    const m = boot();
    m.attach({ device: new TestDevice({ name: 'a' }), slot: slot(4), label: 'a' });
    m.attach({ device: new TestDevice({ name: 'b', mem64: true }), slot: slot(5), label: 'b' });
    const found = await m.probe();
    const a = found.find((d) => d.address.device === 4)?.bars[0];
    const b = found.find((d) => d.address.device === 5)?.bars[0];
    expect(a).toMatchObject({ kind: 'mem32', size: 0x4000, prefetchable: false });
    expect(a?.address).toBeGreaterThanOrEqual(MMIO32_WINDOW.base);
    expect((a?.address ?? 1) % 0x4000).toBe(0);
    expect(b).toMatchObject({ kind: 'mem64', size: 0x4000, prefetchable: true });
    expect(b?.address).toBeGreaterThanOrEqual(MMIO64_WINDOW.base);
    expect(m.functionAt(slot(5))?.bars[0].address).toBe(b?.address);
    expect(m.guest.configRead(slot(4), PCI_COMMAND, 2) & PCI_COMMAND_MEMORY).toBeTruthy();
  });

  it('answers config reads through ECAM and through 0xCF8/0xCFC alike', async () => {
    const m = boot();
    m.attach({ device: uartDevice().model, slot: slot(7), label: 'uart' });
    const ids = (UART_DEVICE << 16) | UART_VENDOR;
    expect(m.guest.mmioRead(ECAM_BASE + 7 * 0x8000, 4)).toBe(ids);
    m.guest.ioWrite(PCI_CONFIG_ADDRESS_PORT, 4, 0x8000_0000 | (7 << 11));
    expect(m.guest.ioRead(PCI_CONFIG_DATA_PORT, 4)).toBe(ids);
    expect(m.guest.ioRead(PCI_CONFIG_DATA_PORT + 2, 2)).toBe(UART_DEVICE);
    m.guest.ioWrite(PCI_CONFIG_ADDRESS_PORT, 4, 7 << 11);
    expect(m.guest.ioRead(PCI_CONFIG_DATA_PORT, 4)).toBe(0xffffffff);
  });

  it('answers guest config accesses exactly as ECAM accesses through the memory map, counted alike (property)', () => {
    const access = fc.record({
      write: fc.boolean(),
      device: fc.integer({ min: 0, max: 31 }),
      fn: fc.integer({ min: 0, max: 7 }),
      size: fc.constantFrom(1 as const, 2 as const, 4 as const),
      offset: fc.integer({ min: 0, max: 4095 }),
      value: fc.integer({ min: 0, max: 0xffffffff }),
    });
    fc.assert(
      fc.property(fc.array(access, { maxLength: 60 }), (accesses) => {
        // Two machines alike: one takes guest config accesses, the other the same accesses as ECAM MMIO.
        const make = () => {
          const m = new Machine({ ramSize: 16 * 1024 * 1024 });
          m.attach({ device: uartDevice('a').model, slot: slot(3, 0), label: 'a' });
          m.attach({
            device: new TestDevice({ name: 'b', msix: { tableSize: 4 }, msi: { vectors: 4 } }),
            slot: slot(3, 1),
            label: 'b',
          });
          return m;
        };
        const byConfig = make();
        const byEcam = make();
        try {
          for (const a of accesses) {
            // An access running past its function's 4 KiB is all-ones by config; by ECAM it reaches the next function.
            if (a.offset + a.size > 4096) continue;
            const where = { bus: 0, device: a.device, function: a.fn };
            const gpa = ECAM_BASE + a.device * 0x8000 + a.fn * 0x1000 + a.offset;
            if (a.write) {
              byConfig.guest.configWrite(where, a.offset, a.size, a.value);
              byEcam.guest.mmioWrite(gpa, a.size, a.value);
            } else {
              expect(byConfig.guest.configRead(where, a.offset, a.size)).toBe(
                byEcam.guest.mmioRead(gpa, a.size),
              );
            }
          }
          const ecam = (m: Machine) => m.report().addressMap.find((r) => r.kind === 'ecam');
          expect(ecam(byConfig)).toEqual(ecam(byEcam));
          // The devices saw the same writes, and the VMM mapped the same BARs.
          for (const f of [0, 1]) {
            for (let o = 0; o < 256; o += 4) {
              expect(byConfig.guest.configRead(slot(3, f), o, 4)).toBe(
                byEcam.guest.configRead(slot(3, f), o, 4),
              );
            }
          }
          const mapOf = (m: Machine) => m.report().addressMap.map(({ reads: _r, writes: _w, ...r }) => r);
          expect(mapOf(byConfig)).toEqual(mapOf(byEcam));
          expect(byConfig.report().errors).toEqual(byEcam.report().errors);
        } finally {
          byConfig.close();
          byEcam.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  it('counts no ECAM access for a config access to no function or past config space', () => {
    const m = boot();
    m.attach({ device: uartDevice().model, slot: slot(2), label: 'u' });
    const ecam = () => m.report().addressMap.find((r) => r.kind === 'ecam');
    const before = ecam();
    expect(m.guest.configRead({ bus: 1, device: 2, function: 0 }, 0, 4)).toBe(0xffffffff);
    expect(m.guest.configRead({ bus: 0, device: 32, function: 0 }, 0, 2)).toBe(0xffff);
    expect(m.guest.configRead({ bus: 0, device: 2, function: 0.5 }, 0, 1)).toBe(0xff);
    expect(m.guest.configRead(null as unknown as ReturnType<typeof slot>, 0, 4)).toBe(0xffffffff);
    expect(m.guest.configRead(slot(2), 4094, 4)).toBe(0xffffffff);
    expect(m.guest.configRead(slot(2), -1, 1)).toBe(0xff);
    expect(m.guest.configRead(slot(2), 0, 3 as 4)).toBe(0xff);
    m.guest.configWrite(slot(2), 4096, 1, 0);
    m.guest.configWrite({ bus: 0, device: -1, function: 0 }, 4, 2, 0xffff);
    expect(ecam()).toEqual(before);
    // A misaligned access inside config space reaches ECAM and master-aborts there, counted.
    expect(m.guest.configRead(slot(2), 1, 2)).toBe(0xffff);
    expect(ecam()?.reads).toBe((before?.reads ?? 0) + 1);
  });

  it('reads all-ones from empty slots, other buses and unclaimed memory, and counts them', () => {
    const m = boot();
    expect(m.guest.configRead(slot(9), 0, 4)).toBe(0xffffffff);
    expect(m.guest.configRead({ bus: 1, device: 0, function: 0 }, 0, 2)).toBe(0xffff);
    expect(m.guest.mmioRead(0xd000_0000, 4)).toBe(0xffffffff);
    m.guest.mmioWrite(0xd000_0000, 4, 1);
    expect(m.guest.ioRead(0x80, 1)).toBe(0xff);
    const r = m.report();
    expect(r.unclaimed).toEqual({ memoryReads: 1, memoryWrites: 1, ioReads: 1, ioWrites: 0 });
  });

  it('scans functions 1-7 only when function 0 is multi-function, which the VMM sets for a shared slot', async () => {
    const m = boot();
    m.attach({ device: uartDevice('u0').model, slot: slot(6, 0), label: 'u0' });
    m.attach({ device: uartDevice('u1').model, slot: slot(6, 2), label: 'u1' });
    const found = await m.probe();
    expect(found.filter((d) => d.address.device === 6).map((d) => d.address.function)).toEqual([0, 2]);
    m.detach(slot(6, 0));
    m.attach({ device: uartDevice('u0b').model, slot: slot(6, 0), label: 'u0b' });
    m.detach(slot(6, 2));
    const again = await m.probe();
    expect(again.filter((d) => d.address.device === 6).map((d) => d.address.function)).toEqual([0]);
  });

  it('refuses a busy slot with EBUSY and a slot off bus 0 with EINVAL', () => {
    const m = boot();
    m.attach({ device: uartDevice('x').model, slot: slot(3), label: 'x' });
    const busy = (() => {
      try {
        m.attach({ device: uartDevice('y').model, slot: slot(3), label: 'y' });
      } catch (e) {
        return e;
      }
    })();
    expect(busy).toBeInstanceOf(VfioError);
    expect((busy as VfioError).code).toBe('EBUSY');
    expect(() => m.attach({ device: uartDevice('z').model, slot: slot(0), label: 'z' })).toThrow(
      /EBUSY.*host bridge/,
    );
    expect(() =>
      m.attach({ device: uartDevice('w').model, slot: { bus: 1, device: 0, function: 0 }, label: 'w' }),
    ).toThrow(/EINVAL/);
    expect(() => m.attach({ device: uartDevice('v').model, slot: slot(32), label: 'v' })).toThrow(/EINVAL/);
  });
});
