/**
 * The vGPU's register file: the first 2 MiB of BAR0 as a RegisterBank. It holds the PVINFO page
 * exactly as i915_pvinfo.h lays it out, the gen8 interrupt registers, the render ring's
 * submission registers and general purpose registers, the fence registers the vGPU owns, and the
 * pipe A primary plane and cursor.
 */
import { type Logger, RegisterBank, type RegisterSpec } from '@vfiokit/core';
import {
  CURBASE_A,
  CURCNTR_A,
  CURPOS_A,
  FENCE_REG_GEN6_BASE,
  GEN8_DE_PCH_IRQ,
  GEN8_GT_IER0,
  GEN8_GT_IIR0,
  GEN8_GT_IMR0,
  GEN8_GT_ISR0,
  GEN8_GT_RCS_IRQ,
  GEN8_MASTER_IRQ,
  GEN8_MASTER_IRQ_CONTROL,
  GVT_MMIO_SIZE,
  PLANE_CTL_1_A,
  PLANE_OFFSET_1_A,
  PLANE_POS_1_A,
  PLANE_SIZE_1_A,
  PLANE_STRIDE_1_A,
  PLANE_SURF_1_A,
  PVINFO,
  RCS_GPR_BASE,
  RCS_GPR_COUNT,
  RING_CTL,
  RING_HEAD,
  RING_START,
  RING_TAIL,
  SDEIER,
  SDEIIR,
  SDEIMR,
  SDEISR,
  VGT_CAPS_FULL_PPGTT,
  VGT_CAPS_HUGE_GTT,
  VGT_CAPS_HWSP_EMULATION,
  VGT_MAGIC,
  VGT_PVINFO_PAGE,
  VGT_VERSION_MAJOR,
  VGT_VERSION_MINOR,
} from './constants.js';
import type { VgpuResources } from './host-gpu.js';

export interface MmioHooks {
  /** A write to PVINFO g2v_notify. */
  g2vNotify(value: number): void;
  /** RING_TAIL was written: the guest submitted commands. */
  ringTailWritten(): void;
  /** The guest wrote its fence register `index`. */
  fenceWritten(index: number, value: number): void;
  /** IER, IMR, IIR or the master control changed: re-evaluate the interrupt line. */
  interruptsChanged(): void;
}

export interface VgpuRegisterOptions {
  readonly name: string;
  readonly vgpuId: number;
  readonly resources: VgpuResources;
  readonly log?: Logger;
  readonly hooks: MmioHooks;
}

const pv = (offset: number) => VGT_PVINFO_PAGE + offset;

/** Whether MI_LOAD_REGISTER_IMM may write `offset`: the render engine's general purpose registers. */
export function isWhitelistedRegister(offset: number): boolean {
  return offset >= RCS_GPR_BASE && offset < RCS_GPR_BASE + 8 * RCS_GPR_COUNT && offset % 4 === 0;
}

