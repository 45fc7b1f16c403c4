/**
 * What the guest sees, printed the way pciutils' lspci prints it (lspci.c show_terse /
 * show_verbose / show_bases, ls-caps.c, ls-ecaps.c). Configuration bytes are read only through
 * GuestView.configRead — the guest's config cycles — and BAR sizes come from the guest's own
 * probe, as lspci takes them from the OS.
 */
import {
  type GuestView,
  msiLayout,
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
  PCI_CAP_FLAGS,
  PCI_CAP_ID_AF,
  PCI_CAP_ID_AGP,
  PCI_CAP_ID_EA,
  PCI_CAP_ID_EXP,
  PCI_CAP_ID_MSI,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_PCIX,
  PCI_CAP_ID_PM,
  PCI_CAP_ID_VNDR,
  PCI_CAP_ID_VPD,
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_CAP_VNDR_LEN,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
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
  PCI_EXP_DEVCAP,
  PCI_EXP_DEVCAP_EXT_TAG,
  PCI_EXP_DEVCAP_FLR,
  PCI_EXP_DEVCAP_PAYLOAD,
  PCI_EXP_DEVCAP_RBER,
  PCI_EXP_DEVCTL,
  PCI_EXP_DEVCTL_BCR_FLR,
  PCI_EXP_DEVCTL_CERE,
  PCI_EXP_DEVCTL_EXT_TAG,
  PCI_EXP_DEVCTL_FERE,
  PCI_EXP_DEVCTL_NFERE,
  PCI_EXP_DEVCTL_NOSNOOP_EN,
  PCI_EXP_DEVCTL_PAYLOAD,
  PCI_EXP_DEVCTL_READRQ,
  PCI_EXP_DEVCTL_RELAX_EN,
  PCI_EXP_DEVCTL_URRE,
  PCI_EXP_DEVSTA,
  PCI_EXP_DEVSTA_AUXPD,
  PCI_EXP_DEVSTA_CED,
  PCI_EXP_DEVSTA_FED,
  PCI_EXP_DEVSTA_NFED,
  PCI_EXP_DEVSTA_TRPND,
  PCI_EXP_DEVSTA_URD,
  PCI_EXP_FLAGS_IRQ,
  PCI_EXP_FLAGS_SLOT,
  PCI_EXP_FLAGS_TYPE,
  PCI_EXP_FLAGS_VERS,
  PCI_EXP_LNKCAP,
  PCI_EXP_LNKCAP_MLW,
  PCI_EXP_LNKCAP_SLS,
  PCI_EXP_LNKCTL,
  PCI_EXP_LNKCTL_ASPMC,
  PCI_EXP_LNKCTL_CCC,
  PCI_EXP_LNKCTL_ES,
  PCI_EXP_LNKCTL_RCB,
  PCI_EXP_LNKSTA,
  PCI_EXP_LNKSTA_CLS,
  PCI_EXP_LNKSTA_NLW,
  PCI_EXP_TYPE_ENDPOINT,
  PCI_EXP_TYPE_LEG_END,
  PCI_EXP_TYPE_RC_END,
  PCI_EXP_TYPE_ROOT_PORT,
  PCI_EXT_CAP_ID_ACS,
  PCI_EXT_CAP_ID_ARI,
  PCI_EXT_CAP_ID_ATS,
  PCI_EXT_CAP_ID_DOE,
  PCI_EXT_CAP_ID_DSN,
  PCI_EXT_CAP_ID_DVSEC,
  PCI_EXT_CAP_ID_ERR,
  PCI_EXT_CAP_ID_L1SS,
  PCI_EXT_CAP_ID_LTR,
  PCI_EXT_CAP_ID_PASID,
  PCI_EXT_CAP_ID_PRI,
  PCI_EXT_CAP_ID_PTM,
  PCI_EXT_CAP_ID_PWR,
  PCI_EXT_CAP_ID_REBAR,
  PCI_EXT_CAP_ID_SECPCI,
  PCI_EXT_CAP_ID_SRIOV,
  PCI_EXT_CAP_ID_VC,
  PCI_EXT_CAP_ID_VNDR,
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
  PCI_MSI_ADDRESS_HI,
  PCI_MSI_ADDRESS_LO,
  PCI_MSI_FLAGS_64BIT,
  PCI_MSI_FLAGS_ENABLE,
  PCI_MSI_FLAGS_MASKBIT,
  PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_MSIX_TABLE_BIR,
  PCI_PM_CAP_D1,
  PCI_PM_CAP_D2,
  PCI_PM_CAP_VER_MASK,
  PCI_PM_CTRL,
  PCI_PM_CTRL_NO_SOFT_RESET,
  PCI_PM_CTRL_PME_ENABLE,
  PCI_PM_CTRL_PME_STATUS,
  PCI_PM_CTRL_STATE_MASK,
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
  type PciAddress,
  type ProbedDevice,
  walkExtendedCapabilities,
} from '@vfiokit/core';
import { formatSlot } from '../config/index.js';
import { className, hasClassName, progIfName } from './pci-names.js';

