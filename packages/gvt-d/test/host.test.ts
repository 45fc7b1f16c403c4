import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildOpRegion,
  configImage,
  fixtureSource,
  HOST_PROFILES,
  igdConfigImage,
  igdRegisters,
  linuxSource,
  parseOpRegion,
  syntheticSource,
  syntheticVbt,
} from '../src/index.js';
import { fixtureSuite, fixturesDir, haveFixtures } from './fixtures.js';
import { catchVfioError } from './helpers.js';
import { largeVbt } from './igd-helpers.js';

const MiB = 1 << 20;

describe('fixture and synthetic sources', () => {
  it('gives the synthetic source a valid OpRegion, the profile identity and derived generation and stolen size', () => {
    const facts = syntheticSource().load();
    expect(facts.igd).toMatchObject({ vendorId: 0x8086, deviceId: 0x1912, classCode: 0x030000 });
    expect(facts.generation).toBe(9);
    expect(facts.stolenBytes).toBe(32 * MiB);
    expect(parseOpRegion(facts.opRegion).vbt?.header.signature.startsWith('$VBT SYNTHETIC')).toBe(true);
    expect(igdRegisters(facts.igd)).toEqual({ ggc: 0x01c1, bdsm: 0x8b000001, asls: 0x8a0f3018 });
    expect(facts.hostBridge.length).toBe(4096);
    expect(facts.lpcBridge.length).toBe(256);
  });

  it('wraps a bare VBT in an OpRegion, in-line up to 6 KiB and through RVDA beyond', () => {
    const small = fixtureSource({ vbt: syntheticVbt() }).load();
    expect(parseOpRegion(small.opRegion).vbtLocation.kind).toBe('mailbox4');
    const big = fixtureSource({ vbt: largeVbt() }).load();
    expect(parseOpRegion(big.opRegion).vbtLocation.kind).toBe('extended');
  });

  it('takes a VBT given as the OpRegion file by its signature', () => {
    const facts = fixtureSource({ opRegion: syntheticVbt() }).load();
    expect(parseOpRegion(facts.opRegion).version.text).toBe('2.0.0');
  });

  it('puts BDSM at 0xc0 in the Tiger Lake profile and stores it as 8 bytes', () => {
    const cfg = igdConfigImage(HOST_PROFILES['tigerlake-iris-xe']);
    expect(cfg[0xc0]).toBe(0x01);
    expect(cfg[0xc3]).toBe(0x7c);
    expect(cfg[0x5c]).toBe(0);
  });

  it('refuses an OpRegion and a VBT together, an unknown profile, a missing file and foreign bytes', () => {
    expect(catchVfioError(() => fixtureSource({ vbt: syntheticVbt(), opRegion: syntheticVbt() })).code).toBe(
      'EINVAL',
    );
    expect(catchVfioError(() => fixtureSource({ profile: 'pentium-mmx' })).message).toContain(
      'skylake-hd530',
    );
    const missing = catchVfioError(() => fixtureSource({ opRegion: '/nonexistent/opregion.bin' }).load());
    expect(missing.code).toBe('ENOENT');
    expect(missing.message).toContain('/nonexistent/opregion.bin');
    expect(catchVfioError(() => fixtureSource({ vbt: new Uint8Array(100) }).load()).message).toContain(
      'neither',
    );
  });
});

describe.skipIf(!haveFixtures)(fixtureSuite('fixture source on real files'), () => {
  it('loads the real Skylake OpRegion dump by path with the Skylake profile', () => {
    const facts = fixtureSource({ opRegion: join(fixturesDir, 'rikka0w0-qemu-gvt-d__opregion.bin') }).load();
    expect(parseOpRegion(facts.opRegion).vbiosVersion).toBe('1046');
    expect(facts.igd.deviceId).toBe(0x1912);
  });

  it('wraps the real Tiger Lake VBT (larger than 6 KiB) through RVDA', () => {
    const facts = fixtureSource({
      vbt: join(fixturesDir, 'coreboot__google__volteer__variants__baseboard__data.vbt'),
      profile: 'tigerlake-iris-xe',
    }).load();
    expect(parseOpRegion(facts.opRegion).vbtLocation).toMatchObject({
      kind: 'extended',
      offset: 0x2000,
      size: 8607,
    });
  });
});

