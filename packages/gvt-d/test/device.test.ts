import {
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_BAR4_REGION_INDEX,
  VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG,
  VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG,
  VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION,
} from '@vfiokit/core';
import { vfioPciIndexToOffset } from '@vfiokit/core/abi';
import { describe, expect, it } from 'vitest';
import {
  buildOpRegion,
  configImage,
  fixtureSource,
  IGD_REGION_TYPE,
  type IgdHostFacts,
  IgdPassthroughDevice,
  makeFacts,
  presentOpRegion,
  syntheticSource,
} from '../src/index.js';
import { catchVfioError } from './helpers.js';
import { largeVbt, le32, openIgd } from './igd-helpers.js';

const skylake = () => syntheticSource('skylake-hd530').load();
const tigerlake = () => syntheticSource('tigerlake-iris-xe').load();

function withIgdConfig(facts: IgdHostFacts, edit: (c: Uint8Array) => void): IgdHostFacts {
  const config = facts.igd.config.slice();
  edit(config);
  return { ...facts, igd: { ...facts.igd, config } };
}

describe('IGD device-specific regions (vfio_pci_igd.c)', () => {
  it('registers the OpRegion at 9, host bridge config at 10 and LPC config at 11, typed 0x80008086', () => {
    const { device } = openIgd(skylake());
    expect(IGD_REGION_TYPE).toBe(0x80008086);
    expect(device.info().numRegions).toBe(12);
    const want = [
      [9, VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION, 0x2000],
      [10, VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG, 4096],
      [11, VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG, 256],
    ] as const;
    for (const [index, subtype, size] of want) {
      const info = device.regionInfo(index);
      expect(info).toMatchObject({ index, size, read: true, write: false, mmap: false });
      expect(info?.type).toEqual({ type: 0x80008086, subtype });
    }
  });

  it('reads back the presented OpRegion and the bridges config bytes exactly', () => {
    const facts = skylake();
    const { readRegion } = openIgd(facts);
    expect(readRegion(9, 0, 0x2000)).toEqual(presentOpRegion(facts.opRegion).bytes);
    expect(readRegion(10, 0, 4096)).toEqual(facts.hostBridge);
    expect(readRegion(11, 0, 256)).toEqual(facts.lpcBridge);
    expect(readRegion(10, 0, 4)).toEqual(new Uint8Array([0x86, 0x80, 0x1f, 0x19]));
    expect(readRegion(11, 2, 2)).toEqual(new Uint8Array([0x45, 0xa1]));
  });

  it('refuses writes to all three regions with EINVAL and leaves them unchanged', () => {
    const facts = skylake();
    const { file, readRegion } = openIgd(facts);
    for (const index of [9, 10, 11]) {
      const before = readRegion(index, 0, 16);
      const err = catchVfioError(() => file.write(vfioPciIndexToOffset(index), new Uint8Array(4)));
      expect(err.code).toBe('EINVAL');
      expect(readRegion(index, 0, 16)).toEqual(before);
    }
  });

  it('sizes the OpRegion region 8 KiB + RVDS for an extended VBT and shows it at 0x2000 as 2.1', () => {
    const vbt = largeVbt();
    const facts = fixtureSource({ vbt, profile: 'tigerlake-iris-xe' }).load();
    const { device, readRegion } = openIgd(facts);
    expect(device.regionInfo(9)?.size).toBe(0x2000 + vbt.length);
    expect(readRegion(9, 0x2000, vbt.length)).toEqual(vbt);
    expect(readRegion(9, 0x16, 2)).toEqual(new Uint8Array([1, 2]));
  });

  it('has no IGD regions when ASLS is 0 (no OpRegion), and ASLS is then not writable', () => {
    const facts = withIgdConfig(skylake(), (c) => le32(c, 0xfc, 0));
    const { device, cfgRead, cfgWrite } = openIgd(facts);
    expect(device.info().numRegions).toBe(9);
    expect(device.regionInfo(9)).toBeUndefined();
    cfgWrite(0xfc, 4, 0x12345678);
    expect(cfgRead(0xfc, 4)).toBe(0);
  });

  it('drops regions 10 and 11 without a host bridge, and 11 without an LPC bridge', () => {
    const noHost = new IgdPassthroughDevice({ ...skylake(), hostBridge: new Uint8Array(0) });
    expect(noHost.info().numRegions).toBe(10);
    const noLpc = new IgdPassthroughDevice({ ...skylake(), lpcBridge: new Uint8Array(0) });
    expect(noLpc.info().numRegions).toBe(11);
    expect(noLpc.regionInfo(10)?.type?.subtype).toBe(VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG);
  });

  it('refuses a host bridge that is not an Intel host bridge, naming what it found', () => {
    const ids = {
      vendorId: 0x8086,
      deviceId: 0x191f,
      subsystemVendorId: 0,
      subsystemId: 0,
      revision: 7,
      classCode: 0x060400,
    };
    const err = catchVfioError(
      () => new IgdPassthroughDevice({ ...skylake(), hostBridge: configImage(ids, 256) }),
    );
    expect(err.code).toBe('EINVAL');
    expect(err.message).toContain('class 0x060400');
    const amd = { ...ids, vendorId: 0x1022, classCode: 0x060100 };
    expect(
      catchVfioError(() => new IgdPassthroughDevice({ ...skylake(), lpcBridge: configImage(amd, 256) }))
        .message,
    ).toContain('1022:191f');
  });
});

