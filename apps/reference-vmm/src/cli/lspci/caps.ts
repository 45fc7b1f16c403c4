/**
 * The standard capability list as pciutils 3.9 prints it (ls-caps.c show_caps and its cap_*
 * decoders, ls-caps-vendor.c); PCI Express lives in express.ts, the extended list in ecaps.ts.
 * Offsets and bits are linux/pci_regs.h's (pciutils' lib/header.h).
 */
import { CapabilityWalk } from '@vfiokit/core';
import { msiLayout } from '@vfiokit/core/host';
import { BITS, FLAG, fetch, hex, type Printer } from './context.js';
import { showExtCaps } from './ecaps.js';
import { express } from './express.js';
import { headerType, PCI_HEADER_TYPE_BRIDGE, PCI_HEADER_TYPE_NORMAL } from './header.js';
import { subsystemName } from './names.js';

/** The cursor show_caps walks with, by pciutils' rules (never two walks at once: no callbacks). */
const walk = new CapabilityWalk();

/** show_caps: walk the list from the pointer at `pointer`; then the extended list when a PCI Express or PCI-X capability was seen. */
export function showCaps(p: Printer, pointer: number): void {
  const { cfg } = p;
  let canHaveExt = false;
  let type = -1;
  // The walk checks STATUS.CAP_LIST, clears each pointer's low bits and stops at a loop or ID 0xff.
  const w = walk.begin(cfg, cfg.size, 'pciutils', pointer);
  for (;;) {
    const more = w.next();
    if (!more && w.problem === undefined) break;
    const where = more ? w.offset : w.at;
    if (!fetch(cfg, where, 4)) {
      p.out('\tCapabilities: <access denied>');
      break;
    }
    const head = `\tCapabilities: [${hex(where, 2)}] `;
    if (!more) {
      p.out(`${head}<chain ${w.problem === 'loop' ? 'looped' : 'broken'}>`);
      break;
    }
    const id = w.id;
    const cap = cfg.u16(where + 2);
    switch (id) {
      case 0x00:
        p.out(`${head}Null`);
        break;
      case 0x01:
        pm(p, head, where, cap);
        break;
      case 0x02:
        agp(p, head, where, cap);
        break;
      case 0x03:
        p.out(`${head}Vital Product Data`);
        // ls-vpd.c reads VPD through the OS, which lspci has no way to here (nor from a dump)
        if (p.opts.verbose > 1) p.out('\t\tNot readable');
        break;
      case 0x04:
        p.out(`${head}Slot ID: ${cap & 0x1f} slots, First${FLAG(cap, 0x20)}, chassis ${hex(cap >> 8, 2)}`);
        break;
      case 0x05:
        msi(p, head, where, cap);
        break;
      case 0x06:
        p.out(`${head}CompactPCI hot-swap <?>`);
        break;
      case 0x07:
        pcix(p, head, where);
        canHaveExt = true;
        break;
      case 0x08:
        hyperTransport(p, head, where, cap);
        break;
      case 0x09:
        vendor(p, head, where, cap);
        break;
      case 0x0a:
        p.out(`${head}Debug port: BAR=${cap >> 13} offset=${hex(cap & 0x1fff, 4)}`);
        break;
      case 0x0b:
        p.out(`${head}CompactPCI central resource control <?>`);
        break;
      case 0x0c:
        p.out(`${head}Hot-plug capable`);
        break;
      case 0x0d:
        ssvid(p, head, where);
        break;
      case 0x0e:
        p.out(`${head}AGP3 <?>`);
        break;
      case 0x0f:
        p.out(`${head}Secure device <?>`);
        break;
      case 0x10:
        type = express(p, head, where, cap);
        canHaveExt = true;
        break;
      case 0x11:
        msix(p, head, where, cap);
        break;
      case 0x12:
        sata(p, head, where, cap);
        break;
      case 0x13:
        advancedFeatures(p, head, where);
        break;
      case 0x14:
        enhancedAllocation(p, head, where, cap);
        break;
      default:
        p.out(`${head}Capability ID ${id ? `0x${id.toString(16)}` : '0'} [${hex(cap, 4)}]`);
    }
  }
  if (canHaveExt) showExtCaps(p, type);
}

