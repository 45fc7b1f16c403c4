/** The configuration header as lspci.c prints it: show_terse, show_verbose, show_bases, show_rom. */
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_32,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_MEM_TYPE_MASK,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_BIST,
  PCI_CACHE_LINE_SIZE,
  PCI_CLASS_DEVICE,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_FAST_BACK,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_INVALIDATE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_PARITY,
  PCI_COMMAND_SERR,
  PCI_COMMAND_SPECIAL,
  PCI_COMMAND_VGA_PALETTE,
  PCI_COMMAND_WAIT,
  PCI_DEVICE_ID,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_CARDBUS,
  PCI_HEADER_TYPE_MASK,
  PCI_HEADER_TYPE_NORMAL,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_LATENCY_TIMER,
  PCI_MAX_LAT,
  PCI_MIN_GNT,
  PCI_REVISION_ID,
  PCI_ROM_ADDRESS,
  PCI_ROM_ADDRESS_ENABLE,
  PCI_ROM_ADDRESS_MASK,
  PCI_STATUS,
  PCI_STATUS_66MHZ,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_DETECTED_PARITY,
  PCI_STATUS_DEVSEL_MASK,
  PCI_STATUS_FAST_BACK,
  PCI_STATUS_INTERRUPT,
  PCI_STATUS_PARITY,
  PCI_STATUS_REC_MASTER_ABORT,
  PCI_STATUS_REC_TARGET_ABORT,
  PCI_STATUS_SIG_SYSTEM_ERROR,
  PCI_STATUS_SIG_TARGET_ABORT,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from '@vfiokit/core';
import { formatSlot } from '../../config/index.js';
import { FLAG, hex, type Printer } from './context.js';
import { classLabel, deviceName, progIfName } from './names.js';
import {
  PCI_BASE_ADDRESS_MEM_TYPE_1M,
  PCI_BIST_CAPABLE,
  PCI_BIST_CODE_MASK,
  PCI_BIST_START,
  PCI_STATUS_DEVSEL_FAST,
  PCI_STATUS_DEVSEL_MEDIUM,
  PCI_STATUS_DEVSEL_SLOW,
  PCI_STATUS_UDF,
} from './regs.js';

function devselName(status: number): string {
  switch (status & PCI_STATUS_DEVSEL_MASK) {
    case PCI_STATUS_DEVSEL_SLOW:
      return 'slow';
    case PCI_STATUS_DEVSEL_MEDIUM:
      return 'medium';
    case PCI_STATUS_DEVSEL_FAST:
      return 'fast';
    default:
      return '??';
  }
}

/** lspci's show_size: ` [size=8]`, ` [size=16K]`. */
export function formatBarSize(size: number): string {
  if (!size) return '';
  const suffix = ['', 'K', 'M', 'G', 'T'];
  let i = 0;
  while (i < suffix.length - 1 && size >= 1024) {
    size = Math.floor(size / 1024);
    i++;
  }
  return ` [size=${size}${suffix[i]}]`;
}

export function terse(o: Printer): void {
  const { cfg, opts } = o;
  const cls = cfg.u16(PCI_CLASS_DEVICE);
  let line = `${formatSlot(o.dev.address)} ${classLabel(cls, opts.numeric)}: ${deviceName(cfg.u16(PCI_VENDOR_ID), cfg.u16(PCI_DEVICE_ID), opts.numeric)}`;
  const rev = cfg.u8(PCI_REVISION_ID);
  if (rev) line += ` (rev ${hex(rev, 2)})`;
  if (opts.verbose) {
    const progIf = cfg.u8(PCI_CLASS_PROG);
    const name = opts.numeric === 1 ? undefined : progIfName(cls, progIf);
    if (progIf || name) line += ` (prog-if ${hex(progIf, 2)}${name ? ` [${name}]` : ''})`;
  }
  o.out(line);
  if (opts.verbose && (cfg.u8(PCI_HEADER_TYPE) & PCI_HEADER_TYPE_MASK) === PCI_HEADER_TYPE_NORMAL) {
    const sv = cfg.u16(PCI_SUBSYSTEM_VENDOR_ID);
    const sd = cfg.u16(PCI_SUBSYSTEM_ID);
    if (sv && sv !== 0xffff) o.out(`\tSubsystem: ${deviceName(sv, sd, opts.numeric)}`);
  }
}

