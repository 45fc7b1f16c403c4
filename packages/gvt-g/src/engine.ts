/**
 * The command streamer as the simulated host runs it: it executes a scanned shadow trace (never
 * the guest's own buffers) on one engine, against the vGPU's GGTT and the context's PPGTT.
 * What runs: stores (MI_STORE_DATA_IMM / INDEX), post-sync writes of PIPE_CONTROL and
 * MI_FLUSH_DW (immediate data or the timestamp), register loads and stores, user interrupts,
 * XY_COLOR_BLT fills. Semaphore waits are evaluated once: a wait that is not satisfied is
 * counted (nothing else runs on this engine meanwhile that could satisfy it).
 */

import { TWO_32 } from '@vfiokit/core';
import { type GpuAddressSpace, gpuAddress } from './address-space.js';
import { BLT_BYTES_PER_PIXEL, FLUSH_DW_STORE_INDEX, PC_STORE_DATA_INDEX, TRACE_PPGTT } from './cmd-parser.js';
import { KIND } from './cmd-table.js';

export interface EngineHooks {
  /** MI_LOAD_REGISTER_IMM / MEM / REG: a command-accessible register takes `value`. */
  writeRegister(offset: number, value: number): void;
  /** MI_STORE_REGISTER_MEM / MI_LOAD_REGISTER_REG: a register's value. */
  readRegister?(offset: number): number;
  /** MI_USER_INTERRUPT reached the engine. */
  userInterrupt(): void;
  /** The engine's timestamp (PIPE_CONTROL / MI_FLUSH_DW post-sync timestamp writes). */
  timestamp?(): bigint;
}

/** Where one workload's memory operands go. */
export interface ExecutionSpaces {
  readonly ggtt: GpuAddressSpace;
  readonly ppgtt?: GpuAddressSpace;
  /** GGTT address of the engine's hardware status page (the *_STORE_INDEX operands). */
  readonly hwsp?: number;
}

export interface ExecutionResult {
  readonly commands: number;
  /** Memory writes that found an unmapped page (the tables changed after the scan); they were dropped. */
  readonly faults: number;
  /** Semaphore waits whose condition did not hold when they ran. */
  readonly unsatisfiedWaits: number;
}

export class CommandStreamer {
  private readonly scratch = new Uint8Array(256 * 4);
  private readonly scratchView = new DataView(this.scratch.buffer);
  private readonly pattern = new Uint8Array(4);
  private spaces: ExecutionSpaces;

  constructor(
    private readonly gm: GpuAddressSpace,
    private readonly hooks: EngineHooks,
  ) {
    this.spaces = { ggtt: gm };
  }

  execute(trace: Uint32Array, length: number, spaces: ExecutionSpaces = { ggtt: this.gm }): ExecutionResult {
    this.spaces = spaces;
    let commands = 0;
    let faults = 0;
    let unsatisfiedWaits = 0;
    let i = 0;
    while (i + 2 <= length) {
      const tag = trace[i];
      const len = trace[i + 1];
      const c = i + 2;
      if (len === 0 || c + len > length) break;
      const space = tag & TRACE_PPGTT && spaces.ppgtt ? spaces.ppgtt : spaces.ggtt;
      commands++;
      switch (tag & 0xff) {
        case KIND.USER_INTERRUPT:
          this.hooks.userInterrupt();
          break;
        case KIND.STORE_DWORD: {
          const address = gpuAddress(trace[c + 1], trace[c + 2], 3);
          if (!this.store(space, address, trace, c + 3, len - 3)) faults++;
          break;
        }
        case KIND.STORE_INDEX:
          if (!this.storeIndex(trace[c + 1] & ~3, trace, c + 2, len - 2)) faults++;
          break;
        case KIND.LRI:
          for (let k = 1; k < len; k += 2) this.hooks.writeRegister(trace[c + k], trace[c + k + 1]);
          break;
        case KIND.SRM: {
          const v = this.hooks.readRegister?.(trace[c + 1]) ?? 0;
          this.scratchView.setUint32(0, v >>> 0, true);
          const address = gpuAddress(trace[c + 2], trace[c + 3], 3);
          if (!space.write(address, this.scratch.subarray(0, 4))) faults++;
          break;
        }
        case KIND.LRM: {
          const address = gpuAddress(trace[c + 2], trace[c + 3], 3);
          if (space.read(address, this.scratch.subarray(0, 4)))
            this.hooks.writeRegister(trace[c + 1], this.scratchView.getUint32(0, true));
          else faults++;
          break;
        }
        case KIND.LRR:
          this.hooks.writeRegister(trace[c + 2], this.hooks.readRegister?.(trace[c + 1]) ?? 0);
          break;
        case KIND.PIPE_CONTROL:
          if (!this.pipeControl(space, trace, c)) faults++;
          break;
        case KIND.FLUSH_DW:
          if (!this.flushDw(space, trace, c, len)) faults++;
          break;
        case KIND.SEMAPHORE_WAIT:
          if (!this.semaphoreHolds(space, trace, c)) unsatisfiedWaits++;
          break;
        case KIND.COLOR_BLT:
          if (!this.colorBlt(space, trace, c)) faults++;
          break;
        default:
          // The scanner emits nothing else; stop rather than guess.
          return { commands, faults, unsatisfiedWaits };
      }
      i = c + len;
    }
    return { commands, faults, unsatisfiedWaits };
  }

