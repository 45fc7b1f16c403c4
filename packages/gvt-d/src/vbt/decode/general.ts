/**
 * intel_vbt_decode's text for block 1 (general features), block 2 (general definitions and the
 * child devices) and block 11 (legacy child devices), line for line as igt-gpu-tools 1.27.1
 * prints them. Layouts: intel_vbt_defs.h struct bdb_general_features, bdb_general_definitions,
 * child_device_config (39 bytes; a shorter entry reads as zeros past its end).
 */
import { type DecodedBlock, SIZEOF, type VbtContext } from './context.js';
import { floatDiv, fmtG, hex, Mem, type Out, yesno } from './mem.js';

const PANEL_FITTING = ['disabled', 'text only', 'graphics only', 'text & graphics'];

export function dumpGeneralFeatures(ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const f = block.data;
  const b = (byte: number, bit: number, width = 1) => f.bits(byte, bit, width);
  out.line(`\tPanel fitting: ${PANEL_FITTING[b(0, 0, 2)]} (0x${hex(b(0, 0, 2))})`);
  out.line(`\tFlexaim: ${yesno(b(0, 2))}`);
  out.line(`\tMessage: ${yesno(b(0, 3))}`);
  out.line(`\tClear screen: ${b(0, 4, 3)}`);
  out.line(`\tDVO color flip required: ${yesno(b(0, 7))}`);
  out.line(`\tExternal VBT: ${yesno(b(1, 0))}`);
  out.line(`\tLVDS SSC Enable: ${yesno(b(1, 1))}`);
  out.line(`\tLVDS SSC frequency: ${ctx.sscFreq(b(1, 2))} MHz (0x${hex(b(1, 2))})`);
  out.line(`\tLFP on override: ${yesno(b(1, 3))}`);
  out.line(`\tDisable SSC on clone: ${yesno(b(1, 4))}`);
  out.line(`\tUnderscan support for VGA timings: ${yesno(b(1, 5))}`);
  if (ctx.bdbVersion >= 183) out.line(`\tDynamic CD clock: ${yesno(b(1, 6))}`);
  out.line(`\tHotplug support in VBIOS: ${yesno(b(1, 7))}`);
  out.line(`\tDisable smooth vision: ${yesno(b(2, 0))}`);
  out.line(`\tSingle DVI for CRT/DVI: ${yesno(b(2, 1))}`);
  if (ctx.bdbVersion >= 181) out.line(`\tEnable 180 degree rotation: ${yesno(b(2, 2))}`);
  out.line(`\tInverted FDI Rx polarity: ${yesno(b(2, 3))}`);
  if (ctx.bdbVersion >= 160) {
    out.line(`\tExtended VBIOS mode: ${yesno(b(2, 4))}`);
    out.line(`\tCopy iLFP DTD to SDVO LVDS DTD: ${yesno(b(2, 5))}`);
    out.line(`\tBest fit panel timing algorithm: ${yesno(b(2, 6))}`);
    out.line(`\tIgnore strap state: ${yesno(b(2, 7))}`);
  }
  out.line(`\tLegacy monitor detect: ${yesno(f.u8(3))}`);
  out.line(`\tIntegrated CRT: ${yesno(b(4, 0))}`);
  out.line(`\tIntegrated TV: ${yesno(b(4, 1))}`);
  out.line(`\tIntegrated EFP: ${yesno(b(4, 2))}`);
  out.line(`\tDP SSC enable: ${yesno(b(4, 3))}`);
  out.line(`\tDP SSC frequency: ${ctx.sscFreq(b(4, 4))} MHz (0x${hex(b(4, 4))})`);
  out.line(`\tDP SSC dongle supported: ${yesno(b(4, 5))}`);
}

