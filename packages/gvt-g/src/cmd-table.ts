/**
 * The command table (gvt/cmd_parser.c cmd_info[]): which commands exist on which engine of a
 * gen9 GPU, how long each is, and what executing it means here. Facts from
 * intel_gpu_commands.h and cmd_parser.c; length fields are "dwords - 2" in the low bits of
 * dword 0, 8 bits wide unless the table says otherwise (MI_STORE_DATA_IMM 10, MI_FLUSH_DW 6,
 * 3DSTATE_SO_DECL_LIST and the binding-table edits 9, media 16).
 *
 * Kinds: STATE commands are audited for length and kept out of the trace (the simulated GPU
 * renders no 3D or media work, so pipeline state changes nothing it models); the others run.
 */
export type EngineClass = 'rcs' | 'bcs' | 'vcs' | 'vecs';

export const KIND = Object.freeze({
  NOOP_1: 0,
  STATE: 1,
  BB_START: 2,
  BB_END: 3,
  USER_INTERRUPT: 4,
  STORE_DWORD: 5,
  STORE_INDEX: 6,
  LRI: 7,
  SRM: 8,
  LRM: 9,
  LRR: 10,
  PIPE_CONTROL: 11,
  FLUSH_DW: 12,
  SEMAPHORE_WAIT: 13,
  COLOR_BLT: 14,
} as const);
export type CmdKind = (typeof KIND)[keyof typeof KIND];

export interface DecodedCommand {
  readonly name: string;
  readonly kind: CmdKind;
  /** Dwords, dword 0 included. */
  readonly length: number;
}

const ALL: readonly EngineClass[] = ['rcs', 'bcs', 'vcs', 'vecs'];
const RCS: readonly EngineClass[] = ['rcs'];
const NOT_RCS: readonly EngineClass[] = ['bcs', 'vcs', 'vecs'];

interface MiInfo {
  readonly name: string;
  readonly kind: CmdKind;
  readonly rings: readonly EngineClass[];
  /** Bits of the length field; 0 for a one-dword command. */
  readonly lengthBits: number;
}

const mi = (name: string, kind: CmdKind, rings: readonly EngineClass[], lengthBits = 0): MiInfo => ({
  name,
  kind,
  rings,
  lengthBits,
});

/** MI commands by opcode (bits 28:23). */
const MI: ReadonlyMap<number, MiInfo> = new Map([
  [0x00, mi('MI_NOOP', KIND.NOOP_1, ALL)],
  [0x02, mi('MI_USER_INTERRUPT', KIND.USER_INTERRUPT, ALL)],
  [0x03, mi('MI_WAIT_FOR_EVENT', KIND.STATE, ALL)],
  [0x05, mi('MI_ARB_CHECK', KIND.STATE, ALL)],
  [0x06, mi('MI_RS_CONTROL', KIND.STATE, RCS)],
  [0x07, mi('MI_REPORT_HEAD', KIND.STATE, ALL)],
  [0x08, mi('MI_ARB_ON_OFF', KIND.STATE, ALL)],
  [0x0a, mi('MI_BATCH_BUFFER_END', KIND.BB_END, ALL)],
  [0x0b, mi('MI_SUSPEND_FLUSH', KIND.STATE, ALL)],
  [0x0c, mi('MI_PREDICATE', KIND.STATE, RCS)],
  [0x0d, mi('MI_TOPOLOGY_FILTER', KIND.STATE, ALL)],
  [0x0e, mi('MI_SET_APPID', KIND.STATE, ALL)],
  [0x0f, mi('MI_RS_CONTEXT', KIND.STATE, RCS)],
  [0x16, mi('MI_SEMAPHORE_SIGNAL', KIND.STATE, ALL, 8)],
  [0x1c, mi('MI_SEMAPHORE_WAIT', KIND.SEMAPHORE_WAIT, ALL, 8)],
  [0x20, mi('MI_STORE_DATA_IMM', KIND.STORE_DWORD, ALL, 10)],
  [0x21, mi('MI_STORE_DATA_INDEX', KIND.STORE_INDEX, ALL, 8)],
  [0x22, mi('MI_LOAD_REGISTER_IMM', KIND.LRI, ALL, 8)],
  [0x24, mi('MI_STORE_REGISTER_MEM', KIND.SRM, ALL, 8)],
  [0x26, mi('MI_FLUSH_DW', KIND.FLUSH_DW, NOT_RCS, 6)],
  [0x29, mi('MI_LOAD_REGISTER_MEM', KIND.LRM, ALL, 8)],
  [0x2a, mi('MI_LOAD_REGISTER_REG', KIND.LRR, ALL, 8)],
  [0x31, mi('MI_BATCH_BUFFER_START', KIND.BB_START, ALL, 8)],
]);

/** 3D state commands whose length field is 9 bits (cmd_parser.c). */
const NINE_BIT_3D = new Set([0x7917, 0x7943, 0x7944, 0x7945, 0x7946, 0x7947]);
/** One-dword render commands: PIPELINE_SELECT, 3DSTATE_VF_STATISTICS. */
const ONE_DWORD_3D = new Set([0x6904, 0x680b]);
/** Blitter opcodes (bits 28:22). */
const BLT_XY_COLOR_BLT = 0x50;

const hex8 = (v: number) => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;

const ENGINE_CLASSES: readonly EngineClass[] = ['rcs', 'bcs', 'vcs', 'vecs'];

