/**
 * intel_vbt_decode's text for block 9 (PSR), 12 (driver features), 22 (SDVO LVDS options),
 * 23 (SDVO panel DTDs) and 27 (eDP), as igt-gpu-tools 1.27.1 prints them (its misspellings and
 * its missing newline after "lanes: Xn" included). Layouts: intel_vbt_defs.h struct bdb_psr,
 * bdb_driver_features, bdb_sdvo_lvds_options, lvds_dvo_timing, bdb_edp.
 */
import type { DecodedBlock, VbtContext } from './context.js';
import { dpPreemph, dpVswing } from './general.js';
import { floatDiv, fmtG, hex, type Mem, type Out, panelBits, yesno } from './mem.js';

export function dumpPsr(ctx: VbtContext, block: DecodedBlock, out: Out): void {
  if (ctx.bdbVersion < 165) return; // the same block id meant something else before
  const p = block.data;
  const psr2 = p.u32(96);
  for (let i = 0; i < 16; i++) {
    if (!ctx.shows(i)) continue;
    const e = 6 * i;
    out.line(ctx.panelHeading(i));
    out.line(`\t\tFull link: ${yesno(p.bits(e, 0, 1))}`);
    out.line(`\t\tRequire AUX to wakeup: ${yesno(p.bits(e, 1, 1))}`);
    const lines = p.bits(e + 1, 4, 3);
    if (lines <= 1) out.line(`\t\tLines to wait before link standby: ${lines}`);
    else if (lines <= 3) out.line(`\t\tLines to wait before link standby: ${1 << lines}`);
    else out.line(`\t\tLines to wait before link standby: (unknown) (0x${hex(lines)})`);
    out.line(`\t\tIdle frames to for PSR enable: ${p.bits(e + 1, 0, 4)}`);
    const tp1 = p.u16(e + 2);
    const tp23 = p.u16(e + 4);
    out.line(`\t\tTP1 wakeup time: ${tp1 * 100} usec (0x${hex(tp1)})`);
    out.line(`\t\tTP2/TP3 wakeup time: ${tp23 * 100} usec (0x${hex(tp23)})`);
    if (ctx.bdbVersion >= 226) {
      const index = panelBits(psr2, i, 2);
      out.line(`\t\tPSR2 TP2/TP3 wakeup time: ${[500, 100, 2500, 5][index]} usec (0x${hex(index)})`);
    }
  }
}

const LVDS_CONFIG = ['No LVDS', 'Integrated LVDS', 'SDVO LVDS', 'Embedded DisplayPort'];

