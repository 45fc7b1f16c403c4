import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildVbt, findBlock, parseVbt, toJsonValue } from '../src/index.js';
import { arbBlocks, catchVfioError, expectEinval, le16, le32, onlyEinval, sampleVbt } from './helpers.js';

// Offsets of the synthetic VBT: header 48 bytes, BDB header at 48, first block at 70.
const BDB = 48;
const FIRST_BLOCK = 70;

describe('parseVbt on a synthetic VBT', () => {
  it('reads the headers and a zero byte sum from a built VBT', () => {
    const bytes = sampleVbt();
    const vbt = parseVbt(bytes);
    expect(vbt.header.signature).toBe('$VBT SKYLAKE        ');
    expect(vbt.header).toMatchObject({ version: 100, headerSize: 48, vbtSize: bytes.length, bdbOffset: 48 });
    expect(vbt.bdb).toEqual({
      signature: 'BIOS_DATA_BLOCK ',
      version: 221,
      headerSize: 22,
      bdbSize: bytes.length - 48,
    });
    expect(vbt.checksum).toEqual({ byteSum: 0, ok: true });
    expect(vbt.warnings).toEqual([]);
  });

  it('decodes blocks 1, 2, 12 and 40 and keeps unknown blocks as raw bytes', () => {
    const vbt = parseVbt(sampleVbt());
    expect(vbt.generalFeatures).toMatchObject({
      panelFitting: 3,
      flexaim: true,
      msgEnable: true,
      downloadExtVbt: true,
      displayClockMode: true,
      legacyMonitorDetect: 1,
    });
    const gd = vbt.generalDefinitions!;
    expect(gd).toMatchObject({ crtDdcGmbusPin: 2, dpmsAim: true, dpmsAcpi: false, childDeviceSize: 38 });
    expect(gd.childDevices.length).toBe(3);
    expect(gd.childDevices[0]).toMatchObject({
      handle: 8,
      deviceType: 0x1806,
      dvoPort: 10,
      ddcPin: 3,
      auxChannel: 0x40,
      integratedEncoder: true,
    });
    expect(gd.childDevices[1]).toMatchObject({
      handle: 4,
      deviceType: 0x60d6,
      dvoPort: 7,
      ddcPin: 5,
      auxChannel: 0x10,
    });
    expect(gd.childDevices[2].deviceType).toBe(0);
    expect(vbt.driverFeatures).toMatchObject({
      bootModeX: 1024,
      bootModeY: 768,
      lvdsConfig: 3,
      embeddedPlatform: true,
      pcFeatureValid: true,
      dmrrsEnabled: true,
    });
    expect(vbt.lfpOptions).toEqual({
      panelType: 2,
      panelType2: 3,
      pfitMode: 3,
      pfitTextModeEnhanced: true,
      pfitGfxModeEnhanced: false,
      pfitRatioAuto: true,
      pixelDither: true,
      lvdsEdid: true,
    });
    expect(Array.from(findBlock(vbt, 200)!.data)).toEqual([1, 2, 3, 4, 5]);
    expect(findBlock(vbt, 200)!.name).toBe('Unknown block 200');
  });

  it('leaves panel type 2 undefined before BDB 212, where the byte is reserved', () => {
    const vbt = parseVbt(buildVbt([{ id: 40, data: new Uint8Array([5, 9, 0]) }], { bdbVersion: 211 }));
    expect(vbt.lfpOptions?.panelType).toBe(5);
    expect(vbt.lfpOptions?.panelType2).toBeUndefined();
  });

  it('reads a block shorter than its structure as zeros past its end', () => {
    const vbt = parseVbt(buildVbt([{ id: 12, data: new Uint8Array([0, 0x00, 0x04]) }]));
    expect(vbt.driverFeatures).toMatchObject({ bootModeX: 1024, bootModeY: 0, pcFeatureValid: false });
  });

  it('ignores padding after vbt_size and counts it', () => {
    const bytes = sampleVbt();
    const padded = new Uint8Array(bytes.length + 100);
    padded.set(bytes);
    const vbt = parseVbt(padded);
    expect(vbt.trailingBytes).toBe(100);
    expect(vbt.blocks.length).toBe(5);
  });

  it('reports a wrong checksum as a warning, not an error', () => {
    const bytes = sampleVbt();
    bytes[0x1a] = (bytes[0x1a] + 1) & 0xff;
    const vbt = parseVbt(bytes);
    expect(vbt.checksum.ok).toBe(false);
    expect(vbt.checksum.byteSum).toBe(1);
    expect(vbt.warnings[0]).toMatch(/^checksum/);
  });

  it('accepts a final block ending 1 byte past bdb_size inside vbt_size, and marks it', () => {
    const bytes = buildVbt([
      { id: 1, data: new Uint8Array(5) },
      { id: 58, data: new Uint8Array(10) },
    ]);
    le16(bytes, BDB + 0x14, bytes.length - BDB - 1); // bdb_size one short, as in 279 coreboot VBTs
    const vbt = parseVbt(bytes);
    expect(vbt.blocks.map((b) => [b.id, b.pastBdbSize])).toEqual([
      [1, false],
      [58, true],
    ]);
    expect(vbt.warnings.some((w) => w.includes('block 58'))).toBe(true);
  });

  it('rejects a block ending 2 bytes past bdb_size, naming the block id and its offset', () => {
    const bytes = buildVbt([
      { id: 1, data: new Uint8Array(5) },
      { id: 58, data: new Uint8Array(10) },
    ]);
    le16(bytes, BDB + 0x14, bytes.length - BDB - 2);
    expectEinval(() => parseVbt(bytes), FIRST_BLOCK + 8, 'block 58', 'past the end of the BDB');
  });

  it('rejects a 1-byte overrun when vbt_size does not cover it', () => {
    const bytes = buildVbt([{ id: 7, data: new Uint8Array(4) }]);
    le16(bytes, FIRST_BLOCK + 1, 5); // block claims one byte more than exists
    expectEinval(() => parseVbt(bytes), FIRST_BLOCK, 'block 7');
  });

  it('takes a MIPI sequence v3 block size from its u32 (plus the 5-byte prefix)', () => {
    const data = new Uint8Array(40);
    data[0] = 3;
    const bytes = buildVbt([
      { id: 53, data },
      { id: 1, data: new Uint8Array(5) },
    ]);
    expect(bytes[FIRST_BLOCK + 1] | (bytes[FIRST_BLOCK + 2] << 8)).toBe(0); // u16 size is 0
    const vbt = parseVbt(bytes);
    expect(vbt.blocks.map((b) => [b.id, b.size])).toEqual([
      [53, 40],
      [1, 5],
    ]);
  });

  it('rejects a MIPI sequence v3 block whose u32 size runs past the BDB', () => {
    const data = new Uint8Array(40);
    data[0] = 3;
    const bytes = buildVbt([{ id: 53, data }]);
    le32(bytes, FIRST_BLOCK + 4, 0xffff_fff0);
    expectEinval(() => parseVbt(bytes), FIRST_BLOCK, 'block 53');
  });

  it('uses the u16 size for a MIPI sequence block below version 3', () => {
    const data = new Uint8Array(12);
    data[0] = 2;
    const vbt = parseVbt(buildVbt([{ id: 53, data }]));
    expect(vbt.blocks[0].size).toBe(12);
  });

  it('warns when block 2 says its child devices are 0 bytes long', () => {
    const vbt = parseVbt(buildVbt([{ id: 2, data: new Uint8Array(20) }]));
    expect(vbt.generalDefinitions?.childDevices).toEqual([]);
    expect(vbt.warnings.some((w) => w.includes('child device size is 0'))).toBe(true);
  });
});

