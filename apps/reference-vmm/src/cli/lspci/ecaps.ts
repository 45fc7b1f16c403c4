/**
 * Extended capabilities (offset 0x100 on) as pciutils 3.9 prints them (ls-ecaps.c
 * show_ext_caps and its cap_* decoders). Register offsets and fields are linux/pci_regs.h's
 * PCI_ERR_*, PCI_ACS_*, PCI_IOV_*... (pciutils' lib/header.h). A CXL designated-vendor
 * capability prints its header line with `<?>`: the CXL register decode is not carried over.
 */
import { ExtendedCapabilityWalk } from '@vfiokit/core';
import { BITS, FLAG, fetch, hex, type Printer } from './context.js';
import { multicast, rcec, rootComplexLink, virtualChannel } from './ecaps-links.js';

// PCI_EXP_TYPE_*: the port types whose AER capability has root registers
const ROOT_PORT = 0x4;
const ROOT_EC = 0xa;

/** The extended capability names ls-ecaps.c prints with nothing decoded after them. */
const NAME_ONLY: Readonly<Record<number, string>> = {
  0: 'Null',
  4: 'Power Budgeting <?>',
  6: 'Root Complex Internal Link <?>',
  8: 'Multi-Function Virtual Channel <?>',
  10: 'Root Complex Register Block <?>',
  17: 'Multi-Root I/O Virtualization <?>',
  22: 'Dynamic Power Allocation <?>',
  26: 'Protocol Multiplexing <?>',
  28: 'LN Requester <?>',
  32: 'PCI Express over M_PHY <?>',
  33: 'FRS Queueing <?>',
  34: 'Readiness Time Reporting <?>',
  37: 'Data Link Feature <?>',
  38: 'Physical Layer 16.0 GT/s <?>',
  39: 'Lane Margining at the Receiver <?>',
  40: 'Hierarchy ID <?>',
  41: 'Native PCIe Enclosure Management <?>',
};

/** The cursor show_ext_caps walks with, by pciutils' rules. */
const walk = new ExtendedCapabilityWalk();

/** show_ext_caps: follow the chain from 0x100 until a zero or all-ones header or a loop. */
export function showExtCaps(p: Printer, type: number): void {
  const { cfg } = p;
  const w = walk.begin(cfg, cfg.size, 'pciutils');
  for (;;) {
    const more = w.next();
    if (!more && w.problem === undefined) break;
    const where = more ? w.offset : w.at;
    if (!fetch(cfg, where, 4)) break;
    const version = more ? w.version : (cfg.u32(where) >>> 16) & 0xf;
    const head = `\tCapabilities: [${hex(where, 3)}${p.opts.verbose > 1 ? ` v${version}` : ''}] `;
    if (!more) {
      p.out(`${head}<chain looped>`);
      break;
    }
    decode(p, head, w.id, where, type);
  }
}

type Decoder = (p: Printer, head: string, where: number, type: number) => void;

/** The decoders by extended capability ID; any other ID prints its name or its number. */
const DECODERS: Readonly<Record<number, Decoder>> = {
  1: aer,
  2: virtualChannel,
  9: virtualChannel,
  3: dsn,
  5: rootComplexLink,
  7: rcec,
  11: vendor,
  13: acs,
  14: ari,
  15: ats,
  16: sriov,
  18: multicast,
  19: pri,
  21: (p, head, where) => rebar(p, head, where, false),
  23: tph,
  24: ltr,
  25: secondary,
  27: pasid,
  29: dpc,
  30: l1pm,
  31: ptm,
  35: dvsec,
  36: (p, head, where) => rebar(p, head, where, true),
  46: doe,
};

function decode(p: Printer, head: string, id: number, where: number, type: number): void {
  const decoder = DECODERS[id];
  if (decoder) decoder(p, head, where, type);
  else p.out(head + (NAME_ONLY[id] ?? `Extended Capability ID ${id ? `0x${id.toString(16)}` : '0'}`));
}

const vv = (p: Printer) => p.opts.verbose >= 2;

