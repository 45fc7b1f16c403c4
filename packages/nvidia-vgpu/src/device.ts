/**
 * One vGPU as the VMM sees it: a vfio-pci device with NVIDIA's vendor id and the board's ids,
 * BAR0 (registers, trapped, with the RPC mailbox page directly mappable), BAR1 (the framebuffer
 * aperture, mapped directly over this vGPU's own framebuffer), BAR3 (the instance-memory window,
 * mapped directly over its own device memory), MSI, and the
 * engine client the GPU's scheduler runs. Both provisioning ways (mdev and SR-IOV VF) make this
 * same device.
 */
import {
  type BarBacking,
  ConfigSpace,
  MigState,
  msiCapability,
  PAGE_SIZE,
  PciDeviceModel,
  pciExpressCapability,
  powerManagementCapability,
  type RegionMapping,
  RegisterBank,
  readLe,
  type SharedMemory,
  type ValueSize,
  VFIO_PCI_INTX_IRQ_INDEX,
  VfioError,
  writeLe,
} from '@vfiokit/core';
import {
  BAR0_SIZE,
  BAR3_SIZE,
  CH_ERROR,
  CH_GET,
  CH_PUT,
  CH_STATE,
  CHANNEL_STATE_BUSY,
  CHANNEL_STRIDE,
  INTR_ALL,
  INTR_RPC_DONE,
  MAILBOX_OFFSET,
  MAILBOX_SIZE,
  MAX_CHANNELS,
  REG_CHANNEL_BASE,
  REG_FB_SIZE_HI,
  REG_FB_SIZE_LO,
  REG_ID,
  REG_INTR_ENABLE,
  REG_INTR_STATUS,
  REG_RPC_DOORBELL,
  REG_RPC_STATUS,
  REG_TYPE_ID,
  REG_VERSION,
  REGS_SIZE,
  RPC_STATUS_DONE,
  VGPU_INTERFACE_VERSION,
  VGPU_MAGIC,
} from './abi.js';
import { type BoardSpec, NVIDIA_VENDOR_ID, type VgpuProfile } from './boards.js';
import { type EngineHost, FbAllocator, VgpuEngine } from './engine.js';
import { handleRpc, type ManagerHost, type RpcCounters } from './manager.js';
import { type MigrationHost, VgpuMigration } from './migration.js';
import type { EngineClient } from './scheduler.js';

/** What a vGPU needs from its physical GPU. */
export interface GpuLink {
  readonly board: BoardSpec;
  /** Work was submitted: make sure the engine runs. */
  kick(): void;
  /** Whether payload checksums go into migration streams. */
  readonly payloadChecksum: boolean;
}

export interface VgpuDeviceOptions {
  readonly name: string;
  readonly gpu: GpuLink;
  readonly profile: VgpuProfile;
  readonly placementId: number;
  /** Fixed-share slot (turn) of this vGPU. */
  readonly slot: number;
  readonly framebuffer: SharedMemory;
  readonly mailbox: SharedMemory;
  /** BAR3's backing, BAR3_SIZE bytes. */
  readonly instanceMemory: SharedMemory;
}

function pow2AtLeast(n: number): number {
  let p = 16;
  while (p < n) p *= 2;
  return p;
}

/** The config space of a vGPU of `profile` on `board`. */
export function vgpuConfigSpace(
  board: BoardSpec,
  profile: VgpuProfile,
  fbBytes: number,
  name?: string,
): ConfigSpace {
  const config = new ConfigSpace({
    ...(name !== undefined ? { name } : {}),
    size: 4096,
    identity: {
      vendorId: NVIDIA_VENDOR_ID,
      deviceId: board.deviceId,
      subsystemVendorId: NVIDIA_VENDOR_ID,
      subsystemId: profile.subsystemId ?? 0,
      classCode: board.classCode,
      revision: board.revision,
      interruptPin: 1,
    },
  });
  config.defineBar({ index: 0, kind: 'mem32', size: BAR0_SIZE });
  config.defineBar({ index: 1, kind: 'mem64', size: pow2AtLeast(fbBytes), prefetchable: true });
  config.defineBar({ index: 3, kind: 'mem64', size: BAR3_SIZE, prefetchable: true });
  config.addCapability(powerManagementCapability());
  config.addCapability(msiCapability({ vectors: 1, addr64: true, perVectorMask: false }));
  config.addCapability(pciExpressCapability({ type: 'endpoint' }));
  return config;
}