// child_device_types[] of intel_vbt_decode.c, in its order (the first match names a type).
const CHILD_DEVICE_TYPES: ReadonlyArray<readonly [number, string]> = [
  [0x00, 'none'],
  [0x01, 'CRT'],
  [0x09, 'TV'],
  [0x12, 'EFP'],
  [0x22, 'LFP'],
  [0x6001, 'CRT'],
  [0x4001, 'CRT'],
  [0x0209, 'TV composite'],
  [0x0289, 'TV'],
  [0x020c, 'TV'],
  [0x0609, 'TV S-Video'],
  [0x0209, 'TV SCART'],
  [0x6009, 'TV'],
  [0x6012, 'EFP'],
  [0x6052, 'DVI'],
  [0x6053, 'DVI-I'],
  [0x6152, 'DL-DVI-D'],
  [0x60d2, 'DVI-D'],
  [0x6062, 'OpenLDI'],
  [0x6162, 'OpenLDI'],
  [0x5012, 'PanelLink'],
  [0x5042, 'CMOS LFP'],
  [0x5062, 'LVDS'],
  [0x5162, 'LVDS'],
  [0x51e2, 'LVDS'],
  [0x1022, 'LFP'],
  [0x1009, 'TV'],
  [0x68c6, 'DisplayPort'],
  [0x60d6, 'DisplayPort/HDMI/DVI'],
  [0x68d6, 'DisplayPort/DVI'],
  [0x60d2, 'HDMI/DVI'],
  [0x68d2, 'DVI'],
  [0x78c6, 'eDP'],
  [0x7cc2, 'MIPI'],
];

export function childDeviceTypeName(type: number): string {
  return CHILD_DEVICE_TYPES.find(([t]) => t === type)?.[1] ?? 'unknown';
}

const DEVICE_TYPE_NOT_HDMI_OUTPUT = 1 << 11;
const CHILD_DEVICE_TYPE_BITS: ReadonlyArray<readonly [number, string]> = [
  [1 << 15, 'Class extension'],
  [1 << 14, 'Power management'],
  [1 << 13, 'Hotplug signaling'],
  [1 << 12, 'Internal connector'],
  [1 << 11, 'HDMI output'], // decoded as the inverse of NOT_HDMI_OUTPUT
  [1 << 10, 'MIPI output'],
  [1 << 9, 'Composite output'],
  [1 << 8, 'Dual channel'],
  [1 << 7, 'Content protection'],
  [1 << 6, 'High speed link'],
  [1 << 5, 'LVDS signaling'],
  [1 << 4, 'TMDS/DVI signaling'],
  [1 << 3, 'Video signaling'],
  [1 << 2, 'DisplayPort output'],
  [1 << 1, 'Digital output'],
  [1 << 0, 'Analog output'],
];

const CHILD_DEVICE_HANDLES: ReadonlyArray<readonly [number, string]> = [
  [0x01, 'CRT'],
  [0x04, 'EFP 1 (HDMI/DVI/DP)'],
  [0x40, 'EFP 2 (HDMI/DVI/DP)'],
  [0x20, 'EFP 3 (HDMI/DVI/DP)'],
  [0x10, 'EFP 4 (HDMI/DVI/DP)'],
  [0x08, 'LFP 1 (eDP)'],
  [0x80, 'LFP 2 (eDP)'],
];

// The tool compares an unsigned char with the u16 handle, so only the low byte counts.
const childDeviceHandle = (handle: number) =>
  CHILD_DEVICE_HANDLES.find(([h]) => h === (handle & 0xff))?.[1] ?? 'unknown';

const DVO_PORT_NAMES: Readonly<Record<number, string>> = {
  0: 'HDMI-A',
  1: 'HDMI-B',
  2: 'HDMI-C',
  3: 'HDMI-D',
  12: 'HDMI-E',
  14: 'HDMI-F',
  16: 'HDMI-G',
  18: 'HDMI-H',
  20: 'HDMI-I',
  4: 'LVDS',
  5: 'TV',
  6: 'CRT',
  7: 'DP-B',
  8: 'DP-C',
  9: 'DP-D',
  10: 'DP-A',
  11: 'DP-E',
  13: 'DP-F',
  15: 'DP-G',
  17: 'DP-H',
  19: 'DP-I',
  21: 'MIPI-A',
  22: 'MIPI-B',
  23: 'MIPI-C',
  24: 'MIPI-D',
};
export const dvoPortName = (port: number) => DVO_PORT_NAMES[port] ?? 'unknown';