function aer(p: Printer, head: string, where: number, type: number): void {
  const { cfg } = p;
  p.out(`${head}Advanced Error Reporting`);
  if (!vv(p) || !fetch(cfg, where + 4, 40)) return;
  const unc = (l: number) =>
    `DLP${FLAG(l, 0x10)} SDES${FLAG(l, 0x20)} TLP${FLAG(l, 0x1000)} FCP${FLAG(l, 0x2000)} CmpltTO${FLAG(l, 0x4000)} CmpltAbrt${FLAG(l, 0x8000)} UnxCmplt${FLAG(l, 0x10000)} RxOF${FLAG(l, 0x20000)} MalfTLP${FLAG(l, 0x40000)} ECRC${FLAG(l, 0x80000)} UnsupReq${FLAG(l, 0x100000)} ACSViol${FLAG(l, 0x200000)}`;
  const cor = (l: number) =>
    `RxErr${FLAG(l, 0x1)} BadTLP${FLAG(l, 0x40)} BadDLLP${FLAG(l, 0x80)} Rollover${FLAG(l, 0x100)} Timeout${FLAG(l, 0x1000)} AdvNonFatalErr${FLAG(l, 0x2000)}`;
  p.out(`\t\tUESta:\t${unc(cfg.u32(where + 0x04))}`);
  p.out(`\t\tUEMsk:\t${unc(cfg.u32(where + 0x08))}`);
  p.out(`\t\tUESvrt:\t${unc(cfg.u32(where + 0x0c))}`);
  p.out(`\t\tCESta:\t${cor(cfg.u32(where + 0x10))}`);
  p.out(`\t\tCEMsk:\t${cor(cfg.u32(where + 0x14))}`);
  const l = cfg.u32(where + 0x18);
  p.out(
    `\t\tAERCap:\tFirst Error Pointer: ${hex(l & 0x1f, 2)}, ECRCGenCap${FLAG(l, 0x20)} ECRCGenEn${FLAG(l, 0x40)} ECRCChkCap${FLAG(l, 0x80)} ECRCChkEn${FLAG(l, 0x100)}`,
  );
  p.out(
    `\t\t\tMultHdrRecCap${FLAG(l, 0x200)} MultHdrRecEn${FLAG(l, 0x400)} TLPPfxPres${FLAG(l, 0x800)} HdrLogCap${FLAG(l, 0x1000)}`,
  );
  const log = [0, 4, 8, 12].map((o) => hex(cfg.u32(where + 0x1c + o), 8)).join(' ');
  p.out(`\t\tHeaderLog: ${log}`);
  if (type !== ROOT_PORT && type !== ROOT_EC) return;
  if (!fetch(cfg, where + 0x2c, 12)) return;
  const cmd = cfg.u32(where + 0x2c);
  p.out(`\t\tRootCmd: CERptEn${FLAG(cmd, 0x1)} NFERptEn${FLAG(cmd, 0x2)} FERptEn${FLAG(cmd, 0x4)}`);
  const st = cfg.u32(where + 0x30);
  p.out(
    `\t\tRootSta: CERcvd${FLAG(st, 0x1)} MultCERcvd${FLAG(st, 0x2)} UERcvd${FLAG(st, 0x4)} MultUERcvd${FLAG(st, 0x8)}`,
  );
  p.out(
    `\t\t\t FirstFatal${FLAG(st, 0x10)} NonFatalMsg${FLAG(st, 0x20)} FatalMsg${FLAG(st, 0x40)} IntMsg ${st >>> 27}`,
  );
  p.out(
    `\t\tErrorSrc: ERR_COR: ${hex(cfg.u16(where + 0x34), 4)} ERR_FATAL/NONFATAL: ${hex(cfg.u16(where + 0x36), 4)}`,
  );
}

function dpc(p: Printer, head: string, where: number): void {
  const { cfg } = p;
  p.out(`${head}Downstream Port Containment`);
  if (!vv(p) || !fetch(cfg, where + 4, 8)) return;
  let l = cfg.u16(where + 4);
  p.out(
    `\t\tDpcCap:\tINT Msg #${l & 0x1f}, RPExt${FLAG(l, 0x20)} PoisonedTLP${FLAG(l, 0x40)} SwTrigger${FLAG(l, 0x80)} RP PIO Log ${(l >> 8) & 0xf}, DL_ActiveErr${FLAG(l, 0x1000)}`,
  );
  l = cfg.u16(where + 6);
  p.out(
    `\t\tDpcCtl:\tTrigger:${(l & 3).toString(16)} Cmpl${FLAG(l, 0x4)} INT${FLAG(l, 0x8)} ErrCor${FLAG(l, 0x10)} PoisonedTLP${FLAG(l, 0x20)} SwTrigger${FLAG(l, 0x40)} DL_ActiveErr${FLAG(l, 0x80)}`,
  );
  l = cfg.u16(where + 8);
  p.out(
    `\t\tDpcSta:\tTrigger${FLAG(l, 0x1)} Reason:${hex((l >> 1) & 3, 2)} INT${FLAG(l, 0x8)} RPBusy${FLAG(l, 0x10)} TriggerExt:${hex((l >> 5) & 3, 2)} RP PIO ErrPtr:${hex((l >> 8) & 0x1f, 2)}`,
  );
  p.out(`\t\tSource:\t${hex(cfg.u16(where + 0xa), 4)}`);
}

