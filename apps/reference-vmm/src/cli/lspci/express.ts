/**
 * The PCI Express capability as pciutils 3.9 prints it (ls-caps.c cap_express and its
 * cap_express_dev/link/slot/root and, for version 2, dev2/link2). Register offsets and fields
 * are linux/pci_regs.h's PCI_EXP_* (pciutils' lib/header.h).
 */
import { FLAG, fetch, hex, type Printer } from './context.js';
import { headerType, resources } from './header.js';

// PCI_EXP_TYPE_*: the device/port type in PCI_EXP_FLAGS bits 7:4
const ENDPOINT = 0x0;
const LEG_END = 0x1;
const ROOT_PORT = 0x4;
const UPSTREAM = 0x5;
const DOWNSTREAM = 0x6;
const PCI_BRIDGE = 0x7;
const PCIE_BRIDGE = 0x8;
const ROOT_INT_EP = 0x9;
const ROOT_EC = 0xa;

// register offsets within the capability
const DEVCAP = 0x04;
const DEVCTL = 0x08;
const DEVSTA = 0x0a;
const LNKCAP = 0x0c;
const LNKCTL = 0x10;
const LNKSTA = 0x12;
const SLTCAP = 0x14;
const SLTCTL = 0x18;
const SLTSTA = 0x1a;
const RTCTL = 0x1c;
const RTCAP = 0x1e;
const RTSTA = 0x20;
const DEVCAP2 = 0x24;
const DEVCTL2 = 0x28;
const LNKCAP2 = 0x2c;
const LNKCTL2 = 0x30;
const LNKSTA2 = 0x32;

const L0S = ['<64ns', '<128ns', '<256ns', '<512ns', '<1us', '<2us', '<4us', 'unlimited'];
const L1 = ['<1us', '<2us', '<4us', '<8us', '<16us', '<32us', '<64us', 'unlimited'];

/**
 * show_power_limit: value × scale in single precision, printed with %g; 0xF0..0xFE at scale 0
 * mean 250 W to 600 W in 25 W steps, 0xFF means more than 600 W.
 */
export function powerLimit(value: number, scale: number): string {
  if (scale === 0 && value === 0xff) return '>600W';
  if (scale === 0 && value >= 0xf0 && value <= 0xfe) value = 250 + 25 * (value - 0xf0);
  const watts = Math.fround(value * Math.fround([1.0, 0.1, 0.01, 0.001][scale]));
  return `${formatG(watts)}W`;
}