describe('IGD config space', () => {
  it('carries the host identity, INTA and a PCIe root-complex integrated endpoint capability', () => {
    const { cfgRead, device } = openIgd(skylake());
    expect(cfgRead(0, 4)).toBe(0x19128086);
    expect(cfgRead(0x08, 4) >>> 8).toBe(0x030000);
    expect(cfgRead(0x3d, 1)).toBe(1);
    const caps = device.config.capabilities().map((c) => [c.id, c.offset]);
    expect(caps).toEqual([
      [0x09, 0x40],
      [0x10, 0x70],
      [0x05, 0xac],
      [0x01, 0xd0],
    ]);
    expect((cfgRead(0x72, 2) >> 4) & 0xf).toBe(0x9);
  });

  it('sizes BAR0 16 MiB mem64, BAR2 256 MiB mem64 prefetchable and BAR4 64 bytes of I/O', () => {
    const { device } = openIgd(skylake());
    expect(device.config.bars()).toEqual([
      { index: 0, kind: 'mem64', size: 16 << 20, prefetchable: false },
      { index: 2, kind: 'mem64', size: 256 << 20, prefetchable: true },
      { index: 4, kind: 'io', size: 64, prefetchable: false },
    ]);
    expect(device.regionInfo(2)).toMatchObject({ mmap: true, size: 256 << 20 });
  });

  it('virtualises ASLS as vfio-pci does: the host value at open, every bit writable, reset restores it', () => {
    const facts = skylake();
    const { cfgRead, cfgWrite, device } = openIgd(facts);
    expect(cfgRead(0xfc, 4)).toBe(0x8a0f3018);
    cfgWrite(0xfc, 4, 0x7ffe0000);
    expect(cfgRead(0xfc, 4)).toBe(0x7ffe0000);
    device.reset();
    expect(cfgRead(0xfc, 4)).toBe(0x8a0f3018);
  });

  it('shows in ASLS the address the kernel mapped last when there is an extended VBT (ASLS + RVDA for 2.1)', () => {
    const facts = fixtureSource({ vbt: largeVbt(), profile: 'tigerlake-iris-xe' }).load();
    const { cfgRead } = openIgd(facts);
    expect(cfgRead(0xfc, 4)).toBe(0x6a8b6018 + 0x2000);
  });

  it('passes GGC and the dword BDSM at 0x5c through read-only on gen 9 (firmware locked them)', () => {
    const { cfgRead, cfgWrite } = openIgd(skylake());
    expect(cfgRead(0x50, 2)).toBe(0x01c1);
    expect(cfgRead(0x5c, 4)).toBe(0x8b000001);
    cfgWrite(0x50, 2, 0xffff);
    cfgWrite(0x5c, 4, 0x12300000);
    expect(cfgRead(0x50, 2)).toBe(0x01c1);
    expect(cfgRead(0x5c, 4)).toBe(0x8b000001);
  });

  it('puts BDSM in the qword at 0xc0 on gen 12 and leaves 0x5c alone', () => {
    const { cfgRead, cfgWrite } = openIgd(tigerlake());
    expect(cfgRead(0xc0, 4)).toBe(0x7c000001);
    expect(cfgRead(0xc4, 4)).toBe(0);
    expect(cfgRead(0x5c, 4)).toBe(0);
    cfgWrite(0xc0, 4, 0);
    expect(cfgRead(0xc0, 4)).toBe(0x7c000001);
  });
});

