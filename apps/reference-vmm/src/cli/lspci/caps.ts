/** The standard capability list as ls-caps.c prints it. */
import {
  msiLayout,
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
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_BRIDGE,
  PCI_HEADER_TYPE_MASK,
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
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
} from '@vfiokit/core';
import { FLAG, hex, type Printer } from './context.js';
import { showExtCaps } from './ecaps.js';
import { deviceName } from './names.js';
import {
  PCI_CAP_ID_CHSWP,
  PCI_CAP_ID_DBG,
  PCI_CAP_ID_HT,
  PCI_CAP_ID_SATA,
  PCI_CAP_ID_SLOTID,
  PCI_CAP_ID_SSVID,
  PCI_EXP_DEVCAP_ATN_BUT,
  PCI_EXP_DEVCAP_ATN_IND,
  PCI_EXP_DEVCAP_L0S,
  PCI_EXP_DEVCAP_L1,
  PCI_EXP_DEVCAP_PHANTOM,
  PCI_EXP_DEVCAP_PWR_IND,
  PCI_EXP_DEVCAP_PWR_SCL,
  PCI_EXP_DEVCAP_PWR_VAL,
  PCI_EXP_DEVCTL_AUX_PME,
  PCI_EXP_DEVCTL_PHANTOM,
  PCI_EXP_LNKCAP_AOC,
  PCI_EXP_LNKCAP_ASPMS,
  PCI_EXP_LNKCAP_CLKPM,
  PCI_EXP_LNKCAP_DLLLARC,
  PCI_EXP_LNKCAP_L0SEL,
  PCI_EXP_LNKCAP_L1EL,
  PCI_EXP_LNKCAP_LBNC,
  PCI_EXP_LNKCAP_SDERC,
  PCI_EXP_LNKCTL_CLKREQ_EN,
  PCI_EXP_LNKCTL_HAWD,
  PCI_EXP_LNKCTL_LABIE,
  PCI_EXP_LNKCTL_LBMIE,
  PCI_EXP_LNKCTL_LD,
  PCI_EXP_LNKSTA_DLLLA,
  PCI_EXP_LNKSTA_LABS,
  PCI_EXP_LNKSTA_LBMS,
  PCI_EXP_LNKSTA_LT,
  PCI_EXP_LNKSTA_LT_ERR,
  PCI_EXP_LNKSTA_SLC,
  PCI_EXP_TYPE_DOWNSTREAM,
  PCI_EXP_TYPE_PCI_BRIDGE,
  PCI_EXP_TYPE_PCIE_BRIDGE,
  PCI_EXP_TYPE_RC_EC,
  PCI_EXP_TYPE_UPSTREAM,
  PCI_PM_BPCC_ENABLE,
  PCI_PM_CAP_AUX_POWER,
  PCI_PM_CAP_DSI,
  PCI_PM_CAP_PME_CLOCK,
  PCI_PM_CAP_PME_D0,
  PCI_PM_CAP_PME_D1,
  PCI_PM_CAP_PME_D2,
  PCI_PM_CAP_PME_D3COLD,
  PCI_PM_CAP_PME_D3HOT,
  PCI_PM_CTRL_DATA_SCALE_MASK,
  PCI_PM_CTRL_DATA_SEL_MASK,
  PCI_PM_PPB_B2_B3,
  PCI_PM_PPB_EXTENSIONS,
} from './regs.js';

/** The capability list (ls-caps.c show_caps), then the extended ones under -vvv. */
export function showCaps(o: Printer): void {
  const { cfg } = o;
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
        o.out(`${head}<chain looped>`);
        break;
      }
      if (id === 0xff) {
        o.out(`${head}<chain broken>`);
        break;
      }
      showCap(o, head, id, where, cap);
      if (id === PCI_CAP_ID_EXP || id === PCI_CAP_ID_PCIX) canHaveExt = true;
      where = next;
    }
  }
  if (canHaveExt && o.opts.verbose > 2) showExtCaps(o);
}

