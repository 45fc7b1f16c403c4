/**
 * EDID for the vGPU's virtual display: a VESA E-EDID 1.4 base block with one preferred detailed
 * timing at the type's resolution (GVT-g builds its virtual EDID for GVT_EDID_1024_768 or
 * GVT_EDID_1920_1200), and the block check a link-up applies (drm_edid_block_valid's header and
 * checksum rules).
 */
import type { VgpuResolution } from './vgpu-types.js';

export const EDID_BLOCK_SIZE = 128;
/** E-EDID 1.4 §3.1: the fixed 8-byte header. */
export const EDID_HEADER = Uint8Array.of(0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00);

interface Timing {
  clock10k: number;
  hblank: number;
  hfp: number;
  hsync: number;
  vblank: number;
  vfp: number;
  vsync: number;
  /** Detailed timing flags: digital separate sync (bits 4:3) and sync polarities (bit 2 V, bit 1 H). */
  flags: number;
}

// VESA DMT 1024x768@60 (65 MHz, -H -V) and CVT reduced blanking 1920x1200@60 (154 MHz, +H -V)
const TIMINGS: Record<string, Timing> = {
  '1024x768': { clock10k: 6500, hblank: 320, hfp: 24, hsync: 136, vblank: 38, vfp: 3, vsync: 6, flags: 0x18 },
  '1920x1200': {
    clock10k: 15400,
    hblank: 160,
    hfp: 48,
    hsync: 32,
    vblank: 35,
    vfp: 3,
    vsync: 6,
    flags: 0x1a,
  },
};

/** A CVT-like fallback for other sizes: 60 Hz with reduced blanking. */
function timingFor(r: VgpuResolution): Timing {
  const known = TIMINGS[`${r.xres}x${r.yres}`];
  if (known) return known;
  const clock10k = Math.ceil(((r.xres + 160) * (r.yres + 35) * 60) / 10_000);
  return { clock10k, hblank: 160, hfp: 48, hsync: 32, vblank: 35, vfp: 3, vsync: 6, flags: 0x1a };
}

function detailedTiming(out: Uint8Array, at: number, r: VgpuResolution): void {
  const t = timingFor(r);
  const dv = new DataView(out.buffer, out.byteOffset);
  dv.setUint16(at, t.clock10k, true);
  out[at + 2] = r.xres & 0xff;
  out[at + 3] = t.hblank & 0xff;
  out[at + 4] = ((r.xres >> 8) << 4) | (t.hblank >> 8);
  out[at + 5] = r.yres & 0xff;
  out[at + 6] = t.vblank & 0xff;
  out[at + 7] = ((r.yres >> 8) << 4) | (t.vblank >> 8);
  out[at + 8] = t.hfp & 0xff;
  out[at + 9] = t.hsync & 0xff;
  out[at + 10] = ((t.vfp & 0xf) << 4) | (t.vsync & 0xf);
  out[at + 11] = ((t.hfp >> 8) << 6) | ((t.hsync >> 8) << 4) | ((t.vfp >> 4) << 2) | (t.vsync >> 4);
  // 520 x 320 mm image
  out[at + 12] = 520 & 0xff;
  out[at + 13] = 320 & 0xff;
  out[at + 14] = ((520 >> 8) << 4) | (320 >> 8);
  out[at + 17] = t.flags;
}

function textDescriptor(out: Uint8Array, at: number, tag: number, text: string): void {
  out[at + 3] = tag;
  const bytes = new TextEncoder().encode(`${text}\n`).subarray(0, 13);
  out.fill(0x20, at + 5, at + 18);
  out.set(bytes, at + 5);
}

/** The EDID of the virtual display at `r`. */
export function buildEdid(r: VgpuResolution): Uint8Array {
  const e = new Uint8Array(EDID_BLOCK_SIZE);
  e.set(EDID_HEADER, 0);
  // manufacturer "GVT": three 5-bit letters, big-endian
  const id = ((71 - 64) << 10) | ((86 - 64) << 5) | (84 - 64);
  e[8] = id >> 8;
  e[9] = id & 0xff;
  e[10] = 0x01; // product code
  e[17] = 2016 - 1990; // year of manufacture
  e[18] = 1; // EDID 1.4
  e[19] = 4;
  e[20] = 0xa5; // digital, 8 bits per colour, DisplayPort
  e[21] = 52; // 52 x 32 cm
  e[22] = 32;
  e[23] = 120; // gamma 2.2
  e[24] = 0x06; // RGB 4:4:4, sRGB default, preferred timing is native
  e.set([0xee, 0x91, 0xa3, 0x54, 0x4c, 0x99, 0x26, 0x0f, 0x50, 0x54], 25); // sRGB chromaticity
  e.fill(0x01, 38, 54); // no standard timings
  detailedTiming(e, 54, r);
  textDescriptor(e, 72, 0xfc, 'GVT-g vGPU');
  textDescriptor(e, 90, 0xfe, `${r.xres}x${r.yres}`);
  e[108 + 3] = 0x10; // dummy descriptor
  e[126] = 0; // no extensions
  e[127] = (256 - (e.subarray(0, 127).reduce((a, b) => a + b, 0) & 0xff)) & 0xff;
  return e;
}

/** Why an EDID base block is refused, or undefined when it is valid. */
export function edidBlockProblem(block: Uint8Array): string | undefined {
  if (block.length < EDID_BLOCK_SIZE) return `the EDID is ${block.length} bytes, a base block has 128`;
  for (let i = 0; i < EDID_HEADER.length; i++) {
    if (block[i] !== EDID_HEADER[i]) return 'the EDID does not start with the 00 FF FF FF FF FF FF 00 header';
  }
  let sum = 0;
  for (let i = 0; i < EDID_BLOCK_SIZE; i++) sum += block[i];
  if ((sum & 0xff) !== 0) return `the EDID checksum is off by ${sum & 0xff}`;
  if (block[18] !== 1) return `EDID version ${block[18]} is not 1`;
  return undefined;
}

/** The preferred mode's size from the first detailed timing. */
export function edidPreferredMode(block: Uint8Array): VgpuResolution | undefined {
  if (edidBlockProblem(block) !== undefined) return undefined;
  const clock = block[54] | (block[55] << 8);
  if (clock === 0) return undefined;
  return { xres: block[56] | ((block[58] >> 4) << 8), yres: block[59] | ((block[61] >> 4) << 8) };
}
