/**
 * The standard config space of a function as read once when the VMM takes the device, the way
 * QEMU's vfio_realize preads the whole config space before it looks at any of it: the pin, the
 * capability list, MSI and MSI-X and the BAR types are read from these bytes, not from the device
 * one small access each (through vfio-user each would be a message). What is read here does not
 * change at reset (identity, capability layout, BAR types); live registers are read from the
 * device. When the one read fails, every field is read from the device as before, and each
 * failure is recorded there.
 */
import { VFIO_PCI_CONFIG_REGION_INDEX } from '@vfiokit/core';
import { PCI_CFG_SPACE_SIZE } from '@vfiokit/core/abi';
import type { DeviceLink } from './device-link.js';

export class ConfigImage {
  private readonly bytes = new Uint8Array(PCI_CFG_SPACE_SIZE);
  private readonly view = new DataView(this.bytes.buffer);
  private link: DeviceLink | undefined;
  /** The one read failed: every field comes from the device. */
  private failed = false;

  /** Read the function's first 256 bytes of config space. */
  load(link: DeviceLink): this {
    this.link = link;
    try {
      link.file.readRegion(VFIO_PCI_CONFIG_REGION_INDEX, 0, this.bytes);
      this.failed = false;
    } catch {
      this.failed = true;
    }
    return this;
  }

  /** Forget the function (the image goes back to the free list). */
  release(): void {
    this.link = undefined;
  }

  configRead(offset: number, size: 1 | 2 | 4): number {
    // Beyond the standard space (or after a failed read) the device answers.
    if (this.failed || offset < 0 || offset + size > PCI_CFG_SPACE_SIZE)
      return (this.link as DeviceLink).configRead(offset, size);
    return size === 4
      ? this.view.getUint32(offset, true)
      : size === 2
        ? this.view.getUint16(offset, true)
        : this.bytes[offset];
  }
}

/**
 * Images not in use. A function's constructor takes one and gives it back; a plugin's mmap
 * (called while BARs are cut) may attach another device, which then takes another.
 */
const FREE: ConfigImage[] = [];

export function takeImage(link: DeviceLink): ConfigImage {
  return (FREE.pop() ?? new ConfigImage()).load(link);
}

export function giveImage(image: ConfigImage): void {
  image.release();
  FREE.push(image);
}
