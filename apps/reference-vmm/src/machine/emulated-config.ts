/**
 * Config bytes the VMM keeps in front of an assigned device, as QEMU's vfio-pci does with
 * emulated_config_bits, pdev.config and pdev.wmask (hw/vfio/pci.c vfio_pci_read_config /
 * vfio_pci_write_config): a read takes emulated bits from here and the others from the device;
 * a write goes to the device whole and changes the writable emulated bits here. Merging
 * allocates nothing.
 */
import { VfioError } from '@vfiokit/core';
import type { AccessSize } from './address-map.js';

export class EmulatedConfig {
  /** The emulated values (QEMU's pdev.config for emulated bits). */
  readonly value: Uint8Array;
  /** Per bit: 1 when the VMM answers it (emulated_config_bits). */
  readonly emulated: Uint8Array;
  /** Per bit: 1 when a guest write changes it (wmask). */
  readonly wmask: Uint8Array;
  /** The emulated bytes lie in [low, high): a cheap test before any merging. */
  low: number;
  high = 0;

  constructor(readonly size: number) {
    this.value = new Uint8Array(size);
    this.emulated = new Uint8Array(size);
    this.wmask = new Uint8Array(size);
    this.low = size;
  }

  /** Emulate `initial.length` bytes at `offset`: they read `initial`; `writable` ones take guest writes. */
  emulate(offset: number, initial: Uint8Array, writable: boolean): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + initial.length > this.size) {
      throw new VfioError(
        'EINVAL',
        `cannot emulate ${initial.length} config bytes at 0x${offset.toString(16)} of a ${this.size}-byte config space.`,
        { offset, hint: 'Emulate registers inside the config region.' },
      );
    }
    this.value.set(initial, offset);
    this.emulated.fill(0xff, offset, offset + initial.length);
    this.wmask.fill(writable ? 0xff : 0, offset, offset + initial.length);
    this.low = Math.min(this.low, offset);
    this.high = Math.max(this.high, offset + initial.length);
  }

  /** Whether an access of `size` bytes at `offset` touches an emulated byte's range. */
  covers(offset: number, size: number): boolean {
    return offset < this.high && offset + size > this.low;
  }

  /** The guest's view: `device` (little endian) with the emulated bits replaced. */
  merge(offset: number, size: AccessSize, device: number): number {
    let out = 0;
    for (let i = size - 1; i >= 0; i--) {
      const a = offset + i;
      const d = (device >>> (8 * i)) & 0xff;
      const e = a < this.size ? this.emulated[a] : 0;
      const b = e === 0 ? d : (d & ~e) | (this.value[a] & e);
      out = out * 256 + (b & 0xff);
    }
    return out;
  }

  /** A guest write: the writable emulated bits take the new value. */
  write(offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const a = offset + i;
      if (a >= this.size) return;
      const w = this.emulated[a] & this.wmask[a];
      if (w === 0) continue;
      this.value[a] = (this.value[a] & ~w) | ((value >>> (8 * i)) & w);
    }
  }

  /** The emulated value of `size` bytes at `offset`, little endian (for the report; up to 8 bytes). */
  read(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.value[offset + i];
    return v;
  }
}
