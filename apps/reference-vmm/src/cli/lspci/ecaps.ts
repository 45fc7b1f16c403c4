/** Extended capabilities (offset 0x100 on) as ls-ecaps.c prints them. */
import {
  PCI_CFG_SPACE_EXP_SIZE,
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
  walkExtendedCapabilities,
} from '@vfiokit/core';
import { type GuestConfig, hex, type Printer } from './context.js';

/** The extended capability list (ls-ecaps.c show_ext_caps). */
export function showExtCaps(o: Printer): void {
  const { cfg } = o;
  const walk = walkExtendedCapabilities((off) => cfg.u32(off), PCI_CFG_SPACE_EXP_SIZE);
  for (const c of walk.capabilities) {
    const head = `\tCapabilities: [${hex(c.offset, 3)}${o.opts.verbose > 1 ? ` v${c.version}` : ''}] `;
    o.out(head + extCapName(c.id, c.offset, cfg));
  }
  if (!walk.ok) {
    o.out(
      `\tCapabilities: [${hex(walk.at, 3)}] ${walk.reason === 'loop' ? '<chain looped>' : '<chain broken>'}`,
    );
  }
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