/** The header lines of -v and more; false when the header type is unknown (nothing more to print). */
export function showHeader(o: Printer): boolean {
  const { cfg, opts } = o;
  const status = cfg.u16(PCI_STATUS);
  const cmd = cfg.u16(PCI_COMMAND);
  const htype = cfg.u8(PCI_HEADER_TYPE) & PCI_HEADER_TYPE_MASK;
  const latency = cfg.u8(PCI_LATENCY_TIMER);
  const cacheLine = cfg.u8(PCI_CACHE_LINE_SIZE);
  const pin = cfg.u8(PCI_INTERRUPT_PIN);
  const line = cfg.u8(PCI_INTERRUPT_LINE);
  const irq = pin ? line : 0;
  terse(o);
  let minGnt = 0;
  let maxLat = 0;
  if (htype === PCI_HEADER_TYPE_NORMAL) {
    maxLat = cfg.u8(PCI_MAX_LAT);
    minGnt = cfg.u8(PCI_MIN_GNT);
  } else if (htype !== PCI_HEADER_TYPE_BRIDGE && htype !== PCI_HEADER_TYPE_CARDBUS) {
    o.out(`\t!!! Unknown header type ${hex(htype, 2)}`);
    return false;
  }
  if (opts.verbose > 1) {
    o.out(
      `\tControl: I/O${FLAG(cmd, PCI_COMMAND_IO)} Mem${FLAG(cmd, PCI_COMMAND_MEMORY)} BusMaster${FLAG(cmd, PCI_COMMAND_MASTER)} SpecCycle${FLAG(cmd, PCI_COMMAND_SPECIAL)} MemWINV${FLAG(cmd, PCI_COMMAND_INVALIDATE)} VGASnoop${FLAG(cmd, PCI_COMMAND_VGA_PALETTE)} ParErr${FLAG(cmd, PCI_COMMAND_PARITY)} Stepping${FLAG(cmd, PCI_COMMAND_WAIT)} SERR${FLAG(cmd, PCI_COMMAND_SERR)} FastB2B${FLAG(cmd, PCI_COMMAND_FAST_BACK)} DisINTx${FLAG(cmd, PCI_COMMAND_INTX_DISABLE)}`,
    );
    o.out(
      `\tStatus: Cap${FLAG(status, PCI_STATUS_CAP_LIST)} 66MHz${FLAG(status, PCI_STATUS_66MHZ)} UDF${FLAG(status, PCI_STATUS_UDF)} FastB2B${FLAG(status, PCI_STATUS_FAST_BACK)} ParErr${FLAG(status, PCI_STATUS_PARITY)} DEVSEL=${devselName(status)} >TAbort${FLAG(status, PCI_STATUS_SIG_TARGET_ABORT)} <TAbort${FLAG(status, PCI_STATUS_REC_TARGET_ABORT)} <MAbort${FLAG(status, PCI_STATUS_REC_MASTER_ABORT)} >SERR${FLAG(status, PCI_STATUS_SIG_SYSTEM_ERROR)} <PERR${FLAG(status, PCI_STATUS_DETECTED_PARITY)} INTx${FLAG(status, PCI_STATUS_INTERRUPT)}`,
    );
    if (cmd & PCI_COMMAND_MASTER) {
      let s = `\tLatency: ${latency}`;
      if (minGnt || maxLat) {
        const parts: string[] = [];
        if (minGnt) parts.push(`${minGnt * 250}ns min`);
        if (maxLat) parts.push(`${maxLat * 250}ns max`);
        s += ` (${parts.join(', ')})`;
      }
      if (cacheLine) s += `, Cache Line Size: ${cacheLine * 4} bytes`;
      o.out(s);
    }
    if (pin || irq)
      o.out(`\tInterrupt: pin ${pin ? String.fromCharCode(0x40 + pin) : '?'} routed to IRQ ${irq}`);
  } else {
    let s = '\tFlags: ';
    if (cmd & PCI_COMMAND_MASTER) s += 'bus master, ';
    if (cmd & PCI_COMMAND_VGA_PALETTE) s += 'VGA palette snoop, ';
    if (cmd & PCI_COMMAND_WAIT) s += 'stepping, ';
    if (cmd & PCI_COMMAND_FAST_BACK) s += 'fast Back2Back, ';
    if (status & PCI_STATUS_66MHZ) s += '66MHz, ';
    if (status & PCI_STATUS_UDF) s += 'user-definable features, ';
    s += `${devselName(status)} devsel`;
    if (cmd & PCI_COMMAND_MASTER) s += `, latency ${latency}`;
    if (irq) s += `, IRQ ${irq}`;
    o.out(s);
  }
  const bist = cfg.u8(PCI_BIST);
  if (bist & PCI_BIST_CAPABLE) {
    o.out(
      bist & PCI_BIST_START ? '\tBIST is running' : `\tBIST result: ${hex(bist & PCI_BIST_CODE_MASK, 2)}`,
    );
  }
  if (htype === PCI_HEADER_TYPE_NORMAL) {
    bases(o, 6);
    rom(o);
  } else {
    bases(o, htype === PCI_HEADER_TYPE_BRIDGE ? 2 : 1);
  }
  return true;
}

