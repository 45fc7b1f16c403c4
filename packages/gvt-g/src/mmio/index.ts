/**
 * The vGPU register model: the tracking table every vGPU of a parent shares, the host snapshot
 * its vreg starts from, and the vGPU's own values applied on top (intel_vgpu_reset_mmio).
 */
import type { VgpuSlices } from '../host-gpu.js';
import { defineDisplayRegisters } from './display-handlers.js';
import { defineEngineRegisters } from './engine-handlers.js';
import { defineGtRegisters } from './gt-handlers.js';
import { kblHostSnapshot } from './host-snapshot.js';
import { defineIrqRegisters } from './irq-handlers.js';
import { definePowerRegisters } from './power-handlers.js';
import { definePvinfoRegisters, populatePvinfo } from './pvinfo-handlers.js';
import { GEN6_GT_CORE_STATUS, GEN6_GT_THREAD_STATUS_REG, GS_MIA_IN_RESET, GUC_STATUS } from './regs.js';
import { MmioTable } from './table.js';
import { defineTrackedRegisters } from './tracked.js';
import { Vreg } from './vreg.js';

export * from './table.js';
export { type UnknownAccess, Vreg, type VregHooks } from './vreg.js';

/** The register model of one parent: its table and its host snapshot. */
export class GvtMmioModel {
  readonly table = new MmioTable<Vreg>();
  readonly snapshot = kblHostSnapshot();

  constructor() {
    definePvinfoRegisters(this.table, (ctx) => ctx.fenceCount);
    defineIrqRegisters(this.table);
    defineGtRegisters(this.table);
    defineEngineRegisters(this.table);
    definePowerRegisters(this.table);
    defineDisplayRegisters(this.table);
    defineTrackedRegisters(this.table);
  }

  /** A vreg for one vGPU, at its power-on values. */
  createVreg(name: string, vgpuId: number, resources: VgpuSlices): Vreg {
    const v = new Vreg(name, this.table, this.snapshot, resources.fences.length);
    resetVgpuMmio(v, vgpuId, resources);
    return v;
  }
}

/** intel_vgpu_reset_mmio (device-model level): the snapshot, then the vGPU's own values. */
export function resetVgpuMmio(v: Vreg, vgpuId: number, resources: VgpuSlices): void {
  v.reset();
  v.set(GEN6_GT_THREAD_STATUS_REG, 0);
  // Core C-state C0.
  v.set(GEN6_GT_CORE_STATUS, 0);
  // The GuC is held in reset as the guest's uc reset code expects.
  v.set(GUC_STATUS, (v.get(GUC_STATUS) | GS_MIA_IN_RESET) >>> 0);
  populatePvinfo(v, vgpuId, resources);
}
