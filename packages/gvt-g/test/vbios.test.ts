import { describe, expect, it } from 'vitest';
import {
  buildVbiosImage,
  buildVirtualVbt,
  OPREGION_BAR0_WINDOW,
  OPREGION_SIGNATURE,
  ROM_SIGNATURE,
  SIMULATED_IGD_IDENTITY,
  vbiosRegionSize,
} from '../src/index.js';
import { newParent, openVgpu } from './helpers.js';

/** What pci_get_rom_size and i915's oprom_get_vbt do with a ROM image. */
function findVbt(rom: Uint8Array): { imageSize: number; vbtAt: number } {
  const dv = new DataView(rom.buffer, rom.byteOffset, rom.byteLength);
  expect(dv.getUint16(0, true)).toBe(ROM_SIGNATURE);
  const pcir = dv.getUint16(0x18, true);
  expect(new TextDecoder().decode(rom.subarray(pcir, pcir + 4))).toBe('PCIR');
  expect(rom[pcir + 0x15] & 0x80).toBe(0x80); // the last image
  const imageSize = dv.getUint16(pcir + 0x10, true) * 512;
  let vbtAt = -1;
  for (let i = 0; i + 4 < imageSize; i += 4) {
    if (dv.getUint32(i, true) === 0x54425624) {
      vbtAt = i;
      break;
    }
  }
  return { imageSize, vbtAt };
}

describe('the video BIOS image', () => {
  it('is a valid x86 option ROM for the host IGD whose bytes sum to zero', () => {
    const vbt = buildVirtualVbt();
    const rom = buildVbiosImage(SIMULATED_IGD_IDENTITY, vbt);
    const dv = new DataView(rom.buffer);
    const pcir = dv.getUint16(0x18, true);
    expect(dv.getUint16(pcir + 4, true)).toBe(0x8086);
    expect(dv.getUint16(pcir + 6, true)).toBe(0x5912);
    expect(rom[pcir + 0x0f]).toBe(0x03); // display controller
    expect(rom[pcir + 0x14]).toBe(0); // x86 code
    expect(rom[2] * 512).toBe(rom.length);
    expect(rom[3]).toBe(0xcb); // the init entry returns
    expect(rom.reduce((a, b) => a + b, 0) % 256).toBe(0);
    expect(vbiosRegionSize(rom)).toBe(2048);
  });

  it('holds the VBT where i915 scans for it, whole, inside the image', () => {
    const vbt = buildVirtualVbt();
    const rom = buildVbiosImage(SIMULATED_IGD_IDENTITY, vbt);
    const { imageSize, vbtAt } = findVbt(rom);
    expect(vbtAt).toBeGreaterThan(0);
    const vbtSize = new DataView(rom.buffer).getUint16(vbtAt + 0x18, true);
    expect(vbtAt + vbtSize).toBeLessThanOrEqual(imageSize);
    expect([...rom.subarray(vbtAt, vbtAt + vbtSize)]).toEqual([...vbt]);
  });

  it('is the expansion ROM a vGPU serves, and its config space lets firmware enable I/O decode', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_8');
    const info = d.file.regionInfo(6);
    expect(info.size).toBe(2048);
    const rom = new Uint8Array(info.size);
    d.file.read(info.offset, rom);
    expect(findVbt(rom).vbtAt).toBeGreaterThan(0);
    d.setCfg32(0x04, 0x0007);
    expect(d.cfg32(0x04) & 0x7).toBe(0x7);
  });
});

describe('the OpRegion through ASLS', () => {
  it('points ASLS at the BAR0 window while no OpRegion base was written and BAR0 sits below 4 GiB', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_8');
    d.setCfg32(0x10, 0xe0000000);
    d.setCfg32(0x14, 0);
    expect(d.cfg32(0xfc) >>> 0).toBe(0xe0000000 + OPREGION_BAR0_WINDOW);
    const sig = new Uint8Array(16);
    d.file.read(d.offset(0) + OPREGION_BAR0_WINDOW, sig);
    expect(new TextDecoder().decode(sig)).toBe(OPREGION_SIGNATURE);
    const vbt = new Uint8Array(4);
    d.file.read(d.offset(0) + OPREGION_BAR0_WINDOW + 0x400, vbt);
    expect(new TextDecoder().decode(vbt)).toBe('$VBT');
    // Above 4 GiB ASLS cannot reach it.
    d.setCfg32(0x14, 0xff);
    expect(d.cfg32(0xfc)).toBe(0);
  });

  it('keeps an OpRegion base the guest firmware wrote', () => {
    const d = openVgpu(newParent(), 'i915-GVTg_V5_8');
    d.setCfg32(0xfc, 0x7f000000);
    d.setCfg32(0x10, 0xe0000000);
    expect(d.cfg32(0xfc) >>> 0).toBe(0x7f000000);
    expect(d.vgpu.asls).toBe(0x7f000000);
  });
});
