/**
 * The guest side of a GVT-g vGPU: what i915 does on one (i915_vgpu.c, i915_gem_gtt.c, the
 * display and the ring), acting only through what a guest sees. It finds PVINFO and balloons to
 * the ranges it names, maps a framebuffer in its mappable GM and draws into it through the
 * aperture, points the primary plane at it, builds a batch in non-mappable GM that blits a
 * rectangle and stores a completion value, submits it on the render ring, waits for the user
 * interrupt and checks every result.
 */
import type { GuestDriver, GuestDriverResult, GuestView, ProbedDevice } from '@vfiokit/core';
import {
  BLT_WRITE_ALPHA,
  BLT_WRITE_RGB,
  BR13_DEPTH_SHIFT,
  BR13_ROP_PATCOPY,
  GEN8_GT_IER0,
  GEN8_GT_IIR0,
  GEN8_GT_IMR0,
  GEN8_MASTER_IRQ,
  GEN8_MASTER_IRQ_CONTROL,
  GT_RENDER_USER_INTERRUPT,
  GTT_PAGE_SIZE,
  GVT_GTT_START_OFFSET,
  MI_BATCH_BUFFER_END,
  MI_BATCH_BUFFER_START_GEN8,
  MI_NOOP,
  MI_STORE_DATA_IMM,
  MI_USE_GGTT,
  MI_USER_INTERRUPT,
  PCI_ASLS,
  PLANE_CTL_1_A,
  PLANE_CTL_ENABLE,
  PLANE_CTL_FORMAT_XRGB_8888,
  PLANE_POS_1_A,
  PLANE_SIZE_1_A,
  PLANE_STRIDE_1_A,
  PLANE_STRIDE_UNIT,
  PLANE_SURF_1_A,
  PVINFO,
  RING_CTL,
  RING_HEAD,
  RING_START,
  RING_TAIL,
  RING_VALID,
  VGT_PVINFO_PAGE,
  XY_COLOR_BLT_CMD,
} from './constants.js';
import { OPREGION_SIGNATURE } from './opregion.js';

/** The framebuffer the driver draws: small enough to draw pixel by pixel through MMIO. */
export const GUEST_FB_WIDTH = 256;
export const GUEST_FB_HEIGHT = 64;
export const GUEST_FB_STRIDE = GUEST_FB_WIDTH * 4;
/** The rectangle the batch blits and its colour. */
export const GUEST_BLIT = Object.freeze({ x1: 16, y1: 8, x2: 80, y2: 40, color: 0xff2080c0 });
/** The value MI_STORE_DATA_IMM leaves in the status page. */
export const GUEST_BATCH_MAGIC = 0x600dcafe;

/** The pattern drawn through the aperture. */
export function guestPattern(x: number, y: number): number {
  return (0xff000000 | ((x & 0xff) << 16) | ((y & 0xff) << 8) | ((x ^ y) & 0xff)) >>> 0;
}

