/**
 * ConfigSpace's MSI and MSI-X state as the guest programs the capabilities (config-space.ts).
 */
import { describe, expect, it } from 'vitest';
import { expectVfioError, space } from '../../test/config-space-helpers.js';
import { msiCapability, msixCapability } from './capabilities.js';
import { PCI_MSI_FLAGS, PCI_MSIX_FLAGS } from './constants.js';

describe('ConfigSpace MSI and MSI-X state', () => {
  it('reads MSI state as the guest programs it (64-bit, per-vector masking)', () => {
    const cs = space();
    const off = cs.addCapability(msiCapability({ vectors: 8, addr64: true, perVectorMask: true }));
    expect(cs.msi()).toMatchObject({ offset: off, enabled: false, vectorsEnabled: 1, vectorsCapable: 8 });
    cs.writeU32(off + 4, 0xfee00000);
    cs.writeU32(off + 8, 0x1);
    cs.writeU16(off + 0xc, 0x4041);
    cs.writeU32(off + 0x10, 0xffffffff);
    cs.writeU16(off + PCI_MSI_FLAGS, 0x0031); // MME = 8 vectors, enable
    expect(cs.msi()).toEqual({
      offset: off,
      enabled: true,
      vectorsEnabled: 8,
      vectorsCapable: 8,
      addr64: true,
      address: 0x1_fee0_0000,
      data: 0x4041,
      perVectorMask: true,
      maskBits: 0xff,
      pendingBits: 0,
    });
  });

  it('clamps Multiple Message Enable above what the capability offers', () => {
    const cs = space();
    const off = cs.addCapability(msiCapability({ vectors: 2, addr64: false, perVectorMask: false }));
    cs.writeU16(off + PCI_MSI_FLAGS, 0x0051);
    expect(cs.msi()?.vectorsEnabled).toBe(2);
  });

  it('lets the device set pending bits the guest cannot write', () => {
    const cs = space();
    const off = cs.addCapability(msiCapability({ vectors: 4, addr64: false, perVectorMask: true }));
    cs.setMsiPending(0xff);
    expect(cs.msi()?.pendingBits).toBe(0xf);
    cs.writeU32(off + 0x10, 0);
    expect(cs.readU32(off + 0x10)).toBe(0xf);
  });

  it('refuses pending bits without MSI or without per-vector masking', () => {
    const cs = space();
    expectVfioError(() => cs.setMsiPending(1), 'EINVAL');
    cs.addCapability(msiCapability({ vectors: 4, addr64: false, perVectorMask: false }));
    expectVfioError(() => cs.setMsiPending(1), 'EINVAL');
    expect(cs.msix()).toBeUndefined();
  });

  it('reads MSI-X state and lets only enable and function mask change', () => {
    const cs = space();
    const off = cs.addCapability(
      msixCapability({ tableSize: 64, tableBar: 3, tableOffset: 0x2000, pbaBar: 3, pbaOffset: 0x3000 }),
    );
    cs.writeU16(off + PCI_MSIX_FLAGS, 0xffff);
    cs.writeU32(off + 4, 0);
    cs.writeU32(off + 8, 0);
    expect(cs.msix()).toEqual({
      offset: off,
      enabled: true,
      functionMask: true,
      tableSize: 64,
      tableBar: 3,
      tableOffset: 0x2000,
      pbaBar: 3,
      pbaOffset: 0x3000,
    });
    expect(cs.msi()).toBeUndefined();
  });
});