function pm(p: Printer, head: string, where: number, cap: number): void {
  p.out(`${head}Power Management version ${cap & 0x7}`);
  if (p.opts.verbose < 2) return;
  // ls-caps.c pm_aux_current: mA by the Aux_Current field
  const aux = [0, 55, 100, 160, 220, 270, 320, 375][(cap & 0x01c0) >> 6];
  p.out(
    `\t\tFlags: PMEClk${FLAG(cap, 0x8)} DSI${FLAG(cap, 0x20)} D1${FLAG(cap, 0x200)} D2${FLAG(cap, 0x400)} AuxCurrent=${aux}mA PME(D0${FLAG(cap, 0x800)},D1${FLAG(cap, 0x1000)},D2${FLAG(cap, 0x2000)},D3hot${FLAG(cap, 0x4000)},D3cold${FLAG(cap, 0x8000)})`,
  );
  // PCI_PM_SIZEOF 8: control/status, bridge extensions, data
  if (!fetch(p.cfg, where + 4, 4)) return;
  const t = p.cfg.u16(where + 4);
  p.out(
    `\t\tStatus: D${t & 0x3} NoSoftRst${FLAG(t, 0x8)} PME-Enable${FLAG(t, 0x100)} DSel=${(t & 0x1e00) >> 9} DScale=${(t & 0x6000) >> 13} PME${FLAG(t, 0x8000)}`,
  );
  const b = p.cfg.u8(where + 6);
  if (b) p.out(`\t\tBridge: PM${FLAG(b, 0x80)} B3${FLAG(~b, 0x40)}`);
}

function agpRate(rate: number, agp3: boolean): string {
  const parts: string[] = [];
  for (let i = 0; i <= 2; i++) if (rate & (1 << i)) parts.push(`x${1 << (i + (agp3 ? 2 : 0))}`);
  return parts.length ? parts.join(',') : '<none>';
}

function agp(p: Printer, head: string, where: number, cap: number): void {
  const ver = (cap >> 4) & 0xf;
  p.out(`${head}AGP version ${ver.toString(16)}.${(cap & 0xf).toString(16)}`);
  if (p.opts.verbose < 2 || !fetch(p.cfg, where + 4, 8)) return;
  let t = p.cfg.u32(where + 4);
  const agp3 = ver >= 3 && (t & 0x8) !== 0;
  p.out(
    `\t\tStatus: RQ=${(t >>> 24) + 1} Iso${FLAG(t, 0x10000)} ArqSz=${(t & 0xe000) >> 13} Cal=${(t & 0x1c00) >> 10} SBA${FLAG(t, 0x200)} ITACoh${FLAG(t, 0x100)} GART64${FLAG(t, 0x80)} HTrans${FLAG(t, 0x40)} 64bit${FLAG(t, 0x20)} FW${FLAG(t, 0x10)} AGP3${FLAG(t, 0x8)} Rate=${agpRate(t & 7, agp3)}`,
  );
  t = p.cfg.u32(where + 8);
  p.out(
    `\t\tCommand: RQ=${(t >>> 24) + 1} ArqSz=${(t & 0xe000) >> 13} Cal=${(t & 0x1c00) >> 10} SBA${FLAG(t, 0x200)} AGP${FLAG(t, 0x100)} GART64${FLAG(t, 0x80)} 64bit${FLAG(t, 0x20)} FW${FLAG(t, 0x10)} Rate=${agpRate(t & 7, agp3)}`,
  );
}