describe('parseVbt errors (EINVAL naming the field and its offset)', () => {
  it('rejects input shorter than the 48-byte header', () => {
    expectEinval(() => parseVbt(sampleVbt().subarray(0, 47)), 0, 'VBT header');
  });

  it('rejects an empty input', () => {
    expectEinval(() => parseVbt(new Uint8Array(0)), 0, 'VBT header');
  });

  it('rejects a signature without the "$VBT" prefix', () => {
    const bytes = sampleVbt();
    bytes[1] = 0x57;
    expectEinval(() => parseVbt(bytes), 0, '$VBT', '$WBT');
  });

  it('rejects vbt_size larger than the input (truncated VBT)', () => {
    const bytes = sampleVbt();
    expectEinval(() => parseVbt(bytes.subarray(0, bytes.length - 1)), 0x18, 'vbt_size');
  });

  it('rejects vbt_size smaller than the header', () => {
    const bytes = sampleVbt();
    le16(bytes, 0x18, 47);
    expectEinval(() => parseVbt(bytes), 0x18, 'vbt_size');
  });

  it('rejects a header_size below 48 or beyond vbt_size', () => {
    const bytes = sampleVbt();
    le16(bytes, 0x16, 20);
    expectEinval(() => parseVbt(bytes), 0x16, 'header_size');
    le16(bytes, 0x16, 0xffff);
    expectEinval(() => parseVbt(bytes), 0x16, 'header_size');
  });

  it('rejects a bdb_offset that would wrap in 32-bit arithmetic', () => {
    const bytes = sampleVbt();
    le32(bytes, 0x1c, 0xffff_fff0);
    expectEinval(() => parseVbt(bytes), 0x1c, 'bdb_offset');
  });

  it('rejects a bdb_offset inside the VBT header', () => {
    const bytes = sampleVbt();
    le32(bytes, 0x1c, 8);
    expectEinval(() => parseVbt(bytes), 0x1c, 'bdb_offset');
  });

  it('rejects a wrong BDB signature at bdb_offset', () => {
    const bytes = sampleVbt();
    bytes[BDB + 3] = 0x58; // BIOX_DATA_BLOCK
    expectEinval(() => parseVbt(bytes), BDB, 'BDB signature', 'BIOS_DATA_BLOCK');
  });

  it('rejects a bdb_size that runs past vbt_size', () => {
    const bytes = sampleVbt();
    le16(bytes, BDB + 0x14, bytes.length);
    expectEinval(() => parseVbt(bytes), BDB + 0x14, 'bdb_size');
  });

  it('rejects a BDB header_size below 22 or above bdb_size', () => {
    const bytes = sampleVbt();
    le16(bytes, BDB + 0x12, 21);
    expectEinval(() => parseVbt(bytes), BDB + 0x12, 'BDB header_size');
    le16(bytes, BDB + 0x12, 0xfff0);
    expectEinval(() => parseVbt(bytes), BDB + 0x12, 'BDB header_size');
  });

  it('puts the outer offset in errors when told where the VBT sits', () => {
    const bytes = sampleVbt();
    le16(bytes, 0x18, 47);
    const err = catchVfioError(() => parseVbt(bytes, { base: 0x400, region: 'IGD OpRegion' }));
    expect(err.place).toEqual({ region: 'IGD OpRegion', offset: 0x418 });
  });
});

