/**
 * intel_vbt_decode's text for block 52 (MIPI configuration), 53 (MIPI sequences) and 56 (DSC
 * compression parameters), as igt-gpu-tools 1.27.1 prints them. Layouts: intel_bios.h struct
 * mipi_config (122 bytes) and mipi_pps_data, intel_vbt_defs.h bdb_mipi_config,
 * bdb_mipi_sequence, dsc_compression_parameters_entry.
 *
 * As in the tool, block 52 prints the current panel's configuration for every panel index it
 * shows (it indexes config[] with the panel type), and a panel type of 6 or more shows nothing.
 */
import type { DecodedBlock, VbtContext } from './context.js';
import { HEX, hex, type Mem, type Out } from './mem.js';

const MAX_MIPI_CONFIGURATIONS = 6;
const MIPI_CONFIG = 122;

export function dumpMipiConfig(ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const m = block.data;
  const pt = ctx.panelType;
  for (let i = 0; i < MAX_MIPI_CONFIGURATIONS; i++) {
    if (!ctx.shows(i)) continue;
    const c = m.slice(pt * MIPI_CONFIG, MIPI_CONFIG);
    const pps = m.slice(MAX_MIPI_CONFIGURATIONS * MIPI_CONFIG + 10 * pt, 10);
    const pwm = m.slice(MAX_MIPI_CONFIGURATIONS * (MIPI_CONFIG + 10) + 4 * pt, 4);
    const gp = (lo: number, width: number) => c.bits32(2, lo, width);
    out.line(ctx.panelHeading(i));
    out.line('\t\tGeneral Param');
    out.line(`\t\t\t BTA disable: ${gp(16, 1) ? 'Disabled' : 'Enabled'}`);
    out.line(`\t\t\t Panel Rotation: ${gp(14, 2) * 90} degrees`);
    const fmt = gp(10, 4);
    const formats = ['Not supported', 'RGB565', 'RGB666', 'RGB666 Loosely Packed', 'RGB888'];
    // An unknown format prints no name and no newline, as the tool does.
    out.print(`\t\t\t Video Mode Color Format: ${fmt < formats.length ? `${formats[fmt]}\n` : ''}`);
    out.line(`\t\t\t PPS GPIO Pins: ${gp(9, 1) ? 'Using SOC' : 'Using PMIC'} `);
    out.line(`\t\t\t CABC Support: ${gp(8, 1) ? 'supported' : 'not supported'}`);
    out.line(`\t\t\t Mode: ${gp(5, 1) ? 'COMMAND' : 'VIDEO'}`);
    const vtm = gp(6, 2);
    const vtmName =
      vtm === 1
        ? 'non-burst with sync pulse'
        : vtm === 2
          ? 'non-burst with sync events'
          : vtm === 3
            ? 'burst'
            : '<unknown>';
    out.line(`\t\t\t Video transfer mode: ${vtmName} (0x${hex(vtm)})`);
    out.line(`\t\t\t Dithering: ${gp(0, 1) ? 'done in Display Controller' : 'done in Panel Controller'}`);
    const port = c.u16(6);
    out.line('\t\tPort Desc');
    out.line(`\t\t\t Pixel overlap: ${(port >> 4) & 7}`);
    out.line(`\t\t\t Lane Count: ${((port >> 2) & 3) + 1}`);
    const dual = port & 3;
    out.line(
      `\t\t\t Dual Link Support: ${dual === 0 ? 'not supported' : dual === 1 ? 'Front Back mode' : 'Pixel Alternative Mode'}`,
    );
    const dphy = c.u16(24);
    out.line('\t\tDphy Flags');
    out.line(`\t\t\t Clock Stop: ${(dphy >> 2) & 1 ? 'ENABLED' : 'DISABLED'}`);
    out.line(`\t\t\t EOT disabled: ${(dphy >> 1) & 1 ? 'EOT not to be sent' : 'EOT to be sent'}\n`);
    out.line(`\t\tHSTxTimeOut: 0x${hex(c.u32(26))}`);
    out.line(`\t\tLPRXTimeOut: 0x${hex(c.u32(30))}`);
    out.line(`\t\tTurnAroundTimeOut: 0x${hex(c.u32(34))}`);
    out.line(`\t\tDeviceResetTimer: 0x${hex(c.u32(38))}`);
    out.line(`\t\tMasterinitTimer: 0x${hex(c.u32(42))}`);
    out.line(`\t\tDBIBandwidthTimer: 0x${hex(c.u32(46))}`);
    out.line(`\t\tLpByteClkValue: 0x${hex(c.u32(50))}\n`);
    out.line('\t\tDphy Params');
    out.line(`\t\t\tExit to zero Count: 0x${hex(c.bits32(54, 24, 6))}`);
    out.line(`\t\t\tTrail Count: 0x${HEX(c.bits32(54, 16, 5))}`);
    out.line(`\t\t\tClk zero count: 0x${hex(c.bits32(54, 8, 8))}`);
    out.line(`\t\t\tPrepare count:0x${hex(c.bits32(54, 0, 6))}\n`);
    out.line(`\t\tClockLaneSwitchingCount: 0x${hex(c.u32(58))}`);
    out.line(`\t\tHighToLowSwitchingCount: 0x${hex(c.u32(62))}\n`);
    out.line('\t\tTimings based on Dphy spec');
    out.line(`\t\t\tTClkMiss: 0x${hex(c.u8(90))}`);
    out.line(`\t\t\tTClkPost: 0x${hex(c.u8(91))}`);
    out.line(`\t\t\tTClkPre: 0x${hex(c.u8(93))}`);
    out.line(`\t\t\tTClkPrepare: 0x${hex(c.u8(94))}`);
    out.line(`\t\t\tTClkSettle: 0x${hex(c.u8(95))}`);
    out.line(`\t\t\tTClkTermEnable: 0x${hex(c.u8(96))}\n`);
    out.line(`\t\tTClkTrail: 0x${hex(c.u8(97))}`);
    out.line(`\t\tTClkPrepareTClkZero: 0x${hex(c.u16(98))}`);
    out.line(`\t\tTHSExit: 0x${hex(c.u8(103))}`);
    out.line(`\t\tTHsPrepare: 0x${hex(c.u8(104))}`);
    out.line(`\t\tTHsPrepareTHsZero: 0x${hex(c.u16(105))}`);
    out.line(`\t\tTHSSettle: 0x${hex(c.u8(108))}`);
    out.line(`\t\tTHSSkip: 0x${hex(c.u8(109))}`);
    out.line(`\t\tTHsTrail: 0x${hex(c.u8(110))}`);
    out.line(`\t\tTInit: 0x${hex(c.u8(111))}`);
    out.line(`\t\tTLPX: 0x${hex(c.u8(112))}`);
    out.line('\t\tMIPI PPS');
    out.line(`\t\t\tPanel power ON delay: ${pps.u16(0)}`);
    out.line(`\t\t\tPanel power on to Backlight enable delay: ${pps.u16(2)}`);
    out.line(`\t\t\tBacklight disable to Panel power OFF delay: ${pps.u16(4)}`);
    out.line(`\t\t\tPanel power OFF delay: ${pps.u16(6)}`);
    out.line(`\t\t\tPanel power cycle delay: ${pps.u16(8)}`);
    if (ctx.bdbVersion >= 186) {
      out.line('\t\tMIPI PWM delays:');
      out.line(`\t\t\tPWM on to backlight enable: ${pwm.u16(0)}`);
      out.line(`\t\t\tBacklight disable to PWM off: ${pwm.u16(2)}`);
    }
    if (ctx.bdbVersion >= 190) out.line(`\t\tMIPI PMIC I2C Bus Number: ${m.u8(816 + i)}`);
  }
}

