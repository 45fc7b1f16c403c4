/**
 * One GVT-g vGPU, region for region as kvmgt exposes it:
 *
 * | index | what |
 * |---|---|
 * | 0 BAR0 | 16 MiB, trapped: the register file in the first 2 MiB, the vGPU's GGTT view from 8 MiB (8-byte PTEs) |
 * | 2 BAR2 | the whole host aperture; one sparse-mmap area, the vGPU's own slice; the rest refused |
 * | 7 CONFIG | 4 KiB, seeded from the host IGD's config space, GMCH stolen size cleared |
 * | 9 | the virtual OpRegion, read-only, IGD_OPREGION |
 * | 10 | the EDID region, GFX / GFX_EDID |
 * | 11, 12 | the primary plane's and the cursor's frame for QUERY_GFX_PLANE in REGION mode |
 *
 * IRQs: INTx (maskable, automasked) and MSI (one vector, NORESIZE); MSI-X, ERR and REQ are
 * EINVAL as in kvmgt. Interrupts reach the guest through MSI only, as GVT injects them.
 *
 * This is the composing class (kvmgt.c's role): it builds the regions and hands each to its part
 * (bar-access.ts the BAR0 and BAR2 routing, mmio/ the register table, ggtt.ts, submission.ts the
 * engines and their workload queue, the scanner, display), and keeps the config-space hooks
 * (ASLS, SWSCI), the PVINFO notifications and the life cycle.
 */
import {
  type BarBacking,
  ConfigSpace,
  type DeviceContext,
  DRM_PLANE_TYPE_CURSOR,
  DRM_PLANE_TYPE_PRIMARY,
  type GfxDisplay,
  type GfxPlaneInfo,
  type Logger,
  msiCapability,
  PciDeviceModel,
  pciExpressCapability,
  powerManagementCapability,
  type RegionHandler,
  type RegionMapping,
  type SharedMemory,
  type ValueSize,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_REQ_IRQ_INDEX,
  VFIO_REGION_SUBTYPE_GFX_EDID,
  VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION,
  VFIO_REGION_TYPE_GFX,
  VFIO_REGION_TYPE_PCI_VENDOR_TYPE,
  VfioError,
  vendorCapability,
} from '@vfiokit/core';
import { ApertureSlice, Bar0Access } from './bar-access.js';
import { CommandScanner, type ScanResult } from './cmd-parser.js';
import {
  GMCH_GMS_MASK_GEN8,
  OPREGION_BAR0_WINDOW,
  OPREGION_SIZE,
  PCI_ASLS,
  PCI_BASE_ADDRESS_0,
  PCI_COMMAND_IO,
  PCI_GMCH_CTRL,
  PCI_SWSCI,
  PVINFO,
  SDE_PORTD_HOTPLUG_CPT,
  SWSCI_SCI_SELECT,
  SWSCI_SCI_TRIGGER,
  VGT_G2V_EXECLIST_CONTEXT_CREATE,
  VGT_G2V_EXECLIST_CONTEXT_DESTROY,
  VGT_G2V_PPGTT_L3_PAGE_TABLE_CREATE,
  VGT_G2V_PPGTT_L3_PAGE_TABLE_DESTROY,
  VGT_G2V_PPGTT_L4_PAGE_TABLE_CREATE,
  VGT_G2V_PPGTT_L4_PAGE_TABLE_DESTROY,
  VGT_PVINFO_PAGE,
} from './constants.js';
import { CURSOR_REGION_SIZE, FRAME_REGION_SIZE, VirtualDisplay } from './display.js';
import { DisplayPipes } from './display-pipes.js';
import { buildEdid } from './edid.js';
import { EDID_REGION_SIZE, EdidRegion } from './edid-region.js';
import type { CommandStreamer } from './engine.js';
import type { EngineExeclist } from './execlist.js';
import { GgttShadow, GmAccess } from './ggtt.js';
import type { HostGpu, VgpuResources } from './host-gpu.js';
import { VgpuInterrupts } from './interrupt.js';
import { type GvtMmioModel, resetVgpuMmio, type Vreg } from './mmio/index.js';
import { ENGINES, SDEISR } from './mmio/regs.js';
import { buildVirtualOpRegion, buildVirtualVbt, emulateSwsci, OPREGION_SCIC } from './opregion.js';
import type { SchedulableVgpu, TimeSliceScheduler } from './scheduler.js';
import { VgpuSubmission } from './submission.js';
import { buildVbiosImage, vbiosRegionSize } from './vbios.js';
import type { VgpuTypeConfig } from './vgpu-types.js';

