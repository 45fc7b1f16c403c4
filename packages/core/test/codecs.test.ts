import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeDeviceInfo,
  decodeDmaMap,
  decodeDmaUnmap,
  decodeGfxPlaneInfo,
  decodeIrqInfo,
  decodeIrqSet,
  decodeMigState,
  decodeRegionInfo,
  encodeDeviceInfo,
  encodeDmaMap,
  encodeDmaUnmap,
  encodeGfxPlaneInfo,
  encodeIrqInfo,
  encodeIrqSet,
  encodeMigState,
  encodeRegionInfo,
  type RegionCap,
  regionCapsSize,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
} from '../src/abi.js';
import { VfioError } from '../src/index.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const cap: fc.Arbitrary<RegionCap> = fc.oneof(
  fc.record({
    id: fc.constant(VFIO_REGION_INFO_CAP_SPARSE_MMAP as 1),
    areas: fc.array(fc.record({ offset: u53, size: u53 }), { maxLength: 16 }),
  }),
  fc.record({ id: fc.constant(VFIO_REGION_INFO_CAP_TYPE as 2), type: u32, subtype: u32 }),
  fc.constant({ id: VFIO_REGION_INFO_CAP_MSIX_MAPPABLE as 3 }),
);

/** Decode from a subarray with poison bytes after it: a decoder that reads past its input sees them. */
function withPoison(bytes: Uint8Array): Uint8Array {
  const big = new Uint8Array(bytes.length + 64).fill(0xa5);
  big.set(bytes);
  return big.subarray(0, bytes.length);
}

describe('struct codecs round-trip', () => {
  it('vfio_device_info', () => {
    fc.assert(
      fc.property(
        fc.record({ argsz: u32, flags: u32, numRegions: u32, numIrqs: u32, capOffset: u32 }),
        (s) => {
          expect(decodeDeviceInfo(encodeDeviceInfo(s))).toEqual(s);
        },
      ),
    );
  });

  it('vfio_region_info with a capability chain', () => {
    fc.assert(
      fc.property(
        fc.array(cap, { minLength: 1, maxLength: 4 }),
        u32,
        u32,
        u53,
        u53,
        (caps, flags, index, size, offset) => {
          const argsz = 32 + regionCapsSize(caps);
          const bytes = encodeRegionInfo({ argsz, flags, index, capOffset: 32, size, offset }, caps);
          expect(bytes.length).toBe(argsz);
          const back = decodeRegionInfo(withPoison(bytes));
          expect(back).toEqual({ argsz, flags, index, capOffset: 32, size, offset, caps });
        },
      ),
    );
  });

  it('vfio_irq_info and vfio_irq_set', () => {
    fc.assert(
      fc.property(
        u32,
        u32,
        u32,
        u32,
        fc.uint8Array({ maxLength: 32 }),
        (flags, index, start, count, data) => {
          expect(decodeIrqInfo(encodeIrqInfo({ argsz: 16, flags, index, count }))).toEqual({
            argsz: 16,
            flags,
            index,
            count,
          });
          const s = { argsz: 20 + data.length, flags, index, start, count, data };
          const back = decodeIrqSet(encodeIrqSet(s));
          expect({ ...back, data: [...back.data] }).toEqual({ ...s, data: [...data] });
        },
      ),
    );
  });

  it('migration state, DMA map and unmap, gfx plane info', () => {
    fc.assert(
      fc.property(
        u32,
        fc.integer({ min: -2147483648, max: 2147483647 }),
        u53,
        u53,
        u53,
        (state, fd, a, b, c) => {
          expect(decodeMigState(encodeMigState(state, fd))).toEqual({ deviceState: state, dataFd: fd });
          const map = { argsz: 32, flags: 3, vaddr: a, iova: b, size: c };
          expect(decodeDmaMap(encodeDmaMap(map))).toEqual(map);
          const unmap = { argsz: 24, flags: 0, iova: a, size: c };
          expect(decodeDmaUnmap(encodeDmaUnmap(unmap))).toEqual(unmap);
          const plane = {
            argsz: 64,
            flags: 2,
            drmPlaneType: 1,
            drmFormat: state,
            drmFormatMod: BigInt(a),
            width: 1,
            height: 2,
            stride: 3,
            size: 4,
            xPos: 5,
            yPos: 6,
            xHot: 0xffffffff,
            yHot: 7,
            id: state,
          };
          expect(decodeGfxPlaneInfo(encodeGfxPlaneInfo(plane))).toEqual(plane);
        },
      ),
    );
  });
});

describe('decoders on hostile bytes', () => {
  const decoders = [
    decodeDeviceInfo,
    decodeRegionInfo,
    decodeIrqInfo,
    decodeIrqSet,
    decodeMigState,
    decodeDmaMap,
    decodeDmaUnmap,
    decodeGfxPlaneInfo,
  ];
  it('throw only VfioError and never read past their input', () => {
    fc.assert(
      fc.property(fc.constantFrom(...decoders), fc.uint8Array({ maxLength: 400 }), (decode, bytes) => {
        try {
          decode(withPoison(bytes));
        } catch (err) {
          expect(err).toBeInstanceOf(VfioError);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('refuse a capability chain that loops', () => {
    const bytes = encodeRegionInfo({ argsz: 48, flags: 8, index: 9, capOffset: 32, size: 0, offset: 0 }, [
      { id: VFIO_REGION_INFO_CAP_TYPE, type: 1, subtype: 1 },
    ]);
    new DataView(bytes.buffer).setUint32(32 + 4, 32, true);
    expect(() => decodeRegionInfo(bytes)).toThrow(/loops/);
  });

  it('refuse a sparse-mmap capability that claims more areas than the buffer holds', () => {
    const bytes = encodeRegionInfo({ argsz: 64, flags: 8, index: 0, capOffset: 32, size: 0, offset: 0 }, [
      { id: VFIO_REGION_INFO_CAP_SPARSE_MMAP, areas: [{ offset: 0, size: 4096 }] },
    ]);
    new DataView(bytes.buffer).setUint32(32 + 8, 1000, true);
    expect(() => decodeRegionInfo(bytes)).toThrow(/claims 1000 areas/);
  });

  it('refuse a u64 beyond 2^53 instead of rounding it', () => {
    const bytes = encodeDmaMap({ argsz: 32, flags: 0, vaddr: 0, iova: 0, size: 0 });
    new DataView(bytes.buffer).setUint32(24 + 4, 0xffffffff, true);
    expect(() => decodeDmaMap(bytes)).toThrow(/beyond 2\^53/);
  });
});
