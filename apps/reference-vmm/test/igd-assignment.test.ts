/**
 * The VMM's half of IGD assignment, end to end with the gvt-d plugin loaded by name: the VMM
 * finds the IGD by its vfio-pci regions, the firmware step places the OpRegion and stolen
 * memory, and gvt-d's own guest driver validates the OpRegion from guest RAM. gvt-d's
 * igdAssignmentPlan and parser serve as oracles here only; the machine never imports gvt-d.
 */

import { type VfioDevice, VfioError, type VfioPlugin } from '@vfiokit/core';
import type { IgdHostFacts } from '@vfiokit/gvt-d';
import {
  createIgdParent,
  igdAssignmentPlan,
  opRegionReport,
  parseOpRegion,
  sourceFromOptions,
} from '@vfiokit/gvt-d';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadPlugin } from '../src/loader/index.js';
import {
  FW_CFG_IGD_BDSM_SIZE,
  FW_CFG_IGD_OPREGION,
  IGD_ASLS,
  IGD_BDSM_MMIO_OFFSET,
  IGD_GGC_MMIO_OFFSET,
  IGD_GMCH,
  type IgdAssignmentOptions,
  Machine,
} from '../src/machine/index.js';
import { slot } from './machine-fixtures.js';

const PROFILES = ['skylake-hd530', 'kabylake-hd620', 'tigerlake-iris-xe'] as const;
const MIB = 0x10_0000;
const UUID = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1002';

let plugin: VfioPlugin;
beforeAll(async () => {
  plugin = (await loadPlugin('@vfiokit/gvt-d')).plugin;
});

let machine: Machine | undefined;
afterEach(() => {
  machine?.close();
  machine = undefined;
});

const quietHost = (options: Record<string, unknown>) => ({
  clock: { now: () => 0, schedule: () => () => {} },
  log: { debug() {}, info() {}, warn() {}, error() {} },
  options,
});

/** An IGD instance from the plugin (loaded by name) with these plugin options. */
function igdDevice(options: Record<string, unknown> = {}): VfioDevice {
  const [parent] = plugin.probe(quietHost(options));
  return parent.create('gvt-d-igd', UUID).device;
}

function boot(device: VfioDevice, at = 2, igd?: IgdAssignmentOptions): Machine {
  machine = new Machine({ ramSize: 256 * MIB });
  machine.attach({
    device,
    slot: slot(at),
    label: 'igd',
    plugin: '@vfiokit/gvt-d',
    typeId: 'gvt-d-igd',
    ...(igd ? { igd } : {}),
  });
  return machine;
}

function facts(profile: string): IgdHostFacts {
  return sourceFromOptions({ profile }).load();
}