export const GVTG_OPREGION_REGION_INDEX = 9;
export const GVTG_EDID_REGION_INDEX = 10;
export const GVTG_FRAME_REGION_INDEX = 11;
export const GVTG_CURSOR_REGION_INDEX = 12;
/**
 * vfiokit's own subtypes under the Intel vendor region type for the display frames (the kernel
 * defines subtypes 1-3 there; these sit far above them).
 */
export const GVTG_REGION_SUBTYPE_FRAME = 0x1000;
export const GVTG_REGION_SUBTYPE_CURSOR = 0x1001;
const INTEL_VENDOR_REGION_TYPE = (VFIO_REGION_TYPE_PCI_VENDOR_TYPE | 0x8086) >>> 0;

export interface VgpuOptions {
  readonly uuid: string;
  /** vgt_id: 1..GVT_MAX_VGPU. */
  readonly id: number;
  readonly type: VgpuTypeConfig;
  readonly host: HostGpu;
  readonly resources: VgpuResources;
  readonly scheduler: TimeSliceScheduler;
  /** The parent's register model (table and host snapshot). */
  readonly mmio: GvtMmioModel;
  readonly allocateMemory: (size: number, name: string) => SharedMemory;
}

export interface VgpuStats {
  workloadsSubmitted: number;
  workloadsRefused: number;
  workloadsCompleted: number;
  interruptsDelivered: number;
  swsciRequests: number;
  lastRefusal: string;
  /** Execlist workloads by engine name (rcs0, bcs0, vcs0, vecs0). */
  readonly engines: Record<string, EngineStats>;
}

export interface EngineStats {
  /** Context workloads that ran to completion (their CSB said COMPLETE). */
  completed: number;
  /** Workloads the command scanner refused (the guest's error; they never ran). */
  refused: number;
  /** Commands the engine executed for completed workloads. */
  commands: number;
}

/** The vGPU's config space: the host IGD's identity and capabilities, GMS cleared. */
export function vgpuConfigSpace(host: HostGpu, name: string, romSize = 0): ConfigSpace {
  const id = host.identity;
  const config = new ConfigSpace({
    name,
    size: 4096,
    identity: { ...id, interruptPin: 1 },
  });
  config.defineBar({ index: 0, kind: 'mem64', size: host.mmioBarSize });
  config.defineBar({ index: 2, kind: 'mem64', size: host.apertureSize, prefetchable: true });
  if (romSize > 0) config.defineRom(romSize);
  // An IGD is a VGA controller: it decodes the legacy VGA ports with no I/O BAR, and firmware
  // looks for COMMAND.IO before it runs the VGA ROM.
  config.decodeWithoutBar(PCI_COMMAND_IO);
  const u16 = (v: number) => Uint8Array.of(v & 0xff, (v >>> 8) & 0xff);
  const u32 = (v: number) => Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
  // cfg_space.c: the guest sees no stolen memory.
  config.defineField(PCI_GMCH_CTRL, u16(host.gmchControl & ~GMCH_GMS_MASK_GEN8));
  const all = new Uint8Array(4).fill(0xff);
  config.defineField(PCI_SWSCI, u32(0), { writeMask: all });
  config.defineField(PCI_ASLS, u32(0), { writeMask: all });
  // The IGD's capability list: CAPID0 (vendor-specific), PCIe RC-integrated, MSI, PM.
  config.addCapability(vendorCapability(new Uint8Array(9)), 0x40);
  config.addCapability(pciExpressCapability({ type: 'rc-integrated' }), 0x70);
  config.addCapability(msiCapability({ vectors: 1, addr64: false, perVectorMask: false }), 0xac);
  config.addCapability(powerManagementCapability(), 0xd0);
  return config;
}