function pcix(p: Printer, head: string, where: number): void {
  const htype = headerType(p);
  if (htype === PCI_HEADER_TYPE_NORMAL) {
    p.out(`${head}PCI-X non-bridge device`);
    if (p.opts.verbose < 2 || !fetch(p.cfg, where + 4, 4)) return;
    const maxOutstanding = [1, 2, 3, 4, 8, 12, 16, 32];
    const command = p.cfg.u16(where + 2);
    const status = p.cfg.u32(where + 4);
    p.out(
      `\t\tCommand: DPERE${FLAG(command, 0x1)} ERO${FLAG(command, 0x2)} RBC=${1 << (9 + ((command & 0xc) >> 2))} OST=${maxOutstanding[(command & 0x70) >> 4]}`,
    );
    p.out(
      `\t\tStatus: Dev=${hex((status & 0xff00) >> 8, 2)}:${hex((status & 0xf8) >> 3, 2)}.${status & 0x7} 64bit${FLAG(status, 0x10000)} 133MHz${FLAG(status, 0x20000)} SCD${FLAG(status, 0x40000)} USC${FLAG(status, 0x80000)} DC=${status & 0x100000 ? 'bridge' : 'simple'} DMMRBC=${1 << (9 + ((status & 0x600000) >>> 21))} DMOST=${maxOutstanding[(status & 0x3800000) >>> 23]} DMCRS=${1 << (3 + ((status & 0x1c000000) >>> 26))} RSCEM${FLAG(status, 0x20000000)} 266MHz${FLAG(status, 0x40000000)} 533MHz${FLAG(status, 0x80000000)}`,
    );
  } else if (htype === PCI_HEADER_TYPE_BRIDGE) {
    p.out(`${head}PCI-X bridge device`);
    if (p.opts.verbose < 2 || !fetch(p.cfg, where + 4, 12)) return;
    const freq = ['conv', '66MHz', '100MHz', '133MHz', '?4', '?5', '?6', '?7'];
    const sec = p.cfg.u16(where + 2);
    p.out(
      `\t\tSecondary Status: 64bit${FLAG(sec, 0x1)} 133MHz${FLAG(sec, 0x2)} SCD${FLAG(sec, 0x4)} USC${FLAG(sec, 0x8)} SCO${FLAG(sec, 0x10)} SRD${FLAG(sec, 0x20)} Freq=${freq[(sec & 0x1c0) >> 6]}`,
    );
    const status = p.cfg.u32(where + 4);
    p.out(
      `\t\tStatus: Dev=${hex((status & 0xff00) >> 8, 2)}:${hex((status & 0xf8) >> 3, 2)}.${status & 0x7} 64bit${FLAG(status, 0x10000)} 133MHz${FLAG(status, 0x20000)} SCD${FLAG(status, 0x40000)} USC${FLAG(status, 0x80000)} SCO${FLAG(status, 0x100000)} SRD${FLAG(status, 0x200000)}`,
    );
    const up = p.cfg.u32(where + 8);
    p.out(`\t\tUpstream: Capacity=${up & 0xffff} CommitmentLimit=${(up >>> 16) & 0xffff}`);
    const down = p.cfg.u32(where + 12);
    p.out(`\t\tDownstream: Capacity=${down & 0xffff} CommitmentLimit=${(down >>> 16) & 0xffff}`);
  } else {
    // ls-caps.c cap_pcix prints nothing for other header types, not even the end of the line
    p.partial(head);
  }
}

const HT_WIDTH = ['8bit', '16bit', '[2]', '32bit', '2bit', '4bit', '[6]', 'N/C'];
const HT_FREQ = [
  '200MHz',
  '300MHz',
  '400MHz',
  '500MHz',
  '600MHz',
  '800MHz',
  '1.0GHz',
  '1.2GHz',
  '1.4GHz',
  '1.6GHz',
  '[a]',
  '[b]',
  '[c]',
  '[d]',
  '[e]',
  'Vend',
];

function htLinkControl(w: number, ext: boolean): string {
  let s = `CFlE${FLAG(w, 0x2)} CST${FLAG(w, 0x4)} CFE${FLAG(w, 0x8)} <LkFail${FLAG(w, 0x10)} Init${FLAG(w, 0x20)} EOC${FLAG(w, 0x40)} TXO${FLAG(w, 0x80)} <CRCErr=${((w & 0xf00) >> 8).toString(16)}`;
  if (ext)
    s += ` IsocEn${FLAG(w, 0x1000)} LSEn${FLAG(w, 0x2000)} ExtCTL${FLAG(w, 0x4000)} 64b${FLAG(w, 0x8000)}`;
  return s;
}

function htLinkConfig(w: number, ext: boolean): string {
  const [mlwi, mlwo, lwi, lwo] = [w & 7, (w & 0x70) >> 4, (w & 0x700) >> 8, (w & 0x7000) >> 12].map(
    (x) => HT_WIDTH[x],
  );
  return ext
    ? `MLWI=${mlwi} DwFcIn${FLAG(w, 0x8)} MLWO=${mlwo} DwFcOut${FLAG(w, 0x80)} LWI=${lwi} DwFcInEn${FLAG(w, 0x800)} LWO=${lwo} DwFcOutEn${FLAG(w, 0x8000)}`
    : `MLWI=${mlwi} MLWO=${mlwo} LWI=${lwi} LWO=${lwo}`;
}

const htLinkError = (b: number) =>
  `<Prot${FLAG(b, 0x10)} <Ovfl${FLAG(b, 0x20)} <EOC${FLAG(b, 0x40)} CTLTm${FLAG(b, 0x80)}`;