const PCI_COMMAND = 0x04;
const PCI_COMMAND_MEMORY = 0x2;
const PCI_COMMAND_MASTER = 0x4;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function run(guest: GuestView, dev: ProbedDevice): Promise<GuestDriverResult> {
  const bar0 = dev.bars.find((b) => b.index === 0);
  const bar2 = dev.bars.find((b) => b.index === 2);
  if (!bar0 || !bar2) return { ok: false, summary: 'the vGPU has no GTTMMADR (BAR0) or GMADR (BAR2)' };
  const mmio = bar0.address;
  const aperture = bar2.address;
  const rd = (reg: number) => guest.mmioRead(mmio + reg, 4) >>> 0;
  const wr = (reg: number, v: number) => guest.mmioWrite(mmio + reg, 4, v >>> 0);
  const cmd = guest.configRead(dev.address, PCI_COMMAND, 2);
  guest.configWrite(dev.address, PCI_COMMAND, 2, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);

  // i915_detect_vgpu: the magic and version in PVINFO.
  const magicLo = rd(VGT_PVINFO_PAGE + PVINFO.magic);
  const magicHi = rd(VGT_PVINFO_PAGE + PVINFO.magic + 4);
  if (magicLo !== 0x76544776 || magicHi !== 0x47765447) {
    // i915_detect_vgpu: without the magic the GPU is not a vGPU (an assigned IGD, say) and i915
    // goes on natively; that path is not this program's, so it declines without failing.
    return {
      ok: true,
      summary: `not a GVT-g vGPU: no vGT magic in PVINFO (read 0x${magicHi.toString(16)}${magicLo.toString(16).padStart(8, '0')}), left to the native i915 path`,
      facts: { vgpu: false },
    };
  }
  const major = guest.mmioRead(mmio + VGT_PVINFO_PAGE + PVINFO.versionMajor, 2);
  if (major !== 1) return { ok: false, summary: `PVINFO version ${major} is not 1` };
  const vgtId = rd(VGT_PVINFO_PAGE + PVINFO.vgtId);
  // intel_vgt_balloon: only these ranges are ours.
  const mapBase = rd(VGT_PVINFO_PAGE + PVINFO.mappableBase);
  const mapSize = rd(VGT_PVINFO_PAGE + PVINFO.mappableSize);
  const hiBase = rd(VGT_PVINFO_PAGE + PVINFO.nonmappableBase);
  const hiSize = rd(VGT_PVINFO_PAGE + PVINFO.nonmappableSize);
  const fences = rd(VGT_PVINFO_PAGE + PVINFO.fenceNum);
  const fbBytes = GUEST_FB_STRIDE * GUEST_FB_HEIGHT;
  if (mapSize < fbBytes || hiSize < 3 * GTT_PAGE_SIZE) {
    return {
      ok: false,
      summary: `the ballooned ranges (${mapSize} mappable, ${hiSize} hidden bytes) are too small`,
    };
  }

  const pte = (gmAddr: number, gpa: number) => {
    const at = mmio + GVT_GTT_START_OFFSET + (gmAddr / GTT_PAGE_SIZE) * 8;
    const value = gpa + 1; // gen8 PTE: frame | present
    guest.mmioWrite(at, 4, value % 2 ** 32);
    guest.mmioWrite(at + 4, 4, Math.floor(value / 2 ** 32));
  };

  // The framebuffer: guest pages bound at the start of our mappable GM.
  const fbPages = Math.ceil(fbBytes / GTT_PAGE_SIZE);
  const fbRam = guest.ram.alloc(fbPages * GTT_PAGE_SIZE);
  for (let p = 0; p < fbPages; p++) pte(mapBase + p * GTT_PAGE_SIZE, fbRam + p * GTT_PAGE_SIZE);
  const gttBack = rd(GVT_GTT_START_OFFSET + (mapBase / GTT_PAGE_SIZE) * 8);
  if (gttBack !== (fbRam + 1) % 2 ** 32)
    return { ok: false, summary: 'a GGTT entry does not read back as written' };

  // Draw through the aperture.
  for (let y = 0; y < GUEST_FB_HEIGHT; y++) {
    for (let x = 0; x < GUEST_FB_WIDTH; x++) {
      guest.mmioWrite(aperture + mapBase + y * GUEST_FB_STRIDE + x * 4, 4, guestPattern(x, y));
    }
  }
  const px = (x: number, y: number) =>
    guest.mmioRead(aperture + mapBase + y * GUEST_FB_STRIDE + x * 4, 4) >>> 0;
  if (px(3, 5) !== guestPattern(3, 5))
    return { ok: false, summary: 'a pixel drawn through the aperture did not read back' };

  // The primary plane on pipe A.
  wr(PLANE_STRIDE_1_A, GUEST_FB_STRIDE / PLANE_STRIDE_UNIT);
  wr(PLANE_SIZE_1_A, ((GUEST_FB_HEIGHT - 1) << 16) | (GUEST_FB_WIDTH - 1));
  wr(PLANE_POS_1_A, 0);
  wr(PLANE_SURF_1_A, mapBase);
  wr(PLANE_CTL_1_A, PLANE_CTL_ENABLE | PLANE_CTL_FORMAT_XRGB_8888);

  // Interrupts: the render user interrupt, through the master control.
  wr(GEN8_GT_IMR0, ~GT_RENDER_USER_INTERRUPT);
  wr(GEN8_GT_IER0, GT_RENDER_USER_INTERRUPT);
  wr(GEN8_MASTER_IRQ, GEN8_MASTER_IRQ_CONTROL);

  // Ring, batch and status page in non-mappable GM, backed by guest pages.
  const ringRam = guest.ram.alloc(3 * GTT_PAGE_SIZE);
  const batchRam = ringRam + GTT_PAGE_SIZE;
  const statusRam = ringRam + 2 * GTT_PAGE_SIZE;
  const ringGm = hiBase;
  const batchGm = hiBase + GTT_PAGE_SIZE;
  const statusGm = hiBase + 2 * GTT_PAGE_SIZE;
  pte(ringGm, ringRam);
  pte(batchGm, batchRam);
  pte(statusGm, statusRam);
  const b = GUEST_BLIT;
  const batch = Uint32Array.of(
    XY_COLOR_BLT_CMD | BLT_WRITE_ALPHA | BLT_WRITE_RGB | (7 - 2),
    (3 << BR13_DEPTH_SHIFT) | (BR13_ROP_PATCOPY << 16) | GUEST_FB_STRIDE,
    (b.y1 << 16) | b.x1,
    (b.y2 << 16) | b.x2,
    mapBase,
    0,
    b.color,
    MI_STORE_DATA_IMM | MI_USE_GGTT | (4 - 2),
    statusGm % 2 ** 32,
    Math.floor(statusGm / 2 ** 32),
    GUEST_BATCH_MAGIC,
    MI_USER_INTERRUPT,
    MI_BATCH_BUFFER_END,
  );
  guest.ram.write(batchRam, new Uint8Array(batch.buffer));
  const ring = Uint32Array.of(
    MI_BATCH_BUFFER_START_GEN8,
    batchGm % 2 ** 32,
    Math.floor(batchGm / 2 ** 32),
    MI_NOOP,
  );
  guest.ram.write(ringRam, new Uint8Array(ring.buffer));
  wr(RING_CTL, 0);
  wr(RING_HEAD, 0);
  wr(RING_START, ringGm);
  wr(RING_CTL, RING_VALID); // one page
  const vector = dev.interrupts.kind === 'msi' ? dev.interrupts.vectors[0] : undefined;
  const before = vector === undefined ? 0 : guest.interrupts.count(vector);
  wr(RING_TAIL, ring.byteLength);

  let interrupted = false;
  if (vector !== undefined) {
    interrupted = await guest.interrupts.waitFor(vector, before + 1, 2000);
  } else {
    for (let i = 0; i < 200 && (rd(GEN8_GT_IIR0) & GT_RENDER_USER_INTERRUPT) === 0; i++) await sleep(5);
  }
  const iir = rd(GEN8_GT_IIR0);
  if ((iir & GT_RENDER_USER_INTERRUPT) === 0)
    return { ok: false, summary: 'the batch never raised the user interrupt' };
  wr(GEN8_GT_IIR0, iir);
  if (vector !== undefined && !interrupted)
    return { ok: false, summary: 'IIR shows the user interrupt but no MSI arrived' };
  if ((rd(RING_HEAD) & 0x1ffffc) !== ring.byteLength)
    return { ok: false, summary: 'RING_HEAD did not reach the tail' };

  const status = new Uint8Array(4);
  guest.ram.read(statusRam, status);
  const stored = new DataView(status.buffer).getUint32(0, true);
  if (stored !== GUEST_BATCH_MAGIC)
    return { ok: false, summary: `MI_STORE_DATA_IMM left 0x${stored.toString(16)}` };
  for (const [x, y] of [
    [b.x1, b.y1],
    [b.x2 - 1, b.y2 - 1],
    [(b.x1 + b.x2) >> 1, (b.y1 + b.y2) >> 1],
  ] as const) {
    if (px(x, y) !== b.color) return { ok: false, summary: `pixel (${x}, ${y}) is not the blit colour` };
  }
  for (const [x, y] of [
    [b.x1 - 1, b.y1],
    [b.x2, b.y2 - 1],
    [b.x1, b.y2],
  ] as const) {
    if (px(x, y) !== guestPattern(x, y))
      return { ok: false, summary: `pixel (${x}, ${y}) outside the blit changed` };
  }

  // The OpRegion at ASLS, as intel_opregion_setup maps it: the copy the firmware placed in RAM,
  // or, with none, the vGPU's own window in BAR0.
  const asls = guest.configRead(dev.address, PCI_ASLS, 4) >>> 0;
  let opregion = 'absent';
  if (asls !== 0) {
    const sig = new Uint8Array(16);
    if (asls >= mmio && asls < mmio + GVT_GTT_START_OFFSET) {
      for (let i = 0; i < sig.length; i += 4)
        new DataView(sig.buffer).setUint32(i, guest.mmioRead(asls + i, 4), true);
    } else guest.ram.read(asls, sig);
    opregion = new TextDecoder().decode(sig) === OPREGION_SIGNATURE ? 'IntelGraphicsMem' : 'bad signature';
    if (opregion !== 'IntelGraphicsMem')
      return { ok: false, summary: 'the OpRegion at ASLS has no IntelGraphicsMem signature' };
  }
  guest.log(
    `i915 on GVT-g vGPU ${vgtId}: drew ${GUEST_FB_WIDTH}x${GUEST_FB_HEIGHT}, blitted and stored through a batch`,
  );
  return {
    ok: true,
    summary: `vGPU ${vgtId}: PVINFO found, ballooned, framebuffer drawn, batch blitted and interrupted`,
    facts: {
      vgpu: true,
      vgtId,
      mappable: { base: mapBase, size: mapSize },
      nonmappable: { base: hiBase, size: hiSize },
      fences,
      framebuffer: { width: GUEST_FB_WIDTH, height: GUEST_FB_HEIGHT, gm: mapBase },
      interrupt: vector !== undefined ? 'msi' : 'polled',
      opregion,
    },
  };
}

export const gvtgGuestDriver: GuestDriver = {
  name: 'i915 on a GVT-g vGPU',
  matches: (d) =>
    d.vendorId === 0x8086 &&
    d.classCode >>> 16 === 0x03 &&
    d.bars.some((b) => b.index === 0) &&
    d.bars.some((b) => b.index === 2),
  run,
};
