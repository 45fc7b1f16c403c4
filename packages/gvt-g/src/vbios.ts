/**
 * The vGPU's video BIOS image, served as its expansion ROM: a PCI option ROM (PCI Firmware
 * Specification 3.0, §5.1) whose only content is the virtual VBT, as an IGD's VBIOS carries its
 * VBT. i915 looks for the VBT in the OpRegion first and then in the PCI ROM (intel_bios.c
 * oprom_get_vbt, scanning for "$VBT" on 4-byte boundaries); on a VMM with no way to place the
 * OpRegion for the guest, the ROM is where it finds it. The entry point is a far return, so
 * firmware that runs the ROM (SeaBIOS shadows a VGA ROM at C000:0) comes straight back.
 */
import type { HostGpuIdentity } from './host-gpu.js';

export const ROM_SIGNATURE = 0xaa55;
/** Offset of the PCI data structure pointer in the ROM header. */
const PCIR_POINTER = 0x18;
const PCIR_OFFSET = 0x20;
const PCIR_LENGTH = 0x18;
/** The VBT starts at a 4-byte aligned offset after the header and the PCIR. */
const VBT_OFFSET = 0x40;
const BLOCK = 512;
/** Code type 0: IA-32 PC-AT compatible; indicator bit 7: the last image. */
const CODE_TYPE_X86 = 0;
const LAST_IMAGE = 0x80;
/** RETF: the option ROM's init entry returns to its caller at once. */
const X86_RETF = 0xcb;

/** The expansion ROM region's size: a power of two that holds the image. */
export function vbiosRegionSize(image: Uint8Array): number {
  let size = 2048;
  while (size < image.length) size *= 2;
  return size;
}

/** An option ROM image for `id` holding `vbt`; its bytes sum to 0 mod 256 as firmware checks. */
export function buildVbiosImage(id: HostGpuIdentity, vbt: Uint8Array): Uint8Array {
  const blocks = Math.ceil((VBT_OFFSET + vbt.length + 1) / BLOCK);
  const rom = new Uint8Array(blocks * BLOCK);
  const dv = new DataView(rom.buffer);
  dv.setUint16(0, ROM_SIGNATURE, true);
  rom[2] = blocks;
  rom[3] = X86_RETF;
  dv.setUint16(PCIR_POINTER, PCIR_OFFSET, true);
  rom.set(new TextEncoder().encode('PCIR'), PCIR_OFFSET);
  dv.setUint16(PCIR_OFFSET + 4, id.vendorId, true);
  dv.setUint16(PCIR_OFFSET + 6, id.deviceId, true);
  dv.setUint16(PCIR_OFFSET + 0x0a, PCIR_LENGTH, true);
  rom[PCIR_OFFSET + 0x0c] = 0; // PCIR revision 0 (PCI 2.2+ layout)
  rom[PCIR_OFFSET + 0x0d] = id.classCode & 0xff;
  rom[PCIR_OFFSET + 0x0e] = (id.classCode >>> 8) & 0xff;
  rom[PCIR_OFFSET + 0x0f] = (id.classCode >>> 16) & 0xff;
  dv.setUint16(PCIR_OFFSET + 0x10, blocks, true);
  dv.setUint16(PCIR_OFFSET + 0x12, 1, true); // code revision
  rom[PCIR_OFFSET + 0x14] = CODE_TYPE_X86;
  rom[PCIR_OFFSET + 0x15] = LAST_IMAGE;
  rom.set(vbt, VBT_OFFSET);
  let sum = 0;
  for (let i = 0; i < rom.length - 1; i++) sum += rom[i];
  rom[rom.length - 1] = (256 - (sum & 0xff)) & 0xff;
  return rom;
}