const htFreqCap = (b: number) =>
  `200MHz${FLAG(b, 0x1)} 300MHz${FLAG(b, 0x2)} 400MHz${FLAG(b, 0x4)} 500MHz${FLAG(b, 0x8)} 600MHz${FLAG(b, 0x10)} 800MHz${FLAG(b, 0x20)} 1.0GHz${FLAG(b, 0x40)} 1.2GHz${FLAG(b, 0x80)} 1.4GHz${FLAG(b, 0x100)} 1.6GHz${FLAG(b, 0x200)} Vend${FLAG(b, 0x8000)}`;
const htErrorHandling = (w: number) =>
  `PFlE${FLAG(w, 0x1)} OFlE${FLAG(w, 0x2)} PFE${FLAG(w, 0x4)} OFE${FLAG(w, 0x8)} EOCFE${FLAG(w, 0x10)} RFE${FLAG(w, 0x20)} CRCFE${FLAG(w, 0x40)} SERRFE${FLAG(w, 0x80)} CF${FLAG(w, 0x100)} RE${FLAG(w, 0x200)} PNFE${FLAG(w, 0x400)} ONFE${FLAG(w, 0x800)} EOCNFE${FLAG(w, 0x1000)} RNFE${FLAG(w, 0x2000)} CRCNFE${FLAG(w, 0x4000)} SERRNFE${FLAG(w, 0x8000)}`;
const htRevision = (rid: number) => `${(rid & 0xe0) >> 5}.${String(rid & 0x1f).padStart(2, '0')}`;

/** cap_ht_pri: a slave or primary interface (the registers of PCI_HT_PRI_*). */
function htPrimary(p: Printer, head: string, where: number, cmd: number): void {
  const { cfg } = p;
  p.out(`${head}HyperTransport: Slave or Primary Interface`);
  if (p.opts.verbose < 2 || !fetch(cfg, where + 4, 0x1c - 4)) return;
  const rid = cfg.u8(where + 0xc);
  const ext = rid >= 0x22;
  if (rid < 0x22 && rid > 0x11) p.out('\t\t!!! Possibly incomplete decoding');
  p.out(
    `\t\tCommand: BaseUnitID=${cmd & 0x1f} UnitCnt=${(cmd & 0x3e0) >> 5} MastHost${FLAG(cmd, 0x400)} DefDir${FLAG(cmd, 0x800)}${ext ? ` DUL${FLAG(cmd, 0x1000)}` : ''}`,
  );
  p.out(`\t\tLink Control 0: ${htLinkControl(cfg.u16(where + 4), ext)}`);
  p.out(`\t\tLink Config 0: ${htLinkConfig(cfg.u16(where + 6), ext)}`);
  p.out(`\t\tLink Control 1: ${htLinkControl(cfg.u16(where + 8), ext)}`);
  p.out(`\t\tLink Config 1: ${htLinkConfig(cfg.u16(where + 0xa), ext)}`);
  p.out(`\t\tRevision ID: ${htRevision(rid)}`);
  if (!ext) return;
  const lfrer0 = cfg.u8(where + 0xd);
  p.out(`\t\tLink Frequency 0: ${HT_FREQ[lfrer0 & 0xf]}`);
  p.out(`\t\tLink Error 0: ${htLinkError(lfrer0)}`);
  p.out(`\t\tLink Frequency Capability 0: ${htFreqCap(cfg.u8(where + 0xe))}`);
  const ftr = cfg.u8(where + 0x10);
  p.out(
    `\t\tFeature Capability: IsocFC${FLAG(ftr, 0x1)} LDTSTOP${FLAG(ftr, 0x2)} CRCTM${FLAG(ftr, 0x4)} ECTLT${FLAG(ftr, 0x8)} 64bA${FLAG(ftr, 0x10)} UIDRD${FLAG(ftr, 0x20)}`,
  );
  const lfrer1 = cfg.u8(where + 0x11);
  p.out(`\t\tLink Frequency 1: ${HT_FREQ[lfrer1 & 0xf]}`);
  p.out(`\t\tLink Error 1: ${htLinkError(lfrer1)}`);
  p.out(`\t\tLink Frequency Capability 1: ${htFreqCap(cfg.u8(where + 0x12))}`);
  p.out(`\t\tError Handling: ${htErrorHandling(cfg.u16(where + 0x16))}`);
  p.out(
    `\t\tPrefetchable memory behind bridge Upper: ${hex(cfg.u8(where + 0x18), 2)}-${hex(cfg.u8(where + 0x19), 2)}`,
  );
  p.out(`\t\tBus Number: ${hex(cfg.u8(where + 0x1a), 2)}`);
}