describe('an IGD attached from the gvt-d plugin', () => {
  it('is recognised by its OpRegion region and publishes etc/igd-opregion and etc/igd-bdsm-size', () => {
    const m = boot(igdDevice());
    const files = m.fwCfg.files().map((f) => f.name);
    expect(files).toEqual([FW_CFG_IGD_BDSM_SIZE, FW_CFG_IGD_OPREGION]);
    const f = facts('skylake-hd530');
    expect(m.fwCfg.file(FW_CFG_IGD_OPREGION)).toEqual(f.opRegion);
    const size = m.fwCfg.file(FW_CFG_IGD_BDSM_SIZE) as Uint8Array;
    expect(new DataView(size.buffer).getBigUint64(0, true)).toBe(BigInt(f.stolenBytes));
  });

  it('shows ASLS and BDSM as 0 before the firmware runs, hiding the host values', () => {
    const m = boot(igdDevice());
    expect(m.guest.configRead(slot(2), IGD_ASLS, 4)).toBe(0);
    expect(m.guest.configRead(slot(2), 0x5c, 4)).toBe(0);
    // the device itself still holds the host's ASLS
    expect(m.functionAt(slot(2))?.deviceConfigRead(IGD_ASLS, 4)).not.toBe(0);
  });

  it('after probe and firmware: ASLS points at 4 KiB-aligned guest RAM holding exactly the OpRegion bytes', async () => {
    const m = boot(igdDevice());
    await m.probe();
    const asls = m.guest.configRead(slot(2), IGD_ASLS, 4);
    expect(asls).toBeGreaterThan(0);
    expect(asls % 0x1000).toBe(0);
    const opRegion = facts('skylake-hd530').opRegion;
    const inRam = new Uint8Array(opRegion.length);
    m.guest.ram.read(asls, inRam);
    expect(inRam).toEqual(opRegion);
    expect(m.report().igd?.firmware).toMatchObject({
      ok: true,
      opRegionAddress: asls,
      opRegionSize: opRegion.length,
    });
  });

  it('after the firmware: BDSM holds a 1 MiB-aligned base of a reserved range of the stolen size, and BAR0 0x1080c0 reads it', async () => {
    const m = boot(igdDevice());
    const found = await m.probe();
    const bdsm = m.guest.configRead(slot(2), 0x5c, 4);
    const fw = m.report().igd?.firmware;
    expect(bdsm % MIB).toBe(0);
    expect(fw?.stolenBase).toBe(bdsm);
    expect(fw?.stolenSize).toBe(32 * MIB);
    // the range is reserved: the next allocation lands after it
    expect(m.ram.alloc(4096)).toBeGreaterThanOrEqual(bdsm + 32 * MIB);
    const bar0 = found.find((d) => d.address.device === 2)?.bars.find((b) => b.index === 0);
    expect(bar0).toBeDefined();
    expect(m.guest.mmioRead((bar0?.address ?? 0) + IGD_BDSM_MMIO_OFFSET, 4)).toBe(bdsm);
    // the rest of BAR0 still reaches the device (which reads 0 outside its mirrors)
    expect(m.guest.mmioRead((bar0?.address ?? 0) + 0x1000, 4)).toBe(0);
  });

  it('writes through the BAR0 mirror land in the emulated BDSM, and BDSM is writable by the guest', async () => {
    const m = boot(igdDevice());
    const found = await m.probe();
    const bar0 = found.find((d) => d.address.device === 2)?.bars.find((b) => b.index === 0)?.address ?? 0;
    m.guest.mmioWrite(bar0 + IGD_BDSM_MMIO_OFFSET, 4, 0x0c00_0000);
    expect(m.guest.configRead(slot(2), 0x5c, 4)).toBe(0x0c00_0000);
    m.guest.configWrite(slot(2), 0x5c, 2, 0x1234);
    expect(m.guest.mmioRead(bar0 + IGD_BDSM_MMIO_OFFSET, 2)).toBe(0x1234);
    // a byte read straddling nothing but the mirror's first byte
    expect(m.guest.mmioRead(bar0 + IGD_BDSM_MMIO_OFFSET, 1)).toBe(0x34);
  });

  it("runs gvt-d's OpRegion guest driver, which passes with the facts the host parser gives", async () => {
    const m = boot(igdDevice());
    await m.probe();
    const runs = await m.runDrivers(plugin.guestDrivers ?? []);
    const run = runs.find((r) => r.driver === 'gvt-d-opregion');
    expect(run?.ok).toBe(true);
    const host = opRegionReport(parseOpRegion(facts('skylake-hd530').opRegion));
    const { asls: _asls, ...guestFacts } = run?.facts ?? {};
    expect(guestFacts).toEqual(host);
  });

  it('reports the IGD section: generation, emulated registers with their values, mirrors, legacy mode, firmware', async () => {
    const m = boot(igdDevice());
    await m.probe();
    const igd = m.report().igd;
    expect(igd).toMatchObject({
      slot: '0000:00:02.0',
      generation: 9,
      deviceId: 0x1912,
      stolenBytes: 32 * MIB,
    });
    expect(igd?.emulated.map((e) => [e.name, e.offset, e.size, e.writable])).toEqual([
      ['ASLS', 0xfc, 4, true],
      ['BDSM', 0x5c, 4, true],
    ]);
    expect(igd?.emulated.find((e) => e.name === 'ASLS')?.value).toBe(igd?.firmware?.opRegionAddress);
    expect(igd?.mirrors).toEqual([
      { bar: 0, offset: IGD_BDSM_MMIO_OFFSET, size: 4, config: 0x5c, installed: true },
    ]);
    expect(igd?.regions.opRegion.index).toBe(9);
    expect(igd?.regions.hostCfg?.index).toBe(10);
    expect(igd?.regions.lpcCfg?.index).toBe(11);
  });

  it('runs the firmware step once per boot: a second probe does not move ASLS, a reset and probe place it again', async () => {
    const m = boot(igdDevice());
    await m.probe();
    const first = m.guest.configRead(slot(2), IGD_ASLS, 4);
    await m.probe();
    expect(m.guest.configRead(slot(2), IGD_ASLS, 4)).toBe(first);
    m.reset();
    expect(m.report().igd?.firmware).toBeNull();
    await m.probe();
    expect(m.report().igd?.firmware?.ok).toBe(true);
    expect(m.guest.configRead(slot(2), IGD_ASLS, 4)).toBe(first);
  });

  it('a device without the IGD regions is no IGD: no fw_cfg files, no igd section', async () => {
    const { default: mtty } = await import('@vfiokit/sample-mtty');
    const [parent] = mtty.probe(quietHost({}));
    machine = new Machine({ ramSize: 16 * MIB });
    machine.attach({ device: parent.create('mtty-1', UUID).device, slot: slot(2), label: 'mtty' });
    expect(machine.fwCfg.files()).toEqual([]);
    expect(machine.report().igd).toBeUndefined();
  });

  it('an OpRegion without a host-bridge region (a vGPU) is an IGD only when asked (x-igd-opregion)', () => {
    const f = { ...facts('skylake-hd530'), hostBridge: new Uint8Array(0), lpcBridge: new Uint8Array(0) };
    const make = () => createIgdParent(f).create('gvt-d-igd', UUID).device;
    let m = boot(make());
    expect(m.report().igd).toBeUndefined();
    m.close();
    m = boot(make(), 2, { opRegion: true });
    expect(m.report().igd?.legacyMode).toMatchObject({
      enabled: false,
      reason: 'the device has no IGD host-bridge config region (IGD_HOST_CFG)',
    });
  });

  it('withdraws the fw_cfg files, the LPC bridge and the host IDs when the IGD is hot-removed', () => {
    const m = boot(igdDevice());
    m.detach(slot(2));
    expect(m.fwCfg.files()).toEqual([]);
    expect(m.guest.configRead(slot(0x1f), 0, 2)).toBe(0xffff);
    expect(m.guest.configRead(slot(0), 0x2c, 2)).toBe(0);
    expect(m.report().igd).toBeUndefined();
  });
});