describe('buildVbt', () => {
  it('round-trips random blocks: parse(build(blocks)) gives back ids, sizes and bytes', () => {
    fc.assert(
      fc.property(arbBlocks(), (blocks) => {
        const vbt = parseVbt(buildVbt(blocks));
        expect(vbt.checksum.ok).toBe(true);
        expect(vbt.blocks.map((b) => b.id)).toEqual(blocks.map((b) => b.id));
        vbt.blocks.forEach((b, i) => {
          const want = blocks[i].data.slice();
          // For a MIPI sequence v3+ block the builder writes the u32 length (payload - 5) itself.
          if (blocks[i].id === 53 && want[0] >= 3) le32(want, 1, want.length - 5);
          expect(Array.from(b.data)).toEqual(Array.from(want));
        });
        expect(vbt.blocks.every((b) => !b.pastBdbSize)).toBe(true);
        JSON.stringify(toJsonValue(vbt));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects a block id that does not fit a byte', () => {
    const err = catchVfioError(() => buildVbt([{ id: 256, data: new Uint8Array(1) }]));
    expect(err.code).toBe('EINVAL');
    expect(err.message).toContain('id 256');
  });

  it('rejects a block larger than the u16 size field', () => {
    const err = catchVfioError(() => buildVbt([{ id: 1, data: new Uint8Array(0x10000) }]));
    expect(err.message).toContain('u16 block size');
  });

  it('rejects blocks that make the VBT larger than vbt_size can say', () => {
    const err = catchVfioError(() =>
      buildVbt([
        { id: 1, data: new Uint8Array(40000) },
        { id: 2, data: new Uint8Array(40000) },
      ]),
    );
    expect(err.place.offset).toBe(0x18);
  });

  it('rejects an empty MIPI sequence block, whose version byte would be read from the next block', () => {
    const err = catchVfioError(() => buildVbt([{ id: 53, data: new Uint8Array(0) }]));
    expect(err.message).toContain('version byte');
  });

  it('rejects a MIPI v3 block without room for its 5-byte prefix', () => {
    const err = catchVfioError(() => buildVbt([{ id: 53, data: new Uint8Array([3, 0]) }]));
    expect(err.message).toContain('MIPI sequence');
  });
});

describe('parseVbt robustness (property)', () => {
  it('throws only VfioError(EINVAL) on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => onlyEinval(() => parseVbt(bytes))),
      { numRuns: 500 },
    );
  });

  it('throws only VfioError(EINVAL) on random bytes behind a valid "$VBT" + BDB prefix', () => {
    const prefix = sampleVbt().subarray(0, FIRST_BLOCK);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 0xffff }), (tail, size) => {
        const bytes = new Uint8Array(prefix.length + tail.length);
        bytes.set(prefix);
        bytes.set(tail, prefix.length);
        le16(bytes, 0x18, size);
        le16(bytes, BDB + 0x14, Math.max(0, size - BDB));
        onlyEinval(() => parseVbt(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it('never reads past its input: the same bytes give the same answer whatever follows them', () => {
    fc.assert(
      fc.property(
        arbBlocks(60, 6),
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        (blocks, cut, junk) => {
          const full = buildVbt(blocks);
          const bytes = full.subarray(0, cut % (full.length + 1));
          const outcome = (input: Uint8Array) => {
            try {
              return JSON.stringify(toJsonValue(parseVbt(input)));
            } catch (err) {
              return String(err);
            }
          };
          const alone = outcome(bytes.slice());
          const host = new Uint8Array(bytes.length + junk.length);
          host.set(bytes);
          host.set(junk, bytes.length);
          expect(outcome(host.subarray(0, bytes.length))).toBe(alone);
        },
      ),
      { numRuns: 300 },
    );
  });
});
