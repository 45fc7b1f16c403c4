/** A hand-written device and host for dispatcher tests: no PCI model, so every rule under test is the core's. */

import type { DeviceHost } from '../src/host.js';
import {
  ConfigSpace,
  type DeviceContext,
  type IrqInfo,
  type RegionInfo,
  type VfioDevice,
  VfioError,
} from '../src/index.js';

export const silentLog = { debug() {}, info() {}, warn() {}, error() {} };

/** The errno name of the VfioError `fn` throws, undefined when it returns; anything else is rethrown. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (!(err instanceof VfioError)) throw err;
    return err.code;
  }
}

/** The config space of a test device (QEMU's 1b36:0103 identity, class ff0000) with these BARs. */
export function testConfigSpace(
  name: string | undefined,
  bars: readonly Parameters<ConfigSpace['defineBar']>[0][],
): ConfigSpace {
  const config = new ConfigSpace({
    ...(name === undefined ? {} : { name }),
    identity: {
      vendorId: 0x1b36,
      deviceId: 0x0103,
      subsystemVendorId: 0,
      subsystemId: 0,
      classCode: 0xff0000,
      revision: 0,
    },
  });
  for (const bar of bars) config.defineBar(bar);
  return config;
}

export function fakeHost(): DeviceHost & { fired: number[] } {
  const fired: number[] = [];
  return {
    fired,
    dma: {
      read() {
        throw new Error('no dma in this test');
      },
      write() {
        throw new Error('no dma in this test');
      },
      pin() {
        throw new Error('no dma in this test');
      },
    },
    dirty: { markDirty() {} },
    clock: { now: () => 0, schedule: () => () => {} },
    log: silentLog,
    resolveEventfd: (fd: number) => ({ signal: () => fired.push(fd) }),
  };
}

export interface FakeDeviceOptions {
  reset?: boolean;
  throwOnRead?: boolean;
}

/** BAR0: 8 KiB, mmappable at 4 KiB..8 KiB; CONFIG: 256 bytes; region 9: read-only typed region. */
export function fakeDevice(
  opts: FakeDeviceOptions = {},
): VfioDevice & { bar0: Uint8Array; resets: number; ctx?: DeviceContext } {
  const bar0 = new Uint8Array(8192);
  const config = new Uint8Array(256);
  const extra = new Uint8Array(64).map((_, i) => i);
  const regions: Record<number, RegionInfo> = {
    0: {
      index: 0,
      size: 8192,
      read: true,
      write: true,
      mmap: true,
      sparseMmap: [{ offset: 4096, size: 4096 }],
    },
    7: { index: 7, size: 256, read: true, write: true, mmap: false },
    9: { index: 9, size: 64, read: true, write: false, mmap: false, type: { type: 0x80008086, subtype: 1 } },
  };
  const irqs: Record<number, IrqInfo> = {
    0: { index: 0, count: 1, eventfd: true, maskable: true, automasked: true, noresize: false },
    1: { index: 1, count: 4, eventfd: true, maskable: false, automasked: false, noresize: true },
  };
  const dev = {
    name: 'fake-0',
    bar0,
    resets: 0,
    ctx: undefined as DeviceContext | undefined,
    info: () => ({ reset: opts.reset ?? true, numRegions: 10, numIrqs: 5 }),
    regionInfo: (i: number) =>
      regions[i] ?? (i < 10 ? { index: i, size: 0, read: false, write: false, mmap: false } : undefined),
    irqInfo: (i: number) =>
      irqs[i] ??
      (i < 5
        ? { index: i, count: 0, eventfd: true, maskable: false, automasked: false, noresize: false }
        : undefined),
    open(ctx: DeviceContext) {
      dev.ctx = ctx;
    },
    close() {
      dev.ctx = undefined;
    },
    read(index: number, offset: number, dst: Uint8Array) {
      if (opts.throwOnRead) throw new Error('plugin bug');
      const src = index === 0 ? bar0 : index === 7 ? config : extra;
      dst.set(src.subarray(offset, offset + dst.length));
    },
    write(index: number, offset: number, src: Uint8Array) {
      (index === 0 ? bar0 : config).set(src, offset);
    },
    mmap(_index: number, offset: number, size: number) {
      return { memory: { size: bar0.length, bytes: bar0 }, memoryOffset: offset, size };
    },
    ...(opts.reset === false
      ? {}
      : {
          reset() {
            dev.resets++;
            config.fill(0);
          },
        }),
  };
  return dev;
}
