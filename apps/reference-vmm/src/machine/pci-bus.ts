/**
 * Bus 0: the slot table (device * 8 + function) and the ways a guest reaches a function's config
 * space through it: ECAM in the memory map, configuration mechanism #1 at 0xCF8/0xCFC in the I/O
 * map, and the GuestView's configRead/configWrite (counted as ECAM accesses). An access to an
 * empty slot, or one not aligned to its size, master-aborts: reads all-ones, drops the write.
 *
 * The machine decides what sits in a slot (machine.ts); this side only decodes addresses to it.
 */
import { formatPciAddress, type PciAddress, VfioError } from '@vfiokit/core';
import {
  type AccessHandler,
  type AccessSize,
  type AddressMap,
  allOnes,
  type MappedRange,
} from './address-map.js';
import type { ConfigTarget } from './host-bridge.js';
import { ECAM_BASE, ECAM_BUS_SIZE, PCI_CONFIG_ADDRESS_ENABLE, PCI_CONFIG_ADDRESS_PORT } from './layout.js';

const DEVICES_PER_BUS = 32;
const FUNCTIONS_PER_DEVICE = 8;
// PCI Local Bus Specification 3.0 §6.1: config space is 256 bytes, PCI Express extends it to 4096
const ECAM_FUNCTION_SIZE = 4096;

export class PciBus {
  /** Index device * 8 + function. */
  private readonly slots: (ConfigTarget | undefined)[] = new Array(
    DEVICES_PER_BUS * FUNCTIONS_PER_DEVICE,
  ).fill(undefined);
  /** CONFIG_ADDRESS, as the last dword write to 0xCF8 latched it. */
  private configAddress = 0;
  /** The ECAM range of the memory map (it stays there for the machine's life): guest config accesses count in it. */
  private readonly ecam: MappedRange;

  /** Put ECAM in `memory` at ECAM_BASE and the config ports in `io` at 0xCF8. */
  constructor(memory: AddressMap, io: AddressMap) {
    this.ecam = memory.add({
      start: ECAM_BASE,
      size: ECAM_BUS_SIZE,
      kind: 'ecam',
      owner: 'host-bridge',
      handler: this.ecamHandler(),
    });
    io.add({
      start: PCI_CONFIG_ADDRESS_PORT,
      size: 8,
      kind: 'config-port',
      owner: 'host-bridge',
      handler: this.configPortHandler(),
    });
  }

  /** What sits at slot key `key` (see slotKey). */
  at(key: number): ConfigTarget | undefined {
    return this.slots[key];
  }

  /** Put `target` at slot key `key`, or empty the slot with undefined. */
  place(key: number, target: ConfigTarget | undefined): void {
    this.slots[key] = target;
  }

  /** More than one function sits in device `device` (so function 0 reports a multi-function header). */
  slotIsMultifunction(device: number): boolean {
    let n = 0;
    for (let f = 0; f < FUNCTIONS_PER_DEVICE; f++)
      if (this.slots[device * FUNCTIONS_PER_DEVICE + f] !== undefined) n++;
    return n > 1;
  }

  /** System reset: CONFIG_ADDRESS goes back to 0. */
  reset(): void {
    this.configAddress = 0;
  }

  private target(device: number, fn: number): ConfigTarget | undefined {
    return this.slots[device * FUNCTIONS_PER_DEVICE + fn];
  }

  /**
   * A guest config access is an ECAM access: it is counted in the ECAM range and answered as an
   * access through the memory map at ECAM_BASE would be. The ECAM range is always in the map at
   * the same place (nothing can overlap it), so the access goes to its handler without the lookup.
   */
  configRead(a: PciAddress, offset: number, size: AccessSize): number {
    if (!isFunctionAddress(a) || !isConfigOffset(offset, size)) return allOnes(size);
    this.ecam.reads++;
    // ecamRead() at the function's ECAM offset, without taking the offset apart again.
    const t = this.target(a.device, a.function);
    if (t === undefined || offset & (size - 1)) return allOnes(size);
    return t.configRead(offset, size);
  }

