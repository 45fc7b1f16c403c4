/**
 * The virtual OpRegion GVT-g synthesises for every vGPU (gvt/opregion.c): an 8 KiB OpRegion 2.0
 * with only the VBT mailbox, the lid forced open, and a small VBT describing four DisplayPort
 * ports. Also the SWSCI mailbox emulation a guest's SCI request triggers.
 */
import { OPREGION_SIZE } from './constants.js';

// opregion.c / reg.h
export const OPREGION_SIGNATURE = 'IntelGraphicsMem';
export const OPREGION_VERSION_2_0 = 0x02000000;
/** MBOX_VBT: mailbox 4 holds the VBT. */
export const OPREGION_MBOX_VBT = 1 << 3;
export const OPREGION_OFFSET_SIZE = 0x10;
export const OPREGION_OFFSET_VERSION = 0x14;
export const OPREGION_OFFSET_MBOXES = 0x58;
/** INTEL_GVT_OPREGION_CLID, forced to 3 ("open"). */
export const OPREGION_CLID = 0x1ac;
export const OPREGION_CLID_OPEN = 0x3;
/** INTEL_GVT_OPREGION_SCIC / PARM: the SWSCI mailbox. */
export const OPREGION_SCIC = 0x200;
export const OPREGION_PARM = 0x204;
/** INTEL_GVT_OPREGION_VBT_OFFSET: mailbox 4. */
export const OPREGION_VBT_OFFSET = 0x400;

// intel_vbt_defs.h
export const VBT_HEADER_SIZE = 48;
export const BDB_HEADER_SIZE = 22;
export const VBT_VERSION = 155;
export const BDB_VERSION = 186;
export const BDB_GENERAL_FEATURES = 1;
export const BDB_GENERAL_DEFINITIONS = 2;
export const BDB_DRIVER_FEATURES = 12;
/** Child device config size at BDB version 186 (opregion.c: "child_dev_size = 33"). */
export const CHILD_DEVICE_SIZE = 33;
export const DEVICE_TYPE_DP = 0x68c6;
/** Child handles (opregion.c) and DVO ports / AUX channels (intel_vbt_defs.h), ports A..D. */
const PORTS = [
  { handle: 0x04, dvoPort: 10, aux: 0x40 }, // EFP1, DVO_PORT_DPA, DP_AUX_A
  { handle: 0x40, dvoPort: 7, aux: 0x10 }, // EFP2, DVO_PORT_DPB, DP_AUX_B
  { handle: 0x20, dvoPort: 8, aux: 0x20 }, // EFP3, DVO_PORT_DPC, DP_AUX_C
  { handle: 0x10, dvoPort: 9, aux: 0x30 }, // EFP4, DVO_PORT_DPD, DP_AUX_D
] as const;
/** Child config offsets at BDB 186: dvo_port, the compat byte (dp_compat bit 1), aux, integrated_encoder (bit 5). */
const CHILD_DVO_PORT = 16;
const CHILD_COMPAT = 24;
const CHILD_AUX_CHANNEL = 25;
const CHILD_ENCODER = 27;
/** bdb_general_features (5 bytes at BDB 186, int_crt/int_tv support in the last byte, both 0). */
const GENERAL_FEATURES_SIZE = 5;
/** bdb_general_definitions fixed part: ddc pin, dpms bits, boot_display[2], child_dev_size. */
const GENERAL_DEFINITIONS_SIZE = 5;
/** bdb_driver_features up to the 165+ feature word (lvds_config 0 = BDB_DRIVER_FEATURE_NO_LVDS). */
const DRIVER_FEATURES_SIZE = 19;