// linux/pci_regs.h: fields lspci decodes that core's pci/constants.ts does not name (display only)
const PCI_STATUS_UDF = 0x40;
const PCI_STATUS_DEVSEL_FAST = 0x000;
const PCI_STATUS_DEVSEL_MEDIUM = 0x200;
const PCI_STATUS_DEVSEL_SLOW = 0x400;
const PCI_BIST_CAPABLE = 0x80;
const PCI_BIST_START = 0x40;
const PCI_BIST_CODE_MASK = 0x0f;
const PCI_BASE_ADDRESS_MEM_TYPE_1M = 0x02;
const PCI_PM_CAP_PME_CLOCK = 0x0008;
const PCI_PM_CAP_DSI = 0x0020;
const PCI_PM_CAP_AUX_POWER = 0x01c0;
const PCI_PM_CAP_PME_D0 = 0x0800;
const PCI_PM_CAP_PME_D1 = 0x1000;
const PCI_PM_CAP_PME_D2 = 0x2000;
const PCI_PM_CAP_PME_D3HOT = 0x4000;
const PCI_PM_CAP_PME_D3COLD = 0x8000;
const PCI_PM_CTRL_DATA_SEL_MASK = 0x1e00;
const PCI_PM_CTRL_DATA_SCALE_MASK = 0x6000;
const PCI_PM_PPB_EXTENSIONS = 6;
const PCI_PM_PPB_B2_B3 = 0x40;
const PCI_PM_BPCC_ENABLE = 0x80;
const PCI_EXP_DEVCAP_PHANTOM = 0x00000018;
const PCI_EXP_DEVCAP_L0S = 0x000001c0;
const PCI_EXP_DEVCAP_L1 = 0x00000e00;
const PCI_EXP_DEVCAP_ATN_BUT = 0x00001000;
const PCI_EXP_DEVCAP_ATN_IND = 0x00002000;
const PCI_EXP_DEVCAP_PWR_IND = 0x00004000;
const PCI_EXP_DEVCAP_PWR_VAL = 0x03fc0000;
const PCI_EXP_DEVCAP_PWR_SCL = 0x0c000000;
const PCI_EXP_DEVCTL_PHANTOM = 0x0200;
const PCI_EXP_DEVCTL_AUX_PME = 0x0400;
const PCI_EXP_LNKCAP_ASPMS = 0x00000c00;
const PCI_EXP_LNKCAP_L0SEL = 0x00007000;
const PCI_EXP_LNKCAP_L1EL = 0x00038000;
const PCI_EXP_LNKCAP_CLKPM = 0x00040000;
const PCI_EXP_LNKCAP_SDERC = 0x00080000;
const PCI_EXP_LNKCAP_DLLLARC = 0x00100000;
const PCI_EXP_LNKCAP_LBNC = 0x00200000;
const PCI_EXP_LNKCAP_AOC = 0x00400000;
const PCI_EXP_LNKCTL_LD = 0x0010;
const PCI_EXP_LNKCTL_CLKREQ_EN = 0x0100;
const PCI_EXP_LNKCTL_HAWD = 0x0200;
const PCI_EXP_LNKCTL_LBMIE = 0x0400;
const PCI_EXP_LNKCTL_LABIE = 0x0800;
const PCI_EXP_LNKSTA_LT_ERR = 0x0400;
const PCI_EXP_LNKSTA_LT = 0x0800;
const PCI_EXP_LNKSTA_SLC = 0x1000;
const PCI_EXP_LNKSTA_DLLLA = 0x2000;
const PCI_EXP_LNKSTA_LBMS = 0x4000;
const PCI_EXP_LNKSTA_LABS = 0x8000;
const PCI_EXP_TYPE_UPSTREAM = 0x5;
const PCI_EXP_TYPE_DOWNSTREAM = 0x6;
const PCI_EXP_TYPE_PCI_BRIDGE = 0x7;
const PCI_EXP_TYPE_PCIE_BRIDGE = 0x8;
const PCI_EXP_TYPE_RC_EC = 0xa;
const PCI_CAP_ID_SLOTID = 0x04;
const PCI_CAP_ID_CHSWP = 0x06;
const PCI_CAP_ID_HT = 0x08;
const PCI_CAP_ID_DBG = 0x0a;
const PCI_CAP_ID_SSVID = 0x0d;
const PCI_CAP_ID_SATA = 0x12;

export interface LspciOptions {
  /** 0: one line; 1: -v; 2: -vv; 3: -vvv (extended capabilities too). */
  readonly verbose: number;
  /** 0: names; 1: -n numbers; 2: -nn both. */
  readonly numeric: number;
}

const hex = (n: number, w: number) => (n >>> 0).toString(16).padStart(w, '0');
const FLAG = (x: number, bit: number) => ((x & bit) !== 0 ? '+' : '-');

/** The function's configuration bytes, read dword by dword through the guest's config cycles. */
class GuestConfig {
  private readonly bytes = new Uint8Array(PCI_CFG_SPACE_EXP_SIZE);
  private readonly loaded = new Uint8Array(PCI_CFG_SPACE_EXP_SIZE / 4);

  constructor(
    private readonly guest: Pick<GuestView, 'configRead'>,
    private readonly address: PciAddress,
  ) {}

  private load(dword: number): void {
    if (this.loaded[dword]) return;
    let v = 0xffffffff;
    try {
      v = this.guest.configRead(this.address, dword * 4, 4) >>> 0;
    } catch {
      // A failed config cycle reads all-ones, as a master abort does on real hardware.
    }
    const o = dword * 4;
    this.bytes[o] = v & 0xff;
    this.bytes[o + 1] = (v >>> 8) & 0xff;
    this.bytes[o + 2] = (v >>> 16) & 0xff;
    this.bytes[o + 3] = v >>> 24;
    this.loaded[dword] = 1;
  }

