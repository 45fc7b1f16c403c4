/**
 * Execlist submission (gvt/execlist.c): the execlist submit port of each engine, the logical
 * ring contexts it names, and the context status buffer (CSB) the guest reads back — in the
 * CSB registers and, as VGT_CAPS_HWSP_EMULATION promises, in the engine's hardware status page
 * (entries from dword 0x10, the write pointer at dword 0x1f: I915_HWS_CSB_BUF0_INDEX and
 * I915_HWS_CSB_WRITE_INDEX on gen8-10).
 *
 * The port takes four dwords (element 1 high, low, element 0 high, low). A submission to an
 * idle engine is reported IDLE_ACTIVE at once; one to a busy engine preempts it (PREEMPTED, with
 * LITE_RESTORE when element 0 is the running context, as a new tail for it). Each element runs
 * as one workload (workload.ts); when it completes the CSB says ELEMENT_SWITCH to the next, or
 * ACTIVE_IDLE after the last, each with COMPLETE and a context-switch interrupt.
 *
 * An element whose workload the audit refused hangs the engine (hang()): as an engine stopped on
 * a command it cannot execute, it answers no further submission — no CSB event, nothing runs,
 * not even a preemption — until the guest resets it (GDRST), as its hang detection does.
 */
import { CSB_ENTRIES, type EngineDesc, RING } from './mmio/regs.js';
import type { Vreg } from './mmio/vreg.js';

/** intel_lrc_reg.h CSB status bits. */
export const CTX_STATUS_IDLE_ACTIVE = 1 << 0;
export const CTX_STATUS_PREEMPTED = 1 << 1;
export const CTX_STATUS_ELEMENT_SWITCH = 1 << 2;
export const CTX_STATUS_ACTIVE_IDLE = 1 << 3;
export const CTX_STATUS_COMPLETE = 1 << 4;
export const CTX_STATUS_LITE_RESTORE = 1 << 15;
/** Descriptor bits (intel_lrc.h): valid, and the addressing mode in bits 4:3 (3 = 4-level PPGTT). */
export const GEN8_CTX_VALID = 1 << 0;
export const GEN8_CTX_ADDRESSING_MODE_SHIFT = 3;
export const INTEL_LEGACY_64B_CONTEXT = 3;
/** Where the CSB lives in the status page, in dwords. */
export const I915_HWS_CSB_BUF0_INDEX = 0x10;
export const I915_HWS_CSB_WRITE_INDEX = 0x1f;
/**
 * RING_EXECLIST_STATUS_LO bits (gvt/execlist.h execlist_status_format): which of the two
 * execlist slots is current and the write pointer, and each slot's valid and active bits.
 */
const EL_STATUS_CURRENT_POINTER = 1 << 0;
const EL_STATUS_WRITE_POINTER = 1 << 1;
const EL_STATUS_1_VALID = 1 << 3;
const EL_STATUS_0_VALID = 1 << 4;
const EL_STATUS_1_ACTIVE = 1 << 17;
const EL_STATUS_0_ACTIVE = 1 << 18;
const EL_STATUS_BITS =
  EL_STATUS_CURRENT_POINTER |
  EL_STATUS_WRITE_POINTER |
  EL_STATUS_1_VALID |
  EL_STATUS_0_VALID |
  EL_STATUS_1_ACTIVE |
  EL_STATUS_0_ACTIVE;
/** The write pointer's value after reset: "no entry yet" (execlist.c init_vgpu_execlist). */
const CSB_PTR_RESET = 0x7;

/** One element of a submission: a logical ring context. */
export interface ContextElement {
  readonly lo: number;
  readonly hi: number;
  /** GGTT address of the context image (LRCA, bits 31:12 of the descriptor). */
  readonly lrca: number;
  /** The context ID the CSB reports (the descriptor's upper dword). */
  readonly contextId: number;
  /** Addressing mode: 3 = 4-level PPGTT. */
  readonly addressing: number;
}

export interface ExeclistHooks {
  /** Write the status page dwords at GGTT `hwsp` + 4 * `index` (false: not mapped). */
  writeStatusPage(hwsp: number, index: number, values: readonly number[]): boolean;
  /** Raise GT_CONTEXT_SWITCH_INTERRUPT for the engine. */
  contextSwitch(engine: EngineDesc): void;
  /** Queue the element's work for the scheduler. */
  queue(engine: EngineDesc, element: ContextElement): void;
  /** Drop queued work of the engine (preempted or reset). */
  dropQueued(engine: EngineDesc): void;
}

export class EngineExeclist {
  private readonly dwords = new Uint32Array(4);
  private index = 0;
  /** The elements the engine runs, and which of them is current. */
  private running: ContextElement[] = [];
  private current = 0;
  /** The execlist slot (0 or 1) the running submission went into; each submission takes the other. */
  private slot = 1;
  /** The guest's status page (RING_HWS_PGA), a GGTT address. */
  hwsp = 0;
  enabled = false;
  /** CSB events written, for statistics. */
  events = 0;
  /** The engine stopped on a refused workload; only a reset starts it again. */
  private hung = false;
  /** Submissions that arrived while it was hung (dropped, as the hardware does not take them). */
  ignoredWhileHung = 0;