export class GvtgVgpu extends PciDeviceModel implements SchedulableVgpu {
  readonly type: VgpuTypeConfig;
  readonly vgpuId: number;
  readonly host: HostGpu;
  readonly resources: VgpuResources;
  /** The vGPU's register file (gvt's vreg). */
  readonly regs: Vreg;
  readonly irq: VgpuInterrupts;
  readonly ggtt: GgttShadow;
  readonly gm: GmAccess;
  readonly scanner: CommandScanner;
  /** The render engine's command streamer (ring-buffer mode runs there). */
  readonly engine: CommandStreamer;
  /** Every engine's streamer and execlist, and the queue of audited workloads (submission.ts). */
  private readonly submission: VgpuSubmission;
  readonly screen: VirtualDisplay;
  readonly edid: EdidRegion;
  /** Pipe timing, vblanks and the virtual monitor's AUX channel. */
  readonly pipes: DisplayPipes;
  readonly opregion: Uint8Array;
  readonly stats: VgpuStats = {
    workloadsSubmitted: 0,
    workloadsRefused: 0,
    workloadsCompleted: 0,
    interruptsDelivered: 0,
    swsciRequests: 0,
    lastRefusal: '',
    engines: Object.fromEntries(ENGINES.map((e) => [e.name, { completed: 0, refused: 0, commands: 0 }])),
  };
  /** PPGTT roots the guest announced through g2v_notify (pdp[0] of each). */
  readonly ppgttRoots = new Set<number>();
  /** The OpRegion base the guest (or its firmware) wrote into ASLS; 0 when none was written. */
  asls = 0;
  private readonly scheduler: TimeSliceScheduler;
  private swsci = 0;
  private logger: Logger | undefined;
  /** BAR0's and BAR2's trapped accesses (bar-access.ts). */
  private readonly bar0: Bar0Access;
  private readonly aperture: ApertureSlice;

