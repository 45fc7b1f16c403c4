/**
 * intel_vbt_decode's text for the LFP blocks: 40 (LVDS/LFP options), 41 (LFP data table
 * pointers), 42 (LFP data: each panel's fp_timing registers, its DTD and PnP ID, and the tail of
 * panel names and flags), 43 (backlight) and 44 (LFP power conservation), as igt-gpu-tools 1.27.1
 * prints them. Layouts: intel_vbt_defs.h struct bdb_lvds_options, bdb_lvds_lfp_data_ptrs,
 * lvds_fp_timing, lvds_dvo_timing, lvds_pnp_id, bdb_lvds_lfp_data_tail, bdb_lfp_backlight_data,
 * bdb_lfp_power.
 */
import {
  BDB_LVDS_LFP_DATA_PTRS,
  type DecodedBlock,
  PANEL_NAME_PTR,
  SIZEOF,
  type VbtContext,
} from './context.js';
import { hex, type Mem, type Out, panelBits, yesno } from './mem.js';

const CHANNEL_TYPE = ['automatic', 'single', 'dual', 'reserved'];
const DPS_TYPE = ['static DRRS', 'D2PO', 'seamless DRRS', 'reserved'];
const BLT_TYPE = ['default', 'CCFL', 'LED', 'reserved'];
const POS_TYPE = ['inside shell', 'outside shell', 'reserved', 'reserved'];

export function dumpLvdsOptions(ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const o = block.data;
  const v = ctx.bdbVersion;
  out.line(`\tPanel type: ${o.u8(0)}`);
  if (v >= 212) out.line(`\tPanel type 2: ${o.u8(1)}`);
  out.line(`\tLVDS EDID available: ${yesno(o.bits(2, 6, 1))}`);
  out.line(`\tPixel dither: ${yesno(o.bits(2, 5, 1))}`);
  out.line(`\tPFIT auto ratio: ${yesno(o.bits(2, 4, 1))}`);
  out.line(`\tPFIT enhanced graphics mode: ${yesno(o.bits(2, 3, 1))}`);
  out.line(`\tPFIT enhanced text mode: ${yesno(o.bits(2, 2, 1))}`);
  out.line(`\tPFIT mode: ${o.bits(2, 0, 2)}`);
  if (block.size < 14) return;
  for (let i = 0; i < 16; i++) {
    if (!ctx.shows(i)) continue;
    out.line(ctx.panelHeading(i));
    let val = panelBits(o.u32(4), i, 2);
    out.line(`\t\tChannel type: ${CHANNEL_TYPE[val]} (0x${hex(val)})`);
    out.line(`\t\tSSC: ${yesno(panelBits(o.u16(8), i, 1))}`);
    val = panelBits(o.u16(10), i, 1);
    out.line(`\t\tSSC frequency: ${ctx.sscFreq(val)} MHz (0x${hex(val)})`);
    out.line(`\t\tDisable SSC in dual display twin: ${yesno(panelBits(o.u16(12), i, 1))}`);
    if (block.size < 16) continue;
    val = panelBits(o.u16(14), i, 1);
    out.line(`\t\tPanel color depth: ${val ? 24 : 18} (0x${hex(val)})`);
    if (block.size < 24) continue;
    val = panelBits(o.u32(16), i, 2);
    out.line(`\t\tDPS type: ${DPS_TYPE[val]} (0x${hex(val)})`);
    val = panelBits(o.u32(20), i, 2);
    out.line(`\t\tBacklight type: ${BLT_TYPE[val]} (0x${hex(val)})`);
    if (v < 200) continue;
    out.line(`\t\tLCDVCC on during S0 state: ${yesno(panelBits(o.u16(24), i, 1))}`);
    if (v < 228) continue;
    val = panelBits(o.u32(26), i, 2);
    out.line(`\t\tPanel rotation: ${val * 90} degrees (0x${hex(val)})`);
    if (v < 240) continue;
    val = panelBits(o.u32(30), i, 2);
    out.line(`\t\tPanel position: ${POS_TYPE[val]} (0x${hex(val)})`);
  }
}

/** struct lvds_lfp_data_ptr_table fields of panel i: 0 fp_timing, 1 dvo_timing, 2 panel_pnp_id. */
export function lfpPtr(p: Mem, i: number, table: number): { offset: number; size: number } {
  const at = 1 + i * 9 + table * 3;
  return { offset: p.u16(at), size: p.u8(at + 2) };
}

export function dumpLvdsPtrData(ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const p = block.data;
  const entries = p.u8(0);
  out.line(`\tNumber of entries: ${entries}`);
  for (let i = 0; i < 16; i++) {
    if (!ctx.shows(i)) continue;
    out.line(ctx.panelHeading(i));
    const labels = ['FP timing', 'DVO timing', 'Panel PnP ID'];
    for (let t = 0; t < 3; t++) {
      if (entries < t + 1) break;
      const { offset, size } = lfpPtr(p, i, t);
      out.line(`\t\t${labels[t]} offset: ${offset}`);
      out.line(`\t\t${labels[t]} table size: ${size}`);
    }
  }
  if (p.u8(PANEL_NAME_PTR + 2)) {
    out.line(`\tPanel name offset: ${p.u16(PANEL_NAME_PTR)}`);
    out.line(`\tPanel name table size: ${p.u8(PANEL_NAME_PTR + 2)}`);
  }
}