// enum mipi_seq / mipi_seq_element as IGT names them (the spec's names: 1 is "assert reset";
// the kernel's intel_bios.h swaps 1 and 5 to the pins' real meaning).
const MIPI_SEQ_MAX = 12;
const SEQ_NAMES: Readonly<Record<number, string>> = {
  1: 'MIPI_SEQ_ASSERT_RESET',
  2: 'MIPI_SEQ_INIT_OTP',
  3: 'MIPI_SEQ_DISPLAY_ON',
  4: 'MIPI_SEQ_DISPLAY_OFF',
  5: 'MIPI_SEQ_DEASSERT_RESET',
  6: 'MIPI_SEQ_BACKLIGHT_ON',
  7: 'MIPI_SEQ_BACKLIGHT_OFF',
  8: 'MIPI_SEQ_TEAR_ON',
  9: 'MIPI_SEQ_TEAR_OFF',
  10: 'MIPI_SEQ_POWER_ON',
  11: 'MIPI_SEQ_POWER_OFF',
};
const ELEM_END = 0;
const ELEM_SEND_PKT = 1;
const ELEM_DELAY = 2;
const ELEM_GPIO = 3;
const ELEM_I2C = 4;
const ELEM_PMIC = 6; // 5 is SPI; v3 sequences skip both by their size

