/**
 * @vfiokit/gvt-g: an Intel GVT-g-style mediated vGPU. One simulated Kaby Lake IGD is the parent;
 * its i915-GVTg_V5_{8,4,2,1} types carve the aperture, hidden GM and fences; each vGPU traps its
 * registers and GGTT, maps its own aperture slice directly, audits and runs command buffers on a
 * time-sliced engine, and shows its display through QUERY_GFX_PLANE in REGION mode.
 */
import { definePlugin } from '@vfiokit/core';
import { gvtgGuestDriver } from './guest-driver.js';
import { createGvtParent } from './parent.js';

export default definePlugin({
  name: '@vfiokit/gvt-g',
  description:
    'Intel GVT-g-style mediated vGPUs on a simulated Kaby Lake IGD: aperture slices, GGTT shadowing, command audit, time-sliced scheduling.',
  probe: (host) => [createGvtParent(host)],
  guestDrivers: [gvtgGuestDriver],
});

export { type GpuAddressSpace, gpuAddress } from './address-space.js';
export * from './cmd-parser.js';
export { type CmdKind, type DecodedCommand, decodeCommand, type EngineClass, KIND } from './cmd-table.js';
export * from './constants.js';
export { CURSOR_REGION_SIZE, type DecodedPlane, FRAME_REGION_SIZE, VirtualDisplay } from './display.js';
export { buildEdid, EDID_BLOCK_SIZE, EDID_HEADER, edidBlockProblem, edidPreferredMode } from './edid.js';
export { EDID_REGION_SIZE, EdidRegion, type EdidSink } from './edid-region.js';
export { CommandStreamer, type EngineHooks, type ExecutionResult, type ExecutionSpaces } from './engine.js';
export { GEN8_PAGE_PRESENT, GgttShadow, type GgttStats, GmAccess, insideRanges } from './ggtt.js';
export {
  GUEST_BATCH_MAGIC,
  GUEST_BLIT,
  GUEST_FB_HEIGHT,
  GUEST_FB_STRIDE,
  GUEST_FB_WIDTH,
  guestPattern,
  gvtgGuestDriver,
} from './guest-driver.js';
export {
  type GmRange,
  HostGgtt,
  type HostGpu,
  type HostGpuIdentity,
  SIMULATED_IGD_IDENTITY,
  SimulatedHostGpu,
  type SimulatedHostGpuOptions,
  type VgpuResources,
} from './host-gpu.js';
export { VgpuInterrupts } from './interrupt.js';
export { MemoryPages } from './memory-pages.js';
export {
  F_CMD_ACCESS,
  F_GMADR,
  F_MODE_MASK,
  F_RO,
  GvtMmioModel,
  type MmioInfo,
  MmioTable,
  maskedWrite,
  resetVgpuMmio,
  type UnknownAccess,
  Vreg,
  type VregHooks,
} from './mmio/index.js';
export { ENGINES, type EngineDesc } from './mmio/regs.js';
export { buildVirtualOpRegion, buildVirtualVbt, emulateSwsci, OPREGION_SIGNATURE } from './opregion.js';
export { createGvtParent, GVTG_DRIVER, type GvtParent, type GvtParentOptions } from './parent.js';
export { encodePng } from './png.js';
export { PPGTT_SIZE, Ppgtt } from './ppgtt.js';
export {
  GVT_TIME_SLICE_NS,
  GVT_TS_BALANCE_PERIOD_NS,
  GVT_TS_BALANCE_STAGE_NUM,
  type SchedulableVgpu,
  TimeSliceScheduler,
} from './scheduler.js';
export { buildVbiosImage, ROM_SIGNATURE, vbiosRegionSize } from './vbios.js';
export {
  type EngineStats,
  engineSummary,
  GVTG_CURSOR_REGION_INDEX,
  GVTG_EDID_REGION_INDEX,
  GVTG_FRAME_REGION_INDEX,
  GVTG_OPREGION_REGION_INDEX,
  GVTG_REGION_SUBTYPE_CURSOR,
  GVTG_REGION_SUBTYPE_FRAME,
  GvtgVgpu,
  type VgpuStats,
  vgpuConfigSpace,
} from './vgpu.js';
export {
  availableInstances,
  GVTG_TYPE_TABLE,
  resolutionString,
  typeDescription,
  typesForHost,
  type VgpuTypeConfig,
} from './vgpu-types.js';
