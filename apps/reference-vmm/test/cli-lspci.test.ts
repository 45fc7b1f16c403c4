import { readFileSync } from 'node:fs';
import type { GuestView } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { powerLimit } from '../src/cli/lspci/express.js';
import { formatBarSize, lspciJson, PciIds, renderConfigs, renderLspci } from '../src/cli/lspci/index.js';
import { className, deviceName, progIfName, subsystemName } from '../src/cli/lspci/names.js';
import { makeDevice, SLOT } from './lspci-device.js';

const ids = PciIds.parse(readFileSync(new URL('./fixtures/pci.ids', import.meta.url), 'utf8'));

function lines(verbose: number, numeric = 0, extra: { hex?: number; kernel?: boolean } = {}): string[] {
  const { guest, probed } = makeDevice();
  return renderLspci(guest, [probed], { verbose, numeric, ids, ...extra }, [
    { name: 'i915', matches: (d) => d.vendorId === 0x8086, run: async () => ({ ok: true, summary: '' }) },
  ]).split('\n');
}

describe('renderLspci', () => {
  it('prints one line per function with names from pci.ids, as lspci does without -v', () => {
    expect(lines(0)).toEqual([
      '00:02.0 VGA compatible controller: Intel Corporation HD Graphics 630 (rev 04)',
      '',
    ]);
  });

  it('prints class and IDs as numbers with -n and both with -nn', () => {
    expect(lines(0, 1)[0]).toBe('00:02.0 0300: 8086:5912 (rev 04)');
    expect(lines(0, 2)[0]).toBe(
      '00:02.0 VGA compatible controller [0300]: Intel Corporation HD Graphics 630 [8086:5912] (rev 04)',
    );
  });

  it('prints numbers where names would be when there is no database, as lspci does without pci.ids', () => {
    const { guest, probed } = makeDevice();
    expect(renderLspci(guest, [probed], { verbose: 0, numeric: 0, ids: null })).toBe(
      '00:02.0 Class 0300: Device 8086:5912 (rev 04)\n',
    );
    expect(renderLspci(guest, [probed], { verbose: 0, numeric: 2, ids: null })).toBe(
      '00:02.0 Class [0300]: Device [8086:5912] (rev 04)\n',
    );
  });

  it('with -v prints prog-if, subsystem, flags, BARs with sizes, every capability, extended ones too, and the drivers', () => {
    expect(lines(1)).toEqual([
      '00:02.0 VGA compatible controller: Intel Corporation HD Graphics 630 (rev 04) (prog-if 00 [VGA controller])',
      '\tSubsystem: Intel Corporation Device 2212',
      '\tFlags: bus master, fast devsel, latency 0, IRQ 11',
      '\tMemory at c0000000 (32-bit, non-prefetchable) [size=16M]',
      '\tMemory at 100000000 (64-bit, prefetchable) [size=256M]',
      '\tI/O ports at d000 [size=64]',
      '\tCapabilities: [40] Power Management version 3',
      '\tCapabilities: [48] MSI: Enable- Count=1/4 Maskable+ 64bit+',
      '\tCapabilities: [60] MSI-X: Enable- Count=8 Masked-',
      '\tCapabilities: [6c] Express Endpoint, MSI 00',
      '\tCapabilities: [a8] Vendor Specific Information: Len=08 <?>',
      '\tCapabilities: [100] Advanced Error Reporting',
      '\tCapabilities: [118] Device Serial Number 01-02-03-04-05-06-07-08',
      '\tKernel modules: i915',
      '',
      '',
    ]);
  });

  it('with -vv decodes the PCI Express registers as pciutils 3.9 does (FLReset, power limit, link, version 2)', () => {
    const out = lines(2);
    for (const line of [
      '\tControl: I/O+ Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- Stepping- SERR- FastB2B- DisINTx-',
      '\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-',
      '\tLatency: 0',
      '\tInterrupt: pin A routed to IRQ 11',
      '\tRegion 2: Memory at 100000000 (64-bit, prefetchable) [size=256M]',
      '\t\tAddress: 0000000000000000  Data: 0000',
      '\t\tMasking: 00000000  Pending: 00000000',
      '\t\tVector table: BAR=0 offset=00002000',
      '\tCapabilities: [6c] Express (v2) Endpoint, MSI 00',
      '\t\t\tExtTag- AttnBtn- AttnInd- PwrInd- RBE+ FLReset- SlotPowerLimit 0W',
      '\t\tLnkCtl:\tASPM Disabled; RCB 64 bytes, Disabled- CommClk-',
      '\t\tLnkSta:\tSpeed 2.5GT/s, Width x1',
      '\t\tDevCap2: Completion Timeout: Not Supported, TimeoutDis- NROPrPrP- LTR-',
      '\t\t\t FRS- TPHComp- ExtTPHComp-',
      '\t\t\t AtomicOpsCap: 32bit- 64bit- 128bitCAS-',
      '\t\tDevCtl2: Completion Timeout: 50us to 50ms, TimeoutDis- LTR- 10BitTagReq- OBFF Disabled,',
      '\t\t\t AtomicOpsCtl: ReqEn-',
      '\t\tLnkSta2: Current De-emphasis Level: -6dB, EqualizationComplete- EqualizationPhase1-',
      '\tCapabilities: [100 v2] Advanced Error Reporting',
      '\t\tUESta:\tDLP- SDES- TLP- FCP- CmpltTO- CmpltAbrt- UnxCmplt- RxOF- MalfTLP- ECRC- UnsupReq- ACSViol-',
      '\tCapabilities: [118 v1] Device Serial Number 01-02-03-04-05-06-07-08',
    ])
      expect(out).toContain(line);
    // the upper half of the 64-bit BAR is not a region of its own when the OS knows the BARs
    expect(out.some((l) => l.startsWith('\tRegion 3:'))).toBe(false);
    // link capabilities 2 of a function other than 00.0 were reserved before PCIe r3.0
    expect(out.some((l) => l.startsWith('\t\tLnkCap2:') || l.startsWith('\t\tLnkCtl2:'))).toBe(false);
  });

  it('with -k prints the subsystem and the drivers that would bind, without -v', () => {
    expect(lines(0, 0, { kernel: true })).toEqual([
      '00:02.0 VGA compatible controller: Intel Corporation HD Graphics 630 (rev 04)',
      '\tSubsystem: Intel Corporation Device 2212',
      '\tKernel modules: i915',
      '',
    ]);
  });

  it('dumps 64, 256 or 4096 configuration bytes with -x, -xxx and -xxxx, a blank line after each function', () => {
    const count = (x: number) => lines(0, 0, { hex: x }).filter((l) => /^[0-9a-f]{2,3}: /.test(l)).length;
    expect(count(1)).toBe(4);
    expect(count(2)).toBe(4);
    expect(count(3)).toBe(16);
    expect(count(4)).toBe(256);
    const dump = lines(0, 0, { hex: 1 });
    expect(dump[1]).toBe('00: 86 80 12 59 07 00 10 00 04 00 00 03 00 00 00 00');
    expect(dump.slice(-2)).toEqual(['', '']);
  });

  it('reads its own -xxxx dump back into the same output (the bytes round-trip)', () => {
    const { guest, probed } = makeDevice();
    const dump = renderLspci(guest, [probed], { verbose: 0, numeric: 0, hex: 4, ids });
    const bytes = Uint8Array.from(
      dump
        .split('\n')
        .filter((l) => /^[0-9a-f]{2,3}: /.test(l))
        .flatMap((l) =>
          l
            .slice(l.indexOf(':') + 2)
            .split(' ')
            .map((b) => Number.parseInt(b, 16)),
        ),
    );
    expect(bytes.length).toBe(4096);
    const fromDump = renderConfigs([{ address: SLOT, config: bytes }], { verbose: 3, numeric: 0, ids });
    const live = renderLspci(guest, [probed], { verbose: 3, numeric: 0, ids });
    // a dump carries no BAR sizes and no OS view of the BARs: lspci -F shows the upper half of a
    // 64-bit BAR as a region of its own
    const strip = (s: string) =>
      s
        .split('\n')
        .map((l) => l.replace(/ \[size=[0-9]+[KMGT]?\]$/, ''))
        .filter((l) => !l.startsWith('\tRegion 3:'));
    expect(strip(fromDump)).toEqual(strip(live));
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
    const unassigned = {
      ...probed,
      bars: probed.bars.map((b) => (b.index === 4 ? { ...b, address: 0 } : b)),
    };
    const out = renderLspci(off, [unassigned], { verbose: 2, numeric: 0, ids }).split('\n');
    expect(out).toContain('\tRegion 0: Memory at c0000000 (32-bit, non-prefetchable) [disabled] [size=16M]');
    // lspci.c tests the raw register, I/O flag bit included, so a BAR the OS left at 0 whose
    // register still reads 0x1 is "<ignored>", not "<unassigned>"
    expect(out).toContain('\tRegion 4: I/O ports at <ignored> [disabled] [size=64]');
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
    const out = renderLspci(looped, [probed], { verbose: 1, numeric: 0, ids }).split('\n');
    expect(out).toContain('\tCapabilities: [40] <chain looped>');
  });

  it('reads configuration only through configRead and treats a failing read as all-ones', () => {
    const { probed } = makeDevice();
    const broken: Pick<GuestView, 'configRead'> = {
      configRead: () => {
        throw new Error('master abort');
      },
    };
    expect(renderLspci(broken, [probed], { verbose: 0, numeric: 0, ids })).toBe(
      '00:02.0 Unassigned class [ffff]: Device ffff:ffff (rev ff)\n',
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

  it('gives the same facts as JSON, with names from the database', () => {
    const { guest, probed } = makeDevice();
    const [d] = lspciJson(guest, [probed], ids);
    expect(d).toMatchObject({
      slot: '00:02.0',
      classCode: '030000',
      className: 'VGA compatible controller',
      vendorId: '8086',
      deviceId: '5912',
      vendorName: 'Intel Corporation',
      deviceName: 'HD Graphics 630',
    });
    expect(d.subsystemName).toBeUndefined();
    expect(d.extendedCapabilities).toEqual([
      { offset: '0x100', id: '0x0001', version: 2 },
      { offset: '0x118', id: '0x0003', version: 1 },
    ]);
    expect(d.config).toHaveLength(512);
  });
});

describe('names (lib/names.c)', () => {
  it('formats vendors, devices and subsystems as pci_lookup_name does', () => {
    expect(deviceName(ids, 0, 0x8086, 0xffff)).toBe('Intel Corporation Device ffff');
    expect(deviceName(ids, 2, 0x8086, 0xffff)).toBe('Intel Corporation Device [8086:ffff]');
    expect(deviceName(ids, 0, 0x1234, 0x0001)).toBe('Device 1234:0001');
    expect(subsystemName(ids, 0, 0x8086, 0x5912, 0x1462, 0x7a72)).toBe('Device 1462:7a72');
    expect(subsystemName(ids, 0, 0x8086, 0x5912, 0x8086, 0x5912)).toBe('Intel Corporation HD Graphics 630');
    expect(subsystemName(ids, 2, 0x8086, 0x5912, 0x8086, 0x2212)).toBe(
      'Intel Corporation Device [8086:2212]',
    );
  });

  it('shows a class known only by its base class with its number, and an unknown one as Class', () => {
    expect(className(ids, 0, 0x0680)).toBe('Bridge [0680]');
    expect(className(ids, 1, 0x0680)).toBe('0680');
    expect(className(ids, 0, 0x1234)).toBe('Class 1234');
    expect(className(ids, 2, 0x0300)).toBe('VGA compatible controller [0300]');
  });

  it('names IDE programming interfaces by their bits when the database has no entry', () => {
    expect(progIfName(ids, 0x0101, 0x8a)).toBe('Master SecP PriP');
    expect(progIfName(ids, 0x0101, 0x00)).toBe('');
    expect(progIfName(ids, 0x0300, 0x00)).toBe('VGA controller');
    expect(progIfName(ids, 0x0300, 0x07)).toBeUndefined();
  });

  it('ends a name that does not fit pciutils’ buffer with "..."', () => {
    const long = PciIds.parse(`abcd  ${'V'.repeat(100)}\n\t0001  ${'D'.repeat(100)}\n`);
    const name = deviceName(long, 0, 0xabcd, 0x0001, 128);
    expect(name).toHaveLength(127);
    expect(name.endsWith('DDD...')).toBe(true);
  });
});

describe('PciIds.parse', () => {
  const hex = (w: number) =>
    fc.integer({ min: 0, max: 16 ** w - 1 }).map((n) => n.toString(16).padStart(w, '0'));
  const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9 ./\-[\]()]{0,40}[A-Za-z0-9\])]$/);

  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        const db = PciIds.parse(text);
        expect(typeof db.vendor(0)).not.toBe('number');
      }),
    );
  });

  it('finds every entry of a database written in the pci.ids format', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.record({
            v: hex(4),
            vn: name,
            d: fc.uniqueArray(fc.record({ d: hex(4), dn: name }), { selector: (x) => x.d, maxLength: 4 }),
          }),
          { selector: (x) => x.v, maxLength: 5 },
        ),
        fc.uniqueArray(fc.record({ c: hex(2), cn: name, s: hex(2), sn: name }), {
          selector: (x) => x.c,
          maxLength: 3,
        }),
        (vendors, classes) => {
          const text = [
            '# comment',
            ...vendors.flatMap((v) => [`${v.v}  ${v.vn}`, ...v.d.map((d) => `\t${d.d}  ${d.dn}`)]),
            ...classes.flatMap((c) => [`C ${c.c}  ${c.cn}`, `\t${c.s}  ${c.sn}`]),
          ].join('\n');
          const db = PciIds.parse(text);
          for (const v of vendors) {
            expect(db.vendor(Number.parseInt(v.v, 16))).toBe(v.vn);
            for (const d of v.d)
              expect(db.device(Number.parseInt(v.v, 16), Number.parseInt(d.d, 16))).toBe(d.dn);
          }
          for (const c of classes) {
            expect(db.baseClass(Number.parseInt(c.c, 16))).toBe(c.cn);
            expect(db.subclass(Number.parseInt(c.c, 16), Number.parseInt(c.s, 16))).toBe(c.sn);
          }
        },
      ),
    );
  });

  it('skips malformed lines and keeps the first of two duplicate entries, where pciutils would stop', () => {
    const db = PciIds.parse(
      '8086  Intel\n\tzzzz  broken\n\t1234  First\n\t1234  Second\n12  short\nC 0g  bad\n',
    );
    expect(db.vendor(0x8086)).toBe('Intel');
    expect(db.device(0x8086, 0x1234)).toBe('First');
    expect(db.vendor(0x12)).toBeUndefined();
  });
});