export function buildVgpuRegisters(opts: VgpuRegisterOptions): RegisterBank {
  const { resources, hooks } = opts;
  const ro = (name: string, offset: number, reset: number | bigint, width: 4 | 8 = 4): RegisterSpec => ({
    name,
    offset,
    width,
    reset,
    access: 'ro',
  });
  const rw = (name: string, offset: number, extra: Partial<RegisterSpec> = {}): RegisterSpec => ({
    name,
    offset,
    ...extra,
  });
  const changed = () => hooks.interruptsChanged();
  let bank: RegisterBank | undefined;
  const registers: RegisterSpec[] = [
    // PVINFO (i915_pvinfo.h struct vgt_if)
    ro('vgt_if.magic', pv(PVINFO.magic), VGT_MAGIC, 8),
    // version_major (u16) and version_minor (u16) as one dword, so any read of them sees both
    ro('vgt_if.version', pv(PVINFO.versionMajor), (VGT_VERSION_MINOR << 16) | VGT_VERSION_MAJOR),
    ro('vgt_if.vgt_id', pv(PVINFO.vgtId), opts.vgpuId),
    ro(
      'vgt_if.vgt_caps',
      pv(PVINFO.vgtCaps),
      VGT_CAPS_FULL_PPGTT | VGT_CAPS_HWSP_EMULATION | VGT_CAPS_HUGE_GTT,
    ),
    ro('vgt_if.avail_rs.mappable_gmadr.base', pv(PVINFO.mappableBase), resources.low.base),
    ro('vgt_if.avail_rs.mappable_gmadr.size', pv(PVINFO.mappableSize), resources.low.size),
    ro('vgt_if.avail_rs.nonmappable_gmadr.base', pv(PVINFO.nonmappableBase), resources.high.base),
    ro('vgt_if.avail_rs.nonmappable_gmadr.size', pv(PVINFO.nonmappableSize), resources.high.size),
    ro('vgt_if.avail_rs.fence_num', pv(PVINFO.fenceNum), resources.fences.length),
    rw('vgt_if.display_ready', pv(PVINFO.displayReady)),
    rw('vgt_if.g2v_notify', pv(PVINFO.g2vNotify), { onWrite: (v) => hooks.g2vNotify(v) }),
    rw('vgt_if.cursor_x_hot', pv(PVINFO.cursorXHot), { reset: 0xffffffff }),
    rw('vgt_if.cursor_y_hot', pv(PVINFO.cursorYHot), { reset: 0xffffffff }),
    ...Array.from({ length: 8 }, (_, k) =>
      rw(`vgt_if.pdp${k >> 1}_${k & 1 ? 'hi' : 'lo'}`, pv(PVINFO.pdp + 4 * k)),
    ),
    rw('vgt_if.execlist_context_descriptor_lo', pv(PVINFO.execlistContextDescriptorLo)),
    rw('vgt_if.execlist_context_descriptor_hi', pv(PVINFO.execlistContextDescriptorHi)),
    // gen8 interrupts
    {
      name: 'GEN8_MASTER_IRQ',
      offset: GEN8_MASTER_IRQ,
      readOnlyMask: ~GEN8_MASTER_IRQ_CONTROL >>> 0,
      onRead: (reg) => {
        let v = reg.value & GEN8_MASTER_IRQ_CONTROL;
        if (bank && bank.get('GEN8_GT_IIR0') !== 0) v |= GEN8_GT_RCS_IRQ;
        if (bank && bank.get('SDEIIR') !== 0) v |= GEN8_DE_PCH_IRQ;
        return v >>> 0;
      },
      onWrite: changed,
    },
    ro('GEN8_GT_ISR0', GEN8_GT_ISR0, 0),
    rw('GEN8_GT_IMR0', GEN8_GT_IMR0, { reset: 0xffffffff, onWrite: changed }),
    rw('GEN8_GT_IIR0', GEN8_GT_IIR0, { w1cMask: 0xffffffff, onWrite: changed }),
    rw('GEN8_GT_IER0', GEN8_GT_IER0, { onWrite: changed }),
    ro('SDEISR', SDEISR, 0),
    rw('SDEIMR', SDEIMR, { reset: 0xffffffff, onWrite: changed }),
    rw('SDEIIR', SDEIIR, { w1cMask: 0xffffffff, onWrite: changed }),
    rw('SDEIER', SDEIER, { onWrite: changed }),
    // render ring
    rw('RING_TAIL', RING_TAIL, { onWrite: () => hooks.ringTailWritten() }),
    rw('RING_HEAD', RING_HEAD),
    rw('RING_START', RING_START),
    rw('RING_CTL', RING_CTL),
    ...Array.from({ length: RCS_GPR_COUNT }, (_, k) => rw(`CS_GPR${k}`, RCS_GPR_BASE + 8 * k, { width: 8 })),
    // fences the vGPU owns, numbered from 0 as the guest sees them
    ...resources.fences.map((_, k) =>
      rw(`FENCE_REG_GEN6_${k}`, FENCE_REG_GEN6_BASE + 8 * k, {
        width: 8,
        onWrite: (v: number) => hooks.fenceWritten(k, v),
      }),
    ),
    // pipe A primary plane and cursor
    rw('PLANE_CTL_1_A', PLANE_CTL_1_A),
    rw('PLANE_STRIDE_1_A', PLANE_STRIDE_1_A),
    rw('PLANE_POS_1_A', PLANE_POS_1_A),
    rw('PLANE_SIZE_1_A', PLANE_SIZE_1_A),
    rw('PLANE_SURF_1_A', PLANE_SURF_1_A),
    rw('PLANE_OFFSET_1_A', PLANE_OFFSET_1_A),
    rw('CURCNTR_A', CURCNTR_A),
    rw('CURBASE_A', CURBASE_A),
    rw('CURPOS_A', CURPOS_A),
  ];
  bank = new RegisterBank({
    name: `${opts.name} BAR0 MMIO`,
    size: GVT_MMIO_SIZE,
    registers,
    ...(opts.log ? { log: opts.log } : {}),
  });
  return bank;
}