const AUX_CH_NAMES = [
  'none',
  'AUX-B',
  'AUX-C',
  'AUX-D',
  'AUX-A',
  'AUX-E',
  'AUX-F',
  'AUX-G',
  'AUX-H',
  'AUX-I',
];
const auxCh = (aux: number) => AUX_CH_NAMES[aux >> 4] ?? 'unknown';

const mipiBridgeType = (t: number) =>
  t === 1 ? 'ASUS' : t === 2 ? 'Toshiba' : t === 3 ? 'Renesas' : 'unknown';

const HDMI_MAX_DATA_RATE = [0, 297, 165, 594, 340, 300];
const DP_VSWING = ['0.4V', '0.6V', '0.8V', '1.2V'];
const DP_PREEMPH = ['0dB', '3.5dB', '6dB', '9.5dB'];
const HDMI_FRL_RATE = ['FRL not supported', '3 GT/s', '6 GT/s', '8 GT/s', '10 GT/s', '12 GT/s'];
const I2C_SPEED = ['100 kHz', '50 kHz', '400 kHz', '1 MHz'];
export const dpVswing = (v: number) => DP_VSWING[v] ?? '<unknown>';
export const dpPreemph = (v: number) => DP_PREEMPH[v] ?? '<unknown>';

const DP_MAX_LINK_RATE_216 = [810, 540, 270, 162];
const DP_MAX_LINK_RATE_230 = [0, 162, 270, 540, 810, 1000, 1350, 2000];

