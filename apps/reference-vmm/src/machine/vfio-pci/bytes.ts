/**
 * The few helpers an assigned function's parts share beside core's byte helpers (PAGE_SIZE,
 * TWO_32, readLe/writeLe): scratch buffers for one device access at a time, range overlap.
 */
import type { AccessSize } from '../address-map.js';

/**
 * Scratch bytes for one access at a time. A guest access runs to its end before the next one
 * starts (devices never make guest accesses), so a few of these serve every function of every
 * machine and attaching a device allocates none.
 */
export class Scratch {
  readonly buffer = new ArrayBuffer(8);
  readonly b1 = new Uint8Array(this.buffer, 0, 1);
  readonly b2 = new Uint8Array(this.buffer, 0, 2);
  readonly b4 = new Uint8Array(this.buffer, 0, 4);
  readonly view = new DataView(this.buffer);

  of(size: AccessSize): Uint8Array {
    return size === 4 ? this.b4 : size === 2 ? this.b2 : this.b1;
  }

  get(size: AccessSize): number {
    return size === 4
      ? this.view.getUint32(0, true)
      : size === 2
        ? this.view.getUint16(0, true)
        : this.view.getUint8(0);
  }

  set(size: AccessSize, value: number): void {
    if (size === 4) this.view.setUint32(0, value >>> 0, true);
    else if (size === 2) this.view.setUint16(0, value & 0xffff, true);
    else this.view.setUint8(0, value & 0xff);
  }
}

/** Whether [a0, a1) and [b0, b1) share a byte. */
export function overlaps(a0: number, a1: number, b0: number, b1: number): boolean {
  return a0 < b1 && b0 < a1;
}

/** Empty an array in place (cheaper than setting its length for a few entries). */
export function clear(values: unknown[]): void {
  while (values.length > 0) values.pop();
}