  configWrite(a: PciAddress, offset: number, size: AccessSize, value: number): void {
    if (!isFunctionAddress(a) || !isConfigOffset(offset, size)) return;
    this.ecam.writes++;
    const t = this.target(a.device, a.function);
    if (t === undefined || offset & (size - 1)) return;
    t.configWrite(offset, size, value);
  }

  /** ECAM for bus 0: offset = device << 15 | function << 12 | register. Misaligned accesses master-abort. */
  private ecamHandler(): AccessHandler {
    return {
      read: (offset, size) => this.ecamRead(offset, size),
      write: (offset, size, value) => this.ecamWrite(offset, size, value),
    };
  }

  private ecamRead(offset: number, size: AccessSize): number {
    const reg = offset & 0xfff;
    const t = this.target(offset >>> 15, (offset >>> 12) & 7);
    if (t === undefined || reg & (size - 1)) return allOnes(size);
    return t.configRead(reg, size);
  }

  private ecamWrite(offset: number, size: AccessSize, value: number): void {
    const reg = offset & 0xfff;
    const t = this.target(offset >>> 15, (offset >>> 12) & 7);
    if (t === undefined || reg & (size - 1)) return;
    t.configWrite(reg, size, value);
  }

  /** Configuration mechanism #1: CONFIG_ADDRESS at 0xCF8 (32-bit writes latch it), CONFIG_DATA at 0xCFC-0xCFF. */
  private configPortHandler(): AccessHandler {
    return {
      read: (offset, size) => {
        if (offset < 4) return offset === 0 && size === 4 ? this.configAddress : allOnes(size);
        const t = this.legacyTarget();
        const reg = (this.configAddress & 0xfc) + (offset - 4);
        if (t === undefined || reg & (size - 1)) return allOnes(size);
        return t.configRead(reg, size);
      },
      write: (offset, size, value) => {
        if (offset < 4) {
          // Only a dword write to 0xCF8 is CONFIG_ADDRESS; narrower ones go to other chipset registers.
          if (offset === 0 && size === 4) this.configAddress = value >>> 0;
          return;
        }
        const t = this.legacyTarget();
        const reg = (this.configAddress & 0xfc) + (offset - 4);
        if (t === undefined || reg & (size - 1)) return;
        t.configWrite(reg, size, value);
      },
    };
  }

  private legacyTarget(): ConfigTarget | undefined {
    const a = this.configAddress;
    if (!(a & PCI_CONFIG_ADDRESS_ENABLE) || ((a >>> 16) & 0xff) !== 0) return undefined;
    return this.target((a >>> 11) & 0x1f, (a >>> 8) & 7);
  }
}

/** The slot table index of `a`; EINVAL for anything but bus 0, device 0-31, function 0-7. */
export function slotKey(a: PciAddress): number {
  if (!isFunctionAddress(a) || a.bus !== 0) {
    throw new VfioError('EINVAL', `${describeAddress(a)} is not a slot on bus 0 of this machine.`, {
      hint: 'Use bus 0, device 1-31, function 0-7 (00:00.0 is the host bridge).',
    });
  }
  return a.device * FUNCTIONS_PER_DEVICE + a.function;
}

function isFunctionAddress(a: PciAddress): boolean {
  return (
    a !== null &&
    typeof a === 'object' &&
    a.bus === 0 &&
    Number.isInteger(a.device) &&
    a.device >= 0 &&
    a.device < DEVICES_PER_BUS &&
    Number.isInteger(a.function) &&
    a.function >= 0 &&
    a.function < FUNCTIONS_PER_DEVICE
  );
}

function isConfigOffset(offset: number, size: number): boolean {
  return (
    Number.isInteger(offset) &&
    offset >= 0 &&
    offset + size <= ECAM_FUNCTION_SIZE &&
    (size === 1 || size === 2 || size === 4)
  );
}

function describeAddress(a: PciAddress): string {
  try {
    return formatPciAddress(a);
  } catch {
    return String(a);
  }
}
