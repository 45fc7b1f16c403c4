/**
 * The device the ConfigSpace tests (src/pci/config-space*.test.ts) share: one identity, a bare space
 * of either size, a fully built device, and the check that a call throws a VfioError with a code.
 * It lives in test/ because the build compiles all of src/ but its tests.
 */
import { expect } from 'vitest';
import { VfioError } from '../src/errors.js';
import {
  extendedCapability,
  msiCapability,
  msixCapability,
  pciExpressCapability,
  powerManagementCapability,
  vendorCapability,
} from '../src/pci/capabilities.js';
import { ConfigSpace, type PciIdentity } from '../src/pci/config-space.js';
import { PCI_EXT_CAP_ID_DSN, PCI_EXT_CAP_ID_VNDR } from '../src/pci/constants.js';

export const identity: PciIdentity = {
  vendorId: 0x8086,
  deviceId: 0x5912,
  subsystemVendorId: 0x1af4,
  subsystemId: 0x1100,
  classCode: 0x030000,
  revision: 0x04,
  interruptPin: 1,
};

export function space(size: 256 | 4096 = 256): ConfigSpace {
  return new ConfigSpace({ identity, size, name: 'test-dev' });
}

export function expectVfioError(fn: () => unknown, code: string): VfioError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VfioError);
    expect((err as VfioError).code).toBe(code);
    return err as VfioError;
  }
  throw new Error('expected a VfioError');
}

/** A device like the ones plugins build: BARs of every kind, a ROM and the usual capabilities. */
export function fullDevice(): ConfigSpace {
  const cs = space(4096);
  cs.defineBar({ index: 0, kind: 'mem32', size: 0x1000 });
  cs.defineBar({ index: 1, kind: 'io', size: 8 });
  cs.defineBar({ index: 2, kind: 'mem64', size: 0x10000000, prefetchable: true });
  cs.defineBar({ index: 4, kind: 'mem64', size: 0x4000 });
  cs.defineRom(0x10000);
  cs.addCapability(powerManagementCapability());
  cs.addCapability(msiCapability({ vectors: 4, addr64: true, perVectorMask: true }));
  cs.addCapability(pciExpressCapability({ type: 'endpoint' }));
  cs.addCapability(
    msixCapability({ tableSize: 16, tableBar: 0, tableOffset: 0x800, pbaBar: 0, pbaOffset: 0xc00 }),
  );
  cs.addCapability(vendorCapability(new Uint8Array([1, 2, 3]), { writeMask: new Uint8Array([0, 0xff, 0]) }));
  cs.addExtendedCapability(extendedCapability(PCI_EXT_CAP_ID_DSN, 1, new Uint8Array(8)));
  cs.addExtendedCapability(
    extendedCapability(PCI_EXT_CAP_ID_VNDR, 1, new Uint8Array(8), {
      writeMask: new Uint8Array([0, 0, 0, 0, 0xff, 0xff, 0, 0]),
      rw1cMask: new Uint8Array([0, 0, 0, 0, 0, 0, 0x0f, 0]),
    }),
  );
  cs.defineField(0xfc, new Uint8Array(4), { writeMask: new Uint8Array([0xff, 0xff, 0xff, 0xff]) });
  return cs;
}
