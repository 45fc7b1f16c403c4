/**
 * A small PCI device built with core for the socket tests: BAR0 is 16 KiB of memfd memory whose
 * upper 8 KiB are a sparse mmap area, with trapped registers below (an id, a scratch register,
 * a doorbell that raises an interrupt, and a DMA engine that copies guest memory into the BAR);
 * INTx and MSI (4 vectors).
 */
import {
  allocateDeviceMemory,
  ConfigSpace,
  type DeviceContext,
  type MigrationOps,
  type MigrationStream,
  MigState,
  msiCapability,
  PciDeviceModel,
  type PluginHost,
  VfioError,
} from '@vfiokit/core';
import { toVfioError } from '@vfiokit/core/host';

export const TEST_VENDOR = 0x1af4; // a test value only
export const TEST_DEVICE = 0x10f0;
export const BAR0_SIZE = 0x4000;
export const MMAP_AREA = { offset: 0x2000, size: 0x2000 } as const;
export const REG_ID = 0x00;
export const REG_SCRATCH = 0x04;
/** Write a vector number: the device raises it. */
export const REG_DOORBELL = 0x08;
export const REG_DMA_ADDR = 0x10;
export const REG_DMA_LEN = 0x18;
/** 1: synchronous DMA read of guest memory into BAR0 + 0x2000; 2: the same through readAsync; 3: write BAR0 + 0x2000 to guest memory through writeAsync. */
export const REG_DMA_CMD = 0x1c;
/** 0 idle/busy, 1 done, or 0x80000000 | errno. */
export const REG_DMA_STATUS = 0x20;
export const DEVICE_ID_VALUE = 0x5a5a0001;

export class TestDevice extends PciDeviceModel {
  readonly memory;
  private scratch = 0;
  private dmaAddr = 0;
  private dmaLen = 0;
  status = 0;
  resets = 0;
  opens = 0;
  closes = 0;

  /** `resettable: false` for a device that reports no VFIO_DEVICE_FLAGS_RESET. */
  constructor(name: string, host: PluginHost, options: { resettable?: boolean } = {}) {
    const config = new ConfigSpace({
      name,
      identity: {
        vendorId: TEST_VENDOR,
        deviceId: TEST_DEVICE,
        subsystemVendorId: TEST_VENDOR,
        subsystemId: TEST_DEVICE,
        classCode: 0xff0000,
        revision: 1,
        interruptPin: 1,
      },
    });
    config.defineBar({ index: 0, kind: 'mem32', size: BAR0_SIZE });
    config.addCapability(msiCapability({ vectors: 4, addr64: true, perVectorMask: false }));
    const memory = allocateDeviceMemory(host, BAR0_SIZE, `${name}-bar0`);
    super({
      name,
      config,
      migration: testMigration(() => this!),
      resettable: options.resettable ?? true,
      bars: {
        0: {
          memory,
          sparseMmap: [MMAP_AREA],
          handler: {
            read: (offset, dst) => this!.readBar(offset, dst),
            write: (offset, src) => this!.writeBar(offset, src),
          },
        },
      },
    });
    this.memory = memory;
  }

  /** Config space, scratch register and BAR0 memory: what migration carries. */
  saveState(): Uint8Array {
    const config = this.config.snapshot();
    const out = new Uint8Array(config.length + 4 + BAR0_SIZE);
    out.set(config);
    new DataView(out.buffer).setUint32(config.length, this.scratch, true);
    out.set(this.memory.bytes.subarray(0, BAR0_SIZE), config.length + 4);
    return out;
  }

  loadState(bytes: Uint8Array): void {
    const n = this.config.size;
    if (bytes.length !== n + 4 + BAR0_SIZE)
      throw new VfioError(
        'EINVAL',
        `the migration stream is ${bytes.length} bytes; ${n + 4 + BAR0_SIZE} were expected.`,
        {
          device: this.name,
        },
      );
    this.config.restore(bytes.subarray(0, n));
    this.scratch = new DataView(bytes.buffer, bytes.byteOffset).getUint32(n, true);
    this.memory.bytes.set(bytes.subarray(n + 4, n + 4 + BAR0_SIZE));
  }

