import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildOpRegion, buildVbt, OPREGION_SIZE, parseOpRegion, parseVbt } from '../src/index.js';
import { arbBlocks, catchVfioError, expectEinval, le32, onlyEinval, sampleVbt } from './helpers.js';

/** A VBT of exactly `size` bytes (one filler block). */
function vbtOfSize(size: number): Uint8Array {
  return buildVbt([{ id: 200, data: new Uint8Array(size - 48 - 22 - 3).fill(0xa5) }]);
}

describe('buildOpRegion + parseOpRegion', () => {
  it('puts a VBT of up to 6 KiB in mailbox 4 of an 8 KiB OpRegion 2.0', () => {
    const vbt = vbtOfSize(6144);
    const bytes = buildOpRegion({ vbt });
    expect(bytes.length).toBe(OPREGION_SIZE);
    const op = parseOpRegion(bytes);
    expect(op.signature).toBe('IntelGraphicsMem');
    expect(op.sizeKiB).toBe(8);
    expect(op.version).toMatchObject({ major: 2, minor: 0, text: '2.0.0' });
    expect(op.mailboxes.raw).toBe(0x1f);
    expect(op.asle.rvda).toBe(0n);
    expect(op.asle.rvds).toBe(0);
    expect(op.vbtLocation).toEqual({ kind: 'mailbox4', offset: 0x400, capacity: 6144, size: 6144 });
    expect(op.vbtBytes).toEqual(vbt);
    expect(op.warnings).toEqual([]);
  });

  it('puts a VBT larger than 6 KiB after the 8 KiB with OpRegion 2.1, RVDA 0x2000 (relative) and RVDS', () => {
    const vbt = vbtOfSize(6145);
    const bytes = buildOpRegion({ vbt });
    expect(bytes.length).toBe(OPREGION_SIZE + 6145);
    const op = parseOpRegion(bytes);
    expect(op.version).toMatchObject({ major: 2, minor: 1 });
    expect(op.asle.rvda).toBe(0x2000n);
    expect(op.asle.rvds).toBe(6145);
    expect(op.vbtLocation).toEqual({ kind: 'extended', offset: 0x2000, size: 6145 });
    expect(op.vbtBytes).toEqual(vbt);
  });

  it('copies only vbt_size bytes of a padded VBT', () => {
    const vbt = sampleVbt();
    const padded = new Uint8Array(vbt.length + 300);
    padded.set(vbt);
    const op = parseOpRegion(buildOpRegion({ vbt: padded }));
    expect(op.vbtBytes).toEqual(vbt);
  });

  it("places a small VBT out of line when asked ('extended')", () => {
    const vbt = sampleVbt();
    const op = parseOpRegion(buildOpRegion({ vbt, placement: 'extended', version: { major: 2, minor: 3 } }));
    expect(op.version.minor).toBe(3);
    expect(op.vbtLocation.kind).toBe('extended');
    expect(op.vbtBytes).toEqual(vbt);
  });

  it('refuses to put a VBT larger than 6 KiB in mailbox 4', () => {
    const err = catchVfioError(() => buildOpRegion({ vbt: vbtOfSize(7000), placement: 'mailbox4' }));
    expect(err.code).toBe('EINVAL');
    expect(err.place.offset).toBe(0x400);
  });

  it('refuses an extended VBT in OpRegion 2.0, where RVDA would be a physical address', () => {
    const err = catchVfioError(() =>
      buildOpRegion({ vbt: vbtOfSize(7000), version: { major: 2, minor: 0 } }),
    );
    expect(err.place.offset).toBe(0x3ba);
    expect(err.message).toContain('2.1');
  });

  it('refuses to wrap something that is not a VBT', () => {
    const err = catchVfioError(() => buildOpRegion({ vbt: new Uint8Array(100) }));
    expect(err.message).toContain('$VBT');
  });

  it('refuses ASLE values that do not fit their fields', () => {
    expect(
      catchVfioError(() => buildOpRegion({ vbt: sampleVbt(), asle: { ardy: 2 ** 32 } })).place.offset,
    ).toBe(0x300);
    expect(
      catchVfioError(() => buildOpRegion({ vbt: sampleVbt(), asle: { bclm: [0x10000] } })).place.offset,
    ).toBe(0x31c);
    expect(
      catchVfioError(() => buildOpRegion({ vbt: sampleVbt(), asle: { plut: new Array(75).fill(0) } })).place
        .offset,
    ).toBe(0x34c);
  });

  it('round-trips random VBTs and ASLE fields: parse(build(x)) gives back x', () => {
    const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
    const asle = fc.record({
      ardy: u32,
      aslc: u32,
      tche: u32,
      alsi: u32,
      bclp: u32,
      pfit: u32,
      cblv: u32,
      cpfm: u32,
      epfm: u32,
      pfmb: u32,
      cddv: u32,
      pcft: u32,
      srot: u32,
      iuer: u32,
      fdsp: u32,
      stat: u32,
      bclm: fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 20, maxLength: 20 }),
      plut: fc.array(fc.integer({ min: 0, max: 0xff }), { minLength: 74, maxLength: 74 }),
    });
    fc.assert(
      fc.property(
        arbBlocks(2000, 8),
        asle,
        fc.constantFrom('auto', 'extended') as fc.Arbitrary<'auto' | 'extended'>,
        (blocks, a, placement) => {
          const vbt = buildVbt(blocks);
          const op = parseOpRegion(buildOpRegion({ vbt, asle: a, placement }));
          expect(op.vbtBytes).toEqual(vbt);
          expect(op.vbt?.blocks.map((b) => b.id)).toEqual(blocks.map((b) => b.id));
          const { rvda, rvds, fdss, ...rest } = op.asle;
          expect(rest).toEqual(a);
          expect(fdss).toBe(0n);
          const extended = placement === 'extended' || vbt.length > 6144;
          expect(op.vbtLocation.kind).toBe(extended ? 'extended' : 'mailbox4');
          expect([rvda, rvds]).toEqual(extended ? [0x2000n, vbt.length] : [0n, 0]);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('parseOpRegion: where the VBT is', () => {
  it('reports an OpRegion 2.0 RVDA as a physical address it cannot follow', () => {
    const bytes = buildOpRegion({ vbt: sampleVbt() });
    le32(bytes, 0x3ba, 0x7f00_0000);
    le32(bytes, 0x3c2, 9000);
    const op = parseOpRegion(bytes);
    expect(op.vbtLocation).toEqual({ kind: 'physical', address: 0x7f00_0000n, size: 9000 });
    expect(op.vbt).toBeNull();
    expect(op.vbtBytes).toBeNull();
    expect(op.warnings[0]).toContain('physical address');
  });

  it('uses mailbox 4 when only one of RVDA and RVDS is set', () => {
    const bytes = buildOpRegion({ vbt: sampleVbt() });
    le32(bytes, 0x3ba, 0x2000);
    expect(parseOpRegion(bytes).vbtLocation.kind).toBe('mailbox4');
  });

  it('reports no VBT when mailbox 4 does not start with "$VBT"', () => {
    const bytes = buildOpRegion({ vbt: sampleVbt() });
    bytes[0x400] = 0;
    const op = parseOpRegion(bytes);
    expect(op.vbtLocation).toEqual({ kind: 'none' });
    expect(op.vbt).toBeNull();
  });

  it('gives mailbox 4 7 KiB when mailbox 5 is absent, 6 KiB when present', () => {
    const vbt = vbtOfSize(6500);
    const bytes = new Uint8Array(OPREGION_SIZE);
    bytes.set(buildOpRegion({ vbt: sampleVbt() }).subarray(0, 0x400));
    bytes.set(vbt, 0x400);
    le32(bytes, 0x58, 0x0f);
    expect(parseOpRegion(bytes).vbtLocation).toEqual({
      kind: 'mailbox4',
      offset: 0x400,
      capacity: 7168,
      size: 6500,
    });
    le32(bytes, 0x58, 0x1f);
    expectEinval(() => parseOpRegion(bytes), 0x418, 'vbt_size');
  });

  it('warns when mailbox 4 holds a VBT but the mboxes VBT bit is clear', () => {
    const op = parseOpRegion(buildOpRegion({ vbt: sampleVbt(), mailboxes: 0x17 }));
    expect(op.vbt).not.toBeNull();
    expect(op.warnings.some((w) => w.includes('bit (3)'))).toBe(true);
  });
});

describe('parseOpRegion errors (EINVAL naming the field and its offset)', () => {
  const good = () => buildOpRegion({ vbt: sampleVbt() });
  const extended = () => buildOpRegion({ vbt: vbtOfSize(7000) });

  it('rejects a wrong signature', () => {
    const bytes = good();
    bytes[0] = 0x69;
    expectEinval(() => parseOpRegion(bytes), 0, 'IntelGraphicsMem', 'intelGraphicsMem');
  });

  it('rejects input too short for the signature', () => {
    expectEinval(() => parseOpRegion(new Uint8Array(3)), 0, 'signature');
  });

  it('rejects an OpRegion shorter than the header and five mailboxes (8 KiB)', () => {
    expectEinval(() => parseOpRegion(good().subarray(0, 0x1fff)), 0, '8 KiB');
  });

  it('rejects a size field of 0 KiB or below 8 KiB', () => {
    const bytes = good();
    le32(bytes, 0x10, 0);
    expectEinval(() => parseOpRegion(bytes), 0x10, 'size');
    le32(bytes, 0x10, 7);
    expectEinval(() => parseOpRegion(bytes), 0x10, 'size');
  });

  it('rejects a size field larger than the bytes given, including one that wraps at 32 bits when x1024', () => {
    const bytes = good();
    le32(bytes, 0x10, 9);
    expectEinval(() => parseOpRegion(bytes), 0x10, '9 KiB');
    le32(bytes, 0x10, 0x0040_0008);
    expectEinval(() => parseOpRegion(bytes), 0x10, 'KiB');
  });

  it('rejects a 2.1 RVDA pointing inside the 8 KiB OpRegion', () => {
    const bytes = extended();
    le32(bytes, 0x3ba, 0x1000);
    expectEinval(() => parseOpRegion(bytes), 0x3ba, 'inside the 8 KiB');
  });

  it('rejects RVDA/RVDS pointing outside the region', () => {
    const bytes = extended();
    le32(bytes, 0x3c2, 7001);
    expectEinval(() => parseOpRegion(bytes), 0x3ba, 'outside');
    le32(bytes, 0x3c2, 0xffff_ffff);
    expectEinval(() => parseOpRegion(bytes), 0x3ba, 'outside');
  });

  it('rejects an RVDA above 2^53 when it is used', () => {
    const bytes = extended();
    le32(bytes, 0x3be, 0xffff_ffff);
    expectEinval(() => parseOpRegion(bytes), 0x3ba, 'RVDA');
  });

  it('rejects an extended VBT whose vbt_size exceeds RVDS, at the outer offset', () => {
    const bytes = extended();
    le32(bytes, 0x3c2, 6000);
    expectEinval(() => parseOpRegion(bytes), 0x2000 + 0x18, 'vbt_size');
  });

  it('rejects a corrupt VBT in mailbox 4, at the outer offset', () => {
    const bytes = good();
    bytes[0x400 + 48] = 0; // BDB signature
    expectEinval(() => parseOpRegion(bytes), 0x400 + 48, 'BDB signature');
  });

  it('throws only VfioError(EINVAL) on random bytes behind a valid header', () => {
    const head = good().subarray(0, 0x400);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 0x2000 }), (tail) => {
        const bytes = new Uint8Array(head.length + tail.length);
        bytes.set(head);
        bytes.set(tail, head.length);
        onlyEinval(() => parseOpRegion(bytes));
      }),
      { numRuns: 200 },
    );
  });

  it('parses the VBT it finds exactly as parseVbt does', () => {
    const vbt = sampleVbt();
    // Inside mailbox 4 the rest of the 6 KiB mailbox counts as trailing bytes.
    expect(parseOpRegion(buildOpRegion({ vbt })).vbt).toEqual({
      ...parseVbt(vbt),
      trailingBytes: 6144 - vbt.length,
    });
  });
});