function dumpChildDevice(ctx: VbtContext, c: Mem, out: Out): void {
  const type = c.u16(2);
  if (!type) return;
  const v = ctx.bdbVersion;
  out.line('\tChild device info:');
  out.line(`\t\tDevice handle: 0x${hex(c.u16(0), 4)} (${childDeviceHandle(c.u16(0))})`);
  out.line(`\t\tDevice type: 0x${hex(type, 4)} (${childDeviceTypeName(type)})`);
  const bits = type ^ DEVICE_TYPE_NOT_HDMI_OUTPUT;
  for (const [mask, name] of CHILD_DEVICE_TYPE_BITS) if (mask & bits) out.line(`\t\t\t${name}`);

  if (v < 152) {
    out.line(`\t\tSignature: ${c.cstr(4, 10)}`);
  } else {
    const i2cSpeed = c.u8(4);
    out.line(`\t\tI2C speed: ${I2C_SPEED[i2cSpeed] ?? '<unknown>'} (0x${hex(i2cSpeed, 2)})`);
    if (v >= 158) {
      for (const [label, at] of [
        ['onboard', 5],
        ['ondock', 6],
      ] as const) {
        out.line(`\t\tDP ${label} redriver:`);
        out.line(`\t\t\tpresent: ${yesno(c.bits(at, 6, 1))}`);
        out.line(`\t\t\tvswing: ${dpVswing(c.bits(at, 3, 3))} (0x${hex(c.bits(at, 3, 3))})`);
        out.line(`\t\t\tpre-emphasis: ${dpPreemph(c.bits(at, 0, 3))} (0x${hex(c.bits(at, 0, 3))})`);
      }
    }
    if (v >= 204) {
      const rate = c.bits(7, 5, 3);
      if (rate >= HDMI_MAX_DATA_RATE.length)
        out.line(`\t\tHDMI max data rate: <unknown> (0x${hex(rate, 2)})`);
      else if (rate === 0) out.line(`\t\tHDMI max data rate: <platform max> (0x${hex(rate, 2)})`);
      else out.line(`\t\tHDMI max data rate: ${HDMI_MAX_DATA_RATE[rate]} MHz (0x${hex(rate, 2)})`);
    }
    if (v >= 169) out.line(`\t\tHDMI level shifter value: 0x${hex(c.bits(7, 0, 5), 2)}`);
    if (v >= 161) out.line(`\t\tOffset to DTD buffer for edidless CHILD: 0x${hex(c.u16(8), 2)}`);
    if (v >= 251) out.line(`\t\tDisable compression for external DP/HDMI: ${yesno(c.bits(10, 5, 1))}`);
    if (v >= 235) out.line(`\t\tLTTPR Mode: ${c.bits(10, 4, 1) ? 'non-' : ''}transparent`);
    if (v >= 202) out.line(`\t\tDual pipe ganged eDP: ${yesno(c.bits(10, 3, 1))}`);
    if (v >= 198) {
      out.line(`\t\tCompression method CPS: ${yesno(c.bits(10, 2, 1))}`);
      out.line(`\t\tCompression enable: ${yesno(c.bits(10, 1, 1))}`);
    }
    if (v >= 161) out.line(`\t\tEdidless EFP: ${yesno(c.bits(10, 0, 1))}`);
    if (v >= 198) out.line(`\t\tCompression structure index: ${c.bits(11, 0, 4)}`);
    if (v >= 237) {
      out.line(`\t\tHDMI Max FRL rate valid: ${yesno(c.bits(12, 4, 1))}`);
      const frl = c.bits(12, 0, 4);
      out.line(`\t\tHDMI Max FRL rate: ${HDMI_FRL_RATE[frl] ?? '<unknown>'} (0x${hex(frl)})`);
    }
  }

  out.line(`\t\tAIM offset: ${c.u16(14)}`);
  out.line(`\t\tDVO Port: ${dvoPortName(c.u8(16))} (0x${hex(c.u8(16), 2)})`);
  out.line(`\t\tAIM I2C pin: 0x${hex(c.u8(17), 2)}`);
  out.line(`\t\tAIM Slave address: 0x${hex(c.u8(18), 2)}`);
  out.line(`\t\tDDC pin: 0x${hex(c.u8(19), 2)}`);
  out.line(`\t\tEDID buffer ptr: 0x${hex(c.u16(20), 2)}`);
  out.line(`\t\tDVO config: 0x${hex(c.u8(22), 2)}`);

  if (v < 155) {
    out.line(`\t\tDVO2 Port: 0x${hex(c.u8(23), 2)} (${dvoPortName(c.u8(23))})`);
    out.line(`\t\tI2C2 pin: 0x${hex(c.u8(24), 2)}`);
    out.line(`\t\tSlave2 address: 0x${hex(c.u8(25), 2)}`);
    out.line(`\t\tDDC2 pin: 0x${hex(c.u8(26), 2)}`);
  } else {
    if (v >= 244) out.line(`\t\teDP/DP max lane count: X${c.bits(23, 6, 2) + 1}`);
    if (v >= 218) out.line(`\t\tUse VBT vswing/premph table: ${yesno(c.bits(23, 5, 1))}`);
    if (v >= 196) {
      out.line(`\t\tHPD sense invert: ${yesno(c.bits(23, 4, 1))}`);
      out.line(`\t\tIboost enable: ${yesno(c.bits(23, 3, 1))}`);
    }
    if (v >= 192) out.line(`\t\tOnboard LSPCON: ${yesno(c.bits(23, 2, 1))}`);
    if (v >= 184) out.line(`\t\tLane reversal: ${yesno(c.bits(23, 1, 1))}`);
    if (v >= 158) out.line(`\t\tEFP routed through dock: ${yesno(c.bits(23, 0, 1))}`);
    if (v >= 158) {
      out.line(`\t\tTMDS compatible? ${yesno(c.bits(24, 2, 1))}`);
      out.line(`\t\tDP compatible? ${yesno(c.bits(24, 1, 1))}`);
      out.line(`\t\tHDMI compatible? ${yesno(c.bits(24, 0, 1))}`);
    }
    out.line(`\t\tAux channel: ${auxCh(c.u8(25))} (0x${hex(c.u8(25), 2)})`);
    out.line(`\t\tDongle detect: 0x${hex(c.u8(26), 2)}`);
  }

  out.line(`\t\tIntegrated encoder instead of SDVO: ${yesno(c.bits(27, 5, 1))}`);
  out.line(`\t\tHotplug connect status: 0x${hex(c.bits(27, 3, 2), 2)}`);
  out.line(`\t\tSDVO stall signal available: ${yesno(c.bits(27, 2, 1))}`);
  out.line(`\t\tPipe capabilities: 0x${hex(c.bits(27, 0, 2), 2)}`);
  out.line(`\t\tDVO wiring: 0x${hex(c.u8(28), 2)}`);
  if (v < 171) out.line(`\t\tDVO2 wiring: 0x${hex(c.u8(29), 2)}`);
  else out.line(`\t\tMIPI bridge type: ${hex(c.u8(29), 2)} (${mipiBridgeType(c.u8(29))})`);
  out.line(`\t\tDevice class extension: 0x${hex(c.u16(30), 2)}`);
  out.line(`\t\tDVO function: 0x${hex(c.u8(32), 2)}`);
  if (v >= 209) {
    out.line(`\t\tDP port trace length: 0x${hex(c.bits(33, 4, 4))}`);
    out.line(`\t\tThunderbolt port: ${yesno(c.bits(33, 1, 1))}`);
  }
  if (v >= 195) out.line(`\t\tDP USB type C support: ${yesno(c.bits(33, 0, 1))}`);
  if (v >= 195) {
    out.line(`\t\t2X DP GPIO index: 0x${hex(c.u8(34), 2)}`);
    out.line(`\t\t2X DP GPIO pin number: 0x${hex(c.u16(35), 2)}`);
  }
  if (v >= 196) {
    out.line(`\t\tIBoost level for DP/eDP: 0x${hex(c.bits(37, 0, 4), 2)}`);
    out.line(`\t\tIBoost level for HDMI: 0x${hex(c.bits(37, 4, 4), 2)}`);
  }
  if (v >= 216) {
    const raw = c.bits(38, 0, 3);
    const rate = v >= 230 ? DP_MAX_LINK_RATE_230[raw] : DP_MAX_LINK_RATE_216[raw & 3];
    if (rate === 0) out.line(`\t\tDP max link rate: <platform max> (0x${hex(raw, 2)})`);
    else out.line(`\t\tDP max link rate: ${fmtG(floatDiv(rate, 100))} Gbps (0x${hex(raw, 2)})`);
  }
}

