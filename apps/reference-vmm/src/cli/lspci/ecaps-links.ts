/**
 * The extended capabilities that describe links, channels and the root complex, as pciutils
 * 3.9's ls-ecaps.c prints them: Virtual Channel (cap_vc), Root Complex Link (cap_rclink), RCEC
 * endpoint association (cap_rcec) and Multicast (cap_multicast).
 */
import { BITS, FLAG, fetch, hex, type Printer } from './context.js';

// PCI_EXP_TYPE_*: the port type from the PCI Express capability, which multicast depends on
const ENDPOINT = 0x0;
const ROOT_PORT = 0x4;
const UPSTREAM = 0x5;
const DOWNSTREAM = 0x6;
const ROOT_INT_EP = 0x9;

const vv = (p: Printer) => p.opts.verbose >= 2;

/** pciutils' TABLE(): the name, or ??n past the end of the table. */
const table = (names: readonly string[], i: number) => names[i] ?? `??${i}`;

export function virtualChannel(p: Printer, head: string, where: number): void {
  const { cfg } = p;
  p.out(`${head}Virtual Channel`);
  if (!vv(p) || !fetch(cfg, where + 4, 0x1c - 4)) return;
  const arbSelects = ['Fixed', 'WRR32', 'WRR64', 'WRR128', '??4', '??5', '??6', '??7'];
  const vcArbSelects = ['Fixed', 'WRR32', 'WRR64', 'WRR128', 'TWRR128', 'WRR256', '??6', '??7'];
  const cr1 = cfg.u32(where + 4);
  const cr2 = cfg.u32(where + 8);
  const ctrl = cfg.u16(where + 0xc);
  const status = cfg.u16(where + 0xe);
  const evcCount = BITS(cr1, 0, 3);
  p.out(
    `\t\tCaps:\tLPEVC=${BITS(cr1, 4, 3)} RefClk=${table(['100ns'], BITS(cr1, 8, 2))} PATEntryBits=${1 << BITS(cr1, 10, 2)}`,
  );
  const arb = (names: readonly string[], bits: number) => {
    let s = '';
    for (let i = 0; i < 8; i++)
      if (names[i][0] !== '?' || bits & (1 << i)) s += `${i ? ' ' : '\t'}${names[i]}${FLAG(bits, 1 << i)}`;
    return s;
  };
  p.out(`\t\tArb:${arb(arbSelects, cr2)}`);
  p.out(`\t\tCtrl:\tArbSelect=${table(arbSelects, BITS(ctrl, 1, 3))}`);
  p.out(`\t\tStatus:\tInProgress${FLAG(status, 1)}`);
  const arbTable = BITS(cr2, 24, 8);
  if (arbTable) p.out(`\t\tPort Arbitration Table [${(where + 16 * arbTable).toString(16)}] <?>`);
  for (let i = 0; i <= evcCount; i++) {
    const pos = where + 0x10 + 12 * i;
    if (!fetch(cfg, pos, 12)) {
      p.out(`\t\tVC${i}:\t<unreadable>`);
      continue;
    }
    const rcap = cfg.u32(pos);
    const rctrl = cfg.u32(pos + 4);
    const rstatus = cfg.u16(pos + 10);
    const pat = BITS(rcap, 24, 8);
    p.out(
      `\t\tVC${i}:\tCaps:\tPATOffset=${hex(pat, 2)} MaxTimeSlots=${BITS(rcap, 16, 7) + 1} RejSnoopTrans${FLAG(rcap, 1 << 15)}`,
    );
    p.out(`\t\t\tArb:${arb(vcArbSelects, rcap)}`);
    p.out(
      `\t\t\tCtrl:\tEnable${FLAG(rctrl, 0x80000000)} ID=${BITS(rctrl, 24, 3)} ArbSelect=${table(vcArbSelects, BITS(rctrl, 17, 3))} TC/VC=${hex(BITS(rctrl, 0, 8), 2)}`,
    );
    p.out(`\t\t\tStatus:\tNegoPending${FLAG(rstatus, 2)} InProgress${FLAG(rstatus, 1)}`);
    if (pat) p.out('\t\t\tPort Arbitration Table <?>');
  }
}