describe('BAR0 mirrors and the IOBAR', () => {
  function enableDecode(io: ReturnType<typeof openIgd>) {
    io.cfgWrite(0x04, 2, 0x0003);
  }

  it('mirrors GGC at 0x108040 and BDSM at 0x1080c0 (4 bytes before gen 11)', () => {
    const io = openIgd(skylake());
    enableDecode(io);
    const v = (off: number, n: number) => io.readRegion(VFIO_PCI_BAR0_REGION_INDEX, off, n);
    expect(v(0x108040, 2)).toEqual(new Uint8Array([0xc1, 0x01]));
    expect(v(0x1080c0, 4)).toEqual(new Uint8Array([0x01, 0x00, 0x00, 0x8b]));
    expect(v(0x1080c4, 4)).toEqual(new Uint8Array(4));
    expect(v(0x108000, 8)).toEqual(new Uint8Array(8));
  });

  it('mirrors the 8-byte BDSM at 0x1080c0 from gen 11, also across a straddling read', () => {
    const io = openIgd(tigerlake());
    enableDecode(io);
    expect(io.readRegion(0, 0x1080c0, 8)).toEqual(new Uint8Array([1, 0, 0, 0x7c, 0, 0, 0, 0]));
    expect(io.readRegion(0, 0x1080be, 4)).toEqual(new Uint8Array([0, 0, 1, 0]));
  });

  it('drops writes to BAR0, mirrors included', () => {
    const io = openIgd(skylake());
    enableDecode(io);
    io.file.write(vfioPciIndexToOffset(0) + 0x1080c0, new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    expect(io.readRegion(0, 0x1080c0, 4)).toEqual(new Uint8Array([0x01, 0x00, 0x00, 0x8b]));
  });

  it('reaches the BDSM mirror through the IOBAR index (0) and data (4) registers', () => {
    const io = openIgd(skylake());
    const bar4 = vfioPciIndexToOffset(VFIO_PCI_BAR4_REGION_INDEX);
    io.file.write(bar4, new Uint8Array([0xc0, 0x80, 0x10, 0x00]));
    expect(io.readRegion(4, 0, 4)).toEqual(new Uint8Array([0xc0, 0x80, 0x10, 0x00]));
    expect(io.readRegion(4, 4, 4)).toEqual(new Uint8Array([0x01, 0x00, 0x00, 0x8b]));
    io.file.write(bar4, new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    expect(io.readRegion(4, 4, 4)).toEqual(new Uint8Array(4));
  });
});

describe('facts validation', () => {
  it('refuses an IGD config that is neither 256 nor 4096 bytes', () => {
    const f = skylake();
    expect(
      catchVfioError(() => makeFacts({ ...f, igd: { ...f.igd, config: new Uint8Array(64) } })).message,
    ).toContain('64 bytes');
  });

  it('builds the device from a real-shaped OpRegion built around a VBT', () => {
    const facts = fixtureSource({ opRegion: buildOpRegion({ vbt: largeVbt() }) }).load();
    expect(new IgdPassthroughDevice(facts).regionInfo(9)?.size).toBeGreaterThan(0x2000);
  });
});
