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
import { describe, expect, it } from 'vitest';
import { formatBarSize, lspciJson, renderLspci } from '../src/cli/lspci/index.js';

const SLOT: PciAddress = { bus: 0, device: 2, function: 0 };

function le(value: number, size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (value >>> (8 * i)) & 0xff;
  return b;
}

/** A PCI Express display function with three BARs and every capability lspci decodes here. */
function makeDevice(): { guest: Pick<GuestView, 'configRead'>; probed: ProbedDevice; reads: () => number } {
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
      expect(a).toEqual(SLOT);
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

function lines(verbose: number, numeric = 0): string[] {
  const { guest, probed } = makeDevice();
  return renderLspci(guest, [probed], { verbose, numeric }).split('\n');
}

describe('renderLspci', () => {
  it('prints one line per function as lspci does without -v', () => {
    expect(lines(0)).toEqual(['00:02.0 VGA compatible controller: Device 8086:5912 (rev 04)', '']);
  });

  it('prints class and IDs as numbers with -n and both with -nn', () => {
    expect(lines(0, 1)[0]).toBe('00:02.0 0300: 8086:5912 (rev 04)');
    expect(lines(0, 2)[0]).toBe('00:02.0 VGA compatible controller [0300]: Device [8086:5912] (rev 04)');
  });

  it('with -v prints prog-if, subsystem, flags, BARs with sizes and one line per capability', () => {
    expect(lines(1)).toEqual([
      '00:02.0 VGA compatible controller: Device 8086:5912 (rev 04) (prog-if 00 [VGA controller])',
      '\tSubsystem: Device 8086:2212',
      '\tFlags: bus master, fast devsel, latency 0, IRQ 11',
      '\tMemory at c0000000 (32-bit, non-prefetchable) [size=16M]',
      '\tMemory at 100000000 (64-bit, prefetchable) [size=256M]',
      '\tI/O ports at d000 [size=64]',
      '\tCapabilities: [40] Power Management version 3',
      '\tCapabilities: [48] MSI: Enable- Count=1/4 Maskable+ 64bit+',
      '\tCapabilities: [60] MSI-X: Enable- Count=8 Masked-',
      '\tCapabilities: [6c] Express Endpoint, MSI 00',
      '\tCapabilities: [a8] Vendor Specific Information: Len=08 <?>',
      '',
      '',
    ]);
  });

  it('with -vv adds Control and Status, Region numbers and decoded capability fields', () => {
    const out = lines(2);
    expect(out).toContain(
      '\tControl: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx-',
    );
    expect(out).toContain(
      '\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-',
    );
    expect(out).toContain('\tInterrupt: pin A routed to IRQ 11');
    expect(out).toContain('\tRegion 0: Memory at c0000000 (32-bit, non-prefetchable) [size=16M]');
    expect(out).toContain('\tRegion 2: Memory at 100000000 (64-bit, prefetchable) [size=256M]');
    expect(out).toContain('\tRegion 4: I/O ports at d000 [size=64]');
    expect(out).toContain('\t\tFlags: PMEClk- DSI- D1- D2- AuxCurrent=0mA PME(D0-,D1-,D2-,D3hot-,D3cold-)');
    expect(out).toContain('\t\tStatus: D0 NoSoftRst+ PME-Enable- DSel=0 DScale=0 PME-');
    expect(out).toContain('\t\tAddress: 0000000000000000  Data: 0000');
    expect(out).toContain('\t\tMasking: 00000000  Pending: 00000000');
    expect(out).toContain('\t\tVector table: BAR=0 offset=00002000');
    expect(out).toContain('\t\tPBA: BAR=0 offset=00003000');
    expect(out).toContain('\tCapabilities: [6c] Express (v2) Endpoint, MSI 00');
    expect(out.some((l) => l.startsWith('\t\tDevCap:\tMaxPayload 128 bytes, PhantFunc 0, Latency L0s'))).toBe(
      true,
    );
    expect(out.some((l) => l.startsWith('\t\tDevCtl:\tCorrErr'))).toBe(true);
    expect(out.some((l) => l.startsWith('\t\tLnkCap:\tPort #0, Speed 2.5GT/s, Width x1'))).toBe(true);
    expect(out.some((l) => l.startsWith('\t\tLnkSta:\tSpeed 2.5GT/s (ok), Width x1 (ok)'))).toBe(true);
    expect(out.some((l) => l.includes('Capabilities: [100'))).toBe(false);
  });

  it('with -vvv adds the extended capabilities with their versions', () => {
    const out = lines(3);
    expect(out).toContain('\tCapabilities: [100 v2] Advanced Error Reporting');
    expect(out).toContain('\tCapabilities: [118 v1] Device Serial Number 01-02-03-04-05-06-07-08');
  });

  it('shows a BAR the guest left unassigned and decode turned off as lspci does', () => {
    const { guest, probed } = makeDevice();
    const off: Pick<GuestView, 'configRead'> = {
      configRead: (a, offset, size) => {
        const v = guest.configRead(a, offset, size);
        if (offset === 0x04) return v & ~0x7;
        if (offset === 0x20) return 0x1;
        return v;
      },
    };
    const out = renderLspci(off, [probed], { verbose: 2, numeric: 0 }).split('\n');
    expect(out).toContain('\tRegion 0: Memory at c0000000 (32-bit, non-prefetchable) [disabled] [size=16M]');
    expect(out).toContain('\tRegion 4: I/O ports at <unassigned> [disabled] [size=64]');
  });

  it('stops at a capability chain that loops', () => {
    const { guest, probed } = makeDevice();
    const looped: Pick<GuestView, 'configRead'> = {
      configRead: (a, offset, size) => {
        const v = guest.configRead(a, offset, size);
        // the MSI capability's next pointer points back at PM
        if (offset === 0x48 && size === 4) return (v & 0xffff00ff) | (0x40 << 8);
        return v;
      },
    };
    const out = renderLspci(looped, [probed], { verbose: 1, numeric: 0 }).split('\n');
    expect(out).toContain('\tCapabilities: [40] <chain looped>');
  });

  it('reads configuration only through configRead and treats a failing read as all-ones', () => {
    const { probed } = makeDevice();
    const broken: Pick<GuestView, 'configRead'> = {
      configRead: () => {
        throw new Error('master abort');
      },
    };
    expect(renderLspci(broken, [probed], { verbose: 0, numeric: 0 })).toBe(
      '00:02.0 Class ffff: Device ffff:ffff (rev ff)\n',
    );
  });

  it('sorts functions by bus, device and function', () => {
    const { guest, probed } = makeDevice();
    const other = { ...probed, address: { bus: 0, device: 1, function: 0 } };
    const g: Pick<GuestView, 'configRead'> = { configRead: (_a, o, s) => guest.configRead(SLOT, o, s) };
    const out = renderLspci(g, [probed, other], { verbose: 0, numeric: 1 }).split('\n');
    expect(out[0].startsWith('00:01.0 ')).toBe(true);
    expect(out[1].startsWith('00:02.0 ')).toBe(true);
  });

  it('gives the same facts as JSON', () => {
    const { guest, probed } = makeDevice();
    const [d] = lspciJson(guest, [probed]);
    expect(d).toMatchObject({
      slot: '00:02.0',
      classCode: '030000',
      className: 'VGA compatible controller',
      vendorId: '8086',
      deviceId: '5912',
    });
    expect(d.extendedCapabilities).toEqual([
      { offset: '0x100', id: '0x0001', version: 2 },
      { offset: '0x118', id: '0x0003', version: 1 },
    ]);
    expect(d.config).toHaveLength(512);
  });
});

describe('formatBarSize', () => {
  it('prints sizes in lspci’s units', () => {
    expect(formatBarSize(8)).toBe(' [size=8]');
    expect(formatBarSize(16384)).toBe(' [size=16K]');
    expect(formatBarSize(256 << 20)).toBe(' [size=256M]');
    expect(formatBarSize(2 ** 33)).toBe(' [size=8G]');
    expect(formatBarSize(0)).toBe('');
  });
});