  constructor(
    readonly engine: EngineDesc,
    private readonly regs: Vreg,
    private readonly hooks: ExeclistHooks,
  ) {
    this.reset();
  }

  /** Engine reset (GDRST) or device reset: nothing runs, the CSB pointer is back to "none". */
  reset(): void {
    this.hung = false;
    this.index = 0;
    this.running = [];
    this.current = 0;
    this.regs.set(this.engine.base + RING.CONTEXT_STATUS_PTR, CSB_PTR_RESET);
    this.slot = 1;
    this.updateStatus();
    this.hooks.dropQueued(this.engine);
  }

  get busy(): boolean {
    return this.current < this.running.length;
  }

  /** The element running now, if any. */
  get active(): ContextElement | undefined {
    return this.running[this.current];
  }

  /** A dword written to RING_ELSP. */
  write(value: number): void {
    this.dwords[3 - this.index] = value >>> 0;
    if (this.index === 3) this.submit();
    this.index = (this.index + 1) & 3;
  }

  /** The running element's workload was refused: the engine stops here, the rest is dropped. */
  hang(): void {
    this.hung = true;
    this.hooks.dropQueued(this.engine);
  }

  get isHung(): boolean {
    return this.hung;
  }

  private submit(): void {
    if (this.hung) {
      this.ignoredWhileHung++;
      return;
    }
    const elements: ContextElement[] = [];
    for (const k of [0, 1]) {
      const lo = this.dwords[2 * k];
      const hi = this.dwords[2 * k + 1];
      if ((lo & GEN8_CTX_VALID) === 0) continue;
      elements.push({
        lo,
        hi,
        lrca: (lo & 0xfffff000) >>> 0,
        contextId: hi,
        addressing: (lo >>> GEN8_CTX_ADDRESSING_MODE_SHIFT) & 3,
      });
    }
    if (elements.length === 0) return;
    const was = this.active;
    this.hooks.dropQueued(this.engine);
    this.running = elements;
    this.current = 0;
    this.slot ^= 1;
    this.updateStatus();
    if (was === undefined) {
      this.event(CTX_STATUS_IDLE_ACTIVE, elements[0].contextId);
    } else {
      const lite = was.lrca === elements[0].lrca ? CTX_STATUS_LITE_RESTORE : 0;
      this.event(CTX_STATUS_PREEMPTED | lite, was.contextId);
    }
    for (const e of elements) this.hooks.queue(this.engine, e);
  }

  /** The workload of `element` finished: the CSB tells the guest, and the next element runs. */
  completed(element: ContextElement): void {
    if (this.active !== element) return;
    this.current++;
    const status = this.busy
      ? CTX_STATUS_ELEMENT_SWITCH | CTX_STATUS_COMPLETE
      : CTX_STATUS_ACTIVE_IDLE | CTX_STATUS_COMPLETE;
    this.event(status, element.contextId);
    if (!this.busy) {
      this.running = [];
      this.current = 0;
    }
    this.updateStatus();
  }

  /**
   * update_execlist_status: RING_EXECLIST_STATUS says which slot runs and, in its upper dword,
   * the running context's ID — what i915 reads at an engine reset to find the request that hung
   * (execlists reset_ccid); 0 when idle.
   */
  private updateStatus(): void {
    const lo = this.engine.base + RING.EXECLIST_STATUS_LO;
    const active = this.active;
    let status = this.regs.get(lo) & ~EL_STATUS_BITS;
    if (active !== undefined)
      status |=
        this.slot === 0
          ? EL_STATUS_WRITE_POINTER | EL_STATUS_0_VALID | EL_STATUS_0_ACTIVE
          : EL_STATUS_CURRENT_POINTER | EL_STATUS_1_VALID | EL_STATUS_1_ACTIVE;
    this.regs.set(lo, status >>> 0);
    this.regs.set(this.engine.base + RING.EXECLIST_STATUS_HI, active?.contextId ?? 0);
  }

  /** emulate_csb_update: the next CSB entry, in the registers and the status page, and the interrupt. */
  private event(status: number, contextId: number): void {
    const ptrReg = this.engine.base + RING.CONTEXT_STATUS_PTR;
    const ptr = this.regs.get(ptrReg);
    let write = ptr & 0x7;
    write = write === CSB_PTR_RESET ? 0 : (write + 1) % CSB_ENTRIES;
    const buf = this.engine.base + RING.CONTEXT_STATUS_BUF + 8 * write;
    this.regs.set(buf, status);
    this.regs.set(buf + 4, contextId);
    this.regs.set(ptrReg, ((ptr & ~0x7) | write) >>> 0);
    if (this.hwsp !== 0) {
      this.hooks.writeStatusPage(this.hwsp, I915_HWS_CSB_BUF0_INDEX + 2 * write, [status, contextId]);
      this.hooks.writeStatusPage(this.hwsp, I915_HWS_CSB_WRITE_INDEX, [write]);
    }
    this.events++;
    this.hooks.contextSwitch(this.engine);
  }
}