export function rootComplexLink(p: Printer, head: string, where: number): void {
  const { cfg } = p;
  p.out(`${head}Root Complex Link`);
  if (!vv(p) || !fetch(cfg, where + 4, 12)) return;
  const esd = cfg.u32(where + 4);
  const links = BITS(esd, 8, 8);
  p.out(
    `\t\tDesc:\tPortNumber=${hex(BITS(esd, 24, 8), 2)} ComponentID=${hex(BITS(esd, 16, 8), 2)} EltType=${table(['Config', 'Egress', 'Internal'], BITS(esd, 0, 8))}`,
  );
  for (let i = 0; i < links; i++) {
    const pos = where + 0x10 + 16 * i;
    if (!fetch(cfg, pos, 16)) {
      p.out(`\t\tLink${i}:\t<unreadable>`);
      return;
    }
    const desc = cfg.u32(pos);
    const lo = cfg.u32(pos + 8);
    const hi = cfg.u32(pos + 12);
    p.out(
      `\t\tLink${i}:\tDesc:\tTargetPort=${hex(BITS(desc, 24, 8), 2)} TargetComponent=${hex(BITS(desc, 16, 8), 2)} AssocRCRB${FLAG(desc, 4)} LinkType=${desc & 2 ? 'Config' : 'MemMapped'} LinkValid${FLAG(desc, 1)}`,
    );
    if (desc & 2) {
      const n = lo & 7 || 8;
      p.out(
        `\t\t\tAddr:\t${hex(BITS(lo, 20, n), 2)}:${hex(BITS(lo, 15, 5), 2)}.${BITS(lo, 12, 3)}  CfgSpace=${hex(hi, 8)}${hex(lo, 8)}`,
      );
    } else p.out(`\t\t\tAddr:\t${hex(hi, 8)}${hex(lo, 8)}`);
  }
}

export function rcec(p: Printer, head: string, where: number): void {
  const { cfg } = p;
  p.out(`${head}Root Complex Event Collector Endpoint Association`);
  if (!vv(p) || !fetch(cfg, where, 12)) return;
  const version = (cfg.u32(where) >>> 16) & 0xf;
  const bmap = cfg.u32(where + 4);
  let s = '\t\tRCiEPBitmap: ';
  if (bmap) {
    // a run of devices prints as first-last, except a run that reaches device 31 (cap_rcec)
    s += 'RCiEP at Device(s):';
    let prevMatched = false;
    let run = 0;
    let prev = 0;
    for (let dev = 0; dev < 32; dev++) {
      if (BITS(bmap, dev, 1)) {
        if (!run) s += `${prevMatched ? ',' : ''} ${dev}`;
        run++;
        prev = dev;
        prevMatched = true;
      } else {
        if (run > 1) s += `-${prev}`;
        run = 0;
      }
    }
  } else s += p.opts.verbose > 2 ? '00000000 [none]' : '[none]';
  p.out(s);
  if (version < 2) return;
  const busn = cfg.u32(where + 8);
  const last = BITS(busn, 16, 8);
  const next = BITS(busn, 8, 8);
  if (last === 0 && next === 0xff)
    p.out(`\t\tAssociatedBusNumbers: ${p.opts.verbose > 2 ? 'ff-00 [none]' : '[none]'}`);
  else p.out(`\t\tAssociatedBusNumbers: ${hex(next, 2)}-${hex(last, 2)}`);
}

/** 1 << n as a C int on x86, whose shift count wraps at 32. */
const cShift = (n: number) => (1 << (n & 31)) | 0;

export function multicast(p: Printer, head: string, where: number, type: number): void {
  const { cfg } = p;
  p.out(`${head}Multicast`);
  if (!vv(p) || !fetch(cfg, where + 4, 0x30)) return;
  const u64 = (o: number) => BigInt(cfg.u32(o)) | (BigInt(cfg.u32(o + 4)) << 32n);
  const x16 = (n: bigint) => n.toString(16).padStart(16, '0');
  const endpoint = type === ENDPOINT || type === ROOT_INT_EP;
  let w = cfg.u16(where + 4);
  let s = `\t\tMcastCap: MaxGroups ${(w & 0x3f) + 1}`;
  if (endpoint) s += `, WindowSz ${(w >> 8) & 0x3f} (${cShift((w >> 8) & 0x3f)} bytes)`;
  // ls-ecaps.c ends this line only for the ports that have ECRCRegen
  if (type === ROOT_PORT || type === UPSTREAM || type === DOWNSTREAM)
    p.out(`${s}, ECRCRegen${FLAG(w, 0x8000)}`);
  else p.partial(s);
  w = cfg.u16(where + 6);
  p.out(`\t\tMcastCtl: NumGroups ${(w & 0x3f) + 1}, Enable${FLAG(w, 0x8000)}`);
  const bar = u64(where + 8);
  p.out(
    `\t\tMcastBAR: IndexPos ${Number(bar & 0x3fn)}, BaseAddr ${x16(bar & ~0xfffn & 0xffffffffffffffffn)}`,
  );
  p.out(`\t\tMcastReceiveVec:      ${x16(u64(where + 0x10))}`);
  p.out(`\t\tMcastBlockAllVec:     ${x16(u64(where + 0x18))}`);
  p.out(`\t\tMcastBlockUntransVec: ${x16(u64(where + 0x20))}`);
  if (endpoint) return;
  const ovl = u64(where + 0x28);
  const size = Number(ovl & 0x3fn);
  p.out(
    `\t\tMcastOverlayBAR: OverlaySize ${size} ${size >= 6 ? `(${cShift(size)} bytes)` : '(disabled)'}, BaseAddr ${x16(ovl & ~0x3fn & 0xffffffffffffffffn)}`,
  );
}