/** The EDID-style detailed timing of struct lvds_dvo_timing, as the tool's _H_/_V_ macros read it. */
export interface PanelTiming {
  hdisplay: number;
  hsyncStart: number;
  hsyncEnd: number;
  htotal: number;
  vdisplay: number;
  vsyncStart: number;
  vsyncEnd: number;
  vtotal: number;
  /** Pixel clock in Hz (the u16 is in 10 kHz). */
  clockHz: number;
}

export function dtdTiming(x: Mem, at = 0): PanelTiming {
  const b = (i: number) => x.u8(at + i);
  const hdisplay = b(2) + ((b(4) & 0xf0) << 4);
  const hsyncStart = hdisplay + b(8) + ((b(11) & 0xc0) << 2);
  const hsyncEnd = hsyncStart + b(9) + ((b(11) & 0x30) << 4);
  const htotal = hdisplay + b(3) + ((b(4) & 0x0f) << 8);
  const vdisplay = b(5) + ((b(7) & 0xf0) << 4);
  const vsyncStart = vdisplay + (b(10) >> 4) + ((b(11) & 0x0c) << 2);
  const vsyncEnd = vsyncStart + (b(10) & 0x0f) + ((b(11) & 0x03) << 4);
  const vtotal = vdisplay + b(6) + ((b(7) & 0x0f) << 8);
  return {
    hdisplay,
    hsyncStart,
    hsyncEnd,
    htotal,
    vdisplay,
    vsyncStart,
    vsyncEnd,
    vtotal,
    clockHz: (b(0) + (b(1) << 8)) * 10000,
  };
}

/** decode_pnp_id: the EDID manufacturer id (big-endian, three 5-bit letters from '@'). */
export function pnpManufacturer(mfgName: number): string {
  const be = ((mfgName & 0xff) << 8) | (mfgName >> 8);
  return String.fromCharCode(64 + ((be >> 10) & 0x1f), 64 + ((be >> 5) & 0x1f), 64 + (be & 0x1f));
}

export function dumpLvdsData(ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const ptrsBlock = ctx.find(BDB_LVDS_LFP_DATA_PTRS);
  if (!ptrsBlock) return;
  const ptrs = ptrsBlock.data;
  const d = block.data;
  const v = ctx.bdbVersion;
  const nameTable = ptrs.u16(PANEL_NAME_PTR);
  const hasNames = ptrs.u8(PANEL_NAME_PTR + 2) !== 0;
  for (let i = 0; i < 16; i++) {
    if (!ctx.shows(i)) continue;
    const fp = lfpPtr(ptrs, i, 0).offset;
    const dvo = lfpPtr(ptrs, i, 1).offset;
    const pnp = lfpPtr(ptrs, i, 2).offset;
    const t = dtdTiming(d, dvo);
    const clock = t.clockHz / 1000; // (raw * 10000) / 1000 in int, then a float
    out.line(ctx.panelHeading(i));
    out.line(`\t\t${d.u16(fp)}x${d.u16(fp + 2)} clock ${t.clockHz}`);
    out.line('\t\tinfo:');
    out.line(`\t\t  LVDS: 0x${hex(d.u32(fp + 8), 8)}`);
    out.line(`\t\t  PP_ON_DELAYS: 0x${hex(d.u32(fp + 16), 8)}`);
    out.line(`\t\t  PP_OFF_DELAYS: 0x${hex(d.u32(fp + 24), 8)}`);
    out.line(`\t\t  PP_DIVISOR: 0x${hex(d.u32(fp + 32), 8)}`);
    out.line(`\t\t  PFIT: 0x${hex(d.u32(fp + 40), 8)}`);
    const bad = t.hsyncEnd > t.htotal || t.vsyncEnd > t.vtotal;
    out.line(
      `\t\ttimings: ${t.hdisplay} ${t.hsyncStart} ${t.hsyncEnd} ${t.htotal} ${t.vdisplay} ${t.vsyncStart} ${t.vsyncEnd} ${t.vtotal} ${clock.toFixed(2)} (${bad ? 'BAD!' : 'good'})`,
    );
    const mfg = d.u16(pnp);
    out.line('\t\tPnP ID:');
    out.line(`\t\t  Mfg name: ${pnpManufacturer(mfg)} (0x${hex(mfg)})`);
    out.line(`\t\t  Product code: ${d.u16(pnp + 2)}`);
    out.line(`\t\t  Serial: ${d.u32(pnp + 4)}`);
    out.line(`\t\t  Mfg week: ${d.u8(pnp + 8)}`);
    out.line(`\t\t  Mfg year: ${1990 + d.u8(pnp + 9)}`);
    if (!hasNames) continue;
    const tail = nameTable;
    out.line(`\t\tPanel name: ${d.cstr(tail + i * SIZEOF.panelName, SIZEOF.panelName)}`);
    if (v < 187) continue;
    out.line(`\t\tScaling enable: ${yesno(panelBits(d.u16(tail + 208), i, 1))}`);
    if (v < 188) continue;
    out.line(`\t\tSeamless DRRS min refresh rate: ${d.u8(tail + 210 + i)}`);
    if (v < 208) continue;
    out.line(`\t\tPixel overlap count: ${d.u8(tail + 226 + i)}`);
    if (v < 227) continue;
    const border = tail + 242 + 4 * i;
    out.line('\t\tBlack border:');
    out.line(`\t\t  Top: ${d.u8(border)}`);
    out.line(`\t\t  Bottom: ${d.u8(border)}`); // the tool prints top here
    out.line(`\t\t  Left: ${d.u8(border + 2)}`);
    out.line(`\t\t  Right: ${d.u8(border + 3)}`);
    if (v < 231) continue;
    out.line(`\t\tDual LFP port sync enable: ${yesno(panelBits(d.u16(tail + 306), i, 1))}`);
    if (v < 245) continue;
    out.line(`\t\tGPU dithering for banding artifacts: ${yesno(panelBits(d.u16(tail + 308), i, 1))}`);
  }
}