export function dumpDriverFeature(_ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const f = block.data;
  const b0 = (bit: number) => f.bits(0, bit, 1);
  const x1 = (bit: number) => Math.floor(f.u16(7) / 2 ** bit) % 2;
  const f2 = (bit: number) => Math.floor(f.u16(17) / 2 ** bit) % 2;
  out.line(`\tUse 00000110h ID for Primary LFP: ${yesno(b0(7))}`);
  out.line(`\tEnable Sprite in Clone Mode: ${yesno(b0(6))}`);
  out.line(`\tDriver INT 15h hook: ${yesno(b0(5))}`);
  out.line(`\tDual View Zoom: ${yesno(b0(4))}`);
  out.line(`\tHot Plug DVO: ${yesno(b0(3))}`);
  out.line(`\tAllow display switching when in Full Screen DOS: ${yesno(b0(2))}`);
  out.line(`\tAllow display switching when DVD active: ${yesno(b0(1))}`);
  out.line(`\tBoot Device Algorithm: ${b0(0) ? 'driver default' : 'os default'}`);
  out.line(`\tBoot Mode X: ${f.u16(1)}`);
  out.line(`\tBoot Mode Y: ${f.u16(3)}`);
  out.line(`\tBoot Mode Bpp: ${f.u8(5)}`);
  out.line(`\tBoot Mode Refresh: ${f.u8(6)}`);
  out.line(`\tEnable LFP as primary: ${yesno(x1(0))}`);
  out.line(`\tSelective Mode Pruning: ${yesno(x1(1))}`);
  out.line(`\tDual-Frequency Graphics Technology: ${yesno(x1(2))}`);
  out.line(`\tDefault Render Clock Frequency: ${x1(3) ? 'low' : 'high'}`);
  out.line(`\tNT 4.0 Dual Display Clone Support: ${yesno(x1(4))}`);
  out.line(`\tDefault Power Scheme user interface: ${x1(5) ? '3rd party' : 'CUI'}`);
  out.line(
    `\tSprite Display Assignment when Overlay is Active in Clone Mode: ${x1(6) ? 'primary' : 'secondary'}`,
  );
  out.line(`\tDisplay Maintain Aspect Scaling via CUI: ${yesno(x1(7))}`);
  out.line(`\tPreserve Aspect Ratio: ${yesno(x1(8))}`);
  out.line(`\tEnable SDVO device power down: ${yesno(x1(9))}`);
  out.line(`\tCRT hotplug: ${yesno(x1(10))}`);
  const lvds = Math.floor(f.u16(7) / 2 ** 11) % 4;
  out.line(`\tLVDS config: ${LVDS_CONFIG[lvds]} (0x${hex(lvds)})`);
  out.line(`\tTV hotplug: ${yesno(x1(13))}`);
  out.line(`\tDisplay subsystem enable: ${yesno(f.bits(9, 2, 1))}`);
  out.line(`\tEmbedded platform: ${yesno(f.bits(9, 1, 1))}`);
  out.line(`\tDefine Display statically: ${yesno(f.bits(9, 0, 1))}`);
  out.line(`\tLegacy CRT max X: ${f.u16(10)}`);
  out.line(`\tLegacy CRT max Y: ${f.u16(12)}`);
  out.line(`\tLegacy CRT max refresh: ${f.u8(14)}`);
  out.line(`\tInternal source termination for HDMI: ${yesno(f.bits(15, 0, 1))}`);
  out.line(`\tCEA 861-D HDMI support: ${yesno(f.bits(15, 1, 1))}`);
  out.line(`\tSelf refresh enable: ${yesno(f.bits(15, 2, 1))}`);
  out.line(`\tCustom VBT number: 0x${hex(f.u8(16))}`);
  out.line(`\tPC Features field validity: ${yesno(f2(15))}`);
  out.line(`\tDynamic Media Refresh Rate Switching (DMRRS): ${yesno(f2(12))}`);
  out.line(`\tIntermediate Pixel Storage (IPS): ${yesno(f2(10))}`);
  out.line(`\tPanel Self Refresh (PSR): ${yesno(f2(9))}`);
  out.line(`\tTurbo Boost Technology: ${yesno(f2(8))}`);
  out.line(`\tGraphics Power Management (GPMT): ${yesno(f2(7))}`);
  out.line(`\tGraphics Render Standby (RS): ${yesno(f2(6))}`);
  out.line(`\tDynamic Refresh Rate Switching (DRRS): ${yesno(f2(5))}`);
  out.line(`\tAutomatic Display Brightness (ADB): ${yesno(f2(4))}`);
  out.line(`\tDxgkDDI Backlight Control (DxgkDdiBLC): ${yesno(f2(3))}`);
  out.line(`\tDisplay Power Saving Technology (DPST): ${yesno(f2(2))}`);
  out.line(`\tSmart 2D Display Technology (S2DDT): ${yesno(f2(1))}`);
  out.line(`\tRapid Memory Power Management (RMPM): ${yesno(f2(0))}`);
}

export function dumpSdvoLvdsOptions(_ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const o = block.data;
  out.line(`\tbacklight: ${o.u8(0)}`);
  out.line(`\th40 type: ${o.u8(1)}`);
  out.line(`\ttype: ${o.u8(2)}`);
  out.line(`\tssc_clk_freq: ${o.u8(3)}`);
  out.line(`\tals_low_trip: ${o.u16(4)}`);
  out.line(`\tals_high_trip: ${o.u16(6)}`);
  for (let i = 0; i < 4; i++) out.line(`\tmisc[${i}]: ${hex(o.u8(18 + i))}`);
}

/** print_detail_timing_data: struct lvds_dvo_timing by its bitfields (hi parts shifted by 8). */
function printDetailTimingData(t: Mem, at: number, out: Out): void {
  const b = (i: number) => t.u8(at + i);
  let display = ((b(4) >> 4) << 8) | b(2);
  let syncStart = display + ((((b(11) >> 6) & 3) << 8) | b(8));
  let syncEnd = syncStart + ((((b(11) >> 4) & 3) << 8) | b(9));
  let total = display + (((b(4) & 0x0f) << 8) | b(3));
  out.line(`\thdisplay: ${display}`);
  out.line(`\thsync [${syncStart}, ${syncEnd}] ${(b(17) >> 6) & 1 ? '+sync' : '-sync'}`);
  out.line(`\thtotal: ${total}`);
  display = ((b(7) >> 4) << 8) | b(5);
  syncStart = display + ((((b(11) >> 2) & 3) << 8) | (b(10) >> 4));
  syncEnd = syncStart + (((b(11) & 3) << 8) | (b(10) & 0x0f));
  total = display + (((b(7) & 0x0f) << 8) | b(6));
  out.line(`\tvdisplay: ${display}`);
  out.line(`\tvsync [${syncStart}, ${syncEnd}] ${(b(17) >> 5) & 1 ? '+sync' : '-sync'}`);
  out.line(`\tvtotal: ${total}`);
  out.line(`\tclock: ${t.u16(at) * 10}`);
}