function dsn(p: Printer, head: string, where: number): void {
  const { cfg } = p;
  if (!fetch(cfg, where + 4, 8)) {
    // ls-ecaps.c cap_dsn returns without ending the line
    p.partial(head);
    return;
  }
  const lo = cfg.u32(where + 4);
  const hi = cfg.u32(where + 8);
  const bytes = [
    hi >>> 24,
    (hi >>> 16) & 0xff,
    (hi >>> 8) & 0xff,
    hi & 0xff,
    lo >>> 24,
    (lo >>> 16) & 0xff,
    (lo >>> 8) & 0xff,
    lo & 0xff,
  ];
  p.out(`${head}Device Serial Number ${bytes.map((b) => hex(b, 2)).join('-')}`);
}

function vendor(p: Printer, head: string, where: number): void {
  if (!fetch(p.cfg, where + 4, 4)) {
    p.out(`${head}Vendor Specific Information: <unreadable>`);
    return;
  }
  const h = p.cfg.u32(where + 4);
  p.out(
    `${head}Vendor Specific Information: ID=${hex(BITS(h, 0, 16), 4)} Rev=${BITS(h, 16, 4)} Len=${hex(BITS(h, 20, 12), 3)} <?>`,
  );
}

function acs(p: Printer, head: string, where: number): void {
  p.out(`${head}Access Control Services`);
  if (!vv(p) || !fetch(p.cfg, where + 4, 4)) return;
  const bits = (w: number) =>
    `SrcValid${FLAG(w, 0x1)} TransBlk${FLAG(w, 0x2)} ReqRedir${FLAG(w, 0x4)} CmpltRedir${FLAG(w, 0x8)} UpstreamFwd${FLAG(w, 0x10)} EgressCtrl${FLAG(w, 0x20)} DirectTrans${FLAG(w, 0x40)}`;
  p.out(`\t\tACSCap:\t${bits(p.cfg.u16(where + 4))}`);
  p.out(`\t\tACSCtl:\t${bits(p.cfg.u16(where + 6))}`);
}

function ari(p: Printer, head: string, where: number): void {
  p.out(`${head}Alternative Routing-ID Interpretation (ARI)`);
  if (!vv(p) || !fetch(p.cfg, where + 4, 4)) return;
  let w = p.cfg.u16(where + 4);
  p.out(`\t\tARICap:\tMFVC${FLAG(w, 0x1)} ACS${FLAG(w, 0x2)}, Next Function: ${(w >> 8) & 0xff}`);
  w = p.cfg.u16(where + 6);
  p.out(`\t\tARICtl:\tMFVC${FLAG(w, 0x1)} ACS${FLAG(w, 0x2)}, Function Group: ${(w >> 4) & 7}`);
}

function ats(p: Printer, head: string, where: number): void {
  p.out(`${head}Address Translation Service (ATS)`);
  if (!vv(p) || !fetch(p.cfg, where + 4, 4)) return;
  p.out(`\t\tATSCap:\tInvalidate Queue Depth: ${hex(p.cfg.u16(where + 4) & 0x1f, 2)}`);
  const w = p.cfg.u16(where + 6);
  p.out(`\t\tATSCtl:\tEnable${FLAG(w, 0x8000)}, Smallest Translation Unit: ${hex(w & 0x1f, 2)}`);
}

function pri(p: Printer, head: string, where: number): void {
  p.out(`${head}Page Request Interface (PRI)`);
  if (!vv(p) || !fetch(p.cfg, where + 4, 0xc)) return;
  let w = p.cfg.u16(where + 4);
  p.out(`\t\tPRICtl: Enable${FLAG(w, 0x1)} Reset${FLAG(w, 0x2)}`);
  w = p.cfg.u16(where + 6);
  p.out(`\t\tPRISta: RF${FLAG(w, 0x1)} UPRGI${FLAG(w, 0x2)} Stopped${FLAG(w, 0x100)}`);
  p.out(
    `\t\tPage Request Capacity: ${hex(p.cfg.u32(where + 8), 8)}, Page Request Allocation: ${hex(p.cfg.u32(where + 0xc), 8)}`,
  );
}