  constructor(opts: VgpuOptions) {
    const { host, resources, type, uuid } = opts;
    const vbios = buildVbiosImage(host.identity, buildVirtualVbt());
    const config = vgpuConfigSpace(host, uuid, vbiosRegionSize(vbios));
    const frame = opts.allocateMemory(FRAME_REGION_SIZE, `${uuid} frame`);
    const cursor = opts.allocateMemory(CURSOR_REGION_SIZE, `${uuid} cursor`);
    const opregion = buildVirtualOpRegion();
    // Handlers are bound after super(); they reach their parts through this box.
    const box: { self?: GvtgVgpu; bar0?: Bar0Access; aperture?: ApertureSlice } = {};
    const bar0: RegionHandler = {
      read: (offset, dst) => box.bar0!.read(offset, dst),
      write: (offset, src) => box.bar0!.write(offset, src),
      readValue: (offset, size) => box.bar0!.readValue(offset, size),
      writeValue: (offset, size, value) => box.bar0!.writeValue(offset, size, value),
    };
    const bar2: RegionHandler = {
      read: (offset, dst) => box.aperture!.read(offset, dst),
      write: (offset, src) => box.aperture!.write(offset, src),
    };
    const edidBox: { region?: EdidRegion } = {};
    const bars: Partial<Record<0 | 2, BarBacking>> = {
      0: { handler: bar0 },
      2: {
        handler: bar2,
        memory: resources.aperture,
        sparseMmap: [{ offset: resources.low.base, size: resources.low.size }],
      },
    };
    super({
      name: uuid,
      config,
      bars,
      rom: vbios,
      extraRegions: [
        {
          index: GVTG_OPREGION_REGION_INDEX,
          size: OPREGION_SIZE,
          type: { type: INTEL_VENDOR_REGION_TYPE, subtype: VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION },
          read: true,
          write: false,
          handler: {
            read: (offset, dst) => dst.set(opregion.subarray(offset, offset + dst.length)),
            write: () => {},
          },
        },
        {
          index: GVTG_EDID_REGION_INDEX,
          size: EDID_REGION_SIZE,
          type: { type: VFIO_REGION_TYPE_GFX, subtype: VFIO_REGION_SUBTYPE_GFX_EDID },
          read: true,
          write: true,
          handler: {
            read: (offset, dst) => edidBox.region!.read(offset, dst),
            write: (offset, src) => edidBox.region!.write(offset, src),
          },
        },
        {
          index: GVTG_FRAME_REGION_INDEX,
          size: frame.size,
          type: { type: INTEL_VENDOR_REGION_TYPE, subtype: GVTG_REGION_SUBTYPE_FRAME },
          read: true,
          write: false,
          memory: frame,
        },
        {
          index: GVTG_CURSOR_REGION_INDEX,
          size: cursor.size,
          type: { type: INTEL_VENDOR_REGION_TYPE, subtype: GVTG_REGION_SUBTYPE_CURSOR },
          read: true,
          write: false,
          memory: cursor,
        },
      ],
      irqs: {
        [VFIO_PCI_MSIX_IRQ_INDEX]: null,
        [VFIO_PCI_ERR_IRQ_INDEX]: null,
        [VFIO_PCI_REQ_IRQ_INDEX]: null,
      },
      display: {
        kinds: { dmabuf: false, region: true },
        queryPlane: (_kind, planeType) => box.self!.queryPlane(planeType),
      } satisfies GfxDisplay,
    });
    box.self = this;
    this.type = type;
    this.vgpuId = opts.id;
    this.host = host;
    this.resources = resources;
    this.scheduler = opts.scheduler;
    this.opregion = opregion;
    const log: Logger = {
      debug: (m) => this.logger?.debug(m),
      info: (m) => this.logger?.info(m),
      warn: (m) => this.logger?.warn(m),
      error: (m) => this.logger?.error(m),
    };
    this.regs = opts.mmio.createVreg(`${uuid} BAR0`, opts.id, resources);
    this.regs.setLogger(log);
    this.regs.hooks = {
      g2vNotify: (v) => this.g2vNotify(v),
      ringTailWritten: () => this.submission.ringTailWritten(),
      fenceWritten: (k, v) => {
        this.host.fenceRegs[resources.fences[k]] = v;
      },
      interruptsChanged: () => this.irq.update(),
      resetEngines: (mask) => this.submission.resetEngines(mask),
      elspWritten: (engine, value) => this.submission.elspWritten(engine, value),
      execlistsEnabled: (engine, on) => this.submission.execlistsEnabled(engine, on),
      auxWritten: (ch, value) => this.pipes.auxWritten(ch, value),
      pipeEnabled: (pipe, on) => this.pipes.pipeEnabled(pipe, on),
      scanline: (pipe) => this.pipes.scanline(pipe),
      hwsWritten: (engine, gm) => this.submission.hwsWritten(engine, gm),
    };
    this.irq = new VgpuInterrupts(this.regs, () => this.deliverMsi());
    this.ggtt = new GgttShadow(host, resources, uuid);
    this.bar0 = new Bar0Access(this.name, this.regs, this.ggtt, opregion, () => this.logger);
    this.aperture = new ApertureSlice(this.name, resources);
    box.bar0 = this.bar0;
    box.aperture = this.aperture;
    this.gm = new GmAccess(host, this.ggtt);
    this.scanner = new CommandScanner(this.gm, (offset) => opts.mmio.table.commandAccess(offset));
    this.submission = new VgpuSubmission({
      name: this.name,
      regs: this.regs,
      gm: this.gm,
      scanner: this.scanner,
      irq: this.irq,
      scheduler: this.scheduler,
      stats: this.stats,
      log: () => this.logger,
      context: () => (this.isOpen ? this.ctx : undefined),
    });
    this.engine = this.submission.render;
    this.screen = new VirtualDisplay(
      this.regs,
      // The planes scan out what BAR2 and the engines wrote: the aperture's view of mappable GM.
      new GmAccess(host, this.ggtt, 'aperture'),
      frame,
      cursor,
      GVTG_FRAME_REGION_INDEX,
      GVTG_CURSOR_REGION_INDEX,
    );
    this.edid = new EdidRegion(uuid, GVTG_EDID_REGION_INDEX, type.resolution, buildEdid(type.resolution), {
      connect: () => this.hotplug(true),
      disconnect: () => this.hotplug(false),
    });
    edidBox.region = this.edid;
    this.pipes = new DisplayPipes(this.regs, this.irq, () => this.edid.current);
    this.regs.set(SDEISR, SDE_PORTD_HOTPLUG_CPT);
  }

  get weight(): number {
    return this.type.weight;
  }

  // ---- BAR0 and BAR2 (bar-access.ts) --------------------------------------------------------------

  /** A BAR0 read as the core makes it: registers, GGTT window, OpRegion window. */
  readBar0(offset: number, dst: Uint8Array): void {
    this.bar0.read(offset, dst);
  }

  /** readBar0() of 1, 2 or 4 bytes as their value (the guest's trapped MMIO read). */
  readBar0Value(offset: number, size: ValueSize): number {
    return this.bar0.readValue(offset, size);
  }

  /** writeBar0() of the low `size` bytes of `value`, readBar0Value()'s twin. */
  writeBar0Value(offset: number, size: ValueSize, value: number): void {
    this.bar0.writeValue(offset, size, value);
  }