  private readBar(offset: number, dst: Uint8Array): void {
    if (offset >= MMAP_AREA.offset) {
      dst.set(this.memory.bytes.subarray(offset, offset + dst.length));
      return;
    }
    const regs = new Uint8Array(0x24);
    const dv = new DataView(regs.buffer);
    dv.setUint32(REG_ID, DEVICE_ID_VALUE, true);
    dv.setUint32(REG_SCRATCH, this.scratch, true);
    dv.setUint32(REG_DMA_ADDR, this.dmaAddr, true);
    dv.setUint32(REG_DMA_LEN, this.dmaLen, true);
    dv.setUint32(REG_DMA_STATUS, this.status, true);
    dst.fill(0);
    if (offset < regs.length) dst.set(regs.subarray(offset, Math.min(regs.length, offset + dst.length)));
  }

  private writeBar(offset: number, src: Uint8Array): void {
    if (offset >= MMAP_AREA.offset) {
      this.memory.bytes.set(src, offset);
      return;
    }
    if (src.length !== 4) return;
    const value = new DataView(src.buffer, src.byteOffset, 4).getUint32(0, true);
    if (offset === REG_SCRATCH) this.scratch = value;
    else if (offset === REG_DOORBELL) this.raiseInterrupt(value);
    else if (offset === REG_DMA_ADDR) this.dmaAddr = value;
    else if (offset === REG_DMA_LEN) this.dmaLen = Math.min(value, MMAP_AREA.size);
    else if (offset === REG_DMA_CMD) this.startDma(value);
  }

  private startDma(cmd: number): void {
    const ctx = this.ctx;
    const window = this.memory.bytes.subarray(MMAP_AREA.offset, MMAP_AREA.offset + this.dmaLen);
    const fail = (err: unknown) => {
      this.status = (0x80000000 | toVfioError(err).errno) >>> 0;
    };
    this.status = 0;
    if (cmd === 1) {
      try {
        ctx.dma.read(this.dmaAddr, window);
        this.status = 1;
      } catch (err) {
        fail(err);
      }
      return;
    }
    const op =
      cmd === 2
        ? ctx.dma.readAsync?.(this.dmaAddr, window)
        : cmd === 3
          ? ctx.dma.writeAsync?.(this.dmaAddr, window)
          : undefined;
    if (!op) {
      this.status = (0x80000000 | 22) >>> 0;
      return;
    }
    op.then(
      () => {
        this.status = 1;
        this.raiseInterrupt(0);
      },
      (err) => fail(err),
    );
  }

  protected override onOpen(_ctx: DeviceContext): void {
    this.opens++;
  }

  protected override onClose(): void {
    this.closes++;
  }

  protected override onReset(): void {
    this.resets++;
    this.scratch = 0;
    this.status = 0;
    this.memory.bytes.fill(0);
  }
}

/** STOP_COPY and RESUMING only: the whole state in one stream. */
function testMigration(device: () => TestDevice): MigrationOps {
  let saving: Uint8Array | undefined;
  let resuming: Uint8Array[] | undefined;
  return {
    caps: { stopCopy: true, p2p: false, preCopy: false },
    stopCopySize: () => device().config.size + 4 + BAR0_SIZE,
    step(from: MigState, to: MigState): MigrationStream | undefined {
      if (from === MigState.STOP && to === MigState.STOP_COPY) {
        saving = device().saveState();
        let at = 0;
        return {
          read(max: number): Uint8Array {
            const chunk = saving!.slice(at, at + max);
            at += chunk.length;
            return chunk;
          },
        };
      }
      if (from === MigState.STOP && to === MigState.RESUMING) {
        resuming = [];
        return { write: (chunk) => void resuming!.push(chunk.slice()) };
      }
      if (from === MigState.RESUMING && to === MigState.STOP) {
        const parts = resuming ?? [];
        resuming = undefined;
        const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) {
          all.set(p, at);
          at += p.length;
        }
        device().loadState(all);
      }
      if (from === MigState.STOP_COPY) saving = undefined;
      return undefined;
    },
  };
}