function showCap(o: Printer, head: string, id: number, where: number, cap: number): void {
  const vv = o.opts.verbose > 1;
  const { cfg } = o;
  switch (id) {
    case PCI_CAP_ID_PM: {
      o.out(`${head}Power Management version ${cap & PCI_PM_CAP_VER_MASK}`);
      if (!vv) return;
      // ls-caps.c cap_pm: mA by Aux_Current field
      const aux = [0, 55, 100, 160, 220, 270, 320, 375][(cap & PCI_PM_CAP_AUX_POWER) >> 6];
      o.out(
        `\t\tFlags: PMEClk${FLAG(cap, PCI_PM_CAP_PME_CLOCK)} DSI${FLAG(cap, PCI_PM_CAP_DSI)} D1${FLAG(cap, PCI_PM_CAP_D1)} D2${FLAG(cap, PCI_PM_CAP_D2)} AuxCurrent=${aux}mA PME(D0${FLAG(cap, PCI_PM_CAP_PME_D0)},D1${FLAG(cap, PCI_PM_CAP_PME_D1)},D2${FLAG(cap, PCI_PM_CAP_PME_D2)},D3hot${FLAG(cap, PCI_PM_CAP_PME_D3HOT)},D3cold${FLAG(cap, PCI_PM_CAP_PME_D3COLD)})`,
      );
      const t = cfg.u16(where + PCI_PM_CTRL);
      o.out(
        `\t\tStatus: D${t & PCI_PM_CTRL_STATE_MASK} NoSoftRst${FLAG(t, PCI_PM_CTRL_NO_SOFT_RESET)} PME-Enable${FLAG(t, PCI_PM_CTRL_PME_ENABLE)} DSel=${(t & PCI_PM_CTRL_DATA_SEL_MASK) >> 9} DScale=${(t & PCI_PM_CTRL_DATA_SCALE_MASK) >> 13} PME${FLAG(t, PCI_PM_CTRL_PME_STATUS)}`,
      );
      if (cfg.u8(where + PCI_PM_PPB_EXTENSIONS)) {
        // ls-caps.c tests the PM control word here, not the bridge extension byte
        o.out(`\t\tBridge: PM${FLAG(t, PCI_PM_BPCC_ENABLE)} B3${FLAG(~t, PCI_PM_PPB_B2_B3)}`);
      }
      return;
    }
    case PCI_CAP_ID_MSI: {
      o.out(
        `${head}MSI: Enable${FLAG(cap, PCI_MSI_FLAGS_ENABLE)} Count=${1 << ((cap & PCI_MSI_FLAGS_QSIZE) >> 4)}/${1 << ((cap & PCI_MSI_FLAGS_QMASK) >> 1)} Maskable${FLAG(cap, PCI_MSI_FLAGS_MASKBIT)} 64bit${FLAG(cap, PCI_MSI_FLAGS_64BIT)}`,
      );
      if (!vv) return;
      const layout = msiLayout(cap);
      const hi = layout.addr64 ? hex(cfg.u32(where + PCI_MSI_ADDRESS_HI), 8) : '';
      const data = cfg.u16(where + layout.data);
      o.out(`\t\tAddress: ${hi}${hex(cfg.u32(where + PCI_MSI_ADDRESS_LO), 8)}  Data: ${hex(data, 4)}`);
      if (layout.perVectorMask) {
        const mask = cfg.u32(where + layout.mask);
        const pending = cfg.u32(where + layout.pending);
        o.out(`\t\tMasking: ${hex(mask, 8)}  Pending: ${hex(pending, 8)}`);
      }
      return;
    }
    case PCI_CAP_ID_MSIX: {
      o.out(
        `${head}MSI-X: Enable${FLAG(cap, PCI_MSIX_FLAGS_ENABLE)} Count=${(cap & PCI_MSIX_FLAGS_QSIZE) + 1} Masked${FLAG(cap, PCI_MSIX_FLAGS_MASKALL)}`,
      );
      if (!vv) return;
      const table = cfg.u32(where + PCI_MSIX_TABLE);
      const pba = cfg.u32(where + PCI_MSIX_PBA);
      o.out(
        `\t\tVector table: BAR=${table & PCI_MSIX_TABLE_BIR} offset=${hex(table & ~PCI_MSIX_TABLE_BIR, 8)}`,
      );
      o.out(`\t\tPBA: BAR=${pba & PCI_MSIX_TABLE_BIR} offset=${hex(pba & ~PCI_MSIX_TABLE_BIR, 8)}`);
      return;
    }
    case PCI_CAP_ID_EXP:
      express(o, head, where, cap);
      return;
    case PCI_CAP_ID_VNDR:
      o.out(`${head}Vendor Specific Information: Len=${hex(cfg.u8(where + PCI_CAP_VNDR_LEN), 2)} <?>`);
      return;
    case PCI_CAP_ID_AGP:
      o.out(`${head}AGP version ${((cap >> 4) & 0xf).toString(16)}.${(cap & 0xf).toString(16)}`);
      return;
    case PCI_CAP_ID_VPD:
      o.out(`${head}Vital Product Data`);
      return;
    case PCI_CAP_ID_SLOTID:
      o.out(
        `${head}Slot ID: ${cap & 0x1f} slots, First${FLAG(cap, 0x20)}, chassis ${hex((cap >> 8) & 0xff, 2)}`,
      );
      return;
    case PCI_CAP_ID_CHSWP:
      o.out(`${head}CompactPCI hot-swap <?>`);
      return;
    case PCI_CAP_ID_PCIX:
      o.out(
        `${head}${(cfg.u8(PCI_HEADER_TYPE) & PCI_HEADER_TYPE_MASK) === PCI_HEADER_TYPE_BRIDGE ? 'PCI-X bridge device' : 'PCI-X non-bridge device'}`,
      );
      return;
    case PCI_CAP_ID_HT:
      o.out(`${head}HyperTransport: #${hex(cap >> 11, 2)}`);
      return;
    case PCI_CAP_ID_DBG:
      o.out(`${head}Debug port: BAR=${cap >> 13} offset=${hex(cap & 0x1fff, 4)}`);
      return;
    case PCI_CAP_ID_SSVID:
      o.out(`${head}Subsystem: ${deviceName(cfg.u16(where + 4), cfg.u16(where + 6), o.opts.numeric)}`);
      return;
    case PCI_CAP_ID_SATA:
      o.out(`${head}SATA HBA v${(cap >> 4) & 0xf}.${cap & 0xf}`);
      return;
    case PCI_CAP_ID_AF:
      o.out(`${head}PCI Advanced Features`);
      return;
    case PCI_CAP_ID_EA:
      o.out(`${head}Enhanced Allocation (EA): NumEntries=${cap & 0x3f}`);
      return;
    default:
      o.out(`${head}#${hex(id, 2)} [${hex(cap, 4)}]`);
  }
}