describe('linux source on a fake sysfs/debugfs tree', () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
  });

  function fakeHost(
    opts: { opRegion?: Uint8Array | null; vbt?: Uint8Array; debugfs?: boolean; igdConfig?: Uint8Array } = {},
  ) {
    const root = mkdtempSync(join(tmpdir(), 'gvt-d-linux-'));
    roots.push(root);
    const p = HOST_PROFILES['skylake-hd530'];
    const dev = (bdf: string, config: Uint8Array) => {
      const dir = join(root, 'sys/bus/pci/devices', bdf);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'config'), config);
      return dir;
    };
    const igd = dev('0000:00:02.0', opts.igdConfig ?? igdConfigImage(p));
    writeFileSync(
      join(igd, 'resource'),
      [
        '0x00000000de000000 0x00000000deffffff 0x0000000000140204',
        '0x0000000000000000 0x0000000000000000 0x0000000000000000',
        '0x00000000c0000000 0x00000000dfffffff 0x000000000014220c',
        '0x0000000000000000 0x0000000000000000 0x0000000000000000',
        '0x000000000000f000 0x000000000000f03f 0x0000000000040101',
        '',
      ].join('\n'),
    );
    mkdirSync(join(igd, 'drm/card0'), { recursive: true });
    dev('0000:00:00.0', configImage(p.hostBridge, 4096));
    dev('0000:00:1f.0', configImage(p.lpcBridge, 256));
    if (opts.debugfs !== false) {
      const dri = join(root, 'sys/kernel/debug/dri/0');
      mkdirSync(dri, { recursive: true });
      if (opts.opRegion !== null)
        writeFileSync(join(dri, 'i915_opregion'), opts.opRegion ?? buildOpRegion({ vbt: syntheticVbt() }));
      if (opts.vbt) writeFileSync(join(dri, 'i915_vbt'), opts.vbt);
    }
    return root;
  }

  it('reads the IGD, both bridges, BAR sizes and the OpRegion through the card minor', () => {
    const facts = linuxSource({ root: fakeHost() }).load();
    expect(facts.igd.deviceId).toBe(0x1912);
    expect(facts.hostBridge.length).toBe(4096);
    expect(facts.lpcBridge[2]).toBe(0x45);
    expect(facts.bars).toEqual({ mmio: 16 * MiB, aperture: 512 * MiB, io: 64 });
    expect(parseOpRegion(facts.opRegion).vbt).not.toBeNull();
    expect(facts.source).toBe('linux 0000:00:02.0');
  });

  it('takes an extended VBT from i915_vbt when the 8 KiB dump uses RVDA', () => {
    const vbt = largeVbt();
    const op = buildOpRegion({ vbt });
    const facts = linuxSource({ root: fakeHost({ opRegion: op.slice(0, 0x2000), vbt }) }).load();
    expect(facts.opRegion.length).toBe(0x2000);
    expect(facts.extendedVbt).toEqual(vbt);
  });

  it('says there is no PCI device at an address that does not exist', () => {
    const err = catchVfioError(() => linuxSource({ root: fakeHost(), bdf: '0000:00:03.0' }).load());
    expect(err.code).toBe('ENOENT');
    expect(err.message).toContain('no PCI device at 0000:00:03.0');
  });

  it('refuses a malformed address with EINVAL', () => {
    expect(catchVfioError(() => linuxSource({ bdf: '00:02.0' })).code).toBe('EINVAL');
  });

  it('says root is needed when sysfs gives only the 64-byte header', () => {
    const err = catchVfioError(() =>
      linuxSource({
        root: fakeHost({ igdConfig: igdConfigImage(HOST_PROFILES['skylake-hd530']).slice(0, 64) }),
      }).load(),
    );
    expect(err.code).toBe('EACCES');
    expect(err.message).toContain('only to root');
  });

  it('says the device is not an IGD when it is not an Intel display controller', () => {
    const nic = configImage(
      {
        vendorId: 0x8086,
        deviceId: 0x15b8,
        subsystemVendorId: 0,
        subsystemId: 0,
        revision: 0,
        classCode: 0x020000,
      },
      256,
    );
    const err = catchVfioError(() => linuxSource({ root: fakeHost({ igdConfig: nic }) }).load());
    expect(err.code).toBe('ENODEV');
    expect(err.message).toContain('not an Intel display controller');
  });

  it('says debugfs is not mounted when /sys/kernel/debug/dri is missing', () => {
    const err = catchVfioError(() => linuxSource({ root: fakeHost({ debugfs: false }) }).load());
    expect(err.code).toBe('ENOENT');
    expect(err.message).toContain('debugfs is not mounted');
    expect(err.hint).toContain('mount -t debugfs');
  });

  it('says i915 has no OpRegion file when none is there', () => {
    const err = catchVfioError(() => linuxSource({ root: fakeHost({ opRegion: null }) }).load());
    expect(err.code).toBe('ENOENT');
    expect(err.message).toContain('no i915_opregion file');
  });

  it('says the IGD has no OpRegion when the dump is empty', () => {
    const err = catchVfioError(() => linuxSource({ root: fakeHost({ opRegion: new Uint8Array(0) }) }).load());
    expect(err.code).toBe('ENODEV');
  });
});
