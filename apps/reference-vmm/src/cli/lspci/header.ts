/**
 * The configuration header as pciutils 3.9's lspci.c prints it: show_terse, show_verbose,
 * show_bases, show_rom, show_range and the bridge header (show_htype1), and show_hex_dump.
 * Register offsets and bits are linux/pci_regs.h's.
 */
import { CapabilityWalk } from '@vfiokit/core';
import { formatSlot } from '../../config/index.js';
import { FLAG, hex, type Printer } from './context.js';
import { className, deviceName, progIfName, subsystemName } from './names.js';

// linux/pci_regs.h: the type 0 and type 1 header registers lspci reads
const PCI_VENDOR_ID = 0x00;
const PCI_DEVICE_ID = 0x02;
const PCI_COMMAND = 0x04;
const PCI_STATUS = 0x06;
const PCI_REVISION_ID = 0x08;
const PCI_CLASS_PROG = 0x09;
const PCI_CLASS_DEVICE = 0x0a;
const PCI_CACHE_LINE_SIZE = 0x0c;
const PCI_LATENCY_TIMER = 0x0d;
const PCI_HEADER_TYPE = 0x0e;
const PCI_BIST = 0x0f;
const PCI_BASE_ADDRESS_0 = 0x10;
const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
const PCI_SUBSYSTEM_ID = 0x2e;
const PCI_ROM_ADDRESS = 0x30;
const PCI_INTERRUPT_LINE = 0x3c;
const PCI_INTERRUPT_PIN = 0x3d;
const PCI_MIN_GNT = 0x3e;
const PCI_MAX_LAT = 0x3f;
const PCI_PRIMARY_BUS = 0x18;
const PCI_SECONDARY_BUS = 0x19;
const PCI_SUBORDINATE_BUS = 0x1a;
const PCI_SEC_LATENCY_TIMER = 0x1b;
const PCI_IO_BASE = 0x1c;
const PCI_IO_LIMIT = 0x1d;
const PCI_SEC_STATUS = 0x1e;
const PCI_MEMORY_BASE = 0x20;
const PCI_MEMORY_LIMIT = 0x22;
const PCI_PREF_MEMORY_BASE = 0x24;
const PCI_PREF_MEMORY_LIMIT = 0x26;
const PCI_PREF_BASE_UPPER32 = 0x28;
const PCI_PREF_LIMIT_UPPER32 = 0x2c;
const PCI_IO_BASE_UPPER16 = 0x30;
const PCI_IO_LIMIT_UPPER16 = 0x32;
const PCI_ROM_ADDRESS1 = 0x38;
const PCI_BRIDGE_CONTROL = 0x3e;
const PCI_CAPABILITY_LIST = 0x34;
// the CardBus bridge header (type 2)
const PCI_CB_CAPABILITY_LIST = 0x14;
const PCI_CB_SEC_STATUS = 0x16;
const PCI_CB_PRIMARY_BUS = 0x18;
const PCI_CB_CARD_BUS = 0x19;
const PCI_CB_SUBORDINATE_BUS = 0x1a;
const PCI_CB_LATENCY_TIMER = 0x1b;
const PCI_CB_MEMORY_BASE_0 = 0x1c;
const PCI_CB_MEMORY_LIMIT_0 = 0x20;
const PCI_CB_IO_BASE_0 = 0x2c;
const PCI_CB_IO_LIMIT_0 = 0x30;
const PCI_CB_BRIDGE_CONTROL = 0x3e;
const PCI_CB_SUBSYSTEM_VENDOR_ID = 0x40;
const PCI_CB_SUBSYSTEM_ID = 0x42;
const PCI_CB_LEGACY_MODE_BASE = 0x44;

export const PCI_HEADER_TYPE_NORMAL = 0;
export const PCI_HEADER_TYPE_BRIDGE = 1;
export const PCI_HEADER_TYPE_CARDBUS = 2;

