/**
 * How a trapped BAR access reaches its part, as kvmgt's intel_vgpu_rw routes it: BAR0's register
 * file (first 2 MiB), its GGTT window (from 8 MiB, 8-byte PTEs) and the OpRegion window between;
 * BAR2's aperture, where only the vGPU's own slice answers. GvtgVgpu (vgpu.ts) hands these to the
 * core as the regions' handlers.
 */
import {
  giveValueBytes,
  type Logger,
  type RegionHandler,
  takeValueBytes,
  type ValueSize,
  VfioError,
} from '@vfiokit/core';
import {
  GVT_GTT_ENTRY_SIZE,
  GVT_GTT_START_OFFSET,
  GVT_MMIO_SIZE,
  OPREGION_BAR0_WINDOW,
  OPREGION_SIZE,
} from './constants.js';
import type { GgttShadow } from './ggtt.js';
import type { VgpuResources } from './host-gpu.js';
import type { Vreg } from './mmio/index.js';

/** The little-endian dword at `at` of an access's bytes. */
function le32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}

/** BAR0: the register file, the GGTT window and the OpRegion window; 2..8 MiB outside the OpRegion decodes nothing. */
export class Bar0Access implements RegionHandler {
  private readonly scratch = new DataView(new ArrayBuffer(8));

  constructor(
    private readonly name: string,
    private readonly regs: Vreg,
    private readonly ggtt: GgttShadow,
    private readonly opregion: Uint8Array,
    /** The open device's log (undefined while closed). */
    private readonly log: () => Logger | undefined,
  ) {}

  /** Split an access the way kvmgt's read/write loop does: 8 bytes only inside the GGTT window. */
  private piece(offset: number, remaining: number): number {
    if (remaining >= 8 && offset % 8 === 0 && offset >= GVT_GTT_START_OFFSET) return 8;
    if (remaining >= 4 && offset % 4 === 0) return 4;
    if (remaining >= 2 && offset % 2 === 0) return 2;
    return 1;
  }

  read(offset: number, dst: Uint8Array): void {
    // The hot path: one aligned dword, a register or half a PTE (no views made).
    if (dst.length === 4 && (offset & 3) === 0) {
      if (offset < GVT_MMIO_SIZE) this.regs.read(offset, dst);
      else if (offset >= GVT_GTT_START_OFFSET) this.readGgtt(offset, dst);
      else this.readPieces(offset, dst);
      return;
    }
    this.readPieces(offset, dst);
  }

  /**
   * read() of 1, 2 or 4 bytes as their value (the guest's trapped MMIO read): an aligned
   * register dword straight from the vreg, anything else through read().
   */
  readValue(offset: number, size: ValueSize): number {
    if (size === 4 && (offset & 3) === 0 && offset < GVT_MMIO_SIZE) return this.regs.readDword(offset);
    const s = takeValueBytes();
    this.read(offset, s.of(size));
    giveValueBytes(s);
    return s.get(size);
  }

  /** write() of the low `size` bytes of `value`, readValue()'s twin. */
  writeValue(offset: number, size: ValueSize, value: number): void {
    if (size === 4 && (offset & 3) === 0 && offset < GVT_MMIO_SIZE) {
      this.regs.writeDword(offset, value >>> 0);
      return;
    }
    const s = takeValueBytes();
    this.write(offset, s.set(size, value));
    giveValueBytes(s);
  }

  private readPieces(offset: number, dst: Uint8Array): void {
    for (let pos = 0; pos < dst.length; ) {
      const at = offset + pos;
      const n = this.piece(at, dst.length - pos);
      const part = dst.subarray(pos, pos + n);
      if (at < GVT_MMIO_SIZE) this.regs.read(at, part);
      else if (at >= GVT_GTT_START_OFFSET) this.readGgtt(at, part);
      else if (at >= OPREGION_BAR0_WINDOW && at + n <= OPREGION_BAR0_WINDOW + OPREGION_SIZE)
        part.set(this.opregion.subarray(at - OPREGION_BAR0_WINDOW, at - OPREGION_BAR0_WINDOW + n));
      else part.fill(0);
      pos += n;
    }
  }