/** cap_ht_sec: a host or secondary interface (PCI_HT_SEC_*). */
function htSecondary(p: Printer, head: string, where: number, cmd: number): void {
  const { cfg } = p;
  p.out(`${head}HyperTransport: Host or Secondary Interface`);
  if (p.opts.verbose < 2 || !fetch(cfg, where + 4, 0x18 - 4)) return;
  const rid = cfg.u8(where + 8);
  const ext = rid >= 0x22;
  if (rid < 0x22 && rid > 0x11) p.out('\t\t!!! Possibly incomplete decoding');
  p.out(
    ext
      ? `\t\tCommand: WarmRst${FLAG(cmd, 0x1)} DblEnd${FLAG(cmd, 0x2)} DevNum=${(cmd & 0x7c) >> 2} ChainSide${FLAG(cmd, 0x80)} HostHide${FLAG(cmd, 0x100)} Slave${FLAG(cmd, 0x400)} <EOCErr${FLAG(cmd, 0x800)} DUL${FLAG(cmd, 0x1000)}`
      : `\t\tCommand: WarmRst${FLAG(cmd, 0x1)} DblEnd${FLAG(cmd, 0x2)}`,
  );
  p.out(`\t\tLink Control: ${htLinkControl(cfg.u16(where + 4), ext)}`);
  p.out(`\t\tLink Config: ${htLinkConfig(cfg.u16(where + 6), ext)}`);
  p.out(`\t\tRevision ID: ${htRevision(rid)}`);
  if (!ext) return;
  const lfrer = cfg.u8(where + 9);
  p.out(`\t\tLink Frequency: ${HT_FREQ[lfrer & 0xf]}`);
  p.out(`\t\tLink Error: ${htLinkError(lfrer)}`);
  p.out(`\t\tLink Frequency Capability: ${htFreqCap(cfg.u8(where + 0xa))}`);
  const ftr = cfg.u16(where + 0xc);
  p.out(
    `\t\tFeature Capability: IsocFC${FLAG(ftr, 0x1)} LDTSTOP${FLAG(ftr, 0x2)} CRCTM${FLAG(ftr, 0x4)} ECTLT${FLAG(ftr, 0x8)} 64bA${FLAG(ftr, 0x10)} UIDRD${FLAG(ftr, 0x20)} ExtRS${FLAG(ftr, 0x100)} UCnfE${FLAG(ftr, 0x200)}`,
  );
  if (ftr & 0x100) {
    p.out(`\t\tError Handling: ${htErrorHandling(cfg.u16(where + 0x12))}`);
    p.out(
      `\t\tPrefetchable memory behind bridge Upper: ${hex(cfg.u8(where + 0x14), 2)}-${hex(cfg.u8(where + 0x15), 2)}`,
    );
  }
}

