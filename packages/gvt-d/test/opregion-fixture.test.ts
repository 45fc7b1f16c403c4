import { describe, expect, it } from 'vitest';
import { buildOpRegion, parseOpRegion, toJsonValue } from '../src/index.js';
import { fixtureSuite, haveFixtures, loadFixtures, loadOpRegionJson } from './fixtures.js';

const NAME = 'rikka0w0-qemu-gvt-d__opregion.bin';
const fixture = loadFixtures().find((f) => f.name === NAME);
const json = haveFixtures ? loadOpRegionJson(NAME) : undefined;
const num = (v: unknown) => (typeof v === 'string' ? Number.parseInt(v, 16) : (v as number));

describe.skipIf(!haveFixtures)(fixtureSuite('real Skylake OpRegion dump (rikka0w0/qemu-gvt-d)'), () => {
  it('is present with its opregion.json', () => {
    expect(fixture).toBeDefined();
    expect(json).toBeDefined();
  });

  it('parses the header as opregion.json gives it', () => {
    const op = parseOpRegion(fixture!.bytes);
    const h = json!.header;
    expect(op.signature).toBe(h.signature);
    expect(op.sizeKiB).toBe(h.size_field_kib);
    expect(op.version.text).toBe(h.version_string);
    expect(op.version.major).toBe(2);
    expect(op.version.minor).toBe(0);
    expect(op.biosVersion).toBe(h.sver_bios_ver_0x18);
    expect(op.vbiosVersion).toBe(h.vver_vbios_ver_0x38);
    expect(op.driverVersion).toBe(h.gver_driver_ver_0x48);
    expect(op.gopVersion).toBe(h.dver_gop_ver_0x64);
    expect(op.mailboxes.raw).toBe(num(h.mboxes_0x58));
    expect(op.mailboxes).toMatchObject({ acpi: true, swsci: true, asle: true, vbt: true, asleExt: true });
    expect(op.driverModel).toBe(num(h.dmod_driver_model_0x5c));
    expect(op.platformConfig).toBe(num(h.pcon_0x60));
  });

  it('reads mailbox 1 (ACPI) and mailbox 2 (SWSCI) as opregion.json gives them', () => {
    const op = parseOpRegion(fixture!.bytes);
    const m1 = json!.mailbox1_acpi;
    for (const k of ['drdy', 'csts', 'cevt', 'aslp', 'tidx', 'chpd', 'clid', 'cdck'] as const) {
      expect(op.acpi[k], k).toBe(m1[k]);
    }
    for (const k of ['didl', 'cpdl', 'cadl', 'nadl'] as const) {
      expect(op.acpi[k], k).toEqual((m1[k] as string[]).map(num));
    }
    const m2 = json!.mailbox2_swsci;
    expect(op.swsci).toEqual({ scic: num(m2.scic), parm: num(m2.parm), dslp: m2.dslp });
  });

  it('reads every ASLE field opregion.json gives', () => {
    const op = parseOpRegion(fixture!.bytes);
    const a = json!.mailbox3_asle;
    for (const k of [
      'ardy',
      'aslc',
      'tche',
      'alsi',
      'bclp',
      'pfit',
      'cblv',
      'cpfm',
      'epfm',
      'pfmb',
      'cddv',
      'pcft',
      'srot',
      'iuer',
      'fdsp',
      'stat',
    ] as const) {
      expect(op.asle[k], k).toBe(num(a[k]));
    }
    expect(op.asle.bclm).toEqual((a.bclm as string[]).map(num));
    expect(op.asle.plut.filter((b) => b !== 0).length).toBe(a.plut_nonzero_bytes);
    expect(op.asle.fdss).toBe(BigInt(a.fdss as number));
    expect(op.asle.rvda).toBe(BigInt(num(a.rvda_0x3ba)));
    expect(op.asle.rvds).toBe(a.rvds_0x3c2);
    expect(op.phed).toBe(json!.mailbox5_asle_ext.phed);
  });

  it('finds the VBT in mailbox 4 at 0x400 with the size and signature of the dump', () => {
    const op = parseOpRegion(fixture!.bytes);
    const m4 = json!.mailbox4_vbt;
    expect(op.vbtLocation).toEqual({
      kind: 'mailbox4',
      offset: num(m4.offset),
      capacity: m4.capacity_bytes,
      size: m4.vbt_size,
    });
    expect(op.vbt?.header.signature).toBe(m4.vbt_signature);
    expect(op.vbtBytes?.length).toBe(m4.vbt_size);
    expect(op.vbt?.checksum.byteSum).toBe(m4.vbt_byte_sum_mod_256);
    expect(Array.from(op.vbtBytes!)).toEqual(
      Array.from(fixture!.bytes.subarray(0x400, 0x400 + op.vbtBytes!.length)),
    );
  });

  it('rebuilds: build(parse(dump).vbt) parses back to the same VBT and ASLE fields given', () => {
    const op = parseOpRegion(fixture!.bytes);
    const rebuilt = parseOpRegion(
      buildOpRegion({
        vbt: op.vbtBytes!,
        asle: { ardy: op.asle.ardy, bclm: op.asle.bclm, pfit: op.asle.pfit },
      }),
    );
    expect(rebuilt.vbtBytes).toEqual(op.vbtBytes);
    expect(rebuilt.mailboxes.raw).toBe(op.mailboxes.raw);
    expect(rebuilt.asle.bclm).toEqual(op.asle.bclm);
    expect(rebuilt.asle.pfit).toBe(op.asle.pfit);
    expect(rebuilt.version.text).toBe('2.0.0');
  });

  it('serialises to JSON', () => {
    const op = parseOpRegion(fixture!.bytes);
    const back = JSON.parse(JSON.stringify(toJsonValue(op)));
    expect(back.vbtBytes).toMatch(/^2456425420534b594c414b45/); // "$VBT SKYLAKE" in hex
    expect(back.vbt.blocks.length).toBe(op.vbt!.blocks.length);
  });
});