function pasid(p: Printer, head: string, where: number): void {
  p.out(`${head}Process Address Space ID (PASID)`);
  if (!vv(p) || !fetch(p.cfg, where + 4, 4)) return;
  let w = p.cfg.u16(where + 4);
  p.out(`\t\tPASIDCap: Exec${FLAG(w, 0x2)} Priv${FLAG(w, 0x4)}, Max PASID Width: ${hex((w >> 8) & 0x1f, 2)}`);
  w = p.cfg.u16(where + 6);
  p.out(`\t\tPASIDCtl: Enable${FLAG(w, 0x1)} Exec${FLAG(w, 0x2)} Priv${FLAG(w, 0x4)}`);
}

function sriov(p: Printer, head: string, where: number): void {
  const { cfg } = p;
  p.out(`${head}Single Root I/O Virtualization (SR-IOV)`);
  if (!vv(p) || !fetch(cfg, where + 4, 0x3c)) return;
  let l = cfg.u32(where + 4);
  p.out(
    `\t\tIOVCap:\tMigration${FLAG(l, 0x1)} 10BitTagReq${FLAG(l, 0x4)} Interrupt Message Number: ${hex(l >>> 21, 3)}`,
  );
  let w = cfg.u16(where + 8);
  p.out(
    `\t\tIOVCtl:\tEnable${FLAG(w, 0x1)} Migration${FLAG(w, 0x2)} Interrupt${FLAG(w, 0x4)} MSE${FLAG(w, 0x8)} ARIHierarchy${FLAG(w, 0x10)} 10BitTagReq${FLAG(w, 0x20)}`,
  );
  w = cfg.u16(where + 0xa);
  p.out(`\t\tIOVSta:\tMigration${FLAG(w, 0x1)}`);
  p.out(
    `\t\tInitial VFs: ${cfg.u16(where + 0xc)}, Total VFs: ${cfg.u16(where + 0xe)}, Number of VFs: ${cfg.u16(where + 0x10)}, Function Dependency Link: ${hex(cfg.u8(where + 0x12), 2)}`,
  );
  p.out(
    `\t\tVF offset: ${cfg.u16(where + 0x14)}, stride: ${cfg.u16(where + 0x16)}, Device ID: ${hex(cfg.u16(where + 0x1a), 4)}`,
  );
  p.out(
    `\t\tSupported Page Size: ${hex(cfg.u32(where + 0x1c), 8)}, System Page Size: ${hex(cfg.u32(where + 0x20), 8)}`,
  );
  for (let i = 0; i < 6; i++) {
    l = cfg.u32(where + 0x24 + 4 * i);
    if (l === 0xffffffff) l = 0;
    if (!l) continue;
    let s = `\t\tRegion ${i}: Memory at `;
    const t = l & 0x6;
    if (t === 0x4) {
      i++;
      s += hex(cfg.u32(where + 0x24 + 4 * i), 8);
    }
    s += `${hex(l & ~0xf, 8)} (${t === 0 ? '32' : '64'}-bit, ${l & 0x8 ? '' : 'non-'}prefetchable)`;
    p.out(s);
  }
  l = cfg.u32(where + 0x3c);
  p.out(`\t\tVF Migration: offset: ${hex(l & 0xfffffff8, 8)}, BIR: ${(l & 7).toString(16)}`);
}

function tph(p: Printer, head: string, where: number): void {
  p.out(`${head}Transaction Processing Hints`);
  if (!vv(p) || !fetch(p.cfg, where + 4, 4)) return;
  const c = p.cfg.u32(where + 4);
  if (c & 0x2) p.out('\t\tInterrupt vector mode supported');
  if (c & 0x4) p.out('\t\tDevice specific mode supported');
  if (c & 0x100) p.out('\t\tExtended requester support');
  p.out(
    [
      '\t\tNo steering table available',
      '\t\tSteering table in TPH capability structure',
      '\t\tSteering table in MSI-X table',
      '\t\tReserved steering table location',
    ][(c >> 9) & 3],
  );
}