function bases(o: Printer, count: number): void {
  const { cfg } = o;
  const cmd = cfg.u16(PCI_COMMAND);
  for (let i = 0; i < count; i++) {
    let flg = cfg.u32(PCI_BASE_ADDRESS_0 + 4 * i);
    if (flg === 0xffffffff) flg = 0;
    const len = o.dev.bars.find((b) => b.index === i)?.size ?? 0;
    if (!flg && !len) continue;
    let s = o.opts.verbose > 1 ? `\tRegion ${i}: ` : '\t';
    if (flg & PCI_BASE_ADDRESS_SPACE_IO) {
      const a = flg & PCI_BASE_ADDRESS_IO_MASK;
      s += 'I/O ports at ';
      if (a || cmd & PCI_COMMAND_IO) s += hex(a, 4);
      else s += '<unassigned>';
      if (!(cmd & PCI_COMMAND_IO)) s += ' [disabled]';
    } else {
      const t = flg & PCI_BASE_ADDRESS_MEM_TYPE_MASK;
      let a = (flg & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
      let upper = 0;
      let done = false;
      s += 'Memory at ';
      if (t === PCI_BASE_ADDRESS_MEM_TYPE_64) {
        if (i >= count - 1) {
          s += '<invalid-64bit-slot>';
          done = true;
        } else {
          i++;
          upper = cfg.u32(PCI_BASE_ADDRESS_0 + 4 * i);
          a += upper * 2 ** 32;
        }
      }
      if (!done) s += a ? a.toString(16).padStart(8, '0') : '<unassigned>';
      const type =
        t === PCI_BASE_ADDRESS_MEM_TYPE_32
          ? '32-bit'
          : t === PCI_BASE_ADDRESS_MEM_TYPE_64
            ? '64-bit'
            : t === PCI_BASE_ADDRESS_MEM_TYPE_1M
              ? 'low-1M'
              : 'type 3';
      s += ` (${type}, ${flg & PCI_BASE_ADDRESS_MEM_PREFETCH ? '' : 'non-'}prefetchable)`;
      if (!(cmd & PCI_COMMAND_MEMORY)) s += ' [disabled]';
    }
    o.out(s + formatBarSize(len));
  }
}

function rom(o: Printer): void {
  const flg = o.cfg.u32(PCI_ROM_ADDRESS);
  if (!flg || flg === 0xffffffff) return;
  const cmd = o.cfg.u16(PCI_COMMAND);
  const base = (flg & PCI_ROM_ADDRESS_MASK) >>> 0;
  let s = `\tExpansion ROM at ${base ? hex(base, 8) : '<unassigned>'}`;
  if (!(flg & PCI_ROM_ADDRESS_ENABLE)) s += ' [disabled]';
  else if (!(cmd & PCI_COMMAND_MEMORY)) s += ' [disabled by cmd]';
  o.out(s);
}