describe('formatBarSize', () => {
  it('prints sizes in lspci’s units, a size that is no multiple of 1K in bytes', () => {
    expect(formatBarSize(8)).toBe(' [size=8]');
    expect(formatBarSize(16384)).toBe(' [size=16K]');
    expect(formatBarSize(1536)).toBe(' [size=1536]');
    expect(formatBarSize(256 << 20)).toBe(' [size=256M]');
    expect(formatBarSize(2 ** 33)).toBe(' [size=8G]');
    expect(formatBarSize(2n ** 60n)).toBe(' [size=1048576T]');
    expect(formatBarSize(0)).toBe('');
  });
});

describe('powerLimit (ls-caps.c show_power_limit)', () => {
  it('prints watts with %g from a single-precision product, and the 250-600 W encodings', () => {
    expect(powerLimit(0, 0)).toBe('0W');
    expect(powerLimit(25, 1)).toBe('2.5W');
    expect(powerLimit(75, 0)).toBe('75W');
    expect(powerLimit(3, 3)).toBe('0.003W');
    expect(powerLimit(0xf0, 0)).toBe('250W');
    expect(powerLimit(0xfe, 0)).toBe('600W');
    expect(powerLimit(0xff, 0)).toBe('>600W');
    expect(powerLimit(0xff, 1)).toBe('25.5W');
  });
});
