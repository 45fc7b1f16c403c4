/**
 * Test devices built from core's PciDeviceModel and ConfigSpace: a UART-like card with an
 * I/O BAR and INTx, a device with a sparse-mmappable memory BAR and MSI-X, an MSI device that
 * does DMA on a doorbell, and a deliberately broken device whose BAR handler throws.
 */
import {
  allocateSharedMemory,
  ConfigSpace,
  type DeviceContext,
  msiCapability,
  msixCapability,
  PciDeviceModel,
  type RegionHandler,
  type SharedMemory,
  type VfioError,
} from '@vfiokit/core';

/** A trapped-register handler that counts calls and keeps 32-bit registers. */
export class CountingRegisters implements RegionHandler {
  reads = 0;
  writes = 0;
  readonly values = new Map<number, number>();
  readonly written: { offset: number; bytes: number[] }[] = [];

  read(offset: number, dst: Uint8Array): void {
    this.reads++;
    const v = this.values.get(offset) ?? 0;
    for (let i = 0; i < dst.length; i++) dst[i] = (v >>> (8 * i)) & 0xff;
  }

  write(offset: number, src: Uint8Array): void {
    this.writes++;
    this.written.push({ offset, bytes: [...src] });
    let v = 0;
    for (let i = 0; i < src.length; i++) v |= src[i] << (8 * i);
    this.values.set(offset, v >>> 0);
  }
}

// WCH CH352 identity as linux samples/vfio-mdev/mtty.c gives it: 0x4348:0x3253, class 07/00/02
export const UART_VENDOR = 0x4348;
export const UART_DEVICE = 0x3253;
export const UART_CLASS = 0x070002;

/** A UART-like serial card: BAR0 is 8 I/O ports, INTA#, no MSI. */
export function uartDevice(name = 'uart0'): { model: PciDeviceModel; regs: CountingRegisters } {
  const config = new ConfigSpace({
    name,
    identity: {
      vendorId: UART_VENDOR,
      deviceId: UART_DEVICE,
      subsystemVendorId: UART_VENDOR,
      subsystemId: UART_DEVICE,
      classCode: UART_CLASS,
      revision: 0x10,
      interruptPin: 1,
    },
  });
  config.defineBar({ index: 0, kind: 'io', size: 8 });
  const regs = new CountingRegisters();
  return { model: new PciDeviceModel({ name, config, bars: { 0: { handler: regs } } }), regs };
}

/** Registers of the test device's BAR0 (trapped page at 0x1000). */
export const REG_DOORBELL = 0x1000;
export const REG_STATUS = 0x1004;
export const REG_DMA_ADDR = 0x1008;
export const DIRECT_AREA = { offset: 0, size: 0x1000 } as const;
export const DIRECT_AREA_2 = { offset: 0x2000, size: 0x2000 } as const;
export const DMA_PATTERN = [0xde, 0xad, 0xbe, 0xef];

export interface TestDeviceOptions {
  name?: string;
  msix?: { tableSize: number; mappable?: boolean };
  msi?: { vectors: 1 | 2 | 4 | 8 | 16 | 32; perVectorMask?: boolean };
  pin?: 0 | 1 | 2 | 3 | 4;
  mem64?: boolean;
  resettable?: boolean;
}

/**
 * A device with BAR0 (16 KiB memory, sparse mmap areas 0x0000-0x0fff and 0x2000-0x3fff; the
 * page at 0x1000 is trapped registers), an optional MSI-X table in BAR2 (table at 0, PBA at
 * 0x800) and optional MSI. Writing the doorbell makes the device DMA DMA_PATTERN to the IOVA in
 * REG_DMA_ADDR; REG_STATUS then holds 1 (done) or the errno of the failure.
 */
export class TestDevice extends PciDeviceModel {
  readonly regs: CountingRegisters;
  readonly bar0: SharedMemory;
  resets = 0;
  lastDmaError: VfioError | undefined;

