import type { GuestView, PciAddress, ProbedDevice } from '@vfiokit/core';
import { describe, expect, it } from 'vitest';
import plugin, {
  buildOpRegion,
  opRegionDriver,
  opRegionReport,
  parseOpRegion,
  presentOpRegion,
  SYNTHETIC_PANEL_TYPE,
  syntheticSource,
  syntheticVbt,
} from '../src/index.js';
import { fixtureSuite, haveFixtures, loadFixtures } from './fixtures.js';
import { largeVbt, le32 } from './igd-helpers.js';

const IGD: PciAddress = { bus: 0, device: 2, function: 0 };

/** A tiny guest: RAM and one function's config space at 00:02.0. */
function fakeGuest(ramSize: number, config: Uint8Array): GuestView & { logs: string[] } {
  const ram = new Uint8Array(ramSize);
  const logs: string[] = [];
  const same = (a: PciAddress) => a.bus === 0 && a.device === 2 && a.function === 0;
  return {
    logs,
    configRead(a, offset, size) {
      if (!same(a)) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + config[offset + i];
      return v;
    },
    configWrite(a, offset, size, value) {
      if (same(a)) for (let i = 0; i < size; i++) config[offset + i] = (value >>> (8 * i)) & 0xff;
    },
    mmioRead: () => 0xffffffff,
    mmioWrite: () => {},
    mmioRead64: () => 0xffff_ffff_ffff_ffffn,
    mmioWrite64: () => {},
    ioRead: () => 0xffffffff,
    ioWrite: () => {},
    ram: {
      size: ramSize,
      read(gpa, dst) {
        if (gpa < 0 || gpa + dst.length > ramSize)
          throw new RangeError(`guest RAM read at 0x${gpa.toString(16)} is outside RAM`);
        dst.set(ram.subarray(gpa, gpa + dst.length));
      },
      write(gpa, src) {
        ram.set(src, gpa);
      },
      alloc: () => 0,
    },
    interrupts: {
      allocateVector: () => ({ vector: 0, address: 0, data: 0 }),
      intxVector: () => 0,
      count: () => 0,
      eoi: () => {},
      waitFor: async () => false,
    },
    devices: () => [],
    log: (m) => logs.push(m),
  };
}

function probed(address = IGD, classCode = 0x030000, vendorId = 0x8086): ProbedDevice {
  return {
    address,
    vendorId,
    deviceId: 0x1912,
    subsystemVendorId: 0x8086,
    subsystemId: 0x1912,
    classCode,
    revision: 6,
    interruptPin: 1,
    bars: [],
    capabilities: [],
    interrupts: { kind: 'none', vectors: [] },
  };
}

/** What a VMM does: copy the OpRegion region into guest RAM and point ASLS at it. */
function guestWithOpRegion(region: Uint8Array, asls = 0x7f000) {
  const config = new Uint8Array(256);
  le32(config, 0xfc, asls);
  const guest = fakeGuest(1 << 20, config);
  guest.ram.write(asls, region);
  return guest;
}

describe('guest OpRegion driver', () => {
  it('is the plugin guest driver and binds only to an Intel display function at 00:02.0', () => {
    expect(plugin.guestDrivers).toContain(opRegionDriver);
    expect(opRegionDriver.matches(probed())).toBe(true);
    expect(opRegionDriver.matches(probed({ bus: 0, device: 3, function: 0 }))).toBe(false);
    expect(opRegionDriver.matches(probed(IGD, 0x020000))).toBe(false);
    expect(opRegionDriver.matches(probed(IGD, 0x030000, 0x1002))).toBe(false);
  });

  it('reports what the host-side parser says of the same OpRegion region bytes', async () => {
    const region = presentOpRegion(syntheticSource().load().opRegion).bytes;
    const result = await opRegionDriver.run(guestWithOpRegion(region), probed());
    expect(result.ok).toBe(true);
    expect(result.facts).toEqual({ asls: 0x7f000, ...opRegionReport(parseOpRegion(region)) });
    expect(result.facts?.panelType).toBe(SYNTHETIC_PANEL_TYPE);
    expect(result.facts?.childDevices).toHaveLength(3);
  });

  it('follows RVDA relative to ASLS for a 2.1 OpRegion with an extended VBT', async () => {
    const region = presentOpRegion(buildOpRegion({ vbt: largeVbt() })).bytes;
    const result = await opRegionDriver.run(guestWithOpRegion(region, 0x40000), probed());
    expect(result.ok).toBe(true);
    expect(result.facts?.vbtLocation).toBe('extended');
    expect(result.facts).toEqual({ asls: 0x40000, ...opRegionReport(parseOpRegion(region)) });
  });

  it('fails with a clear summary when ASLS is 0', async () => {
    const result = await opRegionDriver.run(fakeGuest(1 << 16, new Uint8Array(256)), probed());
    expect(result.ok).toBe(false);
    expect(result.summary).toContain('ASLS (config 0xfc) is 0x0');
  });

  it('fails when ASLS points at something that is not an OpRegion, naming the signature', async () => {
    const result = await opRegionDriver.run(guestWithOpRegion(new Uint8Array(0x2000).fill(0x41)), probed());
    expect(result.ok).toBe(false);
    expect(result.summary).toContain('signature');
  });

  it('fails when ASLS points outside guest RAM', async () => {
    const config = new Uint8Array(256);
    le32(config, 0xfc, 0xfffff000);
    const result = await opRegionDriver.run(fakeGuest(1 << 16, config), probed());
    expect(result.ok).toBe(false);
    expect(result.summary).toContain('does not point at 8 KiB of guest RAM');
  });

  it('fails when the OpRegion carries no VBT', async () => {
    const region = buildOpRegion({ vbt: syntheticVbt() });
    region.fill(0, 0x400, 0x1c00);
    const result = await opRegionDriver.run(guestWithOpRegion(region), probed());
    expect(result.ok).toBe(false);
    expect(result.summary).toContain('no VBT');
  });
});

describe.skipIf(!haveFixtures)(fixtureSuite('guest OpRegion driver on the real Skylake dump'), () => {
  it('reports the real panel and child devices as the host-side parser does', async () => {
    const f = loadFixtures().find((x) => x.name.includes('opregion'))!;
    const region = presentOpRegion(f.bytes).bytes;
    const result = await opRegionDriver.run(guestWithOpRegion(region), probed());
    expect(result.ok).toBe(true);
    expect(result.facts).toEqual({ asls: 0x7f000, ...opRegionReport(parseOpRegion(f.bytes)) });
    expect(result.facts?.bdbVersion).toBe(206);
  });
});