/** C's %g (6 significant digits, no trailing zeros) for the magnitudes a power limit reaches. */
function formatG(x: number): string {
  if (x === 0) return '0';
  const exp = Math.floor(Math.log10(Math.abs(x)));
  if (exp < -4 || exp >= 6) {
    const [m, e] = x.toExponential(5).split('e');
    const mant = m.includes('.') ? m.replace(/0+$/, '').replace(/\.$/, '') : m;
    const n = Number(e);
    return `${mant}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  const s = x.toPrecision(6);
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

function linkSpeed(speed: number): string {
  return ['unknown', '2.5GT/s', '5GT/s', '8GT/s', '16GT/s', '32GT/s', '64GT/s'][speed] ?? 'unknown';
}

function linkCompare(type: number, sta: number, cap: number): string {
  if (sta > cap) return ' (overdriven)';
  if (sta === cap) return '';
  if (type === ROOT_PORT || type === DOWNSTREAM || type === PCIE_BRIDGE) return '';
  return ' (downgraded)';
}

const ASPM_SUPPORT = ['not supported', 'L0s', 'L1', 'L0s L1'];
const ASPM_ENABLED = ['Disabled', 'L0s Enabled', 'L1 Enabled', 'L0s L1 Enabled'];
const INDICATOR = ['Unknown', 'On', 'Blink', 'Off'];

/** cap_express: the capability's line, then (under -vv) its registers; returns the device/port type. */
export function express(p: Printer, head: string, where: number, cap: number): number {
  const vv = p.opts.verbose >= 2;
  const type = (cap & 0xf0) >> 4;
  let slot = false;
  let link = true;
  let name: string;
  switch (type) {
    case ENDPOINT:
      name = 'Endpoint';
      break;
    case LEG_END:
      name = 'Legacy Endpoint';
      break;
    case ROOT_PORT:
      slot = (cap & 0x100) !== 0;
      name = `Root Port (Slot${FLAG(cap, 0x100)})`;
      break;
    case UPSTREAM:
      name = 'Upstream Port';
      break;
    case DOWNSTREAM:
      slot = (cap & 0x100) !== 0;
      name = `Downstream Port (Slot${FLAG(cap, 0x100)})`;
      break;
    case PCI_BRIDGE:
      name = 'PCI-Express to PCI/PCI-X Bridge';
      break;
    case PCIE_BRIDGE:
      slot = (cap & 0x100) !== 0;
      name = `PCI/PCI-X to PCI-Express Bridge (Slot${FLAG(cap, 0x100)})`;
      break;
    case ROOT_INT_EP:
      link = false;
      name = 'Root Complex Integrated Endpoint';
      break;
    case ROOT_EC:
      link = false;
      name = 'Root Complex Event Collector';
      break;
    default:
      name = `Unknown type ${type}`;
  }
  p.out(`${head}Express ${vv ? `(v${cap & 0xf}) ` : ''}${name}, MSI ${hex((cap & 0x3e00) >> 9, 2)}`);
  if (!vv) return type;
  let size = slot ? 24 : 16;
  if (type === ROOT_PORT || type === ROOT_EC) size = 32;
  if (!fetch(p.cfg, where + DEVCAP, size)) return type;
  dev(p, where, type);
  if (link) linkRegs(p, where, type);
  if (slot) slotRegs(p, where);
  if (type === ROOT_PORT || type === ROOT_EC) root(p, where);
  if ((cap & 0xf) < 2) return type;
  if (!fetch(p.cfg, where + DEVCAP2, slot ? 24 : 16)) return type;
  dev2(p, where, type);
  if (link) link2(p, where, type);
  return type;
}

function dev(p: Printer, where: number, type: number): void {
  const t = p.cfg.u32(where + DEVCAP);
  const endpoint = type === ENDPOINT || type === LEG_END;
  let s = `\t\tDevCap:\tMaxPayload ${128 << (t & 0x7)} bytes, PhantFunc ${(1 << ((t & 0x18) >> 3)) - 1}`;
  if (endpoint) s += `, Latency L0s ${L0S[(t & 0x1c0) >> 6]}, L1 ${L1[(t & 0xe00) >> 9]}`;
  p.out(s);
  s = `\t\t\tExtTag${FLAG(t, 0x20)}`;
  if (endpoint || type === UPSTREAM || type === PCI_BRIDGE)
    s += ` AttnBtn${FLAG(t, 0x1000)} AttnInd${FLAG(t, 0x2000)} PwrInd${FLAG(t, 0x4000)}`;
  s += ` RBE${FLAG(t, 0x8000)}`;
  const flr = endpoint || type === ROOT_INT_EP;
  if (flr) s += ` FLReset${FLAG(t, 0x10000000)}`;
  if (type === ENDPOINT || type === UPSTREAM || type === PCI_BRIDGE)
    s += ` SlotPowerLimit ${powerLimit((t & 0x3fc0000) >>> 18, (t & 0xc000000) >>> 26)}`;
  p.out(s);
  const w = p.cfg.u16(where + DEVCTL);
  p.out(
    `\t\tDevCtl:\tCorrErr${FLAG(w, 0x1)} NonFatalErr${FLAG(w, 0x2)} FatalErr${FLAG(w, 0x4)} UnsupReq${FLAG(w, 0x8)}`,
  );
  s = `\t\t\tRlxdOrd${FLAG(w, 0x10)} ExtTag${FLAG(w, 0x100)} PhantFunc${FLAG(w, 0x200)} AuxPwr${FLAG(w, 0x400)} NoSnoop${FLAG(w, 0x800)}`;
  if (type === PCI_BRIDGE) s += ` BrConfRtry${FLAG(w, 0x8000)}`;
  if (flr && t & 0x10000000) s += ` FLReset${FLAG(w, 0x8000)}`;
  p.out(s);
  p.out(
    `\t\t\tMaxPayload ${128 << ((w & 0xe0) >> 5)} bytes, MaxReadReq ${128 << ((w & 0x7000) >> 12)} bytes`,
  );
  const st = p.cfg.u16(where + DEVSTA);
  p.out(
    `\t\tDevSta:\tCorrErr${FLAG(st, 0x1)} NonFatalErr${FLAG(st, 0x2)} FatalErr${FLAG(st, 0x4)} UnsupReq${FLAG(st, 0x8)} AuxPwr${FLAG(st, 0x10)} TransPend${FLAG(st, 0x20)}`,
  );
}

function linkRegs(p: Printer, where: number, type: number): void {
  const t = p.cfg.u32(where + LNKCAP);
  const aspm = (t & 0xc00) >> 10;
  const capSpeed = t & 0xf;
  const capWidth = (t & 0x3f0) >> 4;
  let s = `\t\tLnkCap:\tPort #${t >>> 24}, Speed ${linkSpeed(capSpeed)}, Width x${capWidth}, ASPM ${ASPM_SUPPORT[aspm]}`;
  if (aspm) {
    s += ', Exit Latency ';
    if (aspm & 1) s += `L0s ${L0S[(t & 0x7000) >> 12]}`;
    if (aspm & 2) s += `${aspm & 1 ? ', ' : ''}L1 ${L1[(t & 0x38000) >> 15]}`;
  }
  p.out(s);
  p.out(
    `\t\t\tClockPM${FLAG(t, 0x40000)} Surprise${FLAG(t, 0x80000)} LLActRep${FLAG(t, 0x100000)} BwNot${FLAG(t, 0x200000)} ASPMOptComp${FLAG(t, 0x400000)}`,
  );
  const w = p.cfg.u16(where + LNKCTL);
  s = `\t\tLnkCtl:\tASPM ${ASPM_ENABLED[w & 3]};`;
  if (type === ROOT_PORT || type === ENDPOINT || type === LEG_END || type === PCI_BRIDGE)
    s += ` RCB ${w & 0x8 ? 128 : 64} bytes,`;
  p.out(`${s} Disabled${FLAG(w, 0x10)} CommClk${FLAG(w, 0x40)}`);
  p.out(
    `\t\t\tExtSynch${FLAG(w, 0x80)} ClockPM${FLAG(w, 0x100)} AutWidDis${FLAG(w, 0x200)} BWInt${FLAG(w, 0x400)} AutBWInt${FLAG(w, 0x800)}`,
  );
  const st = p.cfg.u16(where + LNKSTA);
  const staSpeed = st & 0xf;
  const staWidth = (st & 0x3f0) >> 4;
  p.out(
    `\t\tLnkSta:\tSpeed ${linkSpeed(staSpeed)}${linkCompare(type, staSpeed, capSpeed)}, Width x${staWidth}${linkCompare(type, staWidth, capWidth)}`,
  );
  p.out(
    `\t\t\tTrErr${FLAG(st, 0x400)} Train${FLAG(st, 0x800)} SlotClk${FLAG(st, 0x1000)} DLActive${FLAG(st, 0x2000)} BWMgmt${FLAG(st, 0x4000)} ABWMgmt${FLAG(st, 0x8000)}`,
  );
}

function slotRegs(p: Printer, where: number): void {
  const t = p.cfg.u32(where + SLTCAP);
  p.out(
    `\t\tSltCap:\tAttnBtn${FLAG(t, 0x1)} PwrCtrl${FLAG(t, 0x2)} MRL${FLAG(t, 0x4)} AttnInd${FLAG(t, 0x8)} PwrInd${FLAG(t, 0x10)} HotPlug${FLAG(t, 0x40)} Surprise${FLAG(t, 0x20)}`,
  );
  p.out(
    `\t\t\tSlot #${t >>> 19}, PowerLimit ${powerLimit((t & 0x7f80) >> 7, (t & 0x18000) >> 15)}; Interlock${FLAG(t, 0x20000)} NoCompl${FLAG(t, 0x40000)}`,
  );
  let w = p.cfg.u16(where + SLTCTL);
  p.out(
    `\t\tSltCtl:\tEnable: AttnBtn${FLAG(w, 0x1)} PwrFlt${FLAG(w, 0x2)} MRL${FLAG(w, 0x4)} PresDet${FLAG(w, 0x8)} CmdCplt${FLAG(w, 0x10)} HPIrq${FLAG(w, 0x20)} LinkChg${FLAG(w, 0x1000)}`,
  );
  p.out(
    `\t\t\tControl: AttnInd ${INDICATOR[(w & 0xc0) >> 6]}, PwrInd ${INDICATOR[(w & 0x300) >> 8]}, Power${FLAG(w, 0x400)} Interlock${FLAG(w, 0x800)}`,
  );
  w = p.cfg.u16(where + SLTSTA);
  p.out(
    `\t\tSltSta:\tStatus: AttnBtn${FLAG(w, 0x1)} PowerFlt${FLAG(w, 0x2)} MRL${FLAG(w, 0x20)} CmdCplt${FLAG(w, 0x10)} PresDet${FLAG(w, 0x40)} Interlock${FLAG(w, 0x80)}`,
  );
  p.out(`\t\t\tChanged: MRL${FLAG(w, 0x4)} PresDet${FLAG(w, 0x8)} LinkState${FLAG(w, 0x100)}`);
}

function root(p: Printer, where: number): void {
  let w = p.cfg.u16(where + RTCAP);
  p.out(`\t\tRootCap: CRSVisible${FLAG(w, 0x1)}`);
  w = p.cfg.u16(where + RTCTL);
  p.out(
    `\t\tRootCtl: ErrCorrectable${FLAG(w, 0x1)} ErrNon-Fatal${FLAG(w, 0x2)} ErrFatal${FLAG(w, 0x4)} PMEIntEna${FLAG(w, 0x8)} CRSVisible${FLAG(w, 0x10)}`,
  );
  const l = p.cfg.u32(where + RTSTA);
  p.out(
    `\t\tRootSta: PME ReqID ${hex(l & 0xffff, 4)}, PMEStatus${FLAG(l, 0x10000)} PMEPending${FLAG(l, 0x20000)}`,
  );
}

function timeoutRange(r: number): string {
  const names: Record<number, string> = {
    0: 'Not Supported',
    1: 'Range A',
    2: 'Range B',
    3: 'Range AB',
    6: 'Range BC',
    7: 'Range ABC',
    14: 'Range BCD',
    15: 'Range ABCD',
  };
  return names[r] ?? 'Unknown';
}

function timeoutValue(v: number): string {
  const names: Record<number, string> = {
    0: '50us to 50ms',
    1: '50us to 100us',
    2: '1ms to 10ms',
    5: '16ms to 55ms',
    6: '65ms to 210ms',
    9: '260ms to 900ms',
    10: '1s to 3.5s',
    13: '4s to 13s',
    14: '17s to 64s',
  };
  return names[v] ?? 'Unknown';
}

/** device_has_memory_space_bar: a BAR with an address or a size that is not I/O. */
function hasMemoryBar(p: Printer): boolean {
  // lib/generic.c fills six BARs for a type 0 header, two for a bridge, one for CardBus
  const count = [6, 2, 1][headerType(p)] ?? 0;
  return resources(p, count).some((r) => (r.pos || r.len) && !(r.pos & 1n));
}

function dev2(p: Printer, where: number, type: number): void {
  const l = p.cfg.u32(where + DEVCAP2);
  const memBar = hasMemoryBar(p);
  const obffCap = ['Not Supported', 'Via message', 'Via WAKE#', 'Via message/WAKE#'][(l >>> 18) & 3];
  const epr = ['Not Supported', 'Dev Specific', 'Form Factor Dev Specific', 'Reserved'][(l >>> 24) & 3];
  p.out(
    `\t\tDevCap2: Completion Timeout: ${timeoutRange(l & 0xf)}, TimeoutDis${FLAG(l, 0x10)} NROPrPrP${FLAG(l, 0x400)} LTR${FLAG(l, 0x800)}`,
  );
  let s = `\t\t\t 10BitTagComp${FLAG(l, 0x10000)} 10BitTagReq${FLAG(l, 0x20000)} OBFF ${obffCap}, ExtFmt${FLAG(l, 0x100000)} EETLPPrefix${FLAG(l, 0x200000)}`;
  if (l & 0x200000) s += `, MaxEETLPPrefixes ${(l >>> 22) & 3 || 4}`;
  p.out(s);
  p.out(`\t\t\t EmergencyPowerReduction ${epr}, EmergencyPowerReductionInit${FLAG(l, 0x4000000)}`);
  s = `\t\t\t FRS${FLAG(l, 0x80000000)}`;
  if (type === ROOT_PORT)
    s += ` LN System CLS ${['Not Supported', '64byte cachelines', '128byte cachelines', 'Reserved'][(l >>> 14) & 3]},`;
  if (type === ROOT_PORT || type === ENDPOINT)
    s += ` ${['TPHComp- ExtTPHComp-', 'TPHComp+ ExtTPHComp-', '', 'TPHComp+ ExtTPHComp+'][(l >>> 12) & 3]}`;
  if (type === ROOT_PORT || type === DOWNSTREAM) s += ` ARIFwd${FLAG(l, 0x20)}`;
  p.out(s);
  const port = type === ROOT_PORT || type === UPSTREAM || type === DOWNSTREAM;
  if (port || memBar) {
    s = '\t\t\t AtomicOpsCap:';
    if (port) s += ` Routing${FLAG(l, 0x40)}`;
    if (type === ROOT_PORT || memBar)
      s += ` 32bit${FLAG(l, 0x80)} 64bit${FLAG(l, 0x100)} 128bitCAS${FLAG(l, 0x200)}`;
    p.out(s);
  }
  const w = p.cfg.u16(where + DEVCTL2);
  const obffCtl = ['Disabled', 'Via message A', 'Via message B', 'Via WAKE#'][(w >> 13) & 3];
  s = `\t\tDevCtl2: Completion Timeout: ${timeoutValue(w & 0xf)}, TimeoutDis${FLAG(w, 0x10)} LTR${FLAG(w, 0x400)} 10BitTagReq${FLAG(w, 0x1000)} OBFF ${obffCtl},`;
  if (type === ROOT_PORT || type === DOWNSTREAM) s += ` ARIFwd${FLAG(w, 0x20)}`;
  p.out(s);
  const requester = type === ROOT_PORT || type === ENDPOINT || type === ROOT_INT_EP || type === LEG_END;
  if (port || requester) {
    s = '\t\t\t AtomicOpsCtl:';
    if (requester) s += ` ReqEn${FLAG(w, 0x40)}`;
    if (port) s += ` EgressBlck${FLAG(w, 0x80)}`;
    p.out(s);
  }
}

function speedVector(v: number): string {
  if (v & 0x60) return 'RsvdP';
  if (v & 0x10) return '2.5-32GT/s';
  if (v & 0x08) return '2.5-16GT/s';
  if (v & 0x04) return '2.5-8GT/s';
  if (v & 0x02) return '2.5-5GT/s';
  if (v & 0x01) return '2.5GT/s';
  return 'Unknown';
}

function targetSpeed(v: number): string {
  return ['2.5GT/s', '2.5GT/s', '5GT/s', '8GT/s', '16GT/s', '32GT/s', '64GT/s'][v] ?? 'Unknown';
}

const DEEMPHASIS = ['-6dB', '-3.5dB'];
const COMPLIANCE_PRESET = [
  '-6dB de-emphasis, 0dB preshoot',
  '-3.5dB de-emphasis, 0dB preshoot',
  '-4.4dB de-emphasis, 0dB preshoot',
  '-2.5dB de-emphasis, 0dB preshoot',
  '0dB de-emphasis, 0dB preshoot',
  '0dB de-emphasis, 1.9dB preshoot',
  '0dB de-emphasis, 2.5dB preshoot',
  '-6.0dB de-emphasis, 3.5dB preshoot',
  '-3.5dB de-emphasis, 3.5dB preshoot',
  '0dB de-emphasis, 3.5dB preshoot',
];

function transmitMargin(m: number): string {
  if (m === 0) return 'Normal Operating Range';
  if (m === 1) return '800-1200mV(full-swing)/400-700mV(half-swing)';
  if (m >= 2 && m <= 5) return '200-400mV(full-swing)/100-200mV(half-swing)';
  return 'Unknown';
}

function link2(p: Printer, where: number, type: number): void {
  let l = 0;
  const { device, function: fn } = p.info.address;
  // Link Capabilities/Control 2 of a non-zero function of a multi-function endpoint were reserved before PCIe r3.0
  if (!((type === ENDPOINT || type === LEG_END) && (device !== 0 || fn !== 0))) {
    l = p.cfg.u32(where + LNKCAP2);
    if (l) {
      p.out(
        `\t\tLnkCap2: Supported Link Speeds: ${speedVector((l >>> 1) & 0x7f)}, Crosslink${FLAG(l, 0x100)} Retimer${FLAG(l, 0x800000)} 2Retimers${FLAG(l, 0x1000000)} DRS${FLAG(l, 0x80000000)}`,
      );
    }
    const w = p.cfg.u16(where + LNKCTL2);
    let s = `\t\tLnkCtl2: Target Link Speed: ${targetSpeed(w & 0xf)}, EnterCompliance${FLAG(w, 0x10)} SpeedDis${FLAG(w, 0x20)}`;
    if (type === DOWNSTREAM) s += `, Selectable De-emphasis: ${DEEMPHASIS[(w >> 6) & 1]}`;
    p.out(s);
    p.out(
      `\t\t\t Transmit Margin: ${transmitMargin((w >> 7) & 7)}, EnterModifiedCompliance${FLAG(w, 0x400)} ComplianceSOS${FLAG(w, 0x800)}`,
    );
    p.out(`\t\t\t Compliance Preset/De-emphasis: ${COMPLIANCE_PRESET[(w >> 12) & 0xf] ?? 'Unknown'}`);
  }
  const w = p.cfg.u16(where + LNKSTA2);
  p.out(
    `\t\tLnkSta2: Current De-emphasis Level: ${DEEMPHASIS[w & 1]}, EqualizationComplete${FLAG(w, 0x2)} EqualizationPhase1${FLAG(w, 0x4)}`,
  );
  p.out(
    `\t\t\t EqualizationPhase2${FLAG(w, 0x8)} EqualizationPhase3${FLAG(w, 0x10)} LinkEqualizationRequest${FLAG(w, 0x20)}`,
  );
  let s = `\t\t\t Retimer${FLAG(w, 0x40)} 2Retimers${FLAG(w, 0x80)} CrosslinkRes: ${['unsupported', 'Upstream Port', 'Downstream Port', 'incomplete'][(w >> 8) & 3]}`;
  if ((type === ROOT_PORT || type === DOWNSTREAM || type === PCIE_BRIDGE) && l & 0x80000000) {
    const comp: Record<number, string> = {
      0: 'Link Down - Not Determined',
      1: 'Link Down - Not Present',
      2: 'Link Down - Present',
      4: 'Link Up - Present',
      5: 'Link Up - Present and DRS Received',
    };
    p.out(`${s}, DRS${FLAG(w, 0x8000)}`);
    s = `\t\t\t DownstreamComp: ${comp[(w >> 12) & 7] ?? 'Reserved'}`;
  }
  p.out(s);
}
