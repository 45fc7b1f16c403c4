/**
 * GVT-g vGPUs of every GVTg_V5 type in one QEMU, each served by its own `vfiokit serve` (each
 * server simulates its own host IGD, so every vGPU gets its type's full share). The guest does
 * not load i915 here (the i915 suite does): it reads PVINFO and drives the aperture and the
 * render ring from user space, and QEMU's own trace shows which accesses trapped.
 */
import { checkScript, defineSuite, type HostCheckContext, type ServedDevice } from '../suite.js';
import { dmaBufUnderstood } from './nvidia-vgpu.js';
import { bar2Mapping, trappedAccesses } from './qemu-trace.js';
import { sessionTraps } from './server-log.js';

const MiB = 1 << 20;
/** Bytes of pattern the guest writes through each aperture. */
const APERTURE_BYTES = 4 * MiB;

/**
 * The kernel's GVTg_V5 types (drivers/gpu/drm/i915/gvt/vgpu.c, intel_vgpu_configs): mappable
 * and hidden graphics memory in MiB and fences. Stated here, not imported from the plugin, so
 * the guest's view is compared with the kernel's table rather than with itself.
 */
const KERNEL_TYPES = [
  { name: 'GVTg_V5_8', nominal: 8, low: 64, high: 384, fences: 4 },
  { name: 'GVTg_V5_4', nominal: 4, low: 128, high: 512, fences: 4 },
  { name: 'GVTg_V5_2', nominal: 2, low: 256, high: 1024, fences: 4 },
  { name: 'GVTg_V5_1', nominal: 1, low: 512, high: 2048, fences: 4 },
] as const;

const vgpus: (ServedDevice & { readonly type: (typeof KERNEL_TYPES)[number] })[] = KERNEL_TYPES.map(
  (type, i) => ({
    id: `v${type.nominal}`,
    device: `@vfiokit/gvt-g:i915-${type.name}`,
    addr: `${(5 + i).toString(16).padStart(2, '0')}.0`,
    type,
  }),
);

/** PVINFO's ballooning ranges are the type's: low_gm_size and high_gm_size, in MiB (gvt/vgpu.c). */
function pvinfoMatchesTypes(ctx: HostCheckContext) {
  const facts = ctx.guest?.facts ?? {};
  const problems: string[] = [];
  const notes: string[] = [];
  for (const v of vgpus) {
    const f = (k: string) => Number(facts[`${v.id}.${k}`]);
    const map = { base: f('mappable_base'), size: f('mappable_size') };
    const hi = { base: f('nonmappable_base'), size: f('nonmappable_size') };
    if (map.size !== v.type.low * MiB)
      problems.push(`${v.id}: mappable size ${map.size} is not ${v.type.low} MiB`);
    if (hi.size !== v.type.high * MiB)
      problems.push(`${v.id}: hidden size ${hi.size} is not ${v.type.high} MiB`);
    if (f('fences') !== v.type.fences) problems.push(`${v.id}: ${f('fences')} fences, not ${v.type.fences}`);
    // The sparse-mmap area QEMU mapped for BAR2 is exactly the mappable range PVINFO names.
    const m = bar2Mapping(ctx.qemuTrace, ctx.socket(v.id));
    if (!m) problems.push(`${v.id}: QEMU's trace shows no mmap of BAR 2`);
    else if (m.start !== map.base || m.end !== map.base + map.size - 1)
      problems.push(
        `${v.id}: QEMU mapped BAR 2 at [0x${m.start.toString(16)}-0x${m.end.toString(16)}], PVINFO says 0x${map.base.toString(16)}+0x${map.size.toString(16)}`,
      );
    notes.push(
      `${v.type.name}: mappable 0x${map.base.toString(16)}+${map.size / MiB} MiB, hidden 0x${hi.base.toString(16)}+${hi.size / MiB} MiB, ${f('fences')} fences, vgt_id ${facts[`${v.id}.vgt_id`]}`,
    );
  }
  return problems.length > 0
    ? { fail: problems.join('\n'), note: notes.join('\n') }
    : { note: notes.join('\n') };
}

/** Not one BAR2 access trapped, while BAR0's did (the trace records traps: it is not empty by accident). */
function apertureNeverTrapped(ctx: HostCheckContext) {
  const problems: string[] = [];
  const notes: string[] = [];
  for (const v of vgpus) {
    const t = trappedAccesses(ctx.qemuTrace, ctx.socket(v.id));
    const bar2 = t.get(2) ?? 0;
    const bar0 = t.get(0) ?? 0;
    if (bar2 !== 0) problems.push(`${v.id}: ${bar2} BAR2 accesses trapped to the server`);
    if (bar0 === 0)
      problems.push(`${v.id}: QEMU's trace shows no trapped BAR0 access either: the trace is not recording`);
    // The server's own count of the session: BAR2 0/0 while BAR0 (PVINFO, GGTT, ring) trapped.
    const served = sessionTraps(ctx.serverLog(v.id));
    const s0 = served?.get(0);
    const s2 = served?.get(2);
    if (!s0 || !s2) problems.push(`${v.id}: the server printed no per-region access count for its session`);
    else {
      if (s2.reads + s2.writes !== 0)
        problems.push(`${v.id}: the server served ${s2.reads} reads/${s2.writes} writes of BAR2`);
      if (s0.reads + s0.writes === 0) problems.push(`${v.id}: the server counted no BAR0 access either`);
    }
    notes.push(
      `${v.type.name}: QEMU trapped ${bar0} BAR0 and ${bar2} BAR2 accesses; the server served BAR0 ${s0?.reads}/${s0?.writes}, BAR2 ${s2?.reads}/${s2?.writes} (reads/writes)`,
    );
  }
  return problems.length > 0
    ? { fail: problems.join('\n'), note: notes.join('\n') }
    : { note: notes.join('\n') };
}

export default defineSuite({
  name: 'gvt-g',
  boots: [
    {
      name: 'GVTg_V5',
      devices: vgpus.map(({ type: _type, ...d }) => d),
      env: { VGPUS: vgpus.map((v) => v.id).join(' '), BYTES: String(APERTURE_BYTES) },
      qemuTrace: [
        'vfio_region_read',
        'vfio_region_write',
        'vfio_region_mmap',
        'vfio_region_sparse_mmap_entry',
      ],
      checks: [
        {
          name: 'every GVTg_V5 type attaches: an Intel VGA function with a 16 MiB BAR0, the aperture BAR2 and MSI',
          script: checkScript('gvt-g/identity.sh'),
        },
        {
          name: "PVINFO read through BAR0: vGT magic, version 1.0, the type's ballooning ranges and fences",
          script: checkScript('gvt-g/pvinfo.sh'),
          host: pvinfoMatchesTypes,
        },
        {
          name: 'the aperture is direct-mapped: the guest and the vGPU see each other’s writes through it',
          script: checkScript('gvt-g/aperture.sh'),
          timeoutSec: 120,
          host: apertureNeverTrapped,
        },
        {
          name: "QEMU's 'BAR 2: failed to create dma-buf' is its vfio-user client's, and the aperture is mapped regardless",
          host: dmaBufUnderstood(vgpus.map((v) => v.id)),
        },
      ],
    },
  ],
});