  u8(off: number): number {
    if (off < 0 || off >= PCI_CFG_SPACE_EXP_SIZE) return 0xff;
    this.load(off >>> 2);
    return this.bytes[off];
  }
  u16(off: number): number {
    return this.u8(off) | (this.u8(off + 1) << 8);
  }
  u32(off: number): number {
    return (this.u16(off) | (this.u16(off + 2) << 16)) >>> 0;
  }
  /** The first 256 bytes (for --json and hex dumps). */
  standard(): Uint8Array {
    for (let i = 0; i < PCI_CFG_SPACE_SIZE; i += 4) this.u8(i);
    return this.bytes.slice(0, PCI_CFG_SPACE_SIZE);
  }
}

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

function deviceName(vendor: number, device: number, numeric: number): string {
  if (numeric === 1) return `${hex(vendor, 4)}:${hex(device, 4)}`;
  if (numeric === 2) return `Device [${hex(vendor, 4)}:${hex(device, 4)}]`;
  return `Device ${hex(vendor, 4)}:${hex(device, 4)}`;
}

function classLabel(cls: number, numeric: number): string {
  if (numeric === 1) return hex(cls, 4);
  if (numeric === 2)
    return hasClassName(cls) ? `${className(cls)} [${hex(cls, 4)}]` : `Class [${hex(cls, 4)}]`;
  return className(cls);
}

class Printer {
  readonly lines: string[] = [];
  constructor(
    private readonly cfg: GuestConfig,
    private readonly dev: ProbedDevice,
    private readonly opts: LspciOptions,
  ) {}

  private out(s: string): void {
    this.lines.push(s);
  }

  terse(): void {
    const { cfg, opts } = this;
    const cls = cfg.u16(PCI_CLASS_DEVICE);
    let line = `${formatSlot(this.dev.address)} ${classLabel(cls, opts.numeric)}: ${deviceName(cfg.u16(PCI_VENDOR_ID), cfg.u16(PCI_DEVICE_ID), opts.numeric)}`;
    const rev = cfg.u8(PCI_REVISION_ID);
    if (rev) line += ` (rev ${hex(rev, 2)})`;
    if (opts.verbose) {
      const progIf = cfg.u8(PCI_CLASS_PROG);
      const name = opts.numeric === 1 ? undefined : progIfName(cls, progIf);
      if (progIf || name) line += ` (prog-if ${hex(progIf, 2)}${name ? ` [${name}]` : ''})`;
    }
    this.out(line);
    if (opts.verbose && (cfg.u8(PCI_HEADER_TYPE) & PCI_HEADER_TYPE_MASK) === PCI_HEADER_TYPE_NORMAL) {
      const sv = cfg.u16(PCI_SUBSYSTEM_VENDOR_ID);
      const sd = cfg.u16(PCI_SUBSYSTEM_ID);
      if (sv && sv !== 0xffff) this.out(`\tSubsystem: ${deviceName(sv, sd, opts.numeric)}`);
    }
  }

  verbose(): void {
    const { cfg, opts } = this;
    const status = cfg.u16(PCI_STATUS);
    const cmd = cfg.u16(PCI_COMMAND);
    const htype = cfg.u8(PCI_HEADER_TYPE) & PCI_HEADER_TYPE_MASK;
    const latency = cfg.u8(PCI_LATENCY_TIMER);
    const cacheLine = cfg.u8(PCI_CACHE_LINE_SIZE);
    const pin = cfg.u8(PCI_INTERRUPT_PIN);
    const line = cfg.u8(PCI_INTERRUPT_LINE);
    const irq = pin ? line : 0;
    this.terse();
    let minGnt = 0;
    let maxLat = 0;
    if (htype === PCI_HEADER_TYPE_NORMAL) {
      maxLat = cfg.u8(PCI_MAX_LAT);
      minGnt = cfg.u8(PCI_MIN_GNT);
    } else if (htype !== PCI_HEADER_TYPE_BRIDGE && htype !== PCI_HEADER_TYPE_CARDBUS) {
      this.out(`\t!!! Unknown header type ${hex(htype, 2)}`);
      return;
    }
    if (opts.verbose > 1) {
      this.out(
        `\tControl: I/O${FLAG(cmd, PCI_COMMAND_IO)} Mem${FLAG(cmd, PCI_COMMAND_MEMORY)} BusMaster${FLAG(cmd, PCI_COMMAND_MASTER)} SpecCycle${FLAG(cmd, PCI_COMMAND_SPECIAL)} MemWINV${FLAG(cmd, PCI_COMMAND_INVALIDATE)} VGASnoop${FLAG(cmd, PCI_COMMAND_VGA_PALETTE)} ParErr${FLAG(cmd, PCI_COMMAND_PARITY)} Stepping${FLAG(cmd, PCI_COMMAND_WAIT)} SERR${FLAG(cmd, PCI_COMMAND_SERR)} FastB2B${FLAG(cmd, PCI_COMMAND_FAST_BACK)} DisINTx${FLAG(cmd, PCI_COMMAND_INTX_DISABLE)}`,
      );
      this.out(
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
        this.out(s);
      }
      if (pin || irq)
        this.out(`\tInterrupt: pin ${pin ? String.fromCharCode(0x40 + pin) : '?'} routed to IRQ ${irq}`);
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
      this.out(s);
    }
    const bist = cfg.u8(PCI_BIST);
    if (bist & PCI_BIST_CAPABLE) {
      this.out(
        bist & PCI_BIST_START ? '\tBIST is running' : `\tBIST result: ${hex(bist & PCI_BIST_CODE_MASK, 2)}`,
      );
    }
    if (htype === PCI_HEADER_TYPE_NORMAL) {
      this.bases(6);
      this.rom();
    } else {
      this.bases(htype === PCI_HEADER_TYPE_BRIDGE ? 2 : 1);
    }
    this.caps();
  }

