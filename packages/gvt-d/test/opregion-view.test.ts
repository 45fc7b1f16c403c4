import { VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildOpRegion, parseOpRegion, parseVbt, presentOpRegion, syntheticVbt } from '../src/index.js';
import { fixtureSuite, haveFixtures, loadFixtures } from './fixtures.js';
import { catchVfioError, le32 } from './helpers.js';
import { largeVbt } from './igd-helpers.js';

const RVDA = 0x3ba;
const RVDS = 0x3c2;
const u32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset).getUint32(o, true);

/** A 2.0 OpRegion whose extended VBT sits at a host physical address, as some firmware builds it. */
function opRegion20WithPhysicalVbt(vbt: Uint8Array, physical = 0x8a0f6000) {
  const built = buildOpRegion({ vbt });
  const host = built.slice(0, 0x2000);
  host[0x16] = 0; // minor 0: version 2.0
  le32(host, RVDA, physical);
  le32(host, RVDA + 4, 0);
  return { host, extended: built.slice(0x2000) };
}

describe('presentOpRegion: the OpRegion region as vfio_pci_igd.c shows it', () => {
  it('shows an in-line 2.0 OpRegion unchanged, 8 KiB, with RVDA 0', () => {
    const host = buildOpRegion({ vbt: syntheticVbt() });
    const view = presentOpRegion(host);
    expect(view.bytes.length).toBe(0x2000);
    expect(view.bytes).toEqual(host);
    expect(view.versionPatched).toBe(false);
    expect(view.extendedVbtSize).toBe(0);
  });

  it('re-presents a 2.0 OpRegion with an extended VBT as 2.1 with RVDA 0x2000 and the VBT right after the 8 KiB', () => {
    const vbt = largeVbt();
    const { host, extended } = opRegion20WithPhysicalVbt(vbt);
    const view = presentOpRegion(host, extended);
    expect(view.versionPatched).toBe(true);
    expect(view.bytes.length).toBe(0x2000 + vbt.length);
    expect(view.bytes[0x17]).toBe(2);
    expect(view.bytes[0x16]).toBe(1);
    expect(u32(view.bytes, RVDA)).toBe(0x2000);
    expect(u32(view.bytes, RVDA + 4)).toBe(0);
    expect(view.bytes.subarray(0x2000)).toEqual(vbt);
    // Everything else of the 8 KiB is the host's.
    const expected = host.slice();
    expected[0x16] = 1;
    le32(expected, RVDA, 0x2000);
    expect(view.bytes.subarray(0, 0x2000)).toEqual(expected);
    const op = parseOpRegion(view.bytes);
    expect(op.vbtLocation).toEqual({ kind: 'extended', offset: 0x2000, size: vbt.length });
    expect(op.vbt?.blocks.map((b) => b.id)).toEqual(parseVbt(vbt).blocks.map((b) => b.id));
  });

  it('moves a non-contiguous 2.1 extended VBT to 0x2000 and keeps the version', () => {
    const vbt = largeVbt();
    const built = buildOpRegion({ vbt });
    const host = new Uint8Array(0x3000 + vbt.length);
    host.set(built.subarray(0, 0x2000));
    host.set(vbt, 0x3000);
    le32(host, RVDA, 0x3000);
    const view = presentOpRegion(host);
    expect(view.versionPatched).toBe(false);
    expect(view.bytes).toEqual(built);
  });

  it('leaves a contiguous 2.1 OpRegion from the builder byte for byte', () => {
    const built = buildOpRegion({ vbt: largeVbt() });
    expect(presentOpRegion(built).bytes).toEqual(built);
  });

  it('zeroes RVDA when RVDS is 0 (no extended VBT), as the kernel does for every version', () => {
    const host = buildOpRegion({ vbt: syntheticVbt() });
    le32(host, RVDA, 0x1234);
    const view = presentOpRegion(host);
    expect(u32(view.bytes, RVDA)).toBe(0);
    expect(view.bytes.length).toBe(0x2000);
  });

  it('refuses a wrong signature, a zero size field and a short copy with EINVAL naming the place', () => {
    const host = buildOpRegion({ vbt: syntheticVbt() });
    const bad = host.slice();
    bad[0] = 0x58;
    expect(catchVfioError(() => presentOpRegion(bad)).place.offset).toBe(0);
    const zero = host.slice();
    le32(zero, 0x10, 0);
    const e = catchVfioError(() => presentOpRegion(zero));
    expect(e.code).toBe('EINVAL');
    expect(e.place.offset).toBe(0x10);
    expect(catchVfioError(() => presentOpRegion(host.subarray(0, 0x1000))).message).toContain('8 KiB');
  });

  it('refuses a 2.0 physical RVDA without the extended VBT bytes, and too few of them', () => {
    const { host, extended } = opRegion20WithPhysicalVbt(largeVbt());
    expect(catchVfioError(() => presentOpRegion(host)).message).toContain('physical address');
    expect(catchVfioError(() => presentOpRegion(host, extended.subarray(0, 10))).place.offset).toBe(RVDS);
  });

  it('names a 64-bit RVDA exactly in its errors, above 2^53 too (issue 17 item 7)', () => {
    const { host } = opRegion20WithPhysicalVbt(largeVbt(), 0x98765432);
    le32(host, RVDA + 4, 0x00fedcba);
    expect(catchVfioError(() => presentOpRegion(host)).message).toContain(
      'host physical address 0xfedcba98765432;',
    );
    const v21 = buildOpRegion({ vbt: largeVbt() }).slice(0, 0x2000);
    le32(v21, RVDA + 4, 0xffffffff);
    expect(catchVfioError(() => presentOpRegion(v21)).message).toContain('RVDA 0xffffffff00002000 + RVDS');
    const parsed = catchVfioError(() => parseOpRegion(v21));
    expect(parsed.message).toContain('RVDA 0xffffffff00002000 + RVDS');
  });

  it('refuses a 2.1 RVDA + RVDS past the copy', () => {
    const built = buildOpRegion({ vbt: largeVbt() });
    expect(catchVfioError(() => presentOpRegion(built.subarray(0, 0x2100))).place.offset).toBe(RVDA);
  });

  it('never throws anything but VfioError, and its size is size_KiB x 1024 (+ RVDS) when it succeeds', () => {
    const base = buildOpRegion({ vbt: largeVbt() });
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat({ max: 0x400 }), value: fc.integer({ min: 0, max: 255 }) }), {
          maxLength: 8,
        }),
        fc.nat({ max: base.length }),
        (edits, cut) => {
          const b = base.slice(0, Math.max(cut, 0x10));
          for (const e of edits) if (e.at < b.length) b[e.at] = e.value;
          try {
            const v = presentOpRegion(b);
            expect(v.bytes.length).toBe(u32(b, 0x10) * 1024 + v.extendedVbtSize);
          } catch (err) {
            if (!(err instanceof VfioError)) throw err;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe.skipIf(!haveFixtures)(fixtureSuite('presentOpRegion on real data'), () => {
  const fixtures = loadFixtures();

  it('re-presents the real Tiger Lake VBT (8607 bytes) wrapped as a 2.0 physical-RVDA OpRegion as 2.1', () => {
    const f = fixtures.find((x) => x.name.includes('volteer'));
    expect(f).toBeDefined();
    const { host, extended } = opRegion20WithPhysicalVbt(f!.bytes);
    const view = presentOpRegion(host, extended);
    const op = parseOpRegion(view.bytes);
    expect(op.version.text).toBe('2.1.0');
    expect(op.vbt?.header.vbtSize).toBe(f!.facts.vbt_header.vbt_size);
  });

  it('shows the real Skylake OpRegion dump unchanged (2.0, VBT in mailbox 4)', () => {
    const f = fixtures.find((x) => x.name.includes('opregion'));
    expect(f).toBeDefined();
    expect(presentOpRegion(f!.bytes).bytes).toEqual(f!.bytes);
  });
});
