/** A PCI Express display function for the lspci tests: three BARs and the capabilities the core builders make. */
import {
  ConfigSpace,
  extendedCapability,
  type GuestView,
  msiCapability,
  msixCapability,
  type PciAddress,
  type ProbedDevice,
  pciExpressCapability,
  powerManagementCapability,
  vendorCapability,
} from '@vfiokit/core';

export const SLOT: PciAddress = { bus: 0, device: 2, function: 0 };

function le(value: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (value >>> (8 * i)) & 0xff;
  return b;
}

/** A PCI Express display function with three BARs and every capability lspci decodes here. */
export function makeDevice(): {
  guest: Pick<GuestView, 'configRead'>;
  probed: ProbedDevice;
  reads: () => number;
} {
  const cs = new ConfigSpace({
    identity: {
      vendorId: 0x8086,
      deviceId: 0x5912,
      subsystemVendorId: 0x8086,
      subsystemId: 0x2212,
      classCode: 0x030000,
      revision: 0x04,
      interruptPin: 1,
    },
    size: 4096,
  });
  cs.defineBar({ index: 0, kind: 'mem32', size: 16 << 20 });
  cs.defineBar({ index: 2, kind: 'mem64', size: 256 << 20, prefetchable: true });
  cs.defineBar({ index: 4, kind: 'io', size: 64 });
  cs.addCapability(powerManagementCapability());
  cs.addCapability(msiCapability({ vectors: 4, addr64: true, perVectorMask: true }));
  cs.addCapability(
    msixCapability({ tableSize: 8, tableBar: 0, tableOffset: 0x2000, pbaBar: 0, pbaOffset: 0x3000 }),
  );
  cs.addCapability(pciExpressCapability({ type: 'endpoint' }));
  cs.addCapability(vendorCapability(new Uint8Array(5)));
  cs.addExtendedCapability(extendedCapability(0x0001, 2, new Uint8Array(0x14)));
  cs.addExtendedCapability(
    extendedCapability(0x0003, 1, Uint8Array.of(0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01)),
  );
  cs.write(0x10, le(0xc0000000, 4));
  cs.write(0x18, le(0x00000000, 4));
  cs.write(0x1c, le(0x1, 4));
  cs.write(0x20, le(0xd000, 4));
  cs.write(0x3c, le(11, 1));
  cs.write(0x04, le(0x7, 2));
  let reads = 0;
  const guest = {
    configRead(a: PciAddress, offset: number, size: 1 | 2 | 4): number {
      reads++;
      if (a.bus !== SLOT.bus || a.device !== SLOT.device || a.function !== SLOT.function)
        throw new Error('wrong slot');
      const b = new Uint8Array(size);
      cs.read(offset, b);
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + b[i];
      return v;
    },
  };
  const probed: ProbedDevice = {
    address: SLOT,
    vendorId: 0x8086,
    deviceId: 0x5912,
    subsystemVendorId: 0x8086,
    subsystemId: 0x2212,
    classCode: 0x030000,
    revision: 4,
    interruptPin: 1,
    bars: [
      { index: 0, kind: 'mem32', prefetchable: false, size: 16 << 20, address: 0xc0000000 },
      { index: 2, kind: 'mem64', prefetchable: true, size: 256 << 20, address: 0x100000000 },
      { index: 4, kind: 'io', prefetchable: false, size: 64, address: 0xd000 },
    ],
    capabilities: cs.capabilities().map((c) => ({ id: c.id, offset: c.offset })),
    interrupts: { kind: 'intx', vectors: [] },
  };
  return { guest, probed, reads: () => reads };
}