/** Per engine, each MI opcode's entry, or why the audit refuses that opcode there. */
const MI_ON: Readonly<Record<EngineClass, readonly (MiInfo | string)[]>> = Object.freeze(
  Object.fromEntries(
    ENGINE_CLASSES.map((engine) => [
      engine,
      Array.from({ length: 0x40 }, (_, op) => {
        const info = MI.get(op);
        if (info === undefined) return `MI command opcode 0x${op.toString(16)} is not allowed`;
        if (!info.rings.includes(engine)) return `${info.name} is not a command of the ${engine} engine`;
        return info;
      }),
    ]),
  ) as Record<EngineClass, (MiInfo | string)[]>,
);

const command = (name: string, kind: CmdKind, length: number): DecodedCommand => ({ name, kind, length });

/** Render (client 3) command names by dword 0's bits 31:16, made once each. */
const GFXPIPE_NAMES: (string | undefined)[] = new Array(0x10000);

function gfxpipeName(prefix: string, id: number): string {
  let name = GFXPIPE_NAMES[id];
  if (name === undefined) {
    name = `${prefix} 0x${id.toString(16)}`;
    GFXPIPE_NAMES[id] = name;
  }
  return name;
}

/**
 * A decode table entry: the command's kind in bits 3:0 and, from bit 4, the mask of its length
 * field (length = (dw0 & mask) + 2; mask 0: one dword); REFUSED where the audit refuses it,
 * UNKNOWN until the key is first seen.
 */
export const REFUSED = -1;
export const UNKNOWN = -2;
export const DECODE_KIND_BITS = 0xf;
export const DECODE_MASK_SHIFT = 4;

const DECODE_TABLES = new Map<EngineClass, Int32Array>();

/**
 * decodeCommand on `engine` as one load per command, keyed by dword 0's bits 31:16: every rule
 * that picks a command (client, opcode, sub-opcode) lies in those bits, and its length is a mask
 * of the low ones. Entries are learnt from decodeCommand itself (learnDecode) the first time a
 * key is seen, so the two cannot disagree; decodeCommand still names a command and says why one
 * is refused.
 */
export function decodeTableOf(engine: EngineClass): Int32Array {
  let table = DECODE_TABLES.get(engine);
  if (table === undefined) {
    table = new Int32Array(0x10000).fill(UNKNOWN);
    DECODE_TABLES.set(engine, table);
  }
  return table;
}

/** The entry of dword 0's key in `engine`'s table (decodeTableOf), learnt now and kept. */
export function learnDecode(engine: EngineClass, dw0: number): number {
  const key = dw0 >>> 16;
  const short = decodeCommand((key << 16) >>> 0, engine);
  const long = decodeCommand(((key << 16) | 0xffff) >>> 0, engine);
  const entry =
    typeof short === 'string' || typeof long === 'string'
      ? REFUSED
      : short.kind | ((short.length === 1 ? 0 : long.length - 2) << DECODE_MASK_SHIFT);
  decodeTableOf(engine)[key] = entry;
  return entry;
}

/** The command dword 0 starts on `engine`, or why the audit refuses it. */
export function decodeCommand(dw0: number, engine: EngineClass): DecodedCommand | string {
  const client = dw0 >>> 29;
  if (client === 0) {
    const info = MI_ON[engine][(dw0 >>> 23) & 0x3f];
    if (typeof info === 'string') return info;
    const length = info.lengthBits === 0 ? 1 : (dw0 & ((1 << info.lengthBits) - 1)) + 2;
    return command(info.name, info.kind, length);
  }
  if (client === 2) {
    if (engine !== 'bcs' && engine !== 'rcs')
      return `blitter command ${hex8(dw0)} is not a command of the ${engine} engine`;
    const op = (dw0 >>> 22) & 0x7f;
    if (op === BLT_XY_COLOR_BLT) return command('XY_COLOR_BLT', KIND.COLOR_BLT, (dw0 & 0xff) + 2);
    return `command ${hex8(dw0)} is not in the allowed subset (the simulated blitter fills rectangles only)`;
  }
  if (client === 3) {
    if (engine !== 'rcs') return `command ${hex8(dw0)} is not in the allowed subset of the ${engine} engine`;
    const pipe = (dw0 >>> 27) & 3;
    const op = (dw0 >>> 24) & 7;
    const sub = (dw0 >>> 16) & 0xff;
    const id = dw0 >>> 16;
    if (ONE_DWORD_3D.has(id)) return command(gfxpipeName('GFXPIPE', id), KIND.STATE, 1);
    if (pipe === 3 && op === 2 && sub === 0)
      return command('PIPE_CONTROL', KIND.PIPE_CONTROL, (dw0 & 0xff) + 2);
    if (pipe === 3 && op === 3 && sub === 0) return command('3DPRIMITIVE', KIND.STATE, (dw0 & 0xff) + 2);
    if (pipe === 3 && (op === 0 || op === 1)) {
      const bits = NINE_BIT_3D.has(id) ? 9 : 8;
      return command(gfxpipeName('3DSTATE', id), KIND.STATE, (dw0 & ((1 << bits) - 1)) + 2);
    }
    if (pipe === 2) return command(gfxpipeName('MEDIA', id), KIND.STATE, (dw0 & 0xffff) + 2);
    if (pipe === 0 || pipe === 1) return command(gfxpipeName('GFXPIPE', id), KIND.STATE, (dw0 & 0xff) + 2);
  }
  return `command ${hex8(dw0)} is not in the allowed subset`;
}