function express(o: Printer, head: string, where: number, cap: number): void {
  const { cfg } = o;
  const vv = o.opts.verbose > 1;
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
  o.out(
    `${head}Express ${vv ? `(v${cap & PCI_EXP_FLAGS_VERS}) ` : ''}${name}, MSI ${hex((cap & PCI_EXP_FLAGS_IRQ) >> 9, 2)}`,
  );
  if (!vv) return;
  const endpoint = type === PCI_EXP_TYPE_ENDPOINT || type === PCI_EXP_TYPE_LEG_END;
  const t = cfg.u32(where + PCI_EXP_DEVCAP);
  let s = `\t\tDevCap:\tMaxPayload ${128 << (t & PCI_EXP_DEVCAP_PAYLOAD)} bytes, PhantFunc ${(1 << ((t & PCI_EXP_DEVCAP_PHANTOM) >> 3)) - 1}`;
  if (endpoint)
    s += `, Latency L0s ${L0S[(t & PCI_EXP_DEVCAP_L0S) >> 6]}, L1 ${L1[(t & PCI_EXP_DEVCAP_L1) >> 9]}`;
  o.out(s);
  s = `\t\t\tExtTag${FLAG(t, PCI_EXP_DEVCAP_EXT_TAG)}`;
  if (endpoint || type === PCI_EXP_TYPE_UPSTREAM || type === PCI_EXP_TYPE_PCI_BRIDGE) {
    s += ` AttnBtn${FLAG(t, PCI_EXP_DEVCAP_ATN_BUT)} AttnInd${FLAG(t, PCI_EXP_DEVCAP_ATN_IND)} PwrInd${FLAG(t, PCI_EXP_DEVCAP_PWR_IND)}`;
  }
  s += ` RBE${FLAG(t, PCI_EXP_DEVCAP_RBER)}`;
  if (endpoint) s += ` FLReset${FLAG(t, PCI_EXP_DEVCAP_FLR)}`;
  if (type === PCI_EXP_TYPE_ENDPOINT || type === PCI_EXP_TYPE_UPSTREAM || type === PCI_EXP_TYPE_PCI_BRIDGE) {
    const watts =
      ((t & PCI_EXP_DEVCAP_PWR_VAL) >>> 18) * [1, 0.1, 0.01, 0.001][(t & PCI_EXP_DEVCAP_PWR_SCL) >>> 26];
    s += ` SlotPowerLimit ${watts.toFixed(3)}W`;
  }
  o.out(s);
  const w = cfg.u16(where + PCI_EXP_DEVCTL);
  o.out(
    `\t\tDevCtl:\tCorrErr${FLAG(w, PCI_EXP_DEVCTL_CERE)} NonFatalErr${FLAG(w, PCI_EXP_DEVCTL_NFERE)} FatalErr${FLAG(w, PCI_EXP_DEVCTL_FERE)} UnsupReq${FLAG(w, PCI_EXP_DEVCTL_URRE)}`,
  );
  s = `\t\t\tRlxdOrd${FLAG(w, PCI_EXP_DEVCTL_RELAX_EN)} ExtTag${FLAG(w, PCI_EXP_DEVCTL_EXT_TAG)} PhantFunc${FLAG(w, PCI_EXP_DEVCTL_PHANTOM)} AuxPwr${FLAG(w, PCI_EXP_DEVCTL_AUX_PME)} NoSnoop${FLAG(w, PCI_EXP_DEVCTL_NOSNOOP_EN)}`;
  if (type === PCI_EXP_TYPE_PCI_BRIDGE) s += ` BrConfRtry${FLAG(w, PCI_EXP_DEVCTL_BCR_FLR)}`;
  if (endpoint && t & PCI_EXP_DEVCAP_FLR) s += ` FLReset${FLAG(w, PCI_EXP_DEVCTL_BCR_FLR)}`;
  o.out(s);
  o.out(
    `\t\t\tMaxPayload ${128 << ((w & PCI_EXP_DEVCTL_PAYLOAD) >> 5)} bytes, MaxReadReq ${128 << ((w & PCI_EXP_DEVCTL_READRQ) >> 12)} bytes`,
  );
  const st = cfg.u16(where + PCI_EXP_DEVSTA);
  o.out(
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
  o.out(s);
  o.out(
    `\t\t\tClockPM${FLAG(lc, PCI_EXP_LNKCAP_CLKPM)} Surprise${FLAG(lc, PCI_EXP_LNKCAP_SDERC)} LLActRep${FLAG(lc, PCI_EXP_LNKCAP_DLLLARC)} BwNot${FLAG(lc, PCI_EXP_LNKCAP_LBNC)} ASPMOptComp${FLAG(lc, PCI_EXP_LNKCAP_AOC)}`,
  );
  const ctl = cfg.u16(where + PCI_EXP_LNKCTL);
  s = `\t\tLnkCtl:\tASPM ${ASPM_ENABLED[ctl & PCI_EXP_LNKCTL_ASPMC]};`;
  if (type === PCI_EXP_TYPE_ROOT_PORT || endpoint || type === PCI_EXP_TYPE_PCI_BRIDGE) {
    s += ` RCB ${ctl & PCI_EXP_LNKCTL_RCB ? 128 : 64} bytes`;
  }
  o.out(`${s} Disabled${FLAG(ctl, PCI_EXP_LNKCTL_LD)} CommClk${FLAG(ctl, PCI_EXP_LNKCTL_CCC)}`);
  o.out(
    `\t\t\tExtSynch${FLAG(ctl, PCI_EXP_LNKCTL_ES)} ClockPM${FLAG(ctl, PCI_EXP_LNKCTL_CLKREQ_EN)} AutWidDis${FLAG(ctl, PCI_EXP_LNKCTL_HAWD)} BWInt${FLAG(ctl, PCI_EXP_LNKCTL_LBMIE)} AutBWInt${FLAG(ctl, PCI_EXP_LNKCTL_LABIE)}`,
  );
  const ls = cfg.u16(where + PCI_EXP_LNKSTA);
  const staSpeed = ls & PCI_EXP_LNKSTA_CLS;
  const staWidth = (ls & PCI_EXP_LNKSTA_NLW) >> 4;
  o.out(
    `\t\tLnkSta:\tSpeed ${linkSpeed(staSpeed)} (${compare(staSpeed, capSpeed)}), Width x${staWidth} (${compare(staWidth, capWidth)})`,
  );
  o.out(
    `\t\t\tTrErr${FLAG(ls, PCI_EXP_LNKSTA_LT_ERR)} Train${FLAG(ls, PCI_EXP_LNKSTA_LT)} SlotClk${FLAG(ls, PCI_EXP_LNKSTA_SLC)} DLActive${FLAG(ls, PCI_EXP_LNKSTA_DLLLA)} BWMgmt${FLAG(ls, PCI_EXP_LNKSTA_LBMS)} ABWMgmt${FLAG(ls, PCI_EXP_LNKSTA_LABS)}`,
  );
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
