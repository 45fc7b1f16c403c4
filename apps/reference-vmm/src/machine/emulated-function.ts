/**
 * A PCI function the VMM emulates itself (the host bridge, IGD legacy mode's LPC bridge): no
 * BARs, no interrupts, a config space that is core's ConfigSpace with its masks.
 */
import type { ConfigSpace } from '@vfiokit/core';
import { type AccessSize, allOnes } from './address-map.js';

/** A config-space target on the bus. */
export interface ConfigTarget {
  configRead(offset: number, size: AccessSize): number;
  configWrite(offset: number, size: AccessSize, value: number): void;
}

export class EmulatedFunction implements ConfigTarget {
  constructor(readonly config: ConfigSpace) {}

  configRead(offset: number, size: AccessSize): number {
    const c = this.config;
    if (offset + size > c.size) return allOnes(size);
    return size === 4 ? c.readU32(offset) : size === 2 ? c.readU16(offset) : c.readU8(offset);
  }

  configWrite(offset: number, size: AccessSize, value: number): void {
    const c = this.config;
    if (offset + size > c.size) return;
    if (size === 4) c.writeU32(offset, value);
    else if (size === 2) c.writeU16(offset, value);
    else c.writeU8(offset, value);
  }

  /** Back to power-on: the config space as built. */
  reset(): void {
    this.config.reset();
  }
}