const PCI_COMMAND_IO = 0x1;
const PCI_COMMAND_MEMORY = 0x2;
const PCI_COMMAND_MASTER = 0x4;
const PCI_COMMAND_VGA_PALETTE = 0x20;
const PCI_COMMAND_WAIT = 0x80;
const PCI_COMMAND_FAST_BACK = 0x200;
const PCI_STATUS_66MHZ = 0x20;
const PCI_STATUS_UDF = 0x40;
const PCI_STATUS_DEVSEL_MASK = 0x600;
const PCI_BIST_CAPABLE = 0x80;
const PCI_BIST_START = 0x40;
const PCI_BIST_CODE_MASK = 0x0f;
const PCI_BASE_ADDRESS_SPACE_IO = 0x01;
const PCI_BASE_ADDRESS_MEM_TYPE_MASK = 0x06;
const PCI_BASE_ADDRESS_MEM_TYPE_32 = 0x00;
const PCI_BASE_ADDRESS_MEM_TYPE_1M = 0x02;
const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04;
const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08;
const PCI_ROM_ADDRESS_ENABLE = 0x01;
const PCI_CLASS_BRIDGE_PCI = 0x0604;
const PCI_BASE_CLASS_BRIDGE = 0x06;
const PCI_IO_RANGE_TYPE_MASK = 0x0f;
const PCI_IO_RANGE_TYPE_16 = 0x00;
const PCI_IO_RANGE_TYPE_32 = 0x01;
const PCI_MEMORY_RANGE_TYPE_MASK = 0x0f;
const PCI_PREF_RANGE_TYPE_MASK = 0x0f;
const PCI_PREF_RANGE_TYPE_32 = 0x00;
const PCI_PREF_RANGE_TYPE_64 = 0x01;

export function headerType(p: Printer): number {
  return p.cfg.u8(PCI_HEADER_TYPE) & 0x7f;
}

/** lspci's show_size: ` [size=8]`, ` [size=16K]`, ` [size=1536]`. */
export function formatBarSize(size: number | bigint): string {
  let x = BigInt(size);
  if (!x) return '';
  const suffix = ['', 'K', 'M', 'G', 'T'];
  let i = 0;
  for (; i < suffix.length - 1; i++) {
    if (x % 1024n) break;
    x /= 1024n;
  }
  // printf("%u", (unsigned) x): the low 32 bits
  return ` [size=${x & 0xffffffffn}${suffix[i]}]`;
}

function devsel(status: number): string {
  return ['fast', 'medium', 'slow', '??'][(status & PCI_STATUS_DEVSEL_MASK) >> 9];
}

/** The cursor pci_find_cap walks with, by pciutils' rules. */
const findWalk = new CapabilityWalk();

/** lib/caps.c pci_find_cap: the first standard capability with this ID (the walk stops at a loop or 0xff), or -1. */
function findCapability(p: Printer, id: number): number {
  // pci_scan_trad_caps starts at 0x34 whatever the header type
  const w = findWalk.begin(p.cfg, p.cfg.size, 'pciutils', PCI_CAPABILITY_LIST);
  while (w.next()) if (w.id === id) return w.offset;
  return -1;
}

/** The subsystem IDs lspci shows (lib/generic.c PCI_FILL_SUBSYS): from the header, or a bridge's capability. */
function subsystemIds(p: Printer): [number, number] {
  const htype = headerType(p);
  if (htype === PCI_HEADER_TYPE_NORMAL)
    return [p.cfg.u16(PCI_SUBSYSTEM_VENDOR_ID), p.cfg.u16(PCI_SUBSYSTEM_ID)];
  if (htype === PCI_HEADER_TYPE_CARDBUS)
    return [p.cfg.u16(PCI_CB_SUBSYSTEM_VENDOR_ID), p.cfg.u16(PCI_CB_SUBSYSTEM_ID)];
  if (htype === PCI_HEADER_TYPE_BRIDGE) {
    // lib/generic.c: a bridge's subsystem IDs are in its subsystem vendor capability (id 0x0d)
    const at = findCapability(p, 0x0d);
    if (at >= 0) return [p.cfg.u16(at + 4), p.cfg.u16(at + 6)];
  }
  return [0, 0];
}