  private bases(count: number): void {
    const { cfg } = this;
    const cmd = cfg.u16(PCI_COMMAND);
    for (let i = 0; i < count; i++) {
      let flg = cfg.u32(PCI_BASE_ADDRESS_0 + 4 * i);
      if (flg === 0xffffffff) flg = 0;
      const len = this.dev.bars.find((b) => b.index === i)?.size ?? 0;
      if (!flg && !len) continue;
      let s = this.opts.verbose > 1 ? `\tRegion ${i}: ` : '\t';
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
      this.out(s + formatBarSize(len));
    }
  }

  private rom(): void {
    const flg = this.cfg.u32(PCI_ROM_ADDRESS);
    if (!flg || flg === 0xffffffff) return;
    const cmd = this.cfg.u16(PCI_COMMAND);
    const base = (flg & PCI_ROM_ADDRESS_MASK) >>> 0;
    let s = `\tExpansion ROM at ${base ? hex(base, 8) : '<unassigned>'}`;
    if (!(flg & PCI_ROM_ADDRESS_ENABLE)) s += ' [disabled]';
    else if (!(cmd & PCI_COMMAND_MEMORY)) s += ' [disabled by cmd]';
    this.out(s);
  }

  private caps(): void {
    const { cfg } = this;
    let canHaveExt = false;
    if (cfg.u16(PCI_STATUS) & PCI_STATUS_CAP_LIST) {
      const seen = new Uint8Array(256);
      let where = cfg.u8(PCI_CAPABILITY_LIST) & ~3;
      while (where) {
        const id = cfg.u8(where + PCI_CAP_LIST_ID);
        const next = cfg.u8(where + PCI_CAP_LIST_NEXT) & ~3;
        const cap = cfg.u16(where + PCI_CAP_FLAGS);
        const head = `\tCapabilities: [${hex(where, 2)}] `;
        if (seen[where]++) {
          this.out(`${head}<chain looped>`);
          break;
        }
        if (id === 0xff) {
          this.out(`${head}<chain broken>`);
          break;
        }
        this.cap(head, id, where, cap);
        if (id === PCI_CAP_ID_EXP || id === PCI_CAP_ID_PCIX) canHaveExt = true;
        where = next;
      }
    }
    if (canHaveExt && this.opts.verbose > 2) this.extCaps();
  }