describe('IGD legacy mode', () => {
  it('at 00:02.0 with a gen 9 VGA IGD: copies host bridge revision and subsystem, and puts the host LPC IDs at 00:1f.0', () => {
    const m = boot(igdDevice());
    const f = facts('skylake-hd530');
    const hb = new DataView(f.hostBridge.buffer, f.hostBridge.byteOffset);
    const lpc = new DataView(f.lpcBridge.buffer, f.lpcBridge.byteOffset);
    expect(m.guest.configRead(slot(0), 0, 4)).toBe(0x29c0_8086); // the machine's own host bridge IDs stay
    expect(m.guest.configRead(slot(0), 0x08, 1)).toBe(hb.getUint8(0x08));
    expect(m.guest.configRead(slot(0), 0x2c, 2)).toBe(hb.getUint16(0x2c, true));
    expect(m.guest.configRead(slot(0), 0x2e, 2)).toBe(hb.getUint16(0x2e, true));
    expect(m.guest.configRead(slot(0x1f), 0x00, 2)).toBe(lpc.getUint16(0x00, true));
    expect(m.guest.configRead(slot(0x1f), 0x02, 2)).toBe(lpc.getUint16(0x02, true));
    expect(m.guest.configRead(slot(0x1f), 0x08, 1)).toBe(lpc.getUint8(0x08));
    expect(m.guest.configRead(slot(0x1f), 0x0a, 2)).toBe(0x0601);
    const igd = m.report().igd;
    expect(igd?.legacyMode.enabled).toBe(true);
    expect(igd?.legacyMode.lpcBridge).toMatchObject({
      slot: '0000:00:1f.0',
      vendorId: 0x8086,
      deviceId: 0xa145,
    });
    expect(m.report().devices.map((d) => d.slot)).toContain('0000:00:1f.0');
  });

  it('keeps the copied host bridge IDs across a machine reset', () => {
    const m = boot(igdDevice());
    const before = m.guest.configRead(slot(0), 0x2c, 4);
    m.reset();
    expect(m.guest.configRead(slot(0), 0x2c, 4)).toBe(before);
    expect(m.guest.configRead(slot(0x1f), 0, 2)).toBe(0x8086);
  });

  it('says which condition failed when the IGD is not at 00:02.0, and leaves the chipset alone', () => {
    const m = boot(igdDevice(), 4);
    expect(m.report().igd?.legacyMode).toEqual({
      enabled: false,
      reason: 'the IGD sits at guest 0000:00:04.0; legacy mode needs it at 00:02.0',
      hostBridge: null,
      lpcBridge: null,
    });
    expect(m.guest.configRead(slot(0x1f), 0, 2)).toBe(0xffff);
    expect(m.guest.configRead(slot(0), 0x2c, 4)).toBe(0);
    // the firmware (like OVMF's IgdAssignmentDxe) serves only 00:02.0
    return m.probe().then(() => expect(m.report().igd?.firmware?.ok).toBe(false));
  });

  it('refuses generation 12 (Tiger Lake) with a sentence naming the generation', () => {
    const m = boot(igdDevice({ profile: 'tigerlake-iris-xe' }));
    expect(m.report().igd?.legacyMode.reason).toBe(
      'the IGD is generation 12; legacy mode needs generation 6 to 9',
    );
  });

  it('refuses when switched off, when hot-added after boot, and when 00:1f.0 is taken', async () => {
    let m = boot(igdDevice(), 2, { legacyMode: 'off' });
    expect(m.report().igd?.legacyMode.reason).toBe('legacy mode is switched off for this device');
    m.close();
    m = new Machine({ ramSize: 256 * MIB });
    machine = m;
    await m.probe();
    m.attach({ device: igdDevice(), slot: slot(2), label: 'igd' });
    expect(m.report().igd?.legacyMode.reason).toBe(
      'the IGD was hot-added after boot; legacy mode needs it present from boot',
    );
    m.close();
    const { default: mtty } = await import('@vfiokit/sample-mtty');
    m = new Machine({ ramSize: 256 * MIB });
    machine = m;
    m.attach({
      device: mtty.probe(quietHost({}))[0].create('mtty-1', UUID).device,
      slot: slot(0x1f),
      label: 'uart',
    });
    m.attach({ device: igdDevice(), slot: slot(2), label: 'igd' });
    expect(m.report().igd?.legacyMode.reason).toBe(
      'slot 00:1f.0 is taken, so there is no room for the LPC bridge',
    );
  });

  it('makes 00:1f.0 busy for a later device while the LPC bridge sits there', () => {
    const m = boot(igdDevice());
    expect(() =>
      m.attach({ device: igdDevice({ profile: 'kabylake-hd620' }), slot: slot(0x1f), label: 'x' }),
    ).toThrow(/already in use/);
  });
});

