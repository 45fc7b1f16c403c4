/**
 * The panels a VBT describes, as data: for each of the 16 panel types the LFP data (block 42,
 * found through block 41 — or through the pointers intel_vbt_decode and i915 build when block 41
 * is absent): the panel's fp_timing registers (PP_ON/PP_OFF/PP_DIVISOR power sequencing), its
 * detailed timing (DTD), its PnP id and name; and its eDP settings (block 27: power sequence T3,
 * T7, T9, T10, T12, color depth, fast link parameters). `panelType` is block 40's.
 *
 * And the inverse, lfpDataBlocks(): blocks 41 and 42 for given panels, in the layout real VBTs use
 * (46-byte fp_timing with its 0xffff terminator, 18-byte DTD, 10-byte PnP id, then 16 names).
 */
import { VfioError } from '@vfiokit/core';
import type { VbtBlockInput } from './build.js';
import {
  BDB_EDP,
  BDB_LVDS_LFP_DATA,
  BDB_LVDS_LFP_DATA_PTRS,
  BDB_LVDS_OPTIONS,
  PANEL_NAME_PTR,
  SIZEOF,
  VbtContext,
} from './decode/context.js';
import { findVbtSignature } from './decode/index.js';
import { panelBits } from './decode/mem.js';
import { dtdTiming, lfpPtr, type PanelTiming, pnpManufacturer } from './decode/panel.js';

export type { PanelTiming } from './decode/panel.js';

export interface LfpPanel {
  index: number;
  /** fp_timing x_res / y_res (the BIOS's mode, which may differ from the DTD's). */
  xRes: number;
  yRes: number;
  /** The register values fp_timing carries. */
  registers: { lvds: number; ppOnDelays: number; ppOffDelays: number; ppDivisor: number; pfit: number };
  timing: PanelTiming;
  pnp: {
    /** The three-letter EDID manufacturer id. */
    manufacturer: string;
    mfgName: number;
    productCode: number;
    serial: number;
    mfgWeek: number;
    mfgYear: number;
  };
  /** Present when the VBT has the panel-name table. */
  name?: string;
}

export interface EdpPanel {
  index: number;
  /** In units of 100 us, as the VBT stores them. */
  powerSequence: { t3: number; t7: number; t9: number; t10: number; t12: number };
  /** 18, 24 or 30; undefined for a value the tool calls unknown. */
  colorDepthBpp?: number;
  fastLink: { rate: number; rateGbps?: number; lanes: number; preemphasis: number; vswing: number };
}

export interface VbtPanels {
  /** Block 40's panel type (0 without block 40, as intel_vbt_decode and i915 assume). */
  panelType: number;
  /** 16 LFP panels; empty without valid blocks 41/42. */
  lfp: LfpPanel[];
  /** 16 eDP panels; empty without block 27. */
  edp: EdpPanel[];
  /** What intel_vbt_decode would say on stderr while finding them. */
  warnings: string[];
}