/** The synthetic VBT, as gvt/opregion.c virt_vbt_generation builds it. */
export function buildVirtualVbt(): Uint8Array {
  const blocks =
    3 +
    GENERAL_FEATURES_SIZE +
    3 +
    GENERAL_DEFINITIONS_SIZE +
    PORTS.length * CHILD_DEVICE_SIZE +
    3 +
    DRIVER_FEATURES_SIZE;
  const size = VBT_HEADER_SIZE + BDB_HEADER_SIZE + blocks;
  const vbt = new Uint8Array(size);
  const dv = new DataView(vbt.buffer);
  vbt.set(new TextEncoder().encode('$VBT'), 0);
  dv.setUint16(0x14, VBT_VERSION, true);
  dv.setUint16(0x16, VBT_HEADER_SIZE, true);
  dv.setUint16(0x18, size, true);
  dv.setUint32(0x1c, VBT_HEADER_SIZE, true);
  let at = VBT_HEADER_SIZE;
  vbt.set(new TextEncoder().encode('BIOS_DATA_BLOCK'), at);
  dv.setUint16(at + 0x10, BDB_VERSION, true);
  dv.setUint16(at + 0x12, BDB_HEADER_SIZE, true);
  dv.setUint16(at + 0x14, size - VBT_HEADER_SIZE, true);
  at += BDB_HEADER_SIZE;
  const block = (id: number, payload: number) => {
    vbt[at] = id;
    dv.setUint16(at + 1, payload, true);
    at += 3;
    const start = at;
    at += payload;
    return start;
  };
  block(BDB_GENERAL_FEATURES, GENERAL_FEATURES_SIZE);
  const defs = block(BDB_GENERAL_DEFINITIONS, GENERAL_DEFINITIONS_SIZE + PORTS.length * CHILD_DEVICE_SIZE);
  vbt[defs + 4] = CHILD_DEVICE_SIZE;
  PORTS.forEach((p, i) => {
    const c = defs + GENERAL_DEFINITIONS_SIZE + i * CHILD_DEVICE_SIZE;
    dv.setUint16(c, p.handle, true);
    dv.setUint16(c + 2, DEVICE_TYPE_DP, true);
    vbt[c + CHILD_DVO_PORT] = p.dvoPort;
    vbt[c + CHILD_COMPAT] = 1 << 1;
    vbt[c + CHILD_AUX_CHANNEL] = p.aux;
    vbt[c + CHILD_ENCODER] = 1 << 5;
  });
  block(BDB_DRIVER_FEATURES, DRIVER_FEATURES_SIZE);
  return vbt;
}

/** The 8 KiB virtual OpRegion (intel_vgpu_init_opregion). */
export function buildVirtualOpRegion(): Uint8Array {
  const region = new Uint8Array(OPREGION_SIZE);
  const dv = new DataView(region.buffer);
  region.set(new TextEncoder().encode(OPREGION_SIGNATURE), 0);
  dv.setUint32(OPREGION_OFFSET_SIZE, OPREGION_SIZE / 1024, true);
  dv.setUint32(OPREGION_OFFSET_VERSION, OPREGION_VERSION_2_0, true);
  dv.setUint32(OPREGION_OFFSET_MBOXES, OPREGION_MBOX_VBT, true);
  region[OPREGION_CLID] = OPREGION_CLID_OPEN;
  region.set(buildVirtualVbt(), OPREGION_VBT_OFFSET);
  return region;
}

// opregion.c: SCIC fields and the functions GVT answers.
const SCIC_FUNC_MASK = 0x1e;
const SCIC_FUNC_SHIFT = 1;
const SCIC_SUBFUNC_MASK = 0xff00;
const SCIC_SUBFUNC_SHIFT = 8;
const SCIC_EXIT_MASK = 0xe0;
const SCIC_F_GETBIOSDATA = 4;
const SCIC_F_GETBIOSCALLBACKS = 6;
const SCIC_SF_SUPPORTEDCALLS = 0;
const SCIC_SF_REQUESTEDCALLBACKS = 1;

export interface SwsciResult {
  readonly scic: number;
  readonly parm: number;
  /** True when the request was a capability query GVT answers; false for a refused runtime service. */
  readonly answered: boolean;
}

/**
 * intel_vgpu_emulate_opregion_request for one SCIC/PARM pair: capability queries (Get BIOS Data /
 * supported calls or requested callbacks, System BIOS Callbacks / supported calls) answer with
 * both words 0 ("nothing supported, success"); anything else gets exit status 0 (failure).
 */
export function emulateSwsci(scic: number, parm: number): SwsciResult {
  const func = (scic & SCIC_FUNC_MASK) >>> SCIC_FUNC_SHIFT;
  const sub = (scic & SCIC_SUBFUNC_MASK) >>> SCIC_SUBFUNC_SHIFT;
  const query =
    (func === SCIC_F_GETBIOSDATA && (sub === SCIC_SF_SUPPORTEDCALLS || sub === SCIC_SF_REQUESTEDCALLBACKS)) ||
    (func === SCIC_F_GETBIOSCALLBACKS && sub === SCIC_SF_SUPPORTEDCALLS);
  if (query) return { scic: 0, parm: 0, answered: true };
  return { scic: (scic & ~SCIC_EXIT_MASK) >>> 0, parm, answered: false };
}
