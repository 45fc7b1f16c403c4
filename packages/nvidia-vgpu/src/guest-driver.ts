/**
 * The guest side of a vGPU, acting only through what a guest sees (config cycles, MMIO at the
 * BARs the probe assigned, and its MSI vector): check the ID registers, handshake with the host
 * vGPU manager over the BAR0 mailbox, allocate framebuffer memory, fill a buffer through the BAR1
 * aperture, create a channel and push COPY, MEMSET and a semaphore release with AWAKEN, wait for
 * the completion interrupt, and verify every byte through BAR1.
 */
import type { GuestDriver, GuestDriverResult, GuestView, ProbedDevice } from '@vfiokit/core';
import {
  CH_PUT,
  CHANNEL_STRIDE,
  INTR_ALL,
  METHOD_COPY,
  METHOD_FLAG_AWAKEN,
  METHOD_MEMSET,
  METHOD_SEM_RELEASE,
  methodHeader,
  REG_CHANNEL_BASE,
  REG_ID,
  REG_INTR_ENABLE,
  REG_INTR_STATUS,
  RPC_ALLOC_FB,
  RPC_CHANNEL_CREATE,
  RPC_OK,
  RPC_VERSION_HANDSHAKE,
  VGPU_INTERFACE_VERSION,
  VGPU_MAGIC,
} from './abi.js';
import { NVIDIA_VENDOR_ID } from './boards.js';
import { Bars } from './guest-bars.js';
import { nvidiaVgpuMigrationProgram } from './guest-migration.js';

/** The word pattern the driver writes: word i of the source buffer is PATTERN ^ i. */
export const NVIDIA_VGPU_TEST_PATTERN = 0x5a17c0de;
const BUFFER = 16 * 1024;
const MEMSET_VALUE = 0xfeedf00d;
const SEMAPHORE_VALUE = 0x600d;

export const nvidiaVgpuGuestDriver: GuestDriver = {
  name: 'nvidia-vgpu-guest',
  matches: (d: ProbedDevice) => d.vendorId === NVIDIA_VENDOR_ID,
  migration: nvidiaVgpuMigrationProgram,
  async run(guest: GuestView, device: ProbedDevice): Promise<GuestDriverResult> {
    const bar0 = device.bars.find((b) => b.index === 0);
    const bar1 = device.bars.find((b) => b.index === 1);
    if (!bar0?.address || !bar1?.address) return { ok: false, summary: 'BAR0 or BAR1 was not assigned' };
    const io = new Bars(guest, bar0.address, bar1.address);
    const facts: Record<string, unknown> = { irq: device.interrupts.kind };
    if (io.reg(REG_ID) !== VGPU_MAGIC)
      return { ok: false, summary: `BAR0 ID reads 0x${io.reg(REG_ID).toString(16)}`, facts };
    io.setReg(REG_INTR_ENABLE, INTR_ALL);
    let seq = 1;
    const hs = io.rpc(RPC_VERSION_HANDSHAKE, [VGPU_INTERFACE_VERSION], seq++, 1);
    if (hs.result !== RPC_OK)
      return { ok: false, summary: `version handshake failed with ${hs.result}`, facts };
    facts.hostVersion = `0x${hs.words[0].toString(16)}`;
    const alloc = (size: number): number | undefined => {
      const r = io.rpc(RPC_ALLOC_FB, [size, 0, 0, 0], seq++, 2);
      return r.result === RPC_OK ? r.words[0] + r.words[1] * 2 ** 32 : undefined;
    };
    const src = alloc(BUFFER);
    const dst = alloc(BUFFER);
    const fill = alloc(BUFFER);
    const pb = alloc(4096);
    if (src === undefined || dst === undefined || fill === undefined || pb === undefined) {
      return { ok: false, summary: 'framebuffer allocation failed', facts };
    }
    for (let i = 0; i < BUFFER / 4; i++) io.setFb(src + i * 4, NVIDIA_VGPU_TEST_PATTERN ^ i);
    const ch = io.rpc(RPC_CHANNEL_CREATE, [pb, 0, 4096], seq++, 1);
    if (ch.result !== RPC_OK)
      return { ok: false, summary: `channel creation failed with ${ch.result}`, facts };
    const channel = ch.words[0];
    const semaphore = pb + 2048;
    const methods = [
      methodHeader(METHOD_COPY),
      dst,
      src,
      BUFFER,
      methodHeader(METHOD_MEMSET),
      fill,
      BUFFER,
      MEMSET_VALUE,
      methodHeader(METHOD_SEM_RELEASE, METHOD_FLAG_AWAKEN),
      semaphore,
      SEMAPHORE_VALUE,
    ];
    for (const [i, w] of methods.entries()) io.setFb(pb + i * 4, w);
    const vector = device.interrupts.vectors[0];
    const before = vector === undefined ? 0 : guest.interrupts.count(vector);
    io.setReg(REG_CHANNEL_BASE + channel * CHANNEL_STRIDE + CH_PUT, methods.length * 4);
    let done = false;
    if (vector !== undefined) {
      done = await guest.interrupts.waitFor(vector, before + 1, 5000);
      if (device.interrupts.kind === 'intx') guest.interrupts.eoi(vector);
    }
    for (let spin = 0; !done && spin < 1000; spin++) {
      if (io.fb(semaphore) === SEMAPHORE_VALUE) done = true;
      else await new Promise((r) => setTimeout(r, 1));
    }
    io.setReg(REG_INTR_STATUS, INTR_ALL);
    if (!done) return { ok: false, summary: 'the semaphore release never arrived', facts };
    if (io.fb(semaphore) !== SEMAPHORE_VALUE)
      return { ok: false, summary: 'the semaphore holds the wrong value', facts };
    for (let i = 0; i < BUFFER / 4; i++) {
      if (io.fb(dst + i * 4) !== (NVIDIA_VGPU_TEST_PATTERN ^ i) >>> 0)
        return { ok: false, summary: `the copied buffer differs at word ${i}`, facts };
      if (io.fb(fill + i * 4) !== MEMSET_VALUE)
        return { ok: false, summary: `the memset buffer differs at word ${i}`, facts };
    }
    facts.channel = channel;
    facts.interruptDelivered = vector !== undefined && guest.interrupts.count(vector) > before;
    return {
      ok: true,
      summary: `handshake, ${BUFFER / 1024} KiB filled through BAR1, copied and memset on channel ${channel}, semaphore interrupt received, every byte verified`,
      facts,
    };
  },
};