export function dumpBacklightInfo(ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const b = block.data;
  const entrySize = b.u8(0);
  if (entrySize !== SIZEOF.backlightEntry) {
    out.line(
      `\tBacklight struct sizes don't match (expected ${SIZEOF.backlightEntry}, got ${entrySize}), skipping`,
    );
    return;
  }
  for (let i = 0; i < 16; i++) {
    if (!ctx.shows(i)) continue;
    out.line(ctx.panelHeading(i));
    const e = 1 + i * SIZEOF.backlightEntry;
    out.line(`\t\tInverter type: ${b.bits(e, 0, 2)}`);
    out.line(`\t\tActive low: ${b.bits(e, 2, 1)}`);
    out.line(`\t\tPWM freq: ${b.u16(e + 1)}`);
    out.line(`\t\tMinimum brightness: ${b.u8(e + 3)}`);
    out.line(`\t\tLevel: ${b.u8(97 + i)}`);
    out.line(`\t\tControl type: ${b.bits(113 + i, 0, 4)}`);
    out.line(`\t\tController: ${b.bits(113 + i, 4, 4)}`);
  }
}

export function dumpLfpPower(ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const p = block.data;
  const v = ctx.bdbVersion;
  out.line(`\tALS enable: ${yesno(p.bits(0, 7, 1))}`);
  out.line(`\tDisplay LACE support: ${yesno(p.bits(0, 6, 1))}`);
  out.line(`\tDefault Display LACE enabled status: ${yesno(p.bits(0, 5, 1))}`);
  out.line(`\tPower conservation preference level: ${p.bits(0, 1, 3)}`);
  for (let i = 0; i < 5; i++) {
    out.line(`\tALS backlight adjust: ${p.u16(1 + 4 * i)}`);
    out.line(`\tALS Lux: ${p.u16(3 + 4 * i)}`);
  }
  out.line(`\tDisplay LACE aggressiveness profile: ${p.bits(21, 0, 3)}`);
  if (v < 228) return;
  const flag = (at: number, i: number) => yesno(panelBits(p.u16(at), i, 1));
  for (let i = 0; i < 16; i++) {
    if (!ctx.shows(i)) continue;
    out.line(ctx.panelHeading(i));
    out.line(`\t\tDisplay Power Saving Technology (DPST): ${flag(22, i)}`);
    out.line(`\t\tPanel Self Refresh (PSR): ${flag(24, i)}`);
    out.line(`\t\tDynamic Refresh Rate Switching (DRRS): ${flag(26, i)}`);
    out.line(`\t\tDisplay LACE support: ${flag(28, i)}`);
    out.line(`\t\tAssertive Display Technology (ADT): ${flag(30, i)}`);
    out.line(`\t\tDynamic Media Refresh Rate Switching (DMRRS): ${flag(32, i)}`);
    out.line(`\t\tAutomatic Display Brightness (ADB): ${flag(34, i)}`);
    out.line(`\t\tDefault Display LACE enabled: ${flag(36, i)}`);
    out.line(`\t\tLACE Aggressiveness: ${p.bits(38 + i, 4, 4)}`);
    out.line(`\t\tDPST Aggressiveness: ${p.bits(38 + i, 0, 4)}`);
    if (v < 232) continue;
    out.line(`\t\tEDP 4k/2k HOBL feature: ${flag(54, i)}`);
    if (v < 233) continue;
    out.line(`\t\tVariable Refresh Rate (VRR): ${flag(56, i)}`);
    if (v < 247) continue;
    out.line(`\t\tELP: ${flag(58, i)}`);
    out.line(`\t\tOPST: ${flag(60, i)}`);
    out.line(`\t\tELP Aggressiveness: ${p.bits(62 + i, 4, 4)}`);
    out.line(`\t\tOPST Aggrgessiveness: ${p.bits(62 + i, 0, 4)}`);
  }
}