/** dump_child_devices: each entry copied into a zeroed child_device_config (39 bytes). */
function dumpChildDevices(ctx: VbtContext, list: Mem, count: number, entrySize: number, out: Out): void {
  for (let i = 0; i < count; i++) {
    const entry = list.slice(i * entrySize, Math.min(entrySize, SIZEOF.childDevice));
    dumpChildDevice(ctx, new Mem(padTo(entry.bytes, SIZEOF.childDevice)), out);
  }
}

function padTo(b: Uint8Array, size: number): Uint8Array {
  if (b.length >= size) return b;
  const out = new Uint8Array(size);
  out.set(b);
  return out;
}

/** (block size - header) / child_dev_size, as size_t arithmetic would give it for sane blocks. */
function childCount(blockSize: number, header: number, entrySize: number): number {
  if (entrySize === 0 || blockSize < header) return 0; // the tool would divide by zero or wrap
  return Math.floor((blockSize - header) / entrySize);
}

export function dumpGeneralDefinitions(ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const d = block.data;
  const entrySize = d.u8(4);
  const count = childCount(block.size, SIZEOF.generalDefinitions, entrySize);
  out.line(`\tCRT DDC GMBUS addr: 0x${hex(d.u8(0), 2)}`);
  out.line(`\tUse DPMS on AIM devices: ${yesno(d.bits(1, 2, 1))}`);
  out.line(`\tSkip CRT detect at boot: ${yesno(d.bits(1, 1, 1))}`);
  out.line(`\tUse Non ACPI DPMS CRT power states: ${yesno(d.bits(1, 0, 1))}`);
  out.line(`\tBoot display type: 0x${hex(d.u8(3), 2)}${hex(d.u8(2), 2)}`);
  out.line(`\tChild device size: ${entrySize}`);
  out.line(`\tChild device count: ${count}`);
  dumpChildDevices(ctx, d.slice(5, count * entrySize), count, entrySize, out);
}

export function dumpLegacyChildDevices(ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const d = block.data;
  const entrySize = d.u8(0);
  const count = childCount(block.size, SIZEOF.legacyChildDevices, entrySize);
  out.line(`\tChild device size: ${entrySize}`);
  out.line(`\tChild device count: ${count}`);
  dumpChildDevices(ctx, d.slice(1, count * entrySize), count, entrySize, out);
}