  writeBar0(offset: number, src: Uint8Array): void {
    this.bar0.write(offset, src);
  }

  /** A trapped aperture access: only the vGPU's own slice answers (kvmgt's intel_vgpu_aperture_rw). */
  apertureAccess(offset: number, data: Uint8Array, write: boolean): void {
    this.aperture.access(offset, data, write);
  }

  /** A user maps the aperture slice or a display region: its pages may hold data from now on. */
  override mmap(index: number, offset: number, size: number): RegionMapping {
    const mapping = super.mmap(index, offset, size);
    if (index === 2) this.resources.aperturePages.mapped(offset, size);
    else this.screen.mapped(index, offset, size);
    return mapping;
  }

  // ---- interrupts ---------------------------------------------------------------------------------

  /** One MSI (GVT injects through the MSI eventfd). */
  private deliverMsi(): void {
    if (!this.isOpen || !this.ctx.irq.enabled(VFIO_PCI_MSI_IRQ_INDEX)) return;
    this.ctx.irq.trigger(VFIO_PCI_MSI_IRQ_INDEX, 0);
    this.stats.interruptsDelivered++;
  }

  private hotplug(connected: boolean): void {
    const isr = this.regs.get(SDEISR);
    this.regs.set(SDEISR, connected ? (isr | SDE_PORTD_HOTPLUG_CPT) >>> 0 : isr & ~SDE_PORTD_HOTPLUG_CPT);
    this.irq.sdeEvent(SDE_PORTD_HOTPLUG_CPT);
  }

  // ---- engines and command submission (submission.ts) ----------------------------------------------

  /** The execlist of an engine, for tests and statistics. */
  execlist(engine: number): EngineExeclist | undefined {
    return this.submission.execlist(engine);
  }

  /** RING_TAIL was written: audit what lies between HEAD and TAIL, queue it for the scheduler. */
  submit(): ScanResult | undefined {
    return this.submission.submit();
  }

  hasPendingWork(): boolean {
    return this.submission.hasPendingWork();
  }

  /** The vGPU owns the engine for a slice: its queued workloads run in order. */
  runSlice(): void {
    this.submission.runSlice();
  }

  // ---- PVINFO g2v notifications --------------------------------------------------------------------

  private g2vNotify(value: number): void {
    const root =
      this.regs.get(VGT_PVINFO_PAGE + PVINFO.pdp) + this.regs.get(VGT_PVINFO_PAGE + PVINFO.pdp + 4) * 2 ** 32;
    switch (value) {
      case VGT_G2V_PPGTT_L3_PAGE_TABLE_CREATE:
      case VGT_G2V_PPGTT_L4_PAGE_TABLE_CREATE:
        this.ppgttRoots.add(root);
        return;
      case VGT_G2V_PPGTT_L3_PAGE_TABLE_DESTROY:
      case VGT_G2V_PPGTT_L4_PAGE_TABLE_DESTROY:
        this.ppgttRoots.delete(root);
        return;
      case VGT_G2V_EXECLIST_CONTEXT_CREATE:
      case VGT_G2V_EXECLIST_CONTEXT_DESTROY:
        return;
      default:
        this.logger?.warn(`${this.name}: g2v_notify ${value} is not a notification GVT-g knows; ignored.`);
    }
  }

  // ---- display ----------------------------------------------------------------------------------------

  private queryPlane(planeType: number): GfxPlaneInfo {
    if (planeType === DRM_PLANE_TYPE_PRIMARY) return this.screen.queryPrimary();
    if (planeType === DRM_PLANE_TYPE_CURSOR) return this.screen.queryCursor();
    throw new VfioError('EINVAL', `drm plane type ${planeType} is neither primary (1) nor cursor (2).`, {
      device: this.name,
      hint: 'Query DRM_PLANE_TYPE_PRIMARY or DRM_PLANE_TYPE_CURSOR.',
    });
  }

  // ---- config space: ASLS and SWSCI ------------------------------------------------------------------