export function dumpSdvoPanelDtds(_ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const count = Math.floor(block.size / 18);
  for (let n = 0; n < count; n++) {
    out.line(`${n}:`);
    printDetailTimingData(block.data, 18 * n, out);
  }
}

export function dumpEdp(ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const e = block.data;
  const v = ctx.bdbVersion;
  const vswingPreemph = e.u64(204);
  for (let i = 0; i < 16; i++) {
    if (!ctx.shows(i)) continue;
    out.line(ctx.panelHeading(i));
    const ps = 10 * i;
    out.line(
      `\t\tPower Sequence: T3 ${e.u16(ps)} T7 ${e.u16(ps + 2)} T9 ${e.u16(ps + 4)} T10 ${e.u16(ps + 6)} T12 ${e.u16(ps + 8)}`,
    );
    const bpp = panelBits(e.u32(160), i, 2);
    out.line(`\t\tPanel color depth: ${['18 bpp', '24 bpp', '30 bpp'][bpp] ?? `(unknown value ${bpp})`}`);
    const msa = panelBits(e.u32(196), i, 2);
    out.line(`\t\teDP sDRRS MSA Delay: Lane ${msa + 1}`);
    const fl = 164 + 2 * i;
    const rate = e.bits(fl, 0, 4);
    out.line('\t\tFast link params:');
    out.line(`\t\t\trate: ${['1.62Gbps', '2.7Gbpc', '5.4Gbps'][rate] ?? `(unknonn value ${rate})`}`);
    out.print(`\t\t\tlanes: X${e.bits(fl, 4, 4) + 1}`);
    out.line(`\t\t\tpre-emphasis: ${dpPreemph(e.bits(fl + 1, 0, 4))} (0x${hex(e.bits(fl + 1, 0, 4))})`);
    out.line(`\t\t\tvswing: ${dpVswing(e.bits(fl + 1, 4, 4))} (0x${hex(e.bits(fl + 1, 4, 4))})`);
    if (v >= 162) out.line(`\t\tStereo 3D feature: ${yesno(panelBits(e.u16(200), i, 1))}`);
    if (v >= 165) out.line(`\t\tT3 optimization: ${yesno(panelBits(e.u16(202), i, 1))}`);
    if (v >= 173) {
      const val = Number((vswingPreemph >> BigInt(i * 4)) & 0xfn);
      out.line(
        `\t\tVswing/preemphasis table selection: ${val === 0 ? 'Low power (200 mV)' : val === 1 ? 'Default (400 mV)' : `(unknown value ${val})`}`,
      );
    }
    if (v >= 182) out.line(`\t\tFast link training: ${yesno(panelBits(e.u16(212), i, 1))}`);
    if (v >= 185) out.line(`\t\tDPCD 600h write required: ${yesno(panelBits(e.u16(214), i, 1))}`);
    if (v >= 186) {
      out.line('\t\tPWM delays:');
      out.line(`\t\t\tPWM on to backlight enable: ${e.u16(216 + 4 * i)}`);
      out.line(`\t\t\tBacklight disable to PWM off: ${e.u16(218 + 4 * i)}`);
    }
    if (v >= 199) {
      out.line(`\t\tFull link params provided: ${yesno(panelBits(e.u16(280), i, 1))}`);
      const full = 282 + i;
      out.line('\t\tFull link params:');
      out.line(`\t\t\tpre-emphasis: ${dpPreemph(e.bits(full, 0, 4))} (0x${hex(e.bits(full, 0, 4))})`);
      out.line(`\t\t\tvswing: ${dpVswing(e.bits(full, 4, 4))} (0x${hex(e.bits(full, 4, 4))})`);
    }
    if (v >= 224) {
      const r = e.u16(748 + 2 * i);
      out.line(`\t\teDP fast link training data rate: ${fmtG(floatDiv(r, 5000))} Gbps (0x${hex(r, 2)})`);
    }
    if (v >= 244) {
      const r = e.u16(780 + 2 * i);
      out.line(`\t\teDP max port link rate: ${fmtG(floatDiv(r, 5000))} Gbps (0x${hex(r, 2)})`);
    }
  }
}