  private cap(head: string, id: number, where: number, cap: number): void {
    const vv = this.opts.verbose > 1;
    const { cfg } = this;
    switch (id) {
      case PCI_CAP_ID_PM: {
        this.out(`${head}Power Management version ${cap & PCI_PM_CAP_VER_MASK}`);
        if (!vv) return;
        // ls-caps.c cap_pm: mA by Aux_Current field
        const aux = [0, 55, 100, 160, 220, 270, 320, 375][(cap & PCI_PM_CAP_AUX_POWER) >> 6];
        this.out(
          `\t\tFlags: PMEClk${FLAG(cap, PCI_PM_CAP_PME_CLOCK)} DSI${FLAG(cap, PCI_PM_CAP_DSI)} D1${FLAG(cap, PCI_PM_CAP_D1)} D2${FLAG(cap, PCI_PM_CAP_D2)} AuxCurrent=${aux}mA PME(D0${FLAG(cap, PCI_PM_CAP_PME_D0)},D1${FLAG(cap, PCI_PM_CAP_PME_D1)},D2${FLAG(cap, PCI_PM_CAP_PME_D2)},D3hot${FLAG(cap, PCI_PM_CAP_PME_D3HOT)},D3cold${FLAG(cap, PCI_PM_CAP_PME_D3COLD)})`,
        );
        const t = cfg.u16(where + PCI_PM_CTRL);
        this.out(
          `\t\tStatus: D${t & PCI_PM_CTRL_STATE_MASK} NoSoftRst${FLAG(t, PCI_PM_CTRL_NO_SOFT_RESET)} PME-Enable${FLAG(t, PCI_PM_CTRL_PME_ENABLE)} DSel=${(t & PCI_PM_CTRL_DATA_SEL_MASK) >> 9} DScale=${(t & PCI_PM_CTRL_DATA_SCALE_MASK) >> 13} PME${FLAG(t, PCI_PM_CTRL_PME_STATUS)}`,
        );
        if (cfg.u8(where + PCI_PM_PPB_EXTENSIONS)) {
          // ls-caps.c tests the PM control word here, not the bridge extension byte
          this.out(`\t\tBridge: PM${FLAG(t, PCI_PM_BPCC_ENABLE)} B3${FLAG(~t, PCI_PM_PPB_B2_B3)}`);
        }
        return;
      }
      case PCI_CAP_ID_MSI: {
        this.out(
          `${head}MSI: Enable${FLAG(cap, PCI_MSI_FLAGS_ENABLE)} Count=${1 << ((cap & PCI_MSI_FLAGS_QSIZE) >> 4)}/${1 << ((cap & PCI_MSI_FLAGS_QMASK) >> 1)} Maskable${FLAG(cap, PCI_MSI_FLAGS_MASKBIT)} 64bit${FLAG(cap, PCI_MSI_FLAGS_64BIT)}`,
        );
        if (!vv) return;
        const layout = msiLayout(cap);
        const hi = layout.addr64 ? hex(cfg.u32(where + PCI_MSI_ADDRESS_HI), 8) : '';
        const data = cfg.u16(where + layout.data);
        this.out(`\t\tAddress: ${hi}${hex(cfg.u32(where + PCI_MSI_ADDRESS_LO), 8)}  Data: ${hex(data, 4)}`);
        if (layout.perVectorMask) {
          const mask = cfg.u32(where + layout.mask);
          const pending = cfg.u32(where + layout.pending);
          this.out(`\t\tMasking: ${hex(mask, 8)}  Pending: ${hex(pending, 8)}`);
        }
        return;
      }
      case PCI_CAP_ID_MSIX: {
        this.out(
          `${head}MSI-X: Enable${FLAG(cap, PCI_MSIX_FLAGS_ENABLE)} Count=${(cap & PCI_MSIX_FLAGS_QSIZE) + 1} Masked${FLAG(cap, PCI_MSIX_FLAGS_MASKALL)}`,
        );
        if (!vv) return;
        const table = cfg.u32(where + PCI_MSIX_TABLE);
        const pba = cfg.u32(where + PCI_MSIX_PBA);
        this.out(
          `\t\tVector table: BAR=${table & PCI_MSIX_TABLE_BIR} offset=${hex(table & ~PCI_MSIX_TABLE_BIR, 8)}`,
        );
        this.out(`\t\tPBA: BAR=${pba & PCI_MSIX_TABLE_BIR} offset=${hex(pba & ~PCI_MSIX_TABLE_BIR, 8)}`);
        return;
      }
      case PCI_CAP_ID_EXP:
        this.express(head, where, cap);
        return;
      case PCI_CAP_ID_VNDR:
        this.out(`${head}Vendor Specific Information: Len=${hex(cfg.u8(where + PCI_CAP_VNDR_LEN), 2)} <?>`);
        return;
      case PCI_CAP_ID_AGP:
        this.out(`${head}AGP version ${((cap >> 4) & 0xf).toString(16)}.${(cap & 0xf).toString(16)}`);
        return;
      case PCI_CAP_ID_VPD:
        this.out(`${head}Vital Product Data`);
        return;
      case PCI_CAP_ID_SLOTID:
        this.out(
          `${head}Slot ID: ${cap & 0x1f} slots, First${FLAG(cap, 0x20)}, chassis ${hex((cap >> 8) & 0xff, 2)}`,
        );
        return;
      case PCI_CAP_ID_CHSWP:
        this.out(`${head}CompactPCI hot-swap <?>`);
        return;
      case PCI_CAP_ID_PCIX:
        this.out(
          `${head}${(cfg.u8(PCI_HEADER_TYPE) & PCI_HEADER_TYPE_MASK) === PCI_HEADER_TYPE_BRIDGE ? 'PCI-X bridge device' : 'PCI-X non-bridge device'}`,
        );
        return;
      case PCI_CAP_ID_HT:
        this.out(`${head}HyperTransport: #${hex(cap >> 11, 2)}`);
        return;
      case PCI_CAP_ID_DBG:
        this.out(`${head}Debug port: BAR=${cap >> 13} offset=${hex(cap & 0x1fff, 4)}`);
        return;
      case PCI_CAP_ID_SSVID:
        this.out(
          `${head}Subsystem: ${deviceName(cfg.u16(where + 4), cfg.u16(where + 6), this.opts.numeric)}`,
        );
        return;
      case PCI_CAP_ID_SATA:
        this.out(`${head}SATA HBA v${(cap >> 4) & 0xf}.${cap & 0xf}`);
        return;
      case PCI_CAP_ID_AF:
        this.out(`${head}PCI Advanced Features`);
        return;
      case PCI_CAP_ID_EA:
        this.out(`${head}Enhanced Allocation (EA): NumEntries=${cap & 0x3f}`);
        return;
      default:
        this.out(`${head}#${hex(id, 2)} [${hex(cap, 4)}]`);
    }
  }