/** Each element dumper returns the offset after what it read. */
function dumpElement(op: number, m: Mem, at: number, version: number, out: Out): number {
  switch (op) {
    case ELEM_SEND_PKT: {
      const flags = m.u8(at);
      const type = m.u8(at + 1);
      const len = m.u16(at + 2);
      let s = `\t\t\tSend DCS: Port ${(flags >> 3) & 1 ? 'C' : 'A'}, VC ${(flags >> 1) & 3}, ${flags & 1 ? 'HS' : 'LP'}, Type ${hex(type, 2)}, Length ${len}, Data`;
      for (let i = 0; i < len; i++) s += ` ${hex(m.u8(at + 4 + i), 2)}`;
      out.line(s);
      return at + 4 + len;
    }
    case ELEM_DELAY:
      out.line(`\t\t\tDelay: ${m.u32(at)} us`);
      return at + 4;
    case ELEM_GPIO: {
      if (version >= 3) {
        const index = m.u8(at);
        const number = m.u8(at + 1);
        const flags = m.u8(at + 2);
        if (version >= 4) {
          out.line(
            `\t\t\tGPIO index ${index}, number ${number}, native ${flags & 2 ? 0 : 1}, set ${flags & 1} (0x${hex(flags, 2)})`,
          );
        } else out.line(`\t\t\tGPIO index ${index}, number ${number}, set ${flags & 1} (0x${hex(flags, 2)})`);
        return at + 3;
      }
      const index = m.u8(at);
      const flags = m.u8(at + 1);
      out.line(
        `\t\t\tGPIO index ${index}, source ${(flags >> 1) & 3}, set ${flags & 1} (0x${hex(flags, 2)})`,
      );
      return at + 2;
    }
    default: {
      // ELEM_I2C
      const flags = m.u8(at);
      const index = m.u8(at + 1);
      const bus = m.u8(at + 2);
      const address = m.u16(at + 3);
      const offset = m.u8(at + 5);
      const len = m.u8(at + 6);
      let s = `\t\t\tSend I2C: Flags ${hex(flags, 2)}, Index ${hex(index, 2)}, Bus ${hex(bus, 2)}, Address ${hex(address, 4)}, Offset ${hex(offset, 2)}, Length ${len}, Data`;
      for (let i = 0; i < len; i++) s += ` ${hex(m.u8(at + 7 + i), 2)}`;
      out.line(s);
      return at + 7 + len;
    }
  }
}

/** dump_sequence; stops where the tool gives up ("Unsupported MIPI element"). */
function dumpSequence(m: Mem, at: number, version: number, out: Out): void {
  const id = m.u8(at);
  out.line(`\t\tSequence ${id} - ${SEQ_NAMES[id] ?? '(unknown)'}`);
  let p = at + 1;
  if (version >= 3) p += 4;
  // Each pass reads at least one byte, and past the end every byte reads 0 (the end element).
  for (;;) {
    const op = m.u8(p++);
    if (op === ELEM_END) break;
    let size = 0;
    if (version >= 3) size = m.u8(p++);
    if (op >= ELEM_SEND_PKT && op <= ELEM_I2C) {
      const next = p + size;
      p = dumpElement(op, m, p, version, out);
      if (size && next !== p) out.line(`Error: Inconsistent operation size: ${size}`);
    } else if (size) {
      p += size;
    } else {
      out.line(`Error: Unsupported MIPI element ${op}`);
      return;
    }
  }
}

function findPanelSequenceBlock(
  ctx: VbtContext,
  m: Mem,
  version: number,
  panelId: number,
  total: number,
): { at: number; size: number } | undefined {
  const data = 1 + (version >= 3 ? 4 : 0);
  const headerSize = version >= 3 ? 5 : 3;
  let index = 0;
  for (let i = 0; i < MAX_MIPI_CONFIGURATIONS && index < total; i++) {
    if (index + headerSize > total) {
      ctx.stderr.push('Invalid sequence block (header)');
      return undefined;
    }
    const id = m.u8(data + index);
    const size = version >= 3 ? m.u32(data + index + 1) : m.u16(data + index + 1);
    index += headerSize;
    if (index + size > total) {
      ctx.stderr.push('Invalid sequence block');
      return undefined;
    }
    if (id === panelId) return { at: data + index, size };
    index += size;
  }
  ctx.stderr.push('Sequence block detected but no valid configuration');
  return undefined;
}

function gotoNextSequence(ctx: VbtContext, m: Mem, base: number, index: number, total: number): number {
  for (index = index + 1; index < total; ) {
    const op = m.u8(base + index);
    index++;
    let len: number;
    switch (op) {
      case ELEM_END:
        return index;
      case ELEM_SEND_PKT:
        if (index + 4 > total) return 0;
        len = (m.u16(base + index + 2) + 4) & 0xffff;
        break;
      case ELEM_DELAY:
        len = 4;
        break;
      case ELEM_GPIO:
        len = 2;
        break;
      case ELEM_I2C:
        if (index + 7 > total) return 0;
        len = m.u8(base + index + 6) + 7;
        break;
      default:
        ctx.stderr.push('Unknown operation byte');
        return 0;
    }
    index += len;
  }
  return 0;
}