/** The panels of a VBT (or of the first VBT inside an OpRegion or VBIOS image). */
export function vbtPanels(bytes: Uint8Array): VbtPanels {
  const vbtOff = findVbtSignature(bytes);
  if (vbtOff < 0) {
    throw new VfioError('EINVAL', 'there is no "$VBT" signature in the input.', {
      hint: 'Give a VBT, an OpRegion dump or a VBIOS image.',
    });
  }
  const ctx = new VbtContext(bytes, vbtOff, {});
  const options = ctx.find(BDB_LVDS_OPTIONS);
  const panelType = options ? options.data.u8(0) : 0;
  const lfp: LfpPanel[] = [];
  const data = ctx.find(BDB_LVDS_LFP_DATA);
  const ptrs = data ? ctx.find(BDB_LVDS_LFP_DATA_PTRS) : undefined;
  if (data && ptrs) {
    const d = data.data;
    const names = ptrs.data.u8(PANEL_NAME_PTR + 2) !== 0;
    const nameTable = ptrs.data.u16(PANEL_NAME_PTR);
    for (let i = 0; i < 16; i++) {
      const fp = lfpPtr(ptrs.data, i, 0).offset;
      const pnp = lfpPtr(ptrs.data, i, 2).offset;
      const mfgName = d.u16(pnp);
      lfp.push({
        index: i,
        xRes: d.u16(fp),
        yRes: d.u16(fp + 2),
        registers: {
          lvds: d.u32(fp + 8),
          ppOnDelays: d.u32(fp + 16),
          ppOffDelays: d.u32(fp + 24),
          ppDivisor: d.u32(fp + 32),
          pfit: d.u32(fp + 40),
        },
        timing: dtdTiming(d, lfpPtr(ptrs.data, i, 1).offset),
        pnp: {
          manufacturer: pnpManufacturer(mfgName),
          mfgName,
          productCode: d.u16(pnp + 2),
          serial: d.u32(pnp + 4),
          mfgWeek: d.u8(pnp + 8),
          mfgYear: 1990 + d.u8(pnp + 9),
        },
        name: names ? d.cstr(nameTable + i * SIZEOF.panelName, SIZEOF.panelName) : undefined,
      });
    }
  }
  const edp: EdpPanel[] = [];
  const e = ctx.find(BDB_EDP)?.data;
  if (e) {
    for (let i = 0; i < 16; i++) {
      const ps = 10 * i;
      const fl = 164 + 2 * i;
      const rate = e.bits(fl, 0, 4);
      edp.push({
        index: i,
        powerSequence: {
          t3: e.u16(ps),
          t7: e.u16(ps + 2),
          t9: e.u16(ps + 4),
          t10: e.u16(ps + 6),
          t12: e.u16(ps + 8),
        },
        colorDepthBpp: [18, 24, 30][panelBits(e.u32(160), i, 2)],
        fastLink: {
          rate,
          rateGbps: [1.62, 2.7, 5.4][rate],
          lanes: e.bits(fl, 4, 4) + 1,
          preemphasis: e.bits(fl + 1, 0, 4),
          vswing: e.bits(fl + 1, 4, 4),
        },
      });
    }
  }
  return { panelType, lfp, edp, warnings: ctx.stderr.slice() };
}

export interface LfpPanelInput {
  timing: PanelTiming;
  /** fp_timing x_res / y_res (default: the timing's hdisplay / vdisplay). */
  xRes?: number;
  yRes?: number;
  registers?: Partial<LfpPanel['registers']>;
  pnp?: { manufacturer?: string; productCode?: number; serial?: number; mfgWeek?: number; mfgYear?: number };
  /** At most 13 characters. */
  name?: string;
}

const FP_TIMING = SIZEOF.fpTiming; // 46, terminator included
const ENTRY = FP_TIMING + SIZEOF.dvoTiming + SIZEOF.pnpId; // 74
const LFP_DATA_SIZE = 16 * ENTRY + 16 * SIZEOF.panelName; // 1392: entries and the name table

/** The 18-byte DTD of a timing (the inverse of the tool's _H_/_V_ macros). */
export function encodeDtd(t: PanelTiming): Uint8Array {
  const hblank = t.htotal - t.hdisplay;
  const hso = t.hsyncStart - t.hdisplay;
  const hsw = t.hsyncEnd - t.hsyncStart;
  const vblank = t.vtotal - t.vdisplay;
  const vso = t.vsyncStart - t.vdisplay;
  const vsw = t.vsyncEnd - t.vsyncStart;
  const fits =
    [t.hdisplay, hblank, t.vdisplay, vblank].every((v) => v >= 0 && v < 4096) &&
    [hso, hsw].every((v) => v >= 0 && v < 1024) &&
    [vso, vsw].every((v) => v >= 0 && v < 64) &&
    t.clockHz >= 0 &&
    t.clockHz % 10000 === 0 &&
    t.clockHz / 10000 < 65536;
  if (!fits) {
    throw new VfioError('EINVAL', 'the panel timing does not fit an 18-byte detailed timing descriptor.', {
      hint: 'Active and blank < 4096, h sync offset/width < 1024, v sync offset/width < 64, clock a multiple of 10 kHz below 655.36 MHz.',
    });
  }
  const x = new Uint8Array(SIZEOF.dvoTiming);
  const clk = t.clockHz / 10000;
  x[0] = clk & 0xff;
  x[1] = clk >> 8;
  x[2] = t.hdisplay & 0xff;
  x[3] = hblank & 0xff;
  x[4] = ((t.hdisplay >> 8) << 4) | (hblank >> 8);
  x[5] = t.vdisplay & 0xff;
  x[6] = vblank & 0xff;
  x[7] = ((t.vdisplay >> 8) << 4) | (vblank >> 8);
  x[8] = hso & 0xff;
  x[9] = hsw & 0xff;
  x[10] = ((vso & 0x0f) << 4) | (vsw & 0x0f);
  x[11] = ((hso >> 8) << 6) | ((hsw >> 8) << 4) | ((vso >> 4) << 2) | (vsw >> 4);
  x[17] = 0x18; // digital separate sync, both polarities negative (as most VBTs)
  return x;
}