  private express(head: string, where: number, cap: number): void {
    const { cfg } = this;
    const vv = this.opts.verbose > 1;
    const type = (cap & PCI_EXP_FLAGS_TYPE) >> 4;
    let link = true;
    let name: string;
    switch (type) {
      case PCI_EXP_TYPE_ENDPOINT:
        name = 'Endpoint';
        break;
      case PCI_EXP_TYPE_LEG_END:
        name = 'Legacy Endpoint';
        break;
      case PCI_EXP_TYPE_ROOT_PORT:
        name = `Root Port (Slot${FLAG(cap, PCI_EXP_FLAGS_SLOT)})`;
        break;
      case PCI_EXP_TYPE_UPSTREAM:
        name = 'Upstream Port';
        break;
      case PCI_EXP_TYPE_DOWNSTREAM:
        name = `Downstream Port (Slot${FLAG(cap, PCI_EXP_FLAGS_SLOT)})`;
        break;
      case PCI_EXP_TYPE_PCI_BRIDGE:
        name = 'PCI-Express to PCI/PCI-X Bridge';
        break;
      case PCI_EXP_TYPE_PCIE_BRIDGE:
        name = `PCI/PCI-X to PCI-Express Bridge (Slot${FLAG(cap, PCI_EXP_FLAGS_SLOT)})`;
        break;
      case PCI_EXP_TYPE_RC_END:
        link = false;
        name = 'Root Complex Integrated Endpoint';
        break;
      case PCI_EXP_TYPE_RC_EC:
        link = false;
        name = 'Root Complex Event Collector';
        break;
      default:
        name = `Unknown type ${type}`;
    }
    this.out(
      `${head}Express ${vv ? `(v${cap & PCI_EXP_FLAGS_VERS}) ` : ''}${name}, MSI ${hex((cap & PCI_EXP_FLAGS_IRQ) >> 9, 2)}`,
    );
    if (!vv) return;
    const endpoint = type === PCI_EXP_TYPE_ENDPOINT || type === PCI_EXP_TYPE_LEG_END;
    const t = cfg.u32(where + PCI_EXP_DEVCAP);
    let s = `\t\tDevCap:\tMaxPayload ${128 << (t & PCI_EXP_DEVCAP_PAYLOAD)} bytes, PhantFunc ${(1 << ((t & PCI_EXP_DEVCAP_PHANTOM) >> 3)) - 1}`;
    if (endpoint)
      s += `, Latency L0s ${L0S[(t & PCI_EXP_DEVCAP_L0S) >> 6]}, L1 ${L1[(t & PCI_EXP_DEVCAP_L1) >> 9]}`;
    this.out(s);
    s = `\t\t\tExtTag${FLAG(t, PCI_EXP_DEVCAP_EXT_TAG)}`;
    if (endpoint || type === PCI_EXP_TYPE_UPSTREAM || type === PCI_EXP_TYPE_PCI_BRIDGE) {
      s += ` AttnBtn${FLAG(t, PCI_EXP_DEVCAP_ATN_BUT)} AttnInd${FLAG(t, PCI_EXP_DEVCAP_ATN_IND)} PwrInd${FLAG(t, PCI_EXP_DEVCAP_PWR_IND)}`;
    }
    s += ` RBE${FLAG(t, PCI_EXP_DEVCAP_RBER)}`;
    if (endpoint) s += ` FLReset${FLAG(t, PCI_EXP_DEVCAP_FLR)}`;
    if (
      type === PCI_EXP_TYPE_ENDPOINT ||
      type === PCI_EXP_TYPE_UPSTREAM ||
      type === PCI_EXP_TYPE_PCI_BRIDGE
    ) {
      const watts =
        ((t & PCI_EXP_DEVCAP_PWR_VAL) >>> 18) * [1, 0.1, 0.01, 0.001][(t & PCI_EXP_DEVCAP_PWR_SCL) >>> 26];
      s += ` SlotPowerLimit ${watts.toFixed(3)}W`;
    }
    this.out(s);
    const w = cfg.u16(where + PCI_EXP_DEVCTL);
    this.out(
      `\t\tDevCtl:\tCorrErr${FLAG(w, PCI_EXP_DEVCTL_CERE)} NonFatalErr${FLAG(w, PCI_EXP_DEVCTL_NFERE)} FatalErr${FLAG(w, PCI_EXP_DEVCTL_FERE)} UnsupReq${FLAG(w, PCI_EXP_DEVCTL_URRE)}`,
    );
    s = `\t\t\tRlxdOrd${FLAG(w, PCI_EXP_DEVCTL_RELAX_EN)} ExtTag${FLAG(w, PCI_EXP_DEVCTL_EXT_TAG)} PhantFunc${FLAG(w, PCI_EXP_DEVCTL_PHANTOM)} AuxPwr${FLAG(w, PCI_EXP_DEVCTL_AUX_PME)} NoSnoop${FLAG(w, PCI_EXP_DEVCTL_NOSNOOP_EN)}`;
    if (type === PCI_EXP_TYPE_PCI_BRIDGE) s += ` BrConfRtry${FLAG(w, PCI_EXP_DEVCTL_BCR_FLR)}`;
    if (endpoint && t & PCI_EXP_DEVCAP_FLR) s += ` FLReset${FLAG(w, PCI_EXP_DEVCTL_BCR_FLR)}`;
    this.out(s);
    this.out(
      `\t\t\tMaxPayload ${128 << ((w & PCI_EXP_DEVCTL_PAYLOAD) >> 5)} bytes, MaxReadReq ${128 << ((w & PCI_EXP_DEVCTL_READRQ) >> 12)} bytes`,
    );
    const st = cfg.u16(where + PCI_EXP_DEVSTA);
    this.out(
      `\t\tDevSta:\tCorrErr${FLAG(st, PCI_EXP_DEVSTA_CED)} NonFatalErr${FLAG(st, PCI_EXP_DEVSTA_NFED)} FatalErr${FLAG(st, PCI_EXP_DEVSTA_FED)} UnsupReq${FLAG(st, PCI_EXP_DEVSTA_URD)} AuxPwr${FLAG(st, PCI_EXP_DEVSTA_AUXPD)} TransPend${FLAG(st, PCI_EXP_DEVSTA_TRPND)}`,
    );
    if (!link) return;
    const lc = cfg.u32(where + PCI_EXP_LNKCAP);
    const aspm = (lc & PCI_EXP_LNKCAP_ASPMS) >> 10;
    const capSpeed = lc & PCI_EXP_LNKCAP_SLS;
    const capWidth = (lc & PCI_EXP_LNKCAP_MLW) >> 4;
    s = `\t\tLnkCap:\tPort #${lc >>> 24}, Speed ${linkSpeed(capSpeed)}, Width x${capWidth}, ASPM ${ASPM_SUPPORT[aspm]}`;
    if (aspm) {
      s += ', Exit Latency ';
      if (aspm & 1) s += `L0s ${L0S[(lc & PCI_EXP_LNKCAP_L0SEL) >> 12]}`;
      if (aspm & 2) s += `${aspm & 1 ? ', ' : ''}L1 ${L1[(lc & PCI_EXP_LNKCAP_L1EL) >> 15]}`;
    }
    this.out(s);
    this.out(
      `\t\t\tClockPM${FLAG(lc, PCI_EXP_LNKCAP_CLKPM)} Surprise${FLAG(lc, PCI_EXP_LNKCAP_SDERC)} LLActRep${FLAG(lc, PCI_EXP_LNKCAP_DLLLARC)} BwNot${FLAG(lc, PCI_EXP_LNKCAP_LBNC)} ASPMOptComp${FLAG(lc, PCI_EXP_LNKCAP_AOC)}`,
    );
    const ctl = cfg.u16(where + PCI_EXP_LNKCTL);
    s = `\t\tLnkCtl:\tASPM ${ASPM_ENABLED[ctl & PCI_EXP_LNKCTL_ASPMC]};`;
    if (type === PCI_EXP_TYPE_ROOT_PORT || endpoint || type === PCI_EXP_TYPE_PCI_BRIDGE) {
      s += ` RCB ${ctl & PCI_EXP_LNKCTL_RCB ? 128 : 64} bytes`;
    }
    this.out(`${s} Disabled${FLAG(ctl, PCI_EXP_LNKCTL_LD)} CommClk${FLAG(ctl, PCI_EXP_LNKCTL_CCC)}`);
    this.out(
      `\t\t\tExtSynch${FLAG(ctl, PCI_EXP_LNKCTL_ES)} ClockPM${FLAG(ctl, PCI_EXP_LNKCTL_CLKREQ_EN)} AutWidDis${FLAG(ctl, PCI_EXP_LNKCTL_HAWD)} BWInt${FLAG(ctl, PCI_EXP_LNKCTL_LBMIE)} AutBWInt${FLAG(ctl, PCI_EXP_LNKCTL_LABIE)}`,
    );
    const ls = cfg.u16(where + PCI_EXP_LNKSTA);
    const staSpeed = ls & PCI_EXP_LNKSTA_CLS;
    const staWidth = (ls & PCI_EXP_LNKSTA_NLW) >> 4;
    this.out(
      `\t\tLnkSta:\tSpeed ${linkSpeed(staSpeed)} (${compare(staSpeed, capSpeed)}), Width x${staWidth} (${compare(staWidth, capWidth)})`,
    );
    this.out(
      `\t\t\tTrErr${FLAG(ls, PCI_EXP_LNKSTA_LT_ERR)} Train${FLAG(ls, PCI_EXP_LNKSTA_LT)} SlotClk${FLAG(ls, PCI_EXP_LNKSTA_SLC)} DLActive${FLAG(ls, PCI_EXP_LNKSTA_DLLLA)} BWMgmt${FLAG(ls, PCI_EXP_LNKSTA_LBMS)} ABWMgmt${FLAG(ls, PCI_EXP_LNKSTA_LABS)}`,
    );
  }

