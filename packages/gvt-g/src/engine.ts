/**
 * The render engine as the simulated host runs it: it executes a scanned shadow trace (never
 * the guest's own buffers) against the vGPU's graphics memory.
 */

import { BLT_BYTES_PER_PIXEL } from './cmd-parser.js';
import {
  BLT_OPCODE_XY_COLOR_BLT,
  INSTR_BC_CLIENT,
  MI_OPCODE_LOAD_REGISTER_IMM,
  MI_OPCODE_STORE_DATA_IMM,
  MI_OPCODE_USER_INTERRUPT,
} from './constants.js';
import type { GmAccess } from './ggtt.js';

export interface EngineHooks {
  /** MI_LOAD_REGISTER_IMM: a whitelisted register takes `value`. */
  writeRegister(offset: number, value: number): void;
  /** MI_USER_INTERRUPT reached the engine. */
  userInterrupt(): void;
}

export interface ExecutionResult {
  readonly commands: number;
  /** Memory writes that found an unmapped page (the GGTT changed after the scan); they were dropped. */
  readonly faults: number;
}

const TWO_32 = 2 ** 32;

export class RenderEngine {
  private readonly scratch = new Uint8Array(8);
  private readonly scratchView = new DataView(this.scratch.buffer);
  private readonly pattern = new Uint8Array(4);

  constructor(
    private readonly gm: GmAccess,
    private readonly hooks: EngineHooks,
  ) {}

  execute(trace: Uint32Array, length: number): ExecutionResult {
    let commands = 0;
    let faults = 0;
    let i = 0;
    while (i < length) {
      const dw0 = trace[i];
      commands++;
      if (dw0 >>> 29 === INSTR_BC_CLIENT && ((dw0 >>> 22) & 0x7f) === BLT_OPCODE_XY_COLOR_BLT) {
        if (!this.colorBlt(trace, i)) faults++;
        i += 7;
        continue;
      }
      const op = (dw0 >>> 23) & 0x3f;
      if (op === MI_OPCODE_USER_INTERRUPT) {
        this.hooks.userInterrupt();
        i += 1;
      } else if (op === MI_OPCODE_STORE_DATA_IMM) {
        const len = (dw0 & 0x3ff) + 2;
        const address = (trace[i + 1] & ~3) + (trace[i + 2] & 0xffff) * TWO_32;
        this.scratchView.setUint32(0, trace[i + 3], true);
        if (len === 5) this.scratchView.setUint32(4, trace[i + 4], true);
        if (!this.gm.write(address, this.scratch.subarray(0, 4 * (len - 3)))) faults++;
        i += len;
      } else if (op === MI_OPCODE_LOAD_REGISTER_IMM) {
        const len = (dw0 & 0xff) + 2;
        for (let k = 1; k < len; k += 2) this.hooks.writeRegister(trace[i + k], trace[i + k + 1]);
        i += len;
      } else {
        // The scanner emits nothing else; stop rather than guess.
        break;
      }
    }
    return { commands, faults };
  }

  private colorBlt(t: Uint32Array, i: number): boolean {
    const br13 = t[i + 1];
    const bpp = BLT_BYTES_PER_PIXEL[(br13 >>> 24) & 3];
    const pitch = br13 & 0xffff;
    const x1 = t[i + 2] & 0xffff;
    const y1 = t[i + 2] >>> 16;
    const x2 = t[i + 3] & 0xffff;
    const y2 = t[i + 3] >>> 16;
    const dst = t[i + 4] + (t[i + 5] & 0xffff) * TWO_32;
    if (x2 <= x1 || y2 <= y1) return true;
    const color = t[i + 6];
    const pattern = this.pattern.subarray(0, bpp);
    for (let b = 0; b < bpp; b++) pattern[b] = (color >>> (8 * b)) & 0xff;
    let ok = true;
    for (let y = y1; y < y2; y++) {
      if (!this.gm.fill(dst + y * pitch + x1 * bpp, (x2 - x1) * bpp, pattern)) ok = false;
    }
    return ok;
  }
}