/**
 * Blocks 41 and 42 for up to 16 panels (missing ones are zero), to be placed right after the
 * blocks `before` (block 41 holds offsets from the BDB header, so it must know where 42 lands).
 */
export function lfpDataBlocks(
  panels: readonly LfpPanelInput[],
  before: readonly VbtBlockInput[],
): [VbtBlockInput, VbtBlockInput] {
  if (panels.length > 16) {
    throw new VfioError('EINVAL', `a VBT has 16 panel types; ${panels.length} panels were given.`, {
      hint: 'Give at most 16 panels.',
    });
  }
  let dataOff = SIZEOF.bdbHeader;
  for (const b of before) dataOff += 3 + b.data.length;
  dataOff += 3 + SIZEOF.lfpDataPtrs + 3; // block 41, then block 42's header
  const ptrs = new Uint8Array(SIZEOF.lfpDataPtrs);
  const pv = new DataView(ptrs.buffer);
  const data = new Uint8Array(LFP_DATA_SIZE);
  const dv = new DataView(data.buffer);
  ptrs[0] = 3;
  for (let i = 0; i < 16; i++) {
    const at = i * ENTRY;
    const sizes = [FP_TIMING, SIZEOF.dvoTiming, SIZEOF.pnpId];
    let o = at;
    for (let t = 0; t < 3; t++) {
      pv.setUint16(1 + i * 9 + t * 3, dataOff + o, true);
      ptrs[1 + i * 9 + t * 3 + 2] = sizes[t];
      o += sizes[t];
    }
    dv.setUint16(at + FP_TIMING - 2, 0xffff, true); // the fp_timing terminator
    const p = panels[i];
    if (!p) continue;
    dv.setUint16(at, p.xRes ?? p.timing.hdisplay, true);
    dv.setUint16(at + 2, p.yRes ?? p.timing.vdisplay, true);
    const r = p.registers ?? {};
    const regs: Array<[number, number, number]> = [
      [4, 0x61180, r.lvds ?? 0],
      [12, 0xc7208, r.ppOnDelays ?? 0],
      [20, 0xc720c, r.ppOffDelays ?? 0],
      [28, 0xc7210, r.ppDivisor ?? 0],
      [36, 0x61230, r.pfit ?? 0],
    ];
    for (const [off, reg, val] of regs) {
      dv.setUint32(at + off, reg, true);
      dv.setUint32(at + off + 4, val >>> 0, true);
    }
    data.set(encodeDtd(p.timing), at + FP_TIMING);
    const pnp = at + FP_TIMING + SIZEOF.dvoTiming;
    const m = (p.pnp?.manufacturer ?? '@@@').padEnd(3, '@');
    const code = ((m.charCodeAt(0) - 64) << 10) | ((m.charCodeAt(1) - 64) << 5) | (m.charCodeAt(2) - 64);
    dv.setUint16(pnp, code & 0x7fff, false); // big-endian, as EDID stores it
    dv.setUint16(pnp + 2, p.pnp?.productCode ?? 0, true);
    dv.setUint32(pnp + 4, p.pnp?.serial ?? 0, true);
    data[pnp + 8] = p.pnp?.mfgWeek ?? 0;
    data[pnp + 9] = Math.max(0, (p.pnp?.mfgYear ?? 1990) - 1990);
    const name = p.name ?? '';
    for (let c = 0; c < Math.min(name.length, SIZEOF.panelName); c++) {
      data[16 * ENTRY + i * SIZEOF.panelName + c] = name.charCodeAt(c) & 0xff;
    }
  }
  pv.setUint16(PANEL_NAME_PTR, dataOff + 16 * ENTRY, true);
  ptrs[PANEL_NAME_PTR + 2] = SIZEOF.panelName;
  return [
    { id: BDB_LVDS_LFP_DATA_PTRS, data: ptrs },
    { id: BDB_LVDS_LFP_DATA, data },
  ];
}