/** cap_ht: the interface types in full, the other HyperTransport capabilities by name. */
function hyperTransport(p: Printer, head: string, where: number, cmd: number): void {
  if ((cmd & 0xe000) === 0x0000) {
    htPrimary(p, head, where, cmd);
    return;
  }
  if ((cmd & 0xe000) === 0x2000) {
    htSecondary(p, head, where, cmd);
    return;
  }
  const type = cmd & 0xf800;
  const names: Record<number, string> = {
    16384: 'Switch',
    32768: 'Interrupt Discovery and Configuration',
    34816: `Revision ID: ${htRevision(cmd)}`,
    36864: 'UnitID Clumping',
    38912: 'Extended Configuration Space Access',
    40960: 'Address Mapping',
    43008: `MSI Mapping Enable${FLAG(cmd, 0x1)} Fixed${FLAG(cmd, 0x2)}`,
    45056: 'DirectRoute',
    47104: 'VCSet',
    49152: 'Retry Mode',
    51200: 'X86 (reserved)',
  };
  p.out(`${head}HyperTransport: ${names[type] ?? `#${hex(type >> 11, 2)}`}`);
  if (type === 0xa800 && p.opts.verbose >= 2 && !(cmd & 0x2) && fetch(p.cfg, where + 4, 8)) {
    const lo = BigInt((p.cfg.u32(where + 4) & 0xfff00000) >>> 0);
    const base = (BigInt(p.cfg.u32(where + 8)) << 32n) | lo;
    p.out(`\t\tMapping Address Base: ${base.toString(16).padStart(16, '0')}`);
  }
}

function msi(p: Printer, head: string, where: number, cap: number): void {
  p.out(
    `${head}MSI: Enable${FLAG(cap, 0x1)} Count=${1 << ((cap & 0x70) >> 4)}/${1 << ((cap & 0xe) >> 1)} Maskable${FLAG(cap, 0x100)} 64bit${FLAG(cap, 0x80)}`,
  );
  if (p.opts.verbose < 2) return;
  const layout = msiLayout(cap);
  // the address from PCI_MSI_ADDRESS_LO (4) through the data word
  if (!fetch(p.cfg, where + 4, layout.data + 2 - 4)) return;
  const hi = layout.addr64 ? hex(p.cfg.u32(where + 8), 8) : '';
  p.out(`\t\tAddress: ${hi}${hex(p.cfg.u32(where + 4), 8)}  Data: ${hex(p.cfg.u16(where + layout.data), 4)}`);
  if (!layout.perVectorMask || !fetch(p.cfg, where + layout.mask, 8)) return;
  p.out(
    `\t\tMasking: ${hex(p.cfg.u32(where + layout.mask), 8)}  Pending: ${hex(p.cfg.u32(where + layout.pending), 8)}`,
  );
}

function msix(p: Printer, head: string, where: number, cap: number): void {
  p.out(`${head}MSI-X: Enable${FLAG(cap, 0x8000)} Count=${(cap & 0x7ff) + 1} Masked${FLAG(cap, 0x4000)}`);
  if (p.opts.verbose < 2 || !fetch(p.cfg, where + 4, 8)) return;
  const table = p.cfg.u32(where + 4);
  p.out(`\t\tVector table: BAR=${table & 7} offset=${hex(table & ~7, 8)}`);
  const pba = p.cfg.u32(where + 8);
  p.out(`\t\tPBA: BAR=${pba & 7} offset=${hex(pba & ~7, 8)}`);
}

/** ls-caps-vendor.c: virtio's vendor capabilities are decoded, any other vendor's shows its length. */
function vendor(p: Printer, head: string, where: number, cap: number): void {
  const vendorId = p.cfg.u16(0x00);
  const deviceId = p.cfg.u16(0x02);
  if (vendorId === 0x1af4 && deviceId >= 0x1000 && deviceId <= 0x107f) {
    const length = cap & 0xff;
    const type = (cap >> 8) & 0xff;
    const names: Record<number, string> = { 1: 'CommonCfg', 2: 'Notify', 3: 'ISR', 4: 'DeviceCfg' };
    if (length >= 16 && fetch(p.cfg, where, length) && names[type]) {
      p.out(`${head}Vendor Specific Information: VirtIO: ${names[type]}`);
      if (p.opts.verbose < 2) return;
      let s = `\t\tBAR=${p.cfg.u8(where + 4)} offset=${hex(p.cfg.u32(where + 8), 8)} size=${hex(p.cfg.u32(where + 12), 8)}`;
      if (type === 2 && length >= 20) s += ` multiplier=${hex(p.cfg.u32(where + 16), 8)}`;
      p.out(s);
      return;
    }
  }
  p.out(`${head}Vendor Specific Information: Len=${hex(cap & 0xff, 2)} <?>`);
}

function ssvid(p: Printer, head: string, where: number): void {
  if (!fetch(p.cfg, where, 8)) return;
  const ids = p.opts.ids ?? null;
  const name = subsystemName(
    ids,
    p.opts.numeric,
    p.cfg.u16(0x00),
    p.cfg.u16(0x02),
    p.cfg.u16(where + 4),
    p.cfg.u16(where + 6),
    256,
  );
  p.out(`${head}Subsystem: ${name}`);
}

function sata(p: Printer, head: string, where: number, cap: number): void {
  let s = `${head}SATA HBA v${BITS(cap, 4, 4)}.${BITS(cap, 0, 4)}`;
  if (p.opts.verbose < 2 || !fetch(p.cfg, where + 4, 4)) {
    p.out(s);
    return;
  }
  const bars = p.cfg.u32(where + 4);
  const bar = BITS(bars, 0, 4);
  if (bar >= 4 && bar <= 9) s += ` BAR${bar - 4} Offset=${hex(BITS(bars, 4, 20), 8)}`;
  else if (bar === 15) s += ' InCfgSpace';
  else s += ` BAR??${bar}`;
  p.out(s);
}

function advancedFeatures(p: Printer, head: string, where: number): void {
  p.out(`${head}PCI Advanced Features`);
  if (p.opts.verbose < 2 || !fetch(p.cfg, where + 3, 3)) return;
  const capReg = p.cfg.u8(where + 3);
  p.out(`\t\tAFCap: TP${FLAG(capReg, 0x1)} FLR${FLAG(capReg, 0x2)}`);
  p.out(`\t\tAFCtrl: FLR${FLAG(p.cfg.u8(where + 4), 0x1)}`);
  p.out(`\t\tAFStatus: TP${FLAG(p.cfg.u8(where + 5), 0x1)}`);
}

function eaProperty(pp: number, secondary: boolean): string | undefined {
  const names: Record<number, string> = {
    0: 'memory space, non-prefetchable',
    1: 'memory space, prefetchable',
    2: 'I/O space',
    3: 'VF memory space, prefetchable',
    4: 'VF memory space, non-prefetchable',
    5: 'allocation behind bridge, non-prefetchable memory',
    6: 'allocation behind bridge, prefetchable memory',
    7: 'allocation behind bridge, I/O space',
    253: 'memory space resource unavailable for use',
    254: 'I/O space resource unavailable for use',
    255: secondary
      ? 'entry unavailable for use, PrimaryProperties should be used'
      : 'entry unavailable for use',
  };
  return names[pp];
}

function enhancedAllocation(p: Printer, head: string, where: number, cap: number): void {
  const { cfg } = p;
  let entryBase = where + 4;
  const count = BITS(cap, 0, 6);
  let s = `${head}Enhanced Allocation (EA): NumEntries=${count}`;
  if (headerType(p) === PCI_HEADER_TYPE_BRIDGE) {
    entryBase += 4;
    if (!fetch(cfg, where + 4, 2)) {
      p.out(s);
      return;
    }
    s += `, secondary=${cfg.u8(where + 4)}, subordinate=${cfg.u8(where + 5)}`;
  }
  p.out(s);
  if (p.opts.verbose < 2) return;
  for (let entry = 0; entry < count; entry++) {
    if (!fetch(cfg, entryBase, 4)) return;
    const h = cfg.u32(entryBase);
    const es = BITS(h, 0, 3);
    const bei = BITS(h, 4, 4);
    const pp = BITS(h, 8, 8);
    const sp = BITS(h, 16, 8);
    if (!fetch(cfg, entryBase + 4, es * 4)) return;
    p.out(`\t\tEntry ${entry}: Enable${FLAG(h, 0x80000000)} Writable${FLAG(h, 0x40000000)} EntrySize=${es}`);
    const beiText =
      bei <= 5
        ? `BAR ${bei}`
        : bei === 6
          ? 'resource behind function'
          : bei === 7
            ? 'not indicated'
            : bei === 8
              ? 'expansion ROM'
              : bei <= 14
                ? `VF-BAR ${bei - 9}`
                : 'reserved';
    p.out(`\t\t\t BAR Equivalent Indicator: ${beiText}`);
    p.out(`\t\t\t PrimaryProperties: ${eaProperty(pp, false) ?? `[${hex(pp, 2)}]`}`);
    p.out(`\t\t\t SecondaryProperties: ${eaProperty(sp, true) ?? `[${hex(sp, 2)}]`}`);
    let base = cfg.u32(entryBase + 4);
    const baseHigh = (base & 2) !== 0;
    base = (base & ~3) >>> 0;
    let maxOffset = cfg.u32(entryBase + 8);
    const maxHigh = (maxOffset & 2) !== 0;
    maxOffset = (maxOffset | 3) >>> 0;
    let maxHighPos = entryBase + 12;
    let b = '\t\t\t Base: ';
    if (baseHigh) {
      b += cfg.u32(entryBase + 12).toString(16);
      maxHighPos += 4;
    }
    p.out(b + hex(base, 8));
    let m = '\t\t\t MaxOffset: ';
    if (maxHigh) m += cfg.u32(maxHighPos).toString(16);
    p.out(m + hex(maxOffset, 8));
    entryBase += 4 + 4 * es;
  }
}