function gotoNextSequenceV3(ctx: VbtContext, m: Mem, base: number, index: number, total: number): number {
  if (total < 5) {
    ctx.stderr.push('Too small sequence size');
    return 0;
  }
  index++;
  const sizeOfSequence = m.u32(base + index);
  index += 4;
  const seqEnd = index + sizeOfSequence;
  if (seqEnd > total) {
    ctx.stderr.push('Invalid sequence size');
    return 0;
  }
  while (index < total) {
    const op = m.u8(base + index);
    index++;
    if (op === ELEM_END) {
      if (index !== seqEnd) {
        ctx.stderr.push('Invalid element structure');
        return 0;
      }
      return index;
    }
    const len = m.u8(base + index);
    index++;
    if (op < ELEM_SEND_PKT || op > ELEM_PMIC) ctx.stderr.push(`Unknown operation byte ${op}`);
    index += len;
  }
  return 0;
}

export function dumpMipiSequence(ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const m = block.data;
  const version = m.u8(0);
  out.line(`\tSequence block version v${version}`);
  if (version >= 4) {
    ctx.stderr.push(`Unable to parse MIPI Sequence Block v${version}`);
    return;
  }
  for (let i = 0; i < MAX_MIPI_CONFIGURATIONS; i++) {
    if (!ctx.shows(i)) continue;
    const found = findPanelSequenceBlock(ctx, m, version, i, block.size);
    if (!found) return;
    out.line(ctx.panelHeading(i));
    const ptrs: (number | undefined)[] = new Array(MIPI_SEQ_MAX);
    let index = 0;
    for (;;) {
      const seq = m.u8(found.at + index);
      if (seq === 0) break;
      if (seq >= MIPI_SEQ_MAX) {
        ctx.stderr.push(`Unknown sequence ${seq}`);
        return;
      }
      ptrs[seq] = found.at + index;
      index =
        version >= 3
          ? gotoNextSequenceV3(ctx, m, found.at, index, found.size)
          : gotoNextSequence(ctx, m, found.at, index, found.size);
      if (!index) {
        ctx.stderr.push(`Invalid sequence ${seq}`);
        return;
      }
    }
    // The tool dumps every sequence found, whatever an earlier one returned.
    for (const at of ptrs) if (at !== undefined) dumpSequence(m, at, version, out);
  }
}

const dscBufferBlockSize = (v: number) => [1024, 4096, 16384, 65536][v] ?? 0;
const dscMaxBpp = (v: number) => ['6', '8', '10', '12'][v] ?? '<unknown>';

export function dumpCompressionParameters(ctx: VbtContext, block: DecodedBlock, out: Out): void {
  const d = block.data;
  for (let i = 0; i < 16; i++) {
    if (!ctx.shows(i)) continue;
    const e = 2 + 13 * i;
    out.line(`\tDSC block ${i}${i === ctx.panelType ? ' *' : ''}`);
    out.line(`\t\tDSC version: ${d.bits(e, 0, 4)}.${d.bits(e, 4, 4)}`);
    const blockSize = d.bits(e + 1, 0, 2);
    const rcSize = d.u8(e + 2);
    out.line(`\t\tActual buffer size: ${dscBufferBlockSize(blockSize) * (rcSize + 1)}`);
    out.line(`\t\t\tRC buffer block size: ${dscBufferBlockSize(blockSize)} (${blockSize})`);
    out.line(`\t\t\tRC buffer size: ${rcSize}`);
    out.line(`\t\tSlices per line: 0x${hex(d.u32(e + 3), 2)}`);
    const depth = d.bits(e + 7, 0, 4);
    out.line(`\t\tLine buffer depth: ${depth + 8} bits (${depth})`);
    out.line(`\t\tBlock prediction enable: ${d.bits(e + 8, 0, 1)}`);
    const maxBpp = d.u8(e + 9);
    out.line(`\t\tMax bpp: ${dscMaxBpp(maxBpp)} bpp (${maxBpp})`);
    out.line(`\t\tSupport 8 bpc: ${d.bits(e + 10, 1, 1)}`);
    out.line(`\t\tSupport 10 bpc: ${d.bits(e + 10, 2, 1)}`);
    out.line(`\t\tSupport 12 bpc: ${d.bits(e + 10, 3, 1)}`);
    out.line(`\t\tSlice height: ${d.u16(e + 11)}`);
  }
}