/** cap_ltr_scale: 1 << (scale * 5) as a 32-bit shift on x86, whose count wraps at 32. */
function ltrScale(scale: number): number {
  return (1 << ((scale * 5) & 31)) >>> 0;
}

function ltr(p: Printer, head: string, where: number): void {
  p.out(`${head}Latency Tolerance Reporting`);
  if (!vv(p) || !fetch(p.cfg, where + 4, 4)) return;
  const latency = (w: number) => BigInt(w & 0x3ff) * BigInt(ltrScale((w >> 10) & 7));
  p.out(`\t\tMax snoop latency: ${latency(p.cfg.u16(where + 4))}ns`);
  p.out(`\t\tMax no snoop latency: ${latency(p.cfg.u16(where + 6))}ns`);
}

function secondary(p: Printer, head: string, where: number): void {
  p.out(`${head}Secondary PCI Express`);
  if (!vv(p) || !fetch(p.cfg, where + 4, 12)) return;
  const ctl3 = p.cfg.u16(where + 4);
  p.out(`\t\tLnkCtl3: LnkEquIntrruptEn${FLAG(ctl3, 0x2)} PerformEqu${FLAG(ctl3, 0x1)}`);
  let lanes = p.cfg.u16(where + 8);
  let s = '\t\tLaneErrStat: ';
  if (lanes) {
    s += 'LaneErr at lane:';
    for (let lane = 0; lanes; lanes >>= 1, lane++) if (lanes & 1) s += ` ${lane}`;
  } else s += '0';
  p.out(s);
}

function pwrOn(scale: number, value: number): number {
  return scale === 0 ? 2 * value : scale === 1 ? 10 * value : scale === 2 ? 100 * value : -1;
}

function l1pm(p: Printer, head: string, where: number): void {
  const { cfg } = p;
  p.out(`${head}L1 PM Substates`);
  if (!vv(p)) return;
  if (!fetch(cfg, where + 4, 12)) {
    p.out('\t\t<unreadable>');
    return;
  }
  const cap = cfg.u32(where + 4);
  p.out(
    `\t\tL1SubCap: PCI-PM_L1.2${FLAG(cap, 0x1)} PCI-PM_L1.1${FLAG(cap, 0x2)} ASPM_L1.2${FLAG(cap, 0x4)} ASPM_L1.1${FLAG(cap, 0x8)} L1_PM_Substates${FLAG(cap, 0x10)}`,
  );
  const l12 = (cap & 0x1) !== 0 || (cap & 0x4) !== 0;
  if (l12) {
    const t = pwrOn(BITS(cap, 16, 2), BITS(cap, 19, 5));
    p.out(
      `\t\t\t  PortCommonModeRestoreTime=${BITS(cap, 8, 8)}us ${t !== -1 ? `PortTPowerOnTime=${t}us` : 'PortTPowerOnTime=<error>'}`,
    );
  }
  let v = cfg.u32(where + 8);
  p.out(
    `\t\tL1SubCtl1: PCI-PM_L1.2${FLAG(v, 0x1)} PCI-PM_L1.1${FLAG(v, 0x2)} ASPM_L1.2${FLAG(v, 0x4)} ASPM_L1.1${FLAG(v, 0x8)}`,
  );
  if (l12) {
    let s = `\t\t\t   T_CommonMode=${BITS(v, 8, 8)}us`;
    if (cap & 0x4) {
      const scale = BITS(v, 29, 3);
      s +=
        scale > 5
          ? ' LTR1.2_Threshold=<error>'
          : ` LTR1.2_Threshold=${BigInt(BITS(v, 16, 10)) * BigInt(ltrScale(scale))}ns`;
    }
    p.out(s);
  }
  v = cfg.u32(where + 0xc);
  let s = '\t\tL1SubCtl2:';
  if (l12) {
    const t = pwrOn(BITS(v, 0, 2), BITS(v, 3, 5));
    s += t !== -1 ? ` T_PwrOn=${t}us` : ' T_PwrOn=<error>';
  }
  p.out(s);
}

