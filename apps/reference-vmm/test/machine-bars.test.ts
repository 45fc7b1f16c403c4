import { allocateSharedMemory, ConfigSpace, msixCapability, PciDeviceModel } from '@vfiokit/core';
import { PCI_BASE_ADDRESS_0, PCI_COMMAND, PCI_COMMAND_MEMORY } from '@vfiokit/core/abi';
import { afterEach, describe, expect, it } from 'vitest';
import { Machine } from '../src/machine/index.js';
import { DIRECT_AREA_2, REG_STATUS, slot, TestDevice } from './machine-fixtures.js';

let machine: Machine | undefined;
afterEach(() => {
  machine?.close();
  machine = undefined;
});

async function withDevice(opts: ConstructorParameters<typeof TestDevice>[0] = {}) {
  machine = new Machine({ ramSize: 16 * 1024 * 1024 });
  const dev = new TestDevice(opts);
  machine.attach({ device: dev, slot: slot(4), label: 'dev' });
  const found = await machine.probe();
  const probed = found.find((d) => d.address.device === 4);
  if (!probed) throw new Error('device not probed');
  return { m: machine, dev, bar0: probed.bars[0].address, probed };
}

describe('BAR mapping', () => {
  it('maps sparse-mmap areas directly: guest accesses reach the shared memory and never the device handler', async () => {
    const { m, dev, bar0 } = await withDevice();
    const before = dev.regs.reads + dev.regs.writes;
    m.guest.mmioWrite(bar0 + 0x10, 4, 0x12345678);
    m.guest.mmioWrite(bar0 + DIRECT_AREA_2.offset + 0x1ffc, 4, 0xcafef00d);
    expect(m.guest.mmioRead(bar0 + 0x10, 4)).toBe(0x12345678);
    expect(m.guest.mmioRead(bar0 + 0x11, 1)).toBe(0x56);
    expect(m.guest.mmioRead(bar0 + 0x12, 2)).toBe(0x1234);
    expect(new DataView(dev.bar0.bytes.buffer).getUint32(0x10, true)).toBe(0x12345678);
    expect(new DataView(dev.bar0.bytes.buffer).getUint32(0x3ffc, true)).toBe(0xcafef00d);
    expect(dev.regs.reads + dev.regs.writes).toBe(before);
    expect(m.functionAt(slot(4))?.file.regionCounters(0)).toMatchObject({ reads: 0, writes: 0 });
  });

  it('traps the rest of the BAR through the DeviceFile to the device handler', async () => {
    const { m, dev, bar0 } = await withDevice();
    const reads = dev.regs.reads;
    dev.regs.values.set(REG_STATUS, 0xabcd);
    expect(m.guest.mmioRead(bar0 + REG_STATUS, 4)).toBe(0xabcd);
    m.guest.mmioWrite(bar0 + 0x1800, 2, 0xbeef);
    expect(dev.regs.reads).toBe(reads + 1);
    expect(dev.regs.written.at(-1)).toEqual({ offset: 0x1800, bytes: [0xef, 0xbe] });
    expect(m.functionAt(slot(4))?.file.regionCounters(0)).toMatchObject({ reads: 1, writes: 1 });
    // every access size, each one device read of that many bytes
    expect(m.guest.mmioRead(bar0 + REG_STATUS, 2)).toBe(0xabcd);
    expect(m.guest.mmioRead(bar0 + REG_STATUS, 1)).toBe(0xcd);
    m.guest.mmioWrite(bar0 + 0x1804, 1, 0x1ee);
    m.guest.mmioWrite(bar0 + 0x1808, 4, 0xfedcba98);
    expect(dev.regs.written.slice(-2)).toEqual([
      { offset: 0x1804, bytes: [0xee] },
      { offset: 0x1808, bytes: [0x98, 0xba, 0xdc, 0xfe] },
    ]);
    expect(m.guest.mmioRead(bar0 + 0x1808, 4)).toBe(0xfedcba98);
    expect(m.functionAt(slot(4))?.file.regionCounters(0)).toMatchObject({
      reads: 4,
      writes: 3,
      bytesRead: 11,
      bytesWritten: 7,
    });
  });

  it('reports which parts of each region are direct and which are trapped', async () => {
    const { m, bar0 } = await withDevice();
    m.guest.mmioRead(bar0, 4);
    m.guest.mmioRead(bar0 + 0x1000, 4);
    const dev = m.report().devices.find((d) => d.label === 'dev');
    const r0 = dev?.regions.find((r) => r.index === 0);
    expect(r0).toMatchObject({
      name: 'BAR0',
      size: 0x4000,
      mapping: 'mixed',
      guestAddress: bar0,
      barKind: 'mem32',
    });
    expect(r0?.parts).toEqual([
      { offset: 0, size: 0x1000, how: 'direct', reads: 1, writes: 0 },
      { offset: 0x1000, size: 0x1000, how: 'trapped', reads: 1, writes: 0 },
      { offset: 0x2000, size: 0x2000, how: 'direct', reads: 0, writes: 0 },
    ]);
    expect(dev?.regions.find((r) => r.index === 7)).toMatchObject({ name: 'CONFIG', mapping: 'config' });
    expect(JSON.parse(JSON.stringify(m.report()))).toBeTruthy();
  });

  it('unmaps a BAR when memory decode is turned off and maps it again when turned on', async () => {
    const { m, bar0 } = await withDevice();
    m.guest.mmioWrite(bar0, 4, 7);
    const cmd = m.guest.configRead(slot(4), PCI_COMMAND, 2);
    m.guest.configWrite(slot(4), PCI_COMMAND, 2, cmd & ~PCI_COMMAND_MEMORY);
    expect(m.guest.mmioRead(bar0, 4)).toBe(0xffffffff);
    expect(m.report().devices[1].regions[0].mapping).toBe('unmapped');
    m.guest.configWrite(slot(4), PCI_COMMAND, 2, cmd);
    expect(m.guest.mmioRead(bar0, 4)).toBe(7);
  });

  it('moves a BAR when the guest programs a new address', async () => {
    const { m, bar0 } = await withDevice();
    m.guest.mmioWrite(bar0, 4, 9);
    const moved = 0xd000_0000;
    m.guest.configWrite(slot(4), PCI_BASE_ADDRESS_0, 4, moved);
    expect(m.guest.mmioRead(bar0, 4)).toBe(0xffffffff);
    expect(m.guest.mmioRead(moved, 4)).toBe(9);
  });

  it('leaves a BAR unmapped (and records why) when it is programmed over guest RAM', async () => {
    const { m } = await withDevice();
    m.guest.configWrite(slot(4), PCI_BASE_ADDRESS_0, 4, 0x10_0000);
    expect(m.functionAt(slot(4))?.bars[0].address).toBeUndefined();
    expect(m.guest.mmioRead(0x10_0000, 4)).toBe(0);
    expect(m.report().errors.at(-1)).toMatchObject({ device: 'dev', code: 'EEXIST' });
  });

  it('takes the pages of the MSI-X table and PBA out of a fully mmappable BAR and traps the rest of those pages', async () => {
    const config = new ConfigSpace({
      name: 'msix-in-bar0',
      identity: {
        vendorId: 0x1b36,
        deviceId: 0x1234,
        subsystemVendorId: 0,
        subsystemId: 0,
        classCode: 0xff0000,
        revision: 0,
      },
    });
    config.defineBar({ index: 0, kind: 'mem32', size: 0x4000 });
    config.addCapability(
      msixCapability({ tableSize: 2, tableBar: 0, tableOffset: 0x2000, pbaBar: 0, pbaOffset: 0x2800 }),
    );
    let handlerCalls = 0;
    const memory = allocateSharedMemory(0x4000);
    const model = new PciDeviceModel({
      name: 'msix-in-bar0',
      config,
      bars: {
        0: {
          memory,
          handler: {
            read: (o, d) => {
              handlerCalls++;
              d.set(memory.bytes.subarray(o, o + d.length));
            },
            write: (o, s) => {
              handlerCalls++;
              memory.bytes.set(s, o);
            },
          },
        },
      },
    });
    machine = new Machine({ ramSize: 16 * 1024 * 1024 });
    machine.attach({ device: model, slot: slot(6), label: 'x' });
    const [, d] = await machine.probe();
    expect(d.interrupts.kind).toBe('msix');
    const bar0 = machine.report().devices[1].regions[0];
    expect(bar0.parts.map((p) => [p.offset, p.size, p.how])).toEqual([
      [0, 0x2000, 'direct'],
      [0x2000, 0x20, 'msix-table'],
      [0x2020, 0x7e0, 'trapped'],
      [0x2800, 8, 'msix-pba'],
      [0x2808, 0x7f8, 'trapped'],
      [0x3000, 0x1000, 'direct'],
    ]);
    // The probe's table writes went to the VMM's table, never to the device.
    expect(handlerCalls).toBe(0);
    machine.guest.mmioWrite(d.bars[0].address + 0x2100, 4, 3);
    expect(handlerCalls).toBe(1);
  });
});