export class VgpuDevice
  extends PciDeviceModel
  implements EngineClient, EngineHost, ManagerHost, MigrationHost
{
  readonly profile: VgpuProfile;
  readonly gpu: GpuLink;
  readonly placementId: number;
  readonly slot: number;
  readonly framebuffer: SharedMemory;
  readonly fb: Uint8Array;
  readonly fbSize: number;
  readonly mailbox: Uint8Array;
  readonly mailboxMemory: SharedMemory;
  readonly bank: RegisterBank;
  readonly engine: VgpuEngine;
  readonly allocator: FbAllocator;
  readonly rpc: RpcCounters = { ok: 0, errors: 0 };
  declare readonly migration: VgpuMigration;
  handshaken = false;
  /** The migration state as the core last set it. */
  migState: MigState = MigState.RUNNING;
  /** BAR1 was handed out as a CPU mapping: writes through it bypass the device. */
  cpuMapped = false;
  /** BAR3, the instance-memory window (BAR3_SIZE bytes). */
  readonly bar3: Uint8Array;
  /** BAR3 may hold something other than zeros: it was mapped, written or loaded. */
  bar3Touched = false;
  /** Page-granular dirty bitmap while a migration stream tracks changes; undefined otherwise. */
  dirtyPages: Uint32Array | undefined;
  dirtyCount = 0;
  /** Called when a page becomes dirty (the save stream's accounting). */
  onPageDirtied: ((page: number) => void) | undefined;
  private intxAsserted = false;

  constructor(opts: VgpuDeviceOptions) {
    const fbBytes = opts.framebuffer.size;
    const config = vgpuConfigSpace(opts.gpu.board, opts.profile, fbBytes, opts.name);
    const bar1Size = config.bars().find((b) => b.index === 1)?.size ?? fbBytes;
    const bar0: BarBacking = {
      handler: {
        read: (offset, dst) => this?.readBar0(offset, dst),
        write: (offset, src) => this?.writeBar0(offset, src),
        readValue: (offset, size) => this?.readBar0Value(offset, size) ?? 0,
        writeValue: (offset, size, value) => this?.writeBar0Value(offset, size, value),
      },
      memory: opts.mailbox,
      sparseMmap: [{ offset: MAILBOX_OFFSET, size: MAILBOX_SIZE }],
    };
    const bar1: BarBacking = {
      handler: {
        read: (offset, dst) => this?.readBar1(offset, dst),
        write: (offset, src) => this?.writeBar1(offset, src),
      },
      memory: opts.framebuffer,
      ...(bar1Size > fbBytes ? { sparseMmap: [{ offset: 0, size: fbBytes }] } : {}),
    };
    const bar3: BarBacking = {
      handler: {
        read: (offset, dst) => this?.readBar3(offset, dst),
        write: (offset, src) => this?.writeBar3(offset, src),
      },
      memory: opts.instanceMemory,
    };
    super({ name: opts.name, config, bars: { 0: bar0, 1: bar1, 3: bar3 } });
    this.profile = opts.profile;
    this.gpu = opts.gpu;
    this.placementId = opts.placementId;
    this.slot = opts.slot;
    this.framebuffer = opts.framebuffer;
    this.fb = opts.framebuffer.bytes;
    this.fbSize = fbBytes;
    this.mailboxMemory = opts.mailbox;
    this.mailbox = opts.mailbox.bytes.subarray(MAILBOX_OFFSET, MAILBOX_OFFSET + MAILBOX_SIZE);
    this.bar3 = opts.instanceMemory.bytes.subarray(0, BAR3_SIZE);
    this.allocator = new FbAllocator(fbBytes);
    this.engine = new VgpuEngine(this);
    this.bank = this.buildBank();
    this.migration = new VgpuMigration(this);
  }

  get frlConfig(): number {
    // Compute (C) profiles do not present frames; the limiter applies to display profiles.
    return this.profile.series === 'C' ? 0 : (this.profile.frlConfig ?? 0);
  }

  private buildBank(): RegisterBank {
    const channelRegs = [];
    for (let ch = 0; ch < MAX_CHANNELS; ch++) {
      const base = REG_CHANNEL_BASE + ch * CHANNEL_STRIDE;
      channelRegs.push(
        {
          name: `CH${ch}_PUT`,
          offset: base + CH_PUT,
          onRead: () => this.engine.channels[ch].put,
          onWrite: (value: number) => this.submit(ch, value),
        },
        {
          name: `CH${ch}_GET`,
          offset: base + CH_GET,
          access: 'ro' as const,
          onRead: () => this.engine.channels[ch].get,
        },
        {
          name: `CH${ch}_STATE`,
          offset: base + CH_STATE,
          access: 'ro' as const,
          onRead: () => this.engine.channels[ch].state,
        },
        {
          name: `CH${ch}_ERROR`,
          offset: base + CH_ERROR,
          access: 'ro' as const,
          onRead: () => this.engine.channels[ch].error,
        },
      );
    }
    return new RegisterBank({
      name: `vGPU ${this.name} BAR0`,
      size: REGS_SIZE,
      registers: [
        { name: 'ID', offset: REG_ID, access: 'ro', reset: VGPU_MAGIC },
        { name: 'VERSION', offset: REG_VERSION, access: 'ro', reset: VGPU_INTERFACE_VERSION },
        { name: 'FB_SIZE_LO', offset: REG_FB_SIZE_LO, access: 'ro', reset: this.fbSize % 2 ** 32 },
        {
          name: 'FB_SIZE_HI',
          offset: REG_FB_SIZE_HI,
          access: 'ro',
          reset: Math.floor(this.fbSize / 2 ** 32),
        },
        {
          name: 'INTR_STATUS',
          offset: REG_INTR_STATUS,
          readOnlyMask: ~INTR_ALL >>> 0,
          w1cMask: INTR_ALL,
          onWrite: () => this.updateIntx(),
        },
        {
          name: 'INTR_ENABLE',
          offset: REG_INTR_ENABLE,
          readOnlyMask: ~INTR_ALL >>> 0,
          onWrite: () => this.updateIntx(),
        },
        {
          name: 'RPC_DOORBELL',
          offset: REG_RPC_DOORBELL,
          access: 'wo',
          onWrite: (value: number) => this.ringRpc(value),
        },
        { name: 'RPC_STATUS', offset: REG_RPC_STATUS, access: 'ro' },
        { name: 'TYPE_ID', offset: REG_TYPE_ID, access: 'ro', reset: this.profile.typeId },
        ...channelRegs,
      ],
    });
  }

  // ---- BAR access ------------------------------------------------------------------------------

  private readBar0(offset: number, dst: Uint8Array): void {
    const end = offset + dst.length;
    if (end <= REGS_SIZE) this.bank.read(offset, dst);
    else if (offset >= MAILBOX_OFFSET && end <= MAILBOX_OFFSET + MAILBOX_SIZE)
      dst.set(this.mailbox.subarray(offset - MAILBOX_OFFSET, end - MAILBOX_OFFSET));
    else dst.fill(0);
  }

  /** readBar0() of 1, 2 or 4 bytes as their value: a register straight from the bank, anything else through bytes. */
  private readBar0Value(offset: number, size: ValueSize): number {
    if (offset + size <= REGS_SIZE) return this.bank.readValue(offset, size);
    const b = new Uint8Array(size);
    this.readBar0(offset, b);
    return readLe(b, 0, size);
  }

  private writeBar0Value(offset: number, size: ValueSize, value: number): void {
    if (offset + size <= REGS_SIZE) {
      this.bank.writeValue(offset, size, value);
      return;
    }
    const b = new Uint8Array(size);
    writeLe(b, 0, size, value);
    this.writeBar0(offset, b);
  }

  private writeBar0(offset: number, src: Uint8Array): void {
    const end = offset + src.length;
    if (end <= REGS_SIZE) this.bank.write(offset, src);
    else if (offset >= MAILBOX_OFFSET && end <= MAILBOX_OFFSET + MAILBOX_SIZE)
      this.mailbox.set(src, offset - MAILBOX_OFFSET);
  }

  private readBar1(offset: number, dst: Uint8Array): void {
    const inside = Math.max(0, Math.min(dst.length, this.fbSize - offset));
    if (inside > 0) dst.set(this.fb.subarray(offset, offset + inside));
    dst.fill(0, inside);
  }

  private writeBar1(offset: number, src: Uint8Array): void {
    const inside = Math.max(0, Math.min(src.length, this.fbSize - offset));
    if (inside <= 0) return;
    this.fb.set(inside === src.length ? src : src.subarray(0, inside), offset);
    this.markDirty(offset, inside);
  }

  private readBar3(offset: number, dst: Uint8Array): void {
    dst.set(this.bar3.subarray(offset, offset + dst.length));
  }

  private writeBar3(offset: number, src: Uint8Array): void {
    this.bar3.set(src, offset);
    this.bar3Touched = true;
  }

  override mmap(index: number, offset: number, size: number): RegionMapping {
    if (index === 0) {
      if (offset < MAILBOX_OFFSET || offset + size > MAILBOX_OFFSET + MAILBOX_SIZE) {
        throw new VfioError('EINVAL', 'only the RPC mailbox page of BAR0 can be mapped.', {
          device: this.name,
          region: index,
          offset,
          hint: 'Map the sparse area REGION_INFO lists; the registers are trapped.',
        });
      }
      return { memory: this.mailboxMemory, memoryOffset: offset, size };
    }
    const mapping = super.mmap(index, offset, size);
    if (index === 1) this.cpuMapped = true;
    if (index === 3) this.bar3Touched = true;
    return mapping;
  }

  // ---- engine client -----------------------------------------------------------------------------

  running(): boolean {
    return (
      this.isOpen &&
      (this.migState === MigState.RUNNING ||
        this.migState === MigState.RUNNING_P2P ||
        this.migState === MigState.PRE_COPY ||
        this.migState === MigState.PRE_COPY_P2P)
    );
  }

  runnable(now: number): boolean {
    return this.engine.runnable(now);
  }

  run(budgetNs: number, now: number): number {
    return this.engine.run(budgetNs, now);
  }

  nextWake(now: number): number {
    return this.engine.nextWake(now);
  }

  /** A channel has work queued (it may be waiting for the frame-rate limiter). */
  hasPendingWork(): boolean {
    return this.engine.channels.some((c) => c.state === CHANNEL_STATE_BUSY);
  }

  submit(channel: number, put: number): void {
    this.engine.setPut(channel, put);
    this.gpu.kick();
  }

  // ---- engine host: dirty tracking and interrupts ------------------------------------------------

  markDirty(offset: number, length: number): void {
    const bits = this.dirtyPages;
    if (bits === undefined || length <= 0) return;
    const last = Math.floor((offset + length - 1) / PAGE_SIZE);
    for (let page = Math.floor(offset / PAGE_SIZE); page <= last; page++) {
      const w = page >>> 5;
      const m = 1 << (page & 31);
      if ((bits[w] & m) === 0) {
        bits[w] |= m;
        this.dirtyCount++;
        this.onPageDirtied?.(page);
      }
    }
  }

  raise(bits: number): void {
    const status = this.bank.get('INTR_STATUS');
    const now = (status | bits) & INTR_ALL;
    this.bank.set('INTR_STATUS', now);
    if ((now & this.bank.get('INTR_ENABLE')) !== 0 && (bits & this.bank.get('INTR_ENABLE')) !== 0) {
      const how = this.raiseInterrupt();
      if (how === 'intx') this.intxAsserted = true;
    }
  }

  /** INTx follows (status & enable); MSI is an edge per raise. */
  private updateIntx(): void {
    const pending = (this.bank.get('INTR_STATUS') & this.bank.get('INTR_ENABLE')) !== 0;
    if (!pending && this.intxAsserted) {
      this.intxAsserted = false;
      this.lowerIntx();
    }
  }

  private ringRpc(length: number): void {
    handleRpc(this, length, this.rpc);
    this.bank.set('RPC_STATUS', RPC_STATUS_DONE);
    this.raise(INTR_RPC_DONE);
  }

  // ---- life cycle --------------------------------------------------------------------------------

  protected override onReset(): void {
    this.bank.reset();
    this.engine.reset();
    this.allocator.reset();
    this.mailbox.fill(0);
    this.handshaken = false;
    this.intxAsserted = false;
    this.migState = MigState.RUNNING;
    this.migration.reset();
  }

  protected override onIrqsChanged(index: number, count: number): void {
    if (index === VFIO_PCI_INTX_IRQ_INDEX && count > 0 && this.intxAsserted) this.raiseIntx();
  }
}