  constructor(opts: TestDeviceOptions = {}) {
    const name = opts.name ?? 'testdev0';
    const config = new ConfigSpace({
      name,
      identity: {
        vendorId: 0x1b36,
        deviceId: 0x0011,
        subsystemVendorId: 0x1af4,
        subsystemId: 0x1100,
        classCode: 0xff0000,
        revision: 1,
        interruptPin: opts.pin ?? 1,
      },
    });
    config.defineBar({
      index: 0,
      kind: opts.mem64 ? 'mem64' : 'mem32',
      size: 0x4000,
      prefetchable: !!opts.mem64,
    });
    if (opts.msix) config.defineBar({ index: 2, kind: 'mem32', size: 0x1000 });
    if (opts.msi)
      config.addCapability(
        msiCapability({ vectors: opts.msi.vectors, addr64: true, perVectorMask: !!opts.msi.perVectorMask }),
      );
    if (opts.msix) {
      config.addCapability(
        msixCapability({
          tableSize: opts.msix.tableSize,
          tableBar: 2,
          tableOffset: 0,
          pbaBar: 2,
          pbaOffset: 0x800,
        }),
      );
    }
    const regs = new CountingRegisters();
    const bar0 = allocateSharedMemory(0x4000);
    const handler: RegionHandler = {
      read: (offset, dst) => {
        if (offset >= 0x1000 && offset < 0x2000) regs.read(offset, dst);
        else {
          regs.reads++;
          dst.set(bar0.bytes.subarray(offset, offset + dst.length));
        }
      },
      write: (offset, src) => {
        if (offset >= 0x1000 && offset < 0x2000) {
          regs.write(offset, src);
          if (offset === REG_DOORBELL) this.doorbell();
        } else {
          regs.writes++;
          bar0.bytes.set(src, offset);
        }
      },
    };
    const msixMemory = allocateSharedMemory(0x1000);
    super({
      name,
      config,
      resettable: opts.resettable ?? true,
      bars: {
        0: { handler, memory: bar0, sparseMmap: [DIRECT_AREA, DIRECT_AREA_2] },
        ...(opts.msix
          ? {
              2: opts.msix.mappable
                ? { memory: msixMemory, msixMappable: true }
                : { handler: new CountingRegisters() },
            }
          : {}),
      },
    });
    this.regs = regs;
    this.bar0 = bar0;
  }

  private doorbell(): void {
    const iova = this.regs.values.get(REG_DMA_ADDR) ?? 0;
    try {
      this.ctx.dma.write(iova, new Uint8Array(DMA_PATTERN));
      this.regs.values.set(REG_STATUS, 1);
      this.lastDmaError = undefined;
    } catch (err) {
      this.lastDmaError = err as VfioError;
      this.regs.values.set(REG_STATUS, (err as VfioError).errno ?? 5);
    }
  }

  protected override onReset(): void {
    this.resets++;
    this.regs.values.clear();
  }
}

/** A device whose BAR0 handler throws for every access at offset 0x10 (a plugin bug). */
export class BrokenDevice extends PciDeviceModel {
  handlerCalls = 0;
  resets = 0;
  constructor(name = 'broken0') {
    const config = new ConfigSpace({
      name,
      identity: {
        vendorId: 0x1234,
        deviceId: 0xbad0,
        subsystemVendorId: 0,
        subsystemId: 0,
        classCode: 0xff0000,
        revision: 0,
      },
    });
    config.defineBar({ index: 0, kind: 'mem32', size: 0x1000 });
    const values = new Uint8Array(0x1000);
    super({
      name,
      config,
      bars: {
        0: {
          handler: {
            read: (offset, dst) => {
              this.handlerCalls++;
              if (offset === 0x10)
                throw new TypeError('cannot read properties of undefined (reading "status")');
              dst.set(values.subarray(offset, offset + dst.length));
            },
            write: (offset, src) => {
              this.handlerCalls++;
              if (offset === 0x10) throw new Error('register 0x10 exploded');
              values.set(src, offset);
            },
          },
        },
      },
    });
  }
  protected override onReset(): void {
    this.resets++;
  }
  protected override onOpen(_ctx: DeviceContext): void {}
}

export const slot = (device: number, fn = 0) => ({ bus: 0, device, function: fn });