  protected override onConfigWrite(offset: number, length: number): void {
    if (offset < PCI_ASLS + 4 && offset + length > PCI_ASLS) this.asls = this.config.readU32(PCI_ASLS);
    if (this.asls === 0 && offset < PCI_BASE_ADDRESS_0 + 8 && offset + length > PCI_BASE_ADDRESS_0)
      this.pointAslsAtWindow();
    if (offset < PCI_SWSCI + 4 && offset + length > PCI_SWSCI) {
      const value = this.config.readU32(PCI_SWSCI);
      const previous = this.swsci;
      this.swsci = value;
      if ((value & SWSCI_SCI_SELECT) === 0) {
        if (value & SWSCI_SCI_TRIGGER)
          this.logger?.warn(`${this.name}: the guest requested an SMI through SWSCI; only SCI is emulated.`);
        return;
      }
      if (previous & SWSCI_SCI_TRIGGER || !(value & SWSCI_SCI_TRIGGER)) return;
      this.emulateOpRegionRequest();
    }
  }

  /**
   * With no OpRegion base written, ASLS reads the BAR0 window that shows the virtual OpRegion
   * (0 while BAR0 is unassigned, being sized, or above 4 GiB, where ASLS cannot point).
   */
  private pointAslsAtWindow(): void {
    const bar0 = this.config.barAddress(0) ?? 0;
    const at = bar0 + OPREGION_BAR0_WINDOW;
    const value = bar0 !== 0 && at + OPREGION_SIZE <= 2 ** 32 ? at : 0;
    this.config.setRaw(
      PCI_ASLS,
      Uint8Array.of(value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24),
    );
  }

  /** intel_vgpu_emulate_opregion_request: SCIC and PARM live in the guest's copy of the OpRegion. */
  private emulateOpRegionRequest(): void {
    if (!this.isOpen || this.asls === 0) {
      this.logger?.warn(`${this.name}: SWSCI request with no OpRegion base in ASLS; ignored.`);
      return;
    }
    const words = new Uint8Array(8);
    const dv = new DataView(words.buffer);
    try {
      this.ctx.dma.read(this.asls + OPREGION_SCIC, words);
      const r = emulateSwsci(dv.getUint32(0, true), dv.getUint32(4, true));
      dv.setUint32(0, r.scic, true);
      dv.setUint32(4, r.parm, true);
      this.ctx.dma.write(this.asls + OPREGION_SCIC, words);
      this.stats.swsciRequests++;
      if (!r.answered)
        this.logger?.info(`${this.name}: SWSCI runtime service requested; answered "unsupported".`);
    } catch (err) {
      this.logger?.warn(
        `${this.name}: the guest OpRegion at 0x${this.asls.toString(16)} is not readable: ${(err as Error).message}`,
      );
    }
  }

  // ---- life cycle -----------------------------------------------------------------------------------

  protected override onOpen(ctx: DeviceContext): void {
    this.logger = ctx.log;
    this.regs.setLogger(ctx.log);
    this.pipes.attach(ctx.clock);
    this.ggtt.attach(ctx.dma, ctx.dirty, ctx.log);
    this.scheduler.add(this);
  }

  protected override onClose(): void {
    this.logger?.info(`${this.name}: workloads by engine: ${engineSummary(this.stats.engines)}`);
    this.pipes.detach();
    this.scheduler.remove(this);
    this.ggtt.detach();
    this.submission.clear();
    this.logger = undefined;
  }

  /** Device reset: every piece of virtual state back to creation (cfg space is reset by the base). */
  protected override onReset(): void {
    resetVgpuMmio(this.regs, this.vgpuId, this.resources);
    this.ggtt.reset();
    this.submission.reset();
    this.irq.reset();
    this.swsci = 0;
    this.asls = 0;
    this.ppgttRoots.clear();
    for (const f of this.resources.fences) this.host.fenceRegs[f] = 0;
    this.edid.reset();
    this.pipes.reset();
    this.regs.set(SDEISR, SDE_PORTD_HOTPLUG_CPT);
    // Only what was written or mapped is cleared: a fresh 512 MiB slice is not read at all.
    const { low } = this.resources;
    this.resources.aperturePages.clear(low.base, low.base + low.size);
    this.screen.clear();
  }

  /** Give the host's resources back (the vGPU was removed). */
  destroy(): void {
    this.scheduler.remove(this);
    this.ggtt.reset();
  }
}

/** "rcs0 12 completed (40 commands), 0 refused; bcs0 ..." */
export function engineSummary(engines: Readonly<Record<string, EngineStats>>): string {
  return Object.entries(engines)
    .map(([n, e]) => `${n} ${e.completed} completed (${e.commands} commands), ${e.refused} refused`)
    .join('; ');
}
