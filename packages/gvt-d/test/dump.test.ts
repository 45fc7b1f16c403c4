import { VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildOpRegion, opregionDump, syntheticVbt } from '../src/index.js';
import { fixtureSuite, haveFixtures, loadFixtures } from './fixtures.js';
import { catchVfioError } from './helpers.js';
import { largeVbt } from './igd-helpers.js';

describe('opregionDump', () => {
  it('prints the header, the mailboxes, where the VBT is and every block of an OpRegion', () => {
    const text = opregionDump(buildOpRegion({ vbt: syntheticVbt(), vbiosVersion: '1046' }));
    for (const s of [
      'IGD OpRegion',
      'signature      IntelGraphicsMem',
      'version        2.0.0',
      'vbios_ver      "1046"',
      'mboxes         0x1f (ACPI SWSCI ASLE VBT ASLE_EXT)',
      'Mailbox 3 (ASLE)',
      'VBT in mailbox 4 at 0x400',
      'BDB header',
      'Blocks (4)',
      'LFP options (block 40): panel_type 2',
      'child 0: handle 0x0008  device_type 0x1806  dvo_port 10',
    ])
      expect(text).toContain(s);
  });

  it('prints a bare VBT without the OpRegion parts', () => {
    const text = opregionDump(syntheticVbt());
    expect(text.startsWith('VBT header')).toBe(true);
    expect(text).not.toContain('IGD OpRegion');
  });

  it('says where an extended VBT is', () => {
    expect(opregionDump(buildOpRegion({ vbt: largeVbt() }))).toContain(
      'VBT out of line at offset 0x2000 (RVDA)',
    );
  });

  it('shows a 64-bit RVDA and FDSS exactly, above 2^53 too (issue 17 item 7)', () => {
    const setU64 = (b: Uint8Array, off: number, v: bigint) =>
      new DataView(b.buffer, b.byteOffset, b.byteLength).setBigUint64(off, v, true);
    // No extended VBT (RVDS 0): RVDA is only shown.
    const op = buildOpRegion({ vbt: syntheticVbt() });
    setU64(op, 0x3ba, 0xfedcba9876543210n);
    setU64(op, 0x3aa, 0x8000000000000001n);
    const text = opregionDump(op);
    expect(text).toContain('rvda 0xfedcba9876543210');
    expect(text).toContain('fdss 0x8000000000000001');
    expect(text).not.toContain('0x1fffffffffffff');
    const doc = JSON.parse(opregionDump(op, { json: true }));
    expect(doc.opRegion.asle.rvda).toBe('0xfedcba9876543210');
    expect(doc.opRegion.asle.fdss).toBe('0x8000000000000001');
    // OpRegion 2.0 with RVDS: RVDA is a host physical address, shown as one, exact.
    const v20 = buildOpRegion({ vbt: syntheticVbt() });
    setU64(v20, 0x3ba, 0x0020000000001000n);
    new DataView(v20.buffer).setUint32(0x3c2, 4096, true);
    expect(opregionDump(v20)).toContain('VBT at host physical address 0x20000000001000 (OpRegion 2.0 RVDA)');
  });

  it('gives JSON that parses, with the kind and the parsed fields', () => {
    const doc = JSON.parse(opregionDump(buildOpRegion({ vbt: syntheticVbt() }), { json: true }));
    expect(doc.kind).toBe('opregion');
    expect(doc.opRegion.version.text).toBe('2.0.0');
    expect(doc.opRegion.vbt.blocks.map((b: { id: number }) => b.id)).toEqual([1, 2, 12, 40]);
    expect(JSON.parse(opregionDump(syntheticVbt(), { json: true })).kind).toBe('vbt');
  });

  it('refuses bytes that are neither an OpRegion nor a VBT with EINVAL', () => {
    const err = catchVfioError(() => opregionDump(new TextEncoder().encode('MZ not a table')));
    expect(err.code).toBe('EINVAL');
    expect(err.message).toContain('neither');
  });

  it('never throws anything but VfioError on mutated input', () => {
    const base = buildOpRegion({ vbt: syntheticVbt() });
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat({ max: base.length - 1 }), v: fc.nat({ max: 255 }) }), {
          maxLength: 12,
        }),
        (edits) => {
          const b = base.slice();
          for (const e of edits) b[e.at] = e.v;
          try {
            opregionDump(b);
            opregionDump(b, { json: true });
          } catch (err) {
            if (!(err instanceof VfioError)) throw err;
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe.skipIf(!haveFixtures)(fixtureSuite('opregionDump on the real fixtures'), () => {
  it('lists every block of every real VBT in file order', () => {
    for (const f of loadFixtures()) {
      const json = JSON.parse(opregionDump(f.bytes, { json: true }));
      const vbt = json.kind === 'vbt' ? json.vbt : json.opRegion.vbt;
      expect(
        vbt.blocks.map((b: { id: number }) => b.id),
        f.name,
      ).toEqual(f.facts.blocks_in_file_order.map((b) => b.id));
      expect(opregionDump(f.bytes)).toContain(`bdb_size       ${f.facts.bdb_header.bdb_size}`);
    }
  });
});