describe("the VMM's IGD handling against gvt-d's igdAssignmentPlan (oracle)", () => {
  for (const profile of PROFILES) {
    it(`${profile}: same generation, stolen size, emulated registers and BAR0 mirrors`, async () => {
      const f = facts(profile);
      const plan = igdAssignmentPlan(f);
      const m = boot(igdDevice({ profile }));
      const igd = m.report().igd;
      expect(igd?.generation).toBe(plan.generation);
      expect(igd?.stolenBytes).toBe(plan.stolenBytes);
      expect(m.fwCfg.file(FW_CFG_IGD_BDSM_SIZE)).toEqual(plan.fwCfg['etc/igd-bdsm-size']);
      expect(igd?.emulated.map((e) => [e.name, e.offset, e.size, e.writable])).toEqual(
        plan.emulate.map((e) => [e.name, e.offset, e.size, e.writable]),
      );
      expect(igd?.mirrors.map(({ installed: _i, ...rest }) => rest)).toEqual(plan.mmioMirrors);
      expect(igd?.legacyMode.enabled).toBe(plan.legacyMode.eligible);
      // and the firmware reserves exactly that much, aligned, and writes the right register
      await m.probe();
      const fw = m.report().igd?.firmware;
      expect(fw?.ok).toBe(true);
      expect(fw?.stolenSize).toBe(plan.stolenBytes);
      const reg = plan.emulate.find((e) => e.name === 'BDSM');
      expect(m.guest.configRead(slot(2), reg?.offset ?? 0, 4)).toBe(fw?.stolenBase);
      if (reg?.size === 8) expect(m.guest.configRead(slot(2), (reg.offset ?? 0) + 4, 4)).toBe(0);
    });
  }

  it('with a GMS override: GGC reads the override, stays read-only, is mirrored at BAR0 0x108040, and sizes stolen memory', async () => {
    const f = facts('kabylake-hd620');
    const plan = igdAssignmentPlan(f, { gms: 0xf1 });
    const m = boot(igdDevice({ profile: 'kabylake-hd620' }), 2, { gms: 0xf1 });
    const ggc = m.guest.configRead(slot(2), IGD_GMCH, 4);
    expect(BigInt(ggc)).toBe(plan.emulate.find((e) => e.name === 'GGC')?.initial);
    m.guest.configWrite(slot(2), IGD_GMCH, 4, 0);
    expect(m.guest.configRead(slot(2), IGD_GMCH, 4)).toBe(ggc);
    expect(m.report().igd?.stolenBytes).toBe(plan.stolenBytes);
    expect(plan.stolenBytes).toBe(8 * MIB);
    const found = await m.probe();
    const bar0 = found.find((d) => d.address.device === 2)?.bars.find((b) => b.index === 0)?.address ?? 0;
    expect(m.guest.mmioRead(bar0 + IGD_GGC_MMIO_OFFSET, 2)).toBe(ggc & 0xffff);
  });

  it('refuses a GMS override the generation does not allow, with a VfioError naming the value', () => {
    machine = new Machine({ ramSize: 256 * MIB });
    const attach = () =>
      machine?.attach({ device: igdDevice(), slot: slot(2), label: 'igd', igd: { gms: 0x50 } });
    expect(attach).toThrow(VfioError);
    expect(attach).toThrow(/GMS override 80 does not suit an IGD of generation 9/);
    // the refused device left nothing behind
    expect(machine.fwCfg.files()).toEqual([]);
    expect(machine.devices()).toEqual([]);
  });
});
