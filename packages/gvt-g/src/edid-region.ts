/**
 * The EDID region (VFIO_REGION_TYPE_GFX / VFIO_REGION_SUBTYPE_GFX_EDID) as kvmgt serves it: a
 * struct vfio_region_gfx_edid at offset 0 and the blob at edid_offset (0x800). The VMM takes the
 * link down, writes the blob and edid_size, and brings the link up; link-up validates the block
 * and plugs the display in (a hotplug interrupt), link-down unplugs it.
 *
 * The region is declared 0x880 bytes (header page half plus the 128-byte blob) so that every
 * byte the protocol uses is inside it; kvmgt declares 128 and lets the blob sit past the end.
 */
import {
  VFIO_DEVICE_GFX_LINK_STATE_DOWN,
  VFIO_DEVICE_GFX_LINK_STATE_UP,
  VfioError,
  vfio_region_gfx_edid,
} from '@vfiokit/core';
import { EDID_BLOB_OFFSET, EDID_MAX_SIZE } from './constants.js';
import { edidBlockProblem } from './edid.js';
import type { VgpuResolution } from './vgpu-types.js';

export const EDID_REGION_SIZE = EDID_BLOB_OFFSET + EDID_MAX_SIZE;
const F = vfio_region_gfx_edid.fields;

export interface EdidSink {
  /** Link up with a valid EDID: the display is connected with this EDID. */
  connect(edid: Uint8Array): void;
  /** Link down: the display is unplugged. */
  disconnect(): void;
}

export class EdidRegion {
  private readonly blob = new Uint8Array(EDID_MAX_SIZE);
  private edidSize = 0;
  private linkState = VFIO_DEVICE_GFX_LINK_STATE_UP;
  /** The EDID the display currently shows. */
  current: Uint8Array;

  constructor(
    private readonly device: string,
    private readonly index: number,
    private readonly limits: VgpuResolution,
    private readonly initial: Uint8Array,
    private readonly sink: EdidSink,
  ) {
    this.current = initial.slice();
    this.reset();
  }

  reset(): void {
    this.blob.fill(0);
    this.blob.set(this.initial.subarray(0, EDID_MAX_SIZE));
    this.edidSize = Math.min(this.initial.length, EDID_MAX_SIZE);
    this.linkState = VFIO_DEVICE_GFX_LINK_STATE_UP;
    this.current = this.initial.slice();
  }

  get link(): number {
    return this.linkState;
  }

  read(offset: number, dst: Uint8Array): void {
    if (offset >= EDID_BLOB_OFFSET) {
      this.checkBlob(offset, dst.length);
      dst.set(this.blob.subarray(offset - EDID_BLOB_OFFSET, offset - EDID_BLOB_OFFSET + dst.length));
      return;
    }
    if (offset >= vfio_region_gfx_edid.size) {
      dst.fill(0);
      return;
    }
    const value = this.field(this.checkField(offset, dst.length));
    new DataView(dst.buffer, dst.byteOffset, 4).setUint32(0, value, true);
  }

  write(offset: number, src: Uint8Array): void {
    if (offset >= EDID_BLOB_OFFSET) {
      this.checkBlob(offset, src.length);
      this.blob.set(src, offset - EDID_BLOB_OFFSET);
      return;
    }
    if (offset >= vfio_region_gfx_edid.size)
      throw this.error('EINVAL', 'the bytes between the EDID header and the blob are reserved', offset);
    const at = this.checkField(offset, src.length);
    const value = new DataView(src.buffer, src.byteOffset, 4).getUint32(0, true);
    if (at === F.edid_size.offset) {
      if (value > EDID_MAX_SIZE)
        throw this.error('EINVAL', `edid_size ${value} exceeds edid_max_size ${EDID_MAX_SIZE}`, offset);
      this.edidSize = value;
    } else if (at === F.link_state.offset) {
      this.setLink(value, offset);
    } else {
      throw this.error('EINVAL', 'this field of struct vfio_region_gfx_edid is read-only', offset);
    }
  }

  private setLink(value: number, offset: number): void {
    if (value === VFIO_DEVICE_GFX_LINK_STATE_UP) {
      const edid = this.blob.slice(0, this.edidSize);
      const problem = edidBlockProblem(edid);
      if (problem !== undefined) throw this.error('EINVAL', `link up refused: ${problem}`, offset);
      this.linkState = value;
      this.current = edid;
      this.sink.connect(edid);
    } else if (value === VFIO_DEVICE_GFX_LINK_STATE_DOWN) {
      this.linkState = value;
      this.sink.disconnect();
    } else {
      throw this.error('EINVAL', `link_state ${value} is neither UP (1) nor DOWN (2)`, offset);
    }
  }

  private field(at: number): number {
    switch (at) {
      case F.edid_offset.offset:
        return EDID_BLOB_OFFSET;
      case F.edid_max_size.offset:
        return EDID_MAX_SIZE;
      case F.edid_size.offset:
        return this.edidSize;
      case F.max_xres.offset:
        return this.limits.xres;
      case F.max_yres.offset:
        return this.limits.yres;
      default:
        return this.linkState;
    }
  }

  private checkField(offset: number, length: number): number {
    if (length !== 4 || offset % 4 !== 0) {
      throw this.error(
        'EINVAL',
        `a ${length}-byte access to the EDID header; its fields take 4-byte accesses`,
        offset,
      );
    }
    return offset;
  }

  private checkBlob(offset: number, length: number): void {
    if (offset - EDID_BLOB_OFFSET + length > this.edidSize) {
      throw this.error('EINVAL', `the access runs past edid_size ${this.edidSize}`, offset);
    }
  }

  private error(code: 'EINVAL', problem: string, offset: number): VfioError {
    return new VfioError(code, `${problem}.`, {
      device: this.device,
      region: this.index,
      offset,
      hint: 'Take the link down, write the blob, set edid_size, then bring the link up (vfio.h EDID protocol).',
    });
  }
}
