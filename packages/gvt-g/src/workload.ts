/**
 * One execlist workload (gvt/scheduler.c's role for a context): read the logical ring context
 * the element names, audit the ring from its saved head to its tail — and every batch it
 * reaches, in the GGTT or the context's 4-level PPGTT — then run the shadow trace and save the
 * new head into the context image, as the hardware's context save does.
 *
 * A command the audit refuses stops the engine there, as an engine stops at a command it cannot
 * execute: the audited commands before it run (the request's start breadcrumb among them, so the
 * guest's hang detection blames the right request), nothing after it does, and the context
 * neither completes nor is saved; the guest's engine reset ends it. (GVT-g itself runs nothing
 * of such a workload and puts the vGPU in failsafe mode until a device reset; here only the
 * guest's context suffers.)
 *
 * The register state page (LRC_STATE_OFFSET, one page after the LRCA) is a list of
 * MI_LOAD_REGISTER_IMM offset/value pairs; the ring registers and the PPGTT root are found by
 * their offsets from the engine's MMIO base, wherever the image puts them.
 */
import type { DirtyLog, DmaSpace } from '@vfiokit/core';
import type { CommandScanner, ScanResult } from './cmd-parser.js';
import type { EngineClass } from './cmd-table.js';
import { GTT_PAGE_SIZE, HEAD_ADDR, RING_NR_PAGES, TAIL_ADDR } from './constants.js';
import type { CommandStreamer, ExecutionResult } from './engine.js';
import { type ContextElement, INTEL_LEGACY_64B_CONTEXT } from './execlist.js';
import type { GmAccess } from './ggtt.js';
import { type EngineDesc, RING } from './mmio/regs.js';
import { Ppgtt } from './ppgtt.js';

/** LRC_STATE_OFFSET: the register state follows the per-process status page. */
export const LRC_STATE_OFFSET = GTT_PAGE_SIZE;
const MI_LRI_OPCODE = 0x22;
const MI_BATCH_BUFFER_END = 0x05000000;
/** Dwords of the state page searched for the ring registers (they are in the first LRI). */
const STATE_SCAN_DWORDS = 0x60;

/** Where the ring registers sit in a context image: value dword indexes, -1 when absent. */
export interface ContextLayout {
  head: number;
  tail: number;
  start: number;
  ctl: number;
  /** PDP0 low and high dwords: the PML4 of a 4-level context. */
  pdp0Lo: number;
  pdp0Hi: number;
}

/** Find the ring registers in a register state page. */
export function contextLayout(state: Uint32Array, base: number): ContextLayout {
  const at: ContextLayout = { head: -1, tail: -1, start: -1, ctl: -1, pdp0Lo: -1, pdp0Hi: -1 };
  let i = 0;
  while (i < Math.min(state.length, STATE_SCAN_DWORDS * 4)) {
    const dw = state[i];
    if (dw === MI_BATCH_BUFFER_END) break;
    if (dw >>> 29 === 0 && ((dw >>> 23) & 0x3f) === MI_LRI_OPCODE) {
      const len = (dw & 0xff) + 2;
      for (let k = 1; k + 1 < len && i + k + 1 < state.length; k += 2) {
        const reg = (state[i + k] & 0x7ffffc) - base;
        const v = i + k + 1;
        if (reg === RING.HEAD) at.head = v;
        else if (reg === RING.TAIL) at.tail = v;
        else if (reg === RING.START) at.start = v;
        else if (reg === RING.CTL) at.ctl = v;
        else if (reg === RING.PDP_BASE) at.pdp0Lo = v;
        else if (reg === RING.PDP_BASE + 4) at.pdp0Hi = v;
      }
      i += len;
    } else i++;
  }
  return at;
}

const ENGINE_CLASS: Record<string, EngineClass> = {
  rcs0: 'rcs',
  bcs0: 'bcs',
  vcs0: 'vcs',
  vcs1: 'vcs',
  vecs0: 'vecs',
};

export interface WorkloadDeps {
  readonly gm: GmAccess;
  readonly scanner: CommandScanner;
  readonly streamer: CommandStreamer;
  readonly dma: DmaSpace | undefined;
  readonly dirty?: DirtyLog;
}

export type WorkloadResult =
  | { readonly ok: true; readonly scan: ScanResult; readonly run: ExecutionResult }
  | {
      readonly ok: false;
      readonly problem: string;
      /** What ran of it: the audited commands before the refused one (none when the image was bad). */
      readonly run?: ExecutionResult;
    };

/** Run one element on `engine`; `hwsp` is the engine's status page (GGTT). */
export function runContextWorkload(
  deps: WorkloadDeps,
  engine: EngineDesc,
  element: ContextElement,
  hwsp: number,
): WorkloadResult {
  const state = new Uint32Array(GTT_PAGE_SIZE / 4);
  const stateGm = element.lrca + LRC_STATE_OFFSET;
  if (!deps.gm.read(stateGm, new Uint8Array(state.buffer))) {
    return { ok: false, problem: `the context image at GM 0x${element.lrca.toString(16)} is not mapped` };
  }
  const at = contextLayout(state, engine.base);
  if (at.head < 0 || at.tail < 0 || at.start < 0 || at.ctl < 0) {
    return {
      ok: false,
      problem: `the context image at GM 0x${element.lrca.toString(16)} has no ring registers`,
    };
  }
  const ctl = state[at.ctl];
  const size = (((ctl & RING_NR_PAGES) >>> 12) + 1) * GTT_PAGE_SIZE;
  const start = (state[at.start] & ~(GTT_PAGE_SIZE - 1)) >>> 0;
  const head = state[at.head] & HEAD_ADDR;
  const tail = state[at.tail] & TAIL_ADDR;
  let ppgtt: Ppgtt | undefined;
  if (element.addressing === INTEL_LEGACY_64B_CONTEXT && at.pdp0Lo >= 0 && at.pdp0Hi >= 0 && deps.dma) {
    ppgtt = new Ppgtt(state[at.pdp0Lo] + (state[at.pdp0Hi] & 0xffff) * 2 ** 32, deps.dma, deps.dirty);
  }
  const cls = ENGINE_CLASS[engine.name] ?? 'rcs';
  let scan: ScanResult = { ok: true, dwords: 0, traceLength: 0, commands: 0 };
  let run: ExecutionResult = { commands: 0, faults: 0, unsatisfiedWaits: 0 };
  if (head !== tail) {
    scan = deps.scanner.scanRing(start, size, head, tail, { engine: cls, ggtt: deps.gm, ppgtt });
    // The trace holds what passed the audit, in execution order: all of it, or what came before
    // the refused command.
    run = deps.streamer.execute(deps.scanner.trace, deps.scanner.traceLength, { ggtt: deps.gm, ppgtt, hwsp });
    if (!scan.ok) return { ok: false, problem: `${scan.problem} (at 0x${scan.address.toString(16)})`, run };
  }
  // Context save: the ring is consumed up to the tail.
  const headWord = new Uint8Array(4);
  new DataView(headWord.buffer).setUint32(0, ((state[at.head] & ~HEAD_ADDR) | tail) >>> 0, true);
  deps.gm.write(stateGm + 4 * at.head, headWord);
  return { ok: true, scan, run };
}