/** The first line (and under -v or -k the Subsystem line). */
export function terse(p: Printer): void {
  const { cfg, opts } = p;
  const ids = opts.ids ?? null;
  const cls = cfg.u16(PCI_CLASS_DEVICE);
  const vendor = cfg.u16(PCI_VENDOR_ID);
  const device = cfg.u16(PCI_DEVICE_ID);
  // show_terse: 128-byte buffers for the class and device names
  let line = `${formatSlot(p.info.address)} ${className(ids, opts.numeric, cls, 128)}: ${deviceName(ids, opts.numeric, vendor, device, 128)}`;
  const rev = cfg.u8(PCI_REVISION_ID);
  if (rev) line += ` (rev ${hex(rev, 2)})`;
  if (opts.verbose) {
    const progIf = cfg.u8(PCI_CLASS_PROG);
    const name = progIfName(ids, cls, progIf);
    if (progIf || name !== undefined)
      line += ` (prog-if ${hex(progIf, 2)}${name !== undefined ? ` [${fit128(name)}]` : ''})`;
  }
  p.out(line);
  if (opts.verbose || opts.kernel) {
    const [sv, sd] = subsystemIds(p);
    if (sv && sv !== 0xffff)
      p.out(`\tSubsystem: ${subsystemName(ids, opts.numeric, vendor, device, sv, sd, 256)}`);
  }
}

function fit128(s: string): string {
  return Buffer.byteLength(s) < 128 ? s : `${Buffer.from(s).subarray(0, 124).toString()}...`;
}

/**
 * show_verbose up to the capabilities: the register that points to the capability list
 * (0x34, or 0x14 for CardBus), or -1 when the header type is unknown (no capabilities follow).
 */