  write(offset: number, src: Uint8Array): void {
    // The hot path: one 8-byte PTE write.
    if (src.length === GVT_GTT_ENTRY_SIZE && offset >= GVT_GTT_START_OFFSET && offset % 8 === 0) {
      this.ggtt.writeEntry((offset - GVT_GTT_START_OFFSET) / 8, le32(src, 0) + le32(src, 4) * 2 ** 32);
      return;
    }
    // One aligned dword: a register, or half a PTE as a 32-bit guest writes it.
    if (src.length === 4 && (offset & 3) === 0) {
      if (offset < GVT_MMIO_SIZE) this.regs.write(offset, src);
      else if (offset >= GVT_GTT_START_OFFSET) {
        this.ggtt.writeHalf(
          Math.floor((offset - GVT_GTT_START_OFFSET) / 8),
          (offset & 4) !== 0,
          le32(src, 0),
        );
      }
      // 2..8 MiB decodes nothing: writes are dropped.
      return;
    }
    for (let pos = 0; pos < src.length; ) {
      const at = offset + pos;
      const n = this.piece(at, src.length - pos);
      const part = src.subarray(pos, pos + n);
      if (at < GVT_MMIO_SIZE) this.regs.write(at, part);
      else if (at >= GVT_GTT_START_OFFSET) this.writeGgtt(at, part);
      // 2..8 MiB decodes nothing: writes are dropped.
      pos += n;
    }
  }

  private readGgtt(at: number, dst: Uint8Array): void {
    const page = Math.floor((at - GVT_GTT_START_OFFSET) / 8);
    const entry = this.ggtt.readEntry(page);
    this.scratch.setUint32(0, entry % 2 ** 32, true);
    this.scratch.setUint32(4, Math.floor(entry / 2 ** 32), true);
    const from = at % 8;
    for (let i = 0; i < dst.length; i++) dst[i] = this.scratch.getUint8(from + i);
  }

  private writeGgtt(at: number, src: Uint8Array): void {
    const page = Math.floor((at - GVT_GTT_START_OFFSET) / 8);
    if (src.length === 8) this.ggtt.writeEntry(page, le32(src, 0) + le32(src, 4) * 2 ** 32);
    else if (src.length === 4) this.ggtt.writeHalf(page, at % 8 === 4, le32(src, 0));
    else
      this.log()?.warn(
        `${this.name}: a ${src.length}-byte write into the GGTT at 0x${at.toString(16)} was dropped (PTEs take 4- or 8-byte writes).`,
      );
  }
}

/** BAR2 trapped: only the vGPU's own aperture slice answers (kvmgt's intel_vgpu_aperture_rw). */
export class ApertureSlice implements RegionHandler {
  constructor(
    private readonly name: string,
    private readonly resources: VgpuResources,
  ) {}

  read(offset: number, dst: Uint8Array): void {
    this.access(offset, dst, false);
  }

  write(offset: number, src: Uint8Array): void {
    this.access(offset, src, true);
  }

  access(offset: number, data: Uint8Array, write: boolean): void {
    const { base, size } = this.resources.low;
    if (offset < base || offset + data.length > base + size) {
      throw new VfioError(
        'EINVAL',
        `the aperture access of ${data.length} bytes is outside this vGPU's slice 0x${base.toString(16)}-0x${(base + size - 1).toString(16)}.`,
        {
          device: this.name,
          region: 2,
          offset,
          hint: 'Access only the sparse-mmap area REGION_INFO lists for BAR2 (the mappable GM base and size in PVINFO).',
        },
      );
    }
    const bytes = this.resources.aperture.bytes;
    if (write) {
      bytes.set(data, offset);
      this.resources.aperturePages.written(offset, data.length);
    } else data.set(bytes.subarray(offset, offset + data.length));
  }
}
