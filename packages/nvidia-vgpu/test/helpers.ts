import { randomUUID } from 'node:crypto';
import {
  createFakeClock,
  createRecordingLogger,
  createTestHost,
  type FakeClock,
  type TestHost,
} from '@vfiokit/conformance';
import { type ParentDevice, VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_MSI_IRQ_INDEX } from '@vfiokit/core';
import { PCI_COMMAND, PCI_COMMAND_MEMORY, vfioPciIndexToOffset } from '@vfiokit/core/abi';
import { DeviceFile } from '@vfiokit/core/host';
import {
  CH_PUT,
  CHANNEL_STRIDE,
  createGpus,
  INTR_ALL,
  MAILBOX_OFFSET,
  MAILBOX_RESPONSE,
  type NvidiaVgpuOptions,
  type PhysicalGpu,
  REG_CHANNEL_BASE,
  REG_INTR_ENABLE,
  REG_RPC_DOORBELL,
  RPC_ALLOC_FB,
  RPC_CHANNEL_CREATE,
  RPC_OK,
  RPC_VERSION_HANDSHAKE,
  VGPU_INTERFACE_VERSION,
  type VgpuDevice,
} from '../src/index.js';

export interface Rig {
  readonly clock: FakeClock;
  readonly gpus: readonly PhysicalGpu[];
  readonly t4: PhysicalGpu;
  readonly ada: PhysicalGpu;
  readonly t4Parent: ParentDevice;
  readonly adaParent: ParentDevice;
}

/** Both simulated GPUs on one fake clock (default: 64 KiB of framebuffer per GiB). */
export function rig(options: NvidiaVgpuOptions = {}): Rig {
  const clock = createFakeClock();
  const { gpus, parents } = createGpus(
    { clock, log: createRecordingLogger(), options: {} },
    { framebufferBytesPerGiB: 64 * 1024, ...options },
  );
  const t4 = gpus.findIndex((g) => g.board.short === 'T4');
  const ada = gpus.findIndex((g) => g.board.short === 'RTX6000-Ada');
  return { clock, gpus, t4: gpus[t4], ada: gpus[ada], t4Parent: parents[t4], adaParent: parents[ada] };
}

export interface OpenVgpu {
  readonly uuid: string;
  readonly file: DeviceFile;
  readonly device: VgpuDevice;
  readonly host: TestHost;
  /** MSI eventfd signal count. */
  msi(): number;
  reg(offset: number): number;
  setReg(offset: number, value: number): void;
  fbRead(offset: number, length: number): Uint8Array;
  fbWrite(offset: number, bytes: Uint8Array): void;
  fbWords(offset: number, words: number[]): void;
  /** One RPC; `doorbell` overrides the length rung on the doorbell (the header always has the true length). */
  rpc(words: number[], doorbell?: number): { result: number; out: DataView };
  /** Handshake, then allocate `size` bytes; returns the offset. */
  alloc(size: number): number;
  /** A channel with a push buffer of `size` bytes; returns [channel, push buffer offset]. */
  channel(size?: number): [number, number];
  /** Write methods at the push buffer and ring PUT. */
  push(channel: number, pb: number, words: number[], at?: number): void;
}

const u32 = (v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
};

/** Create a vGPU of `typeId`, open it, enable memory decode and MSI (with a counting eventfd). */
export function openVgpu(parent: ParentDevice, typeId: string, uuid = randomUUID()): OpenVgpu {
  const instance = parent.create(typeId, uuid);
  const device = instance.device as VgpuDevice;
  const host = createTestHost({ device: instance.uuid });
  const file = new DeviceFile(device, host);
  file.open();
  const cfg = vfioPciIndexToOffset(VFIO_PCI_CONFIG_REGION_INDEX);
  const cmd = new Uint8Array(2);
  file.read(cfg + PCI_COMMAND, cmd);
  cmd[0] |= PCI_COMMAND_MEMORY;
  file.write(cfg + PCI_COMMAND, cmd);
  const fd = host.createEventfd();
  file.setIrqs({
    action: 'trigger',
    index: VFIO_PCI_MSI_IRQ_INDEX,
    start: 0,
    count: 1,
    data: 'eventfd',
    triggers: [host.resolveEventfd(fd)],
  });
  const bar0 = vfioPciIndexToOffset(0);
  const bar1 = vfioPciIndexToOffset(1);
  let seq = 1;
  let handshaken = false;
  const o: OpenVgpu = {
    uuid: instance.uuid,
    file,
    device,
    host,
    msi: () => host.eventfd(fd)?.count ?? 0,
    reg(offset) {
      const b = new Uint8Array(4);
      file.read(bar0 + offset, b);
      return new DataView(b.buffer).getUint32(0, true);
    },
    setReg(offset, value) {
      file.write(bar0 + offset, u32(value));
    },
    fbRead(offset, length) {
      const b = new Uint8Array(length);
      file.read(bar1 + offset, b);
      return b;
    },
    fbWrite(offset, bytes) {
      file.write(bar1 + offset, bytes);
    },
    fbWords(offset, words) {
      const b = new Uint8Array(words.length * 4);
      const v = new DataView(b.buffer);
      for (const [i, w] of words.entries()) v.setUint32(i * 4, w >>> 0, true);
      file.write(bar1 + offset, b);
    },
    rpc(words, doorbell) {
      const full = [words[0], 12 + (words.length - 1) * 4, seq++, ...words.slice(1)];
      const b = new Uint8Array(full.length * 4);
      const v = new DataView(b.buffer);
      for (const [i, w] of full.entries()) v.setUint32(i * 4, w >>> 0, true);
      file.write(bar0 + MAILBOX_OFFSET, b);
      o.setReg(REG_RPC_DOORBELL, doorbell ?? b.length);
      const r = new Uint8Array(0x800);
      file.read(bar0 + MAILBOX_OFFSET + MAILBOX_RESPONSE, r);
      const out = new DataView(r.buffer);
      return { result: out.getUint32(0, true), out };
    },
    alloc(size) {
      if (!handshaken) {
        o.setReg(REG_INTR_ENABLE, INTR_ALL);
        if (o.rpc([RPC_VERSION_HANDSHAKE, VGPU_INTERFACE_VERSION]).result !== RPC_OK)
          throw new Error('handshake');
        handshaken = true;
      }
      const r = o.rpc([RPC_ALLOC_FB, size, 0, 0, 0]);
      if (r.result !== RPC_OK) throw new Error(`alloc ${size} failed: ${r.result}`);
      return Number(r.out.getBigUint64(12, true));
    },
    channel(size = 4096) {
      const pb = o.alloc(size);
      const r = o.rpc([RPC_CHANNEL_CREATE, pb, 0, size]);
      if (r.result !== RPC_OK) throw new Error(`channel failed: ${r.result}`);
      return [r.out.getUint32(12, true), pb];
    },
    push(channel, pb, words, at = 0) {
      o.fbWords(pb + at, words);
      o.setReg(REG_CHANNEL_BASE + channel * CHANNEL_STRIDE + CH_PUT, at + words.length * 4);
    },
  };
  return o;
}