  private store(space: GpuAddressSpace, address: number, t: Uint32Array, from: number, n: number): boolean {
    for (let k = 0; k < n; k++) this.scratchView.setUint32(4 * k, t[from + k], true);
    return space.write(address, this.scratch.subarray(0, 4 * n));
  }

  private storeIndex(offset: number, t: Uint32Array, from: number, n: number): boolean {
    const hwsp = this.spaces.hwsp;
    if (hwsp === undefined || offset + 4 * n > 4096) return false;
    return this.store(this.spaces.ggtt, hwsp + offset, t, from, n);
  }

  private postSync(
    space: GpuAddressSpace,
    op: number,
    address: number,
    index: boolean,
    lo: number,
    hi: number,
    qword: boolean,
  ): boolean {
    if (op === 3) {
      const ts = this.hooks.timestamp?.() ?? 0n;
      lo = Number(ts & 0xffffffffn);
      hi = Number((ts >> 32n) & 0xffffffffn);
      qword = true;
    } else if (op === 2) {
      // PS depth count: no pixels are shaded here.
      lo = 0;
      hi = 0;
      qword = true;
    }
    this.scratchView.setUint32(0, lo >>> 0, true);
    this.scratchView.setUint32(4, hi >>> 0, true);
    const bytes = this.scratch.subarray(0, qword ? 8 : 4);
    if (index) {
      const hwsp = this.spaces.hwsp;
      if (hwsp === undefined || address + bytes.length > 4096) return false;
      return this.spaces.ggtt.write(hwsp + address, bytes);
    }
    return space.write(address, bytes);
  }

  private pipeControl(space: GpuAddressSpace, t: Uint32Array, c: number): boolean {
    const dw1 = t[c + 1];
    const op = (dw1 >>> 14) & 3;
    if (op === 0) return true;
    const index = (dw1 & PC_STORE_DATA_INDEX) !== 0;
    const address = index ? t[c + 2] & 0xffc : gpuAddress(t[c + 2], t[c + 3], 7);
    return this.postSync(space, op, address, index, t[c + 4], t[c + 5] ?? 0, true);
  }

  private flushDw(space: GpuAddressSpace, t: Uint32Array, c: number, len: number): boolean {
    const dw0 = t[c];
    const op = (dw0 >>> 14) & 3;
    if (op === 0) return true;
    const index = (dw0 & FLUSH_DW_STORE_INDEX) !== 0;
    const address = index ? t[c + 1] & 0xffc : gpuAddress(t[c + 1], t[c + 2], 7);
    return this.postSync(space, op, address, index, t[c + 3], len > 4 ? t[c + 4] : 0, len > 4);
  }

  /** MI_SEMAPHORE_WAIT compare operations (bits 14:12): SAD > SDD, >=, <, <=, ==, !=. */
  private semaphoreHolds(space: GpuAddressSpace, t: Uint32Array, c: number): boolean {
    const address = gpuAddress(t[c + 2], t[c + 3], 3);
    if (!space.read(address, this.scratch.subarray(0, 4))) return false;
    const sad = this.scratchView.getUint32(0, true);
    const sdd = t[c + 1] >>> 0;
    switch ((t[c] >>> 12) & 7) {
      case 0:
        return sad > sdd;
      case 1:
        return sad >= sdd;
      case 2:
        return sad < sdd;
      case 3:
        return sad <= sdd;
      case 4:
        return sad === sdd;
      case 5:
        return sad !== sdd;
      default:
        return false;
    }
  }

  private colorBlt(space: GpuAddressSpace, t: Uint32Array, i: number): boolean {
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
      if (!space.fill(dst + y * pitch + x1 * bpp, (x2 - x1) * bpp, pattern)) ok = false;
    }
    return ok;
  }
}