export function showHeader(p: Printer): number {
  const { cfg, opts } = p;
  const htype = headerType(p);
  const cls = cfg.u16(PCI_CLASS_DEVICE);
  terse(p);
  let minGnt = 0;
  let maxLat = 0;
  let bist = 0;
  let known = true;
  switch (htype) {
    case PCI_HEADER_TYPE_NORMAL:
      if (cls === PCI_CLASS_BRIDGE_PCI)
        p.out(`\t!!! Invalid class ${hex(cls, 4)} for header type ${hex(htype, 2)}`);
      bist = cfg.u8(PCI_BIST);
      maxLat = cfg.u8(PCI_MAX_LAT);
      minGnt = cfg.u8(PCI_MIN_GNT);
      break;
    case PCI_HEADER_TYPE_BRIDGE:
    case PCI_HEADER_TYPE_CARDBUS:
      if (cls >> 8 !== PCI_BASE_CLASS_BRIDGE)
        p.out(`\t!!! Invalid class ${hex(cls, 4)} for header type ${hex(htype, 2)}`);
      bist = cfg.u8(PCI_BIST);
      break;
    default:
      p.out(`\t!!! Unknown header type ${hex(htype, 2)}`);
      known = false;
  }
  // the IRQ the OS reports: the guest's firmware writes it into the interrupt line, which is
  // also what lspci takes from a dump (lib/generic.c), whatever the header type
  const irq = cfg.u8(PCI_INTERRUPT_LINE);
  if (known && opts.verbose > 1) {
    const cmd = cfg.u16(PCI_COMMAND);
    const status = cfg.u16(PCI_STATUS);
    p.out(
      `\tControl: I/O${FLAG(cmd, 0x1)} Mem${FLAG(cmd, 0x2)} BusMaster${FLAG(cmd, 0x4)} SpecCycle${FLAG(cmd, 0x8)} MemWINV${FLAG(cmd, 0x10)} VGASnoop${FLAG(cmd, 0x20)} ParErr${FLAG(cmd, 0x40)} Stepping${FLAG(cmd, 0x80)} SERR${FLAG(cmd, 0x100)} FastB2B${FLAG(cmd, 0x200)} DisINTx${FLAG(cmd, 0x400)}`,
    );
    p.out(
      `\tStatus: Cap${FLAG(status, 0x10)} 66MHz${FLAG(status, 0x20)} UDF${FLAG(status, 0x40)} FastB2B${FLAG(status, 0x80)} ParErr${FLAG(status, 0x100)} DEVSEL=${devsel(status)} >TAbort${FLAG(status, 0x800)} <TAbort${FLAG(status, 0x1000)} <MAbort${FLAG(status, 0x2000)} >SERR${FLAG(status, 0x4000)} <PERR${FLAG(status, 0x8000)} INTx${FLAG(status, 0x8)}`,
    );
    if (cmd & PCI_COMMAND_MASTER) {
      let s = `\tLatency: ${cfg.u8(PCI_LATENCY_TIMER)}`;
      if (minGnt || maxLat) {
        s += ' (';
        if (minGnt) s += `${minGnt * 250}ns min`;
        if (minGnt && maxLat) s += ', ';
        if (maxLat) s += `${maxLat * 250}ns max`;
        s += ')';
      }
      const cacheLine = cfg.u8(PCI_CACHE_LINE_SIZE);
      if (cacheLine) s += `, Cache Line Size: ${cacheLine * 4} bytes`;
      p.out(s);
    }
  }
  if (opts.verbose > 1) {
    const pin = known ? cfg.u8(PCI_INTERRUPT_PIN) : 0;
    // 'A' + pin - 1 printed with %c: one byte
    if (pin || irq)
      p.out(`\tInterrupt: pin ${pin ? String.fromCharCode((0x40 + pin) & 0xff) : '?'} routed to IRQ ${irq}`);
  }
  if (known && opts.verbose <= 1) {
    const cmd = cfg.u16(PCI_COMMAND);
    const status = cfg.u16(PCI_STATUS);
    let s = '\tFlags: ';
    if (cmd & PCI_COMMAND_MASTER) s += 'bus master, ';
    if (cmd & PCI_COMMAND_VGA_PALETTE) s += 'VGA palette snoop, ';
    if (cmd & PCI_COMMAND_WAIT) s += 'stepping, ';
    if (cmd & PCI_COMMAND_FAST_BACK) s += 'fast Back2Back, ';
    if (status & PCI_STATUS_66MHZ) s += '66MHz, ';
    if (status & PCI_STATUS_UDF) s += 'user-definable features, ';
    s += `${devsel(status)} devsel`;
    if (cmd & PCI_COMMAND_MASTER) s += `, latency ${cfg.u8(PCI_LATENCY_TIMER)}`;
    if (irq) s += `, IRQ ${irq}`;
    p.out(s);
  }
  if (bist & PCI_BIST_CAPABLE) {
    p.out(
      bist & PCI_BIST_START ? '\tBIST is running' : `\tBIST result: ${hex(bist & PCI_BIST_CODE_MASK, 2)}`,
    );
  }
  switch (htype) {
    case PCI_HEADER_TYPE_NORMAL:
      bases(p, 6);
      rom(p, PCI_ROM_ADDRESS);
      return PCI_CAPABILITY_LIST;
    case PCI_HEADER_TYPE_BRIDGE:
      bridge(p);
      return PCI_CAPABILITY_LIST;
    case PCI_HEADER_TYPE_CARDBUS:
      cardbus(p);
      return PCI_CB_CAPABILITY_LIST;
    default:
      // show_htype_unknown: only what the OS reports, which for these headers is nothing
      bases(p, 6, true);
      rom(p, -1);
      return -1;
  }
}

/** A BAR as lib/generic.c fills base_addr from configuration space: flags included, 64-bit pairs joined. */
export function baseAddresses(p: Printer, count: number): bigint[] {
  const out: bigint[] = new Array(count).fill(0n);
  for (let i = 0; i < count; i++) {
    const x = p.cfg.u32(PCI_BASE_ADDRESS_0 + 4 * i);
    if (!x || x === 0xffffffff) continue;
    if (
      x & PCI_BASE_ADDRESS_SPACE_IO ||
      (x & PCI_BASE_ADDRESS_MEM_TYPE_MASK) !== PCI_BASE_ADDRESS_MEM_TYPE_64
    )
      out[i] = BigInt(x);
    else if (i < count - 1) {
      const y = p.cfg.u32(PCI_BASE_ADDRESS_0 + 4 * ++i);
      out[i - 1] = BigInt(x) | (BigInt(y) << 32n);
    }
  }
  return out;
}

