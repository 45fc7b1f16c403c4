import type { GuestView, PciAddress, ProbedDevice } from '@vfiokit/core';
import { VFIO_PCI_MSI_IRQ_INDEX } from '@vfiokit/core';
import { vfioPciIndexToOffset } from '@vfiokit/core/abi';
import { describe, expect, it } from 'vitest';
import { nvidiaVgpuGuestDriver } from '../src/index.js';
import { type OpenVgpu, openVgpu, rig } from './helpers.js';

const BAR0_GPA = 0xf000_0000;
const BAR1_GPA = 0x8_0000_0000;

/** A minimal guest: BAR0/BAR1 at fixed addresses routed to the device file, MSI counted, time driven by the fake clock. */
function fakeGuest(v: OpenVgpu, advance: (ns: number) => void): { guest: GuestView; device: ProbedDevice } {
  const route = (gpa: number): number | undefined => {
    if (gpa >= BAR0_GPA && gpa < BAR0_GPA + v.file.regionInfo(0).size)
      return vfioPciIndexToOffset(0) + gpa - BAR0_GPA;
    if (gpa >= BAR1_GPA && gpa < BAR1_GPA + v.file.regionInfo(1).size)
      return vfioPciIndexToOffset(1) + gpa - BAR1_GPA;
    return undefined;
  };
  const address: PciAddress = { bus: 0, device: 3, function: 0 };
  const guest: GuestView = {
    configRead: () => 0xffffffff,
    configWrite: () => {},
    mmioRead(gpa, size) {
      const off = route(gpa);
      if (off === undefined) return 0xffffffff;
      const b = new Uint8Array(size);
      v.file.read(off, b);
      return new DataView(b.buffer).getUint32(0, true);
    },
    mmioWrite(gpa, size, value) {
      const off = route(gpa);
      if (off === undefined) return;
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, value >>> 0, true);
      v.file.write(off, b.subarray(0, size));
    },
    // The driver makes no 8-byte accesses.
    mmioRead64: () => 0xffff_ffff_ffff_ffffn,
    mmioWrite64: () => {},
    ioRead: () => 0xffffffff,
    ioWrite: () => {},
    ram: { size: 0, read: () => {}, write: () => {}, alloc: () => 0 },
    interrupts: {
      allocateVector: () => ({ vector: 40, address: 0xfee00000, data: 40 }),
      intxVector: () => 0,
      count: () => v.msi(),
      eoi: () => {},
      async waitFor(_vector, count) {
        for (let i = 0; i < 100 && v.msi() < count; i++) advance(1_000_000);
        return v.msi() >= count;
      },
    },
    devices: () => [],
    log: () => {},
  };
  const device: ProbedDevice = {
    address,
    vendorId: 0x10de,
    deviceId: v.device.config.identity.deviceId,
    subsystemVendorId: 0x10de,
    subsystemId: v.device.config.identity.subsystemId,
    classCode: v.device.config.identity.classCode,
    revision: 0xa1,
    interruptPin: 1,
    bars: [
      { index: 0, kind: 'mem32', prefetchable: false, size: v.file.regionInfo(0).size, address: BAR0_GPA },
      { index: 1, kind: 'mem64', prefetchable: true, size: v.file.regionInfo(1).size, address: BAR1_GPA },
    ],
    capabilities: [],
    interrupts: { kind: 'msi', vectors: [40] },
  };
  return { guest, device };
}

describe('the guest driver program', () => {
  it('binds to NVIDIA functions only', () => {
    expect(nvidiaVgpuGuestDriver.matches({ vendorId: 0x10de } as ProbedDevice)).toBe(true);
    expect(nvidiaVgpuGuestDriver.matches({ vendorId: 0x8086 } as ProbedDevice)).toBe(false);
  });

  for (const [board, type] of [
    ['t4Parent', 'nvidia-320'],
    ['adaParent', 'nvidia-944'],
  ] as const) {
    it(`handshakes, fills through BAR1, copies and fills on a channel and gets the completion MSI (${type})`, async () => {
      const r = rig();
      const v = openVgpu(r[board], type);
      expect(v.file.irqEnabled(VFIO_PCI_MSI_IRQ_INDEX)).toBe(true);
      const { guest, device } = fakeGuest(v, (ns) => r.clock.advance(ns));
      const result = await nvidiaVgpuGuestDriver.run(guest, device);
      expect(result.summary).toMatch(/every byte verified/);
      expect(result.ok).toBe(true);
      expect(result.facts?.interruptDelivered).toBe(true);
    });
  }
});