function ptm(p: Printer, head: string, where: number): void {
  p.out(`${head}Precision Time Measurement`);
  if (!vv(p)) return;
  if (!fetch(p.cfg, where + 4, 8)) {
    p.out('\t\t<unreadable>');
    return;
  }
  let b = p.cfg.u32(where + 4);
  p.out(`\t\tPTMCap: Requester:${FLAG(b, 0x1)} Responder:${FLAG(b, 0x2)} Root:${FLAG(b, 0x4)}`);
  let clock = BITS(b, 8, 8);
  p.out(
    `\t\tPTMClockGranularity: ${clock === 0 ? 'Unimplemented' : clock === 0xff ? 'Greater than 254ns' : `${clock}ns`}`,
  );
  b = p.cfg.u32(where + 8);
  p.out(`\t\tPTMControl: Enabled:${FLAG(b, 0x1)} RootSelected:${FLAG(b, 0x2)}`);
  clock = BITS(b, 8, 8);
  p.out(
    `\t\tPTMEffectiveGranularity: ${clock === 0 ? 'Unknown' : clock === 0xff ? 'Greater than 254ns' : `${clock}ns`}`,
  );
}

function rebarSize(n: number): string {
  if (n >= 0 && n < 10) return ` ${1 << n}MB`;
  if (n >= 10 && n < 20) return ` ${1 << (n - 10)}GB`;
  if (n >= 20 && n < 30) return ` ${1 << (n - 20)}TB`;
  if (n >= 30 && n < 40) return ` ${1 << (n - 30)}PB`;
  if (n >= 40 && n < 44) return ` ${1 << (n - 40)}EB`;
  return ' <unknown>';
}

function rebar(p: Printer, head: string, where: number, virtual: boolean): void {
  p.out(`${head}${virtual ? 'Virtual' : 'Physical'} Resizable BAR`);
  if (!vv(p)) return;
  let bars = 1;
  for (let n = 0; n < bars; n++) {
    where += 4;
    if (!fetch(p.cfg, where, 8)) {
      p.out('\t\t<unreadable>');
      return;
    }
    const sizes = p.cfg.u32(where) >>> 4;
    where += 4;
    const ctl = p.cfg.u32(where);
    const index = BITS(ctl, 0, 3);
    const current = BITS(ctl, 8, 6);
    const ext = BITS(ctl, 16, 16);
    if (n === 0) {
      bars = BITS(ctl, 5, 3);
      if (bars < 1 || bars > 6) {
        p.out(`\t\t<error in resizable BAR: num_bars=${bars} is out of specification>`);
        break;
      }
    }
    let s = `\t\tBAR ${index}: current size:${rebarSize(current)}`;
    if (sizes || ext) {
      s += ', supported:';
      for (let i = 0; i < 28; i++) if (sizes & (1 << i)) s += rebarSize(i);
      for (let i = 0; i < 16; i++) if (ext & (1 << i)) s += rebarSize(i + 28);
    }
    p.out(s);
  }
}

function dvsec(p: Printer, head: string, where: number): void {
  if (!fetch(p.cfg, where + 4, 8)) {
    p.out(`${head}Designated Vendor-Specific: <unreadable>`);
    return;
  }
  const h = p.cfg.u32(where + 4);
  const id = p.cfg.u16(where + 8);
  p.out(
    `${head}Designated Vendor-Specific: Vendor=${hex(BITS(h, 0, 16), 4)} ID=${hex(id, 4)} Rev=${BITS(h, 16, 4)} Len=${BITS(h, 20, 12)} <?>`,
  );
}

function doe(p: Printer, head: string, where: number): void {
  p.out(`${head}Data Object Exchange`);
  if (!vv(p)) return;
  if (!fetch(p.cfg, where + 4, 0x14)) {
    p.out('\t\t<unreadable>');
    return;
  }
  let l = p.cfg.u32(where + 4);
  p.out(`\t\tDOECap: IntSup${FLAG(l, 0x1)}`);
  if (l & 0x1) p.out(`\t\t\tInterrupt Message Number ${hex((l >>> 1) & 0x7ff, 3)}`);
  l = p.cfg.u32(where + 8);
  p.out(`\t\tDOECtl: IntEn${FLAG(l, 0x2)}`);
  l = p.cfg.u32(where + 0xc);
  // pciutils 3.9's lib/header.h has PCI_DOE_STS_ERROR 0x3 where the DOE status Error bit is bit 2,
  // so it shows Error+ for Busy or IntSta; the kernel's PCI_DOE_STATUS_ERROR is 0x4
  p.out(
    `\t\tDOESta: Busy${FLAG(l, 0x1)} IntSta${FLAG(l, 0x2)} Error${FLAG(l, 0x3)} ObjectReady${FLAG(l, 0x80000000)}`,
  );
}