/** What lspci knows of one BAR: base_addr (address and low flag bits), size, and the OS's flags as BAR bits. */
interface Resource {
  pos: bigint;
  len: bigint;
  /** ioflg_to_pciflg of the OS resource flags; undefined when the OS gave none (a dump) */
  flags?: number;
}

/** The BARs as lspci sees them: from the probe (sysfs' resource file) or else from the bytes (lib/generic.c). */
export function resources(p: Printer, count: number): Resource[] {
  const bars = p.info.bars;
  if (!bars) return baseAddresses(p, count).map((pos) => ({ pos, len: 0n }));
  const out: Resource[] = [];
  for (let i = 0; i < count; i++) {
    const b = bars.find((x) => x.index === i);
    if (!b?.size) {
      out.push({ pos: 0n, len: 0n, flags: 0 });
      continue;
    }
    const flags =
      b.kind === 'io'
        ? PCI_BASE_ADDRESS_SPACE_IO
        : (b.kind === 'mem64' ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) |
          (b.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
    out.push({ pos: BigInt(b.address) | BigInt(flags), len: BigInt(b.size), flags });
  }
  return out;
}

const hex64 = (n: bigint, w: number) => n.toString(16).padStart(w, '0');

/** show_bases (pciutils 3.9): one line per BAR that has an address, flags or a size. */
function bases(p: Printer, count: number, withoutConfig = false): void {
  const { cfg } = p;
  const cmd = withoutConfig ? PCI_COMMAND_IO | PCI_COMMAND_MEMORY : cfg.u16(PCI_COMMAND);
  const res = withoutConfig ? new Array<Resource>(count).fill({ pos: 0n, len: 0n }) : resources(p, count);
  for (let i = 0; i < count; i++) {
    const { pos, len, flags } = res[i];
    let flg = flags !== undefined ? flags : withoutConfig ? 0 : cfg.u32(PCI_BASE_ADDRESS_0 + 4 * i);
    if (flg === 0xffffffff) flg = 0;
    if (!pos && !flg && !len) continue;
    let s = p.opts.verbose > 1 ? `\tRegion ${i}: ` : '\t';
    let hwLower = 0;
    let hwUpper = 0;
    let broken = false;
    let virtual = false;
    if (flags !== undefined && !withoutConfig) {
      // the address as the hardware sees it, to tell a region the OS placed but the device does not decode
      hwLower = cfg.u32(PCI_BASE_ADDRESS_0 + 4 * i);
      if ((hwLower & PCI_BASE_ADDRESS_SPACE_IO) === (flags & PCI_BASE_ADDRESS_SPACE_IO)) {
        if (
          !(flags & PCI_BASE_ADDRESS_SPACE_IO) &&
          (hwLower & PCI_BASE_ADDRESS_MEM_TYPE_MASK) === PCI_BASE_ADDRESS_MEM_TYPE_64
        ) {
          if (i >= count - 1) broken = true;
          // lspci.c reads the upper half one byte (not one register) further
          else hwUpper = cfg.u32(PCI_BASE_ADDRESS_0 + 4 * i + 1);
        }
        if (pos && !hwLower && !hwUpper) virtual = true;
      }
    }
    if (flg & PCI_BASE_ADDRESS_SPACE_IO) {
      const a = pos & ~3n;
      s += 'I/O ports at ';
      if (a || cmd & PCI_COMMAND_IO) s += hex64(a, 4);
      else if (hwLower) s += '<ignored>';
      else s += '<unassigned>';
      if (virtual) s += ' [virtual]';
      else if (!(cmd & PCI_COMMAND_IO)) s += ' [disabled]';
    } else {
      const t = flg & PCI_BASE_ADDRESS_MEM_TYPE_MASK;
      const a = pos & ~0xfn;
      s += 'Memory at ';
      if (broken) s += '<broken-64-bit-slot>';
      else if (a) s += hex64(a, 8);
      else if (hwLower || hwUpper) s += '<ignored>';
      else s += '<unassigned>';
      const type =
        t === PCI_BASE_ADDRESS_MEM_TYPE_32
          ? '32-bit'
          : t === PCI_BASE_ADDRESS_MEM_TYPE_64
            ? '64-bit'
            : t === PCI_BASE_ADDRESS_MEM_TYPE_1M
              ? 'low-1M'
              : 'type 3';
      s += ` (${type}, ${flg & PCI_BASE_ADDRESS_MEM_PREFETCH ? '' : 'non-'}prefetchable)`;
      if (virtual) s += ' [virtual]';
      else if (!(cmd & PCI_COMMAND_MEMORY)) s += ' [disabled]';
    }
    p.out(s + formatBarSize(len));
  }
}

const PCI_ROM_ADDRESS_MASK = 0xfffff800;

/** show_rom: reg is the ROM BAR (0x30, or 0x38 for a bridge), or -1 for a header lspci cannot read. */
function rom(p: Printer, reg: number): void {
  // lib/generic.c: rom_base_addr is the register unless it reads all-ones; a header of
  // unknown type has none
  const raw = reg >= 0 ? p.cfg.u32(reg) : 0;
  const at = raw === 0xffffffff ? 0 : raw;
  const len = 0;
  let flg = raw;
  const cmd = reg >= 0 ? p.cfg.u16(PCI_COMMAND) : PCI_COMMAND_MEMORY;
  let virtual = false;
  if (!at && !flg && !len) return;
  if (reg >= 0 && at & PCI_ROM_ADDRESS_MASK && !(flg & PCI_ROM_ADDRESS_MASK)) {
    flg = at;
    virtual = true;
  }
  let s = '\tExpansion ROM at ';
  if (at & PCI_ROM_ADDRESS_MASK) s += hex((at & PCI_ROM_ADDRESS_MASK) >>> 0, 8);
  else if (flg & PCI_ROM_ADDRESS_MASK) s += '<ignored>';
  else s += '<unassigned>';
  if (virtual) s += ' [virtual]';
  if (!(flg & PCI_ROM_ADDRESS_ENABLE)) s += ' [disabled]';
  else if (!virtual && !(cmd & PCI_COMMAND_MEMORY)) s += ' [disabled by cmd]';
  p.out(s + formatBarSize(len));
}

/** show_range: a bridge window with its size, or [disabled] when it is empty; `bits` its width. */
function range(p: Printer, prefix: string, base: bigint, limit: bigint, bits: number): void {
  let s = `${prefix}:`;
  const w = Math.floor((bits + 3) / 4);
  if (base <= limit || p.opts.verbose > 2) s += ` ${hex64(base, w)}-${hex64(limit, w)}`;
  s += base <= limit ? formatBarSize(limit - base + 1n) : ' [disabled]';
  if (bits) s += ` [${bits}-bit]`;
  p.out(s);
}

/** show_htype1: a PCI-to-PCI bridge's BARs, bus numbers, windows, secondary status and control. */
function bridge(p: Printer): void {
  const { cfg } = p;
  bases(p, 2);
  p.out(
    `\tBus: primary=${hex(cfg.u8(PCI_PRIMARY_BUS), 2)}, secondary=${hex(cfg.u8(PCI_SECONDARY_BUS), 2)}, subordinate=${hex(cfg.u8(PCI_SUBORDINATE_BUS), 2)}, sec-latency=${cfg.u8(PCI_SEC_LATENCY_TIMER)}`,
  );
  let ioBase = cfg.u8(PCI_IO_BASE);
  let ioLimit = cfg.u8(PCI_IO_LIMIT);
  const ioType = ioBase & PCI_IO_RANGE_TYPE_MASK;
  if (
    ioType !== (ioLimit & PCI_IO_RANGE_TYPE_MASK) ||
    (ioType !== PCI_IO_RANGE_TYPE_16 && ioType !== PCI_IO_RANGE_TYPE_32)
  ) {
    p.out(`\t!!! Unknown I/O range types ${ioBase.toString(16)}/${ioLimit.toString(16)}`);
  } else {
    ioBase = (ioBase & 0xf0) << 8;
    ioLimit = (ioLimit & 0xf0) << 8;
    if (ioType === PCI_IO_RANGE_TYPE_32) {
      ioBase = (ioBase | (cfg.u16(PCI_IO_BASE_UPPER16) << 16)) >>> 0;
      ioLimit = (ioLimit | (cfg.u16(PCI_IO_LIMIT_UPPER16) << 16)) >>> 0;
    }
    range(
      p,
      '\tI/O behind bridge',
      BigInt(ioBase),
      BigInt((ioLimit + 0xfff) >>> 0),
      ioType === PCI_IO_RANGE_TYPE_32 ? 32 : 16,
    );
  }
  const memBase = cfg.u16(PCI_MEMORY_BASE);
  const memLimit = cfg.u16(PCI_MEMORY_LIMIT);
  const memType = memBase & PCI_MEMORY_RANGE_TYPE_MASK;
  if (memType !== (memLimit & PCI_MEMORY_RANGE_TYPE_MASK) || memType) {
    p.out(`\t!!! Unknown memory range types ${memBase.toString(16)}/${memLimit.toString(16)}`);
  } else {
    const b = BigInt(((memBase & 0xfff0) << 16) >>> 0);
    const l = BigInt(((memLimit & 0xfff0) << 16) >>> 0);
    range(p, '\tMemory behind bridge', b, (l + 0xfffffn) & 0xffffffffn, 32);
  }
  const prefBase = cfg.u16(PCI_PREF_MEMORY_BASE);
  const prefLimit = cfg.u16(PCI_PREF_MEMORY_LIMIT);
  const prefType = prefBase & PCI_PREF_RANGE_TYPE_MASK;
  if (
    prefType !== (prefLimit & PCI_PREF_RANGE_TYPE_MASK) ||
    (prefType !== PCI_PREF_RANGE_TYPE_32 && prefType !== PCI_PREF_RANGE_TYPE_64)
  ) {
    p.out(`\t!!! Unknown prefetchable memory range types ${prefBase.toString(16)}/${prefLimit.toString(16)}`);
  } else {
    let b = BigInt(((prefBase & 0xfff0) << 16) >>> 0);
    let l = BigInt(((prefLimit & 0xfff0) << 16) >>> 0);
    const wide = prefType === PCI_PREF_RANGE_TYPE_64;
    if (wide) {
      b |= BigInt(cfg.u32(PCI_PREF_BASE_UPPER32)) << 32n;
      l |= BigInt(cfg.u32(PCI_PREF_LIMIT_UPPER32)) << 32n;
    }
    range(p, '\tPrefetchable memory behind bridge', b, l + 0xfffffn, wide ? 64 : 32);
  }
  const sec = cfg.u16(PCI_SEC_STATUS);
  if (p.opts.verbose > 1) {
    p.out(
      `\tSecondary status: 66MHz${FLAG(sec, 0x20)} FastB2B${FLAG(sec, 0x80)} ParErr${FLAG(sec, 0x100)} DEVSEL=${devsel(sec)} >TAbort${FLAG(sec, 0x800)} <TAbort${FLAG(sec, 0x1000)} <MAbort${FLAG(sec, 0x2000)} <SERR${FLAG(sec, 0x4000)} <PERR${FLAG(sec, 0x8000)}`,
    );
  }
  rom(p, PCI_ROM_ADDRESS1);
  if (p.opts.verbose > 1) {
    const brc = cfg.u16(PCI_BRIDGE_CONTROL);
    p.out(
      `\tBridgeCtl: Parity${FLAG(brc, 0x1)} SERR${FLAG(brc, 0x2)} NoISA${FLAG(brc, 0x4)} VGA${FLAG(brc, 0x8)} VGA16${FLAG(brc, 0x10)} MAbort${FLAG(brc, 0x20)} >Reset${FLAG(brc, 0x40)} FastB2B${FLAG(brc, 0x80)}`,
    );
    p.out(
      `\t\tPriDiscTmr${FLAG(brc, 0x100)} SecDiscTmr${FLAG(brc, 0x200)} DiscTmrStat${FLAG(brc, 0x400)} DiscTmrSERREn${FLAG(brc, 0x800)}`,
    );
  }
}

/** show_htype2: a CardBus bridge's socket BAR, bus numbers, windows and control. */
function cardbus(p: Printer): void {
  const { cfg } = p;
  const cmd = cfg.u16(PCI_COMMAND);
  const brc = cfg.u16(PCI_CB_BRIDGE_CONTROL);
  const verb = p.opts.verbose > 2;
  bases(p, 1);
  p.out(
    `\tBus: primary=${hex(cfg.u8(PCI_CB_PRIMARY_BUS), 2)}, secondary=${hex(cfg.u8(PCI_CB_CARD_BUS), 2)}, subordinate=${hex(cfg.u8(PCI_CB_SUBORDINATE_BUS), 2)}, sec-latency=${cfg.u8(PCI_CB_LATENCY_TIMER)}`,
  );
  for (let i = 0; i < 2; i++) {
    const base = cfg.u32(PCI_CB_MEMORY_BASE_0 + 8 * i);
    const limit = (cfg.u32(PCI_CB_MEMORY_LIMIT_0 + 8 * i) + 0xfff) >>> 0;
    if (base <= limit || verb)
      p.out(
        `\tMemory window ${i}: ${hex(base, 8)}-${hex(limit, 8)}${cmd & PCI_COMMAND_MEMORY ? '' : ' [disabled]'}${brc & (0x100 << i) ? ' (prefetchable)' : ''}`,
      );
  }
  for (let i = 0; i < 2; i++) {
    let base = cfg.u32(PCI_CB_IO_BASE_0 + 8 * i);
    let limit = cfg.u32(PCI_CB_IO_LIMIT_0 + 8 * i);
    if (!(base & PCI_IO_RANGE_TYPE_32)) {
      base &= 0xffff;
      limit &= 0xffff;
    }
    base = (base & ~3) >>> 0;
    limit = ((limit & ~3) + 3) >>> 0;
    if (base <= limit || verb)
      p.out(
        `\tI/O window ${i}: ${hex(base, 8)}-${hex(limit, 8)}${cmd & PCI_COMMAND_IO ? '' : ' [disabled]'}`,
      );
  }
  if (cfg.u16(PCI_CB_SEC_STATUS) & 0x4000) p.out('\tSecondary status: SERR');
  if (p.opts.verbose > 1)
    p.out(
      `\tBridgeCtl: Parity${FLAG(brc, 0x1)} SERR${FLAG(brc, 0x2)} ISA${FLAG(brc, 0x4)} VGA${FLAG(brc, 0x8)} MAbort${FLAG(brc, 0x20)} >Reset${FLAG(brc, 0x40)} 16bInt${FLAG(brc, 0x80)} PostWrite${FLAG(brc, 0x400)}`,
    );
  const exca = cfg.u16(PCI_CB_LEGACY_MODE_BASE);
  if (exca) p.out(`\t16-bit legacy interface ports at ${hex(exca, 4)}`);
}

/** show_hex_dump: 64 bytes (-x; 128 for CardBus), 256 (-xxx) or 4096 (-xxxx) where that much is readable. */
export function hexDump(p: Printer): void {
  const x = p.opts.hex ?? 0;
  const base = headerType(p) === PCI_HEADER_TYPE_CARDBUS ? 128 : 64;
  const cnt = x >= 3 ? (x >= 4 && p.cfg.size >= 4096 ? 4096 : 256) : base;
  for (let i = 0; i < cnt; i += 16) {
    let s = `${hex(i, 2)}:`;
    for (let j = 0; j < 16; j++) s += ` ${hex(p.cfg.u8(i + j), 2)}`;
    p.out(s);
  }
}