  private extCaps(): void {
    const { cfg } = this;
    const walk = walkExtendedCapabilities((off) => cfg.u32(off), PCI_CFG_SPACE_EXP_SIZE);
    for (const c of walk.capabilities) {
      const head = `\tCapabilities: [${hex(c.offset, 3)}${this.opts.verbose > 1 ? ` v${c.version}` : ''}] `;
      this.out(head + extCapName(c.id, c.offset, cfg));
    }
    if (!walk.ok) {
      this.out(
        `\tCapabilities: [${hex(walk.at, 3)}] ${walk.reason === 'loop' ? '<chain looped>' : '<chain broken>'}`,
      );
    }
  }
}

// ls-caps.c: latency_l0s, latency_l1, aspm_support, aspm_enabled, link_speed, link_compare
const L0S = ['<64ns', '<128ns', '<256ns', '<512ns', '<1us', '<2us', '<4us', 'unlimited'];
const L1 = ['<1us', '<2us', '<4us', '<8us', '<16us', '<32us', '<64us', 'unlimited'];
const ASPM_SUPPORT = ['not supported', 'L0s', 'L1', 'L0s L1'];
const ASPM_ENABLED = ['Disabled', 'L0s Enabled', 'L1 Enabled', 'L0s L1 Enabled'];
function linkSpeed(s: number): string {
  return ['unknown', '2.5GT/s', '5GT/s', '8GT/s', '16GT/s', '32GT/s', '64GT/s'][s] ?? 'unknown';
}
function compare(sta: number, cap: number): string {
  return sta < cap ? 'downgraded' : sta > cap ? 'strange' : 'ok';
}

