/**
 * What the VMM learns of a function when it takes it (the pin, the capability list, MSI-X, the BAR
 * types) comes from one read of its standard config space, as QEMU's vfio_realize preads it whole
 * (through vfio-user one message instead of one per field); when that read fails, the fields are
 * read one by one as before.
 */
import { ConfigSpace, msixCapability, PciDeviceModel } from '@vfiokit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { Machine } from '../src/machine/index.js';

const SLOT = { bus: 0, device: 3, function: 0 };

/** A device that answers config reads itself (readConfig), recording their sizes. */
class CountingConfig extends PciDeviceModel {
  readonly sizes: number[] = [];
  refuseWide = false;
  constructor() {
    const config = new ConfigSpace({
      name: 'counted',
      identity: {
        vendorId: 0x1b36,
        deviceId: 0x0011,
        subsystemVendorId: 0,
        subsystemId: 0,
        classCode: 0xff0000,
        revision: 0,
        interruptPin: 2,
      },
    });
    config.defineBar({ index: 0, kind: 'mem64', size: 0x4000, prefetchable: true });
    config.defineBar({ index: 2, kind: 'mem32', size: 0x1000 });
    config.addCapability(
      msixCapability({ tableSize: 4, tableBar: 2, tableOffset: 0, pbaBar: 2, pbaOffset: 0x800 }),
    );
    super({
      name: 'counted',
      config,
      bars: {
        0: { handler: { read: (_o, d) => d.fill(0), write: () => {} } },
        2: { handler: { read: (_o, d) => d.fill(0), write: () => {} } },
      },
    });
  }

  protected override readConfig(offset: number, dst: Uint8Array): void {
    this.sizes.push(dst.length);
    if (this.refuseWide && dst.length > 4) throw new Error('config reads wider than a dword fail here');
    super.readConfig(offset, dst);
  }
}

let machine: Machine | undefined;
afterEach(() => {
  machine?.close();
  machine = undefined;
});

function attached(dev: CountingConfig) {
  machine = new Machine({ ramSize: 4 * 1024 * 1024 });
  machine.attach({ device: dev, slot: SLOT, label: 'counted' });
  const fn = machine.functionAt(SLOT);
  if (!fn) throw new Error('the function is missing');
  return fn;
}

describe('taking a function', () => {
  it('reads its standard config space once, and finds pin, MSI-X and BAR types in it', () => {
    const dev = new CountingConfig();
    const fn = attached(dev);
    expect(dev.sizes.filter((n) => n === 256)).toHaveLength(1);
    expect(dev.sizes[0]).toBe(256);
    // The rest are the reset's (COMMAND, BAR decode) and the IGD check's: live registers.
    expect(dev.sizes.length).toBeLessThan(6);
    expect(fn.pin).toBe(2);
    expect(fn.bars.map((b) => [b.index, b.kind, b.prefetchable])).toEqual([
      [0, 'mem64', true],
      [2, 'mem32', false],
    ]);
    expect(fn.msixSnapshot()?.entries).toHaveLength(4);
  });

  it('reads the fields one by one when the whole read fails, and learns the same', () => {
    const dev = new CountingConfig();
    dev.refuseWide = true;
    const fn = attached(dev);
    expect(dev.sizes[0]).toBe(256);
    expect(dev.sizes.filter((n) => n <= 4).length).toBeGreaterThan(6);
    expect(fn.pin).toBe(2);
    expect(fn.bars.map((b) => [b.index, b.kind, b.prefetchable])).toEqual([
      [0, 'mem64', true],
      [2, 'mem32', false],
    ]);
    expect(fn.msixSnapshot()?.entries).toHaveLength(4);
    expect(machine?.report().errors).toEqual([]);
  });
});