function extCapName(id: number, where: number, cfg: GuestConfig): string {
  // ls-ecaps.c show_ext_caps
  switch (id) {
    case PCI_EXT_CAP_ID_ERR:
      return 'Advanced Error Reporting';
    case PCI_EXT_CAP_ID_VC:
      return 'Virtual Channel';
    case PCI_EXT_CAP_ID_DSN: {
      const lo = cfg.u32(where + 4);
      const hi = cfg.u32(where + 8);
      const b = [
        hi >>> 24,
        (hi >>> 16) & 0xff,
        (hi >>> 8) & 0xff,
        hi & 0xff,
        lo >>> 24,
        (lo >>> 16) & 0xff,
        (lo >>> 8) & 0xff,
        lo & 0xff,
      ];
      return `Device Serial Number ${b.map((x) => hex(x, 2)).join('-')}`;
    }
    case PCI_EXT_CAP_ID_PWR:
      return 'Power Budgeting <?>';
    case PCI_EXT_CAP_ID_VNDR: {
      const h = cfg.u32(where + 4);
      return `Vendor Specific Information: ID=${hex(h & 0xffff, 4)} Rev=${(h >>> 16) & 0xf} Len=${hex(h >>> 20, 3)} <?>`;
    }
    case PCI_EXT_CAP_ID_ACS:
      return 'Access Control Services';
    case PCI_EXT_CAP_ID_ARI:
      return 'Alternative Routing-ID Interpretation (ARI)';
    case PCI_EXT_CAP_ID_ATS:
      return 'Address Translation Service (ATS)';
    case PCI_EXT_CAP_ID_SRIOV:
      return 'Single Root I/O Virtualization (SR-IOV)';
    case PCI_EXT_CAP_ID_PRI:
      return 'Page Request Interface (PRI)';
    case PCI_EXT_CAP_ID_REBAR:
      return 'Physical Resizable BAR';
    case PCI_EXT_CAP_ID_LTR:
      return 'Latency Tolerance Reporting';
    case PCI_EXT_CAP_ID_SECPCI:
      return 'Secondary PCI Express';
    case PCI_EXT_CAP_ID_PASID:
      return 'Process Address Space ID (PASID)';
    case PCI_EXT_CAP_ID_L1SS:
      return 'L1 PM Substates';
    case PCI_EXT_CAP_ID_PTM:
      return 'Precision Time Measurement';
    case PCI_EXT_CAP_ID_DVSEC: {
      const h1 = cfg.u32(where + 4);
      const h2 = cfg.u16(where + 8);
      return `Designated Vendor-Specific: Vendor=${hex(h1 & 0xffff, 4)} ID=${hex(h2, 4)} Rev=${(h1 >>> 16) & 0xf} Len=${h1 >>> 20} <?>`;
    }
    case PCI_EXT_CAP_ID_DOE:
      return 'Data Object Exchange';
    default:
      return `Extended Capability ID ${id ? `0x${id.toString(16)}` : '0'}`;
  }
}

/** The lspci text for the probed functions, in bus/device/function order. */
export function renderLspci(
  guest: Pick<GuestView, 'configRead'>,
  devices: readonly ProbedDevice[],
  opts: LspciOptions,
): string {
  const sorted = [...devices].sort(
    (a, b) =>
      a.address.bus - b.address.bus ||
      a.address.device - b.address.device ||
      a.address.function - b.address.function,
  );
  const out: string[] = [];
  for (const d of sorted) {
    const p = new Printer(new GuestConfig(guest, d.address), d, opts);
    if (opts.verbose) {
      p.verbose();
      p.lines.push('');
    } else p.terse();
    out.push(...p.lines);
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

export interface LspciJsonDevice {
  slot: string;
  classCode: string;
  className: string;
  vendorId: string;
  deviceId: string;
  subsystemVendorId: string;
  subsystemId: string;
  revision: number;
  bars: readonly { index: number; kind: string; prefetchable: boolean; address: string; size: number }[];
  capabilities: readonly { offset: string; id: string }[];
  extendedCapabilities: readonly { offset: string; id: string; version: number }[];
  /** The first 256 configuration bytes as hex, as `lspci -xxx` dumps them. */
  config: string;
}

/** The same facts as data, for --json. */
export function lspciJson(
  guest: Pick<GuestView, 'configRead'>,
  devices: readonly ProbedDevice[],
): LspciJsonDevice[] {
  return devices.map((d) => {
    const cfg = new GuestConfig(guest, d.address);
    const hasExp = d.capabilities.some((c) => c.id === PCI_CAP_ID_EXP || c.id === PCI_CAP_ID_PCIX);
    const ext = hasExp
      ? walkExtendedCapabilities((off) => cfg.u32(off), PCI_CFG_SPACE_EXP_SIZE).capabilities
      : [];
    const cls = cfg.u16(PCI_CLASS_DEVICE);
    return {
      slot: formatSlot(d.address),
      classCode: hex((cls << 8) | cfg.u8(PCI_CLASS_PROG), 6),
      className: className(cls),
      vendorId: hex(cfg.u16(PCI_VENDOR_ID), 4),
      deviceId: hex(cfg.u16(PCI_DEVICE_ID), 4),
      subsystemVendorId: hex(cfg.u16(PCI_SUBSYSTEM_VENDOR_ID), 4),
      subsystemId: hex(cfg.u16(PCI_SUBSYSTEM_ID), 4),
      revision: cfg.u8(PCI_REVISION_ID),
      bars: d.bars.map((b) => ({
        index: b.index,
        kind: b.kind,
        prefetchable: b.prefetchable,
        address: `0x${b.address.toString(16)}`,
        size: b.size,
      })),
      capabilities: d.capabilities.map((c) => ({ offset: `0x${hex(c.offset, 2)}`, id: `0x${hex(c.id, 2)}` })),
      extendedCapabilities: ext.map((c) => ({
        offset: `0x${hex(c.offset, 3)}`,
        id: `0x${hex(c.id, 4)}`,
        version: c.version,
      })),
      config: Buffer.from(cfg.standard()).toString('hex'),
    };
  });
}
