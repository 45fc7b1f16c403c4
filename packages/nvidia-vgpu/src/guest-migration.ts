/**
 * The guest side of a live migration of a vGPU, acting only through what a guest sees. On the
 * source it handshakes, allocates a bulk buffer and a scratch buffer, fills them (through BAR1
 * and with engine copies), and then keeps running: every burst rewrites one scratch page through
 * the CPU mapping of BAR1 and queues a MEMSET of one bulk page on its channel, so the vGPU's
 * memory changes while the VMM pre-copies it. Its last act before the vCPUs stop queues a COPY
 * and a semaphore release that the vGPU has not run yet. On the destination it waits for that
 * in-flight work to finish (semaphore value and interrupt status) and checks every byte it ever
 * wrote.
 */

import type {
  GuestDriverResult,
  GuestMigrationProgram,
  GuestProgramState,
  GuestView,
  ProbedDevice,
} from '@vfiokit/core';
import { PAGE_SIZE } from '@vfiokit/core';
import {
  CH_GET,
  CH_PUT,
  CHANNEL_STRIDE,
  INTR_ALL,
  INTR_SEMAPHORE,
  METHOD_COPY,
  METHOD_FLAG_AWAKEN,
  METHOD_MEMSET,
  METHOD_SEM_RELEASE,
  methodHeader,
  REG_CHANNEL_BASE,
  REG_FB_SIZE_HI,
  REG_FB_SIZE_LO,
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
import { Bars } from './guest-bars.js';

const PAGE_WORDS = PAGE_SIZE / 4;
const RING_BYTES = 4096;
/** The bulk buffer: half the framebuffer, at most 4 MiB. */
const MAX_BULK = 4 << 20;
const SCRATCH = 64 * 1024;
const SCRATCH_WORDS = SCRATCH / 4;
/** The in-flight COPY moves the first part of the bulk buffer. */
const MAX_COPY = 1 << 20;
/** The seed of the patterns; word i of the scratch buffer starts as SEED ^ i. */
const SEED = 0x3c6ef372;
const SEMAPHORE_BASE = 0x51a70000;

/** What a burst writes: a word that depends on the round and the word's index. */
function roundWord(round: number, index: number): number {
  return (Math.imul(0x9e3779b1, round + 1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
}

interface MigrationState {
  channel: number;
  pb: number;
  put: number;
  bulk: number;
  bulkSize: number;
  scratch: number;
  copyDst: number;
  copyLen: number;
  semaphore: number;
  rounds: number;
  /** Round that last rewrote each scratch page (CPU writes through BAR1). */
  scratchRound: Record<string, number>;
  /** Round whose MEMSET last covered each bulk page (engine writes). */
  bulkRound: Record<string, number>;
  inFlight: boolean;
  busyAtStop: boolean;
}

function bars(guest: GuestView, device: ProbedDevice): Bars {
  const bar0 = device.bars.find((b) => b.index === 0);
  const bar1 = device.bars.find((b) => b.index === 1);
  if (!bar0?.address || !bar1?.address) throw new Error('BAR0 or BAR1 was not assigned');
  return new Bars(guest, bar0.address, bar1.address);
}

function asState(s: GuestProgramState): MigrationState {
  return s as unknown as MigrationState;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Queue methods on the channel's ring after PUT and ring the doorbell. */
function push(io: Bars, st: MigrationState, methods: readonly number[]): void {
  for (const w of methods) {
    io.setFb(st.pb + st.put, w);
    st.put = (st.put + 4) % RING_BYTES;
  }
  io.setReg(REG_CHANNEL_BASE + st.channel * CHANNEL_STRIDE + CH_PUT, st.put);
}

function channelIdle(io: Bars, st: MigrationState): boolean {
  return io.reg(REG_CHANNEL_BASE + st.channel * CHANNEL_STRIDE + CH_GET) === st.put;
}

async function waitIdle(io: Bars, st: MigrationState, ms: number): Promise<boolean> {
  for (let t = 0; t < ms; t++) {
    if (channelIdle(io, st)) return true;
    await sleep(1);
  }
  return channelIdle(io, st);
}

/** The expected word `w` of the bulk buffer. */
function bulkWord(st: MigrationState, w: number): number {
  const r = st.bulkRound[Math.floor(w / PAGE_WORDS)];
  return r === undefined ? (SEED ^ (w % SCRATCH_WORDS)) >>> 0 : roundWord(r, 0xffff);
}

function scratchWord(st: MigrationState, w: number): number {
  const r = st.scratchRound[Math.floor(w / PAGE_WORDS)];
  return r === undefined ? (SEED ^ w) >>> 0 : roundWord(r, w % PAGE_WORDS);
}

async function start(guest: GuestView, device: ProbedDevice): Promise<GuestProgramState> {
  const io = bars(guest, device);
  if (io.reg(REG_ID) !== VGPU_MAGIC) throw new Error(`BAR0 ID reads 0x${io.reg(REG_ID).toString(16)}`);
  io.setReg(REG_INTR_ENABLE, INTR_ALL);
  let seq = 1;
  const hs = io.rpc(RPC_VERSION_HANDSHAKE, [VGPU_INTERFACE_VERSION], seq++, 1);
  if (hs.result !== RPC_OK) throw new Error(`version handshake failed with ${hs.result}`);
  const fbSize = io.reg(REG_FB_SIZE_LO) + io.reg(REG_FB_SIZE_HI) * 2 ** 32;
  const alloc = (size: number): number => {
    const r = io.rpc(RPC_ALLOC_FB, [size, 0, 0, 0], seq++, 2);
    if (r.result !== RPC_OK) throw new Error(`allocating ${size} bytes failed with ${r.result}`);
    return r.words[0] + r.words[1] * 2 ** 32;
  };
  const bulkSize = Math.min(MAX_BULK, Math.floor(fbSize / 2 / SCRATCH) * SCRATCH);
  const copyLen = Math.min(MAX_COPY, bulkSize / 4);
  if (bulkSize < SCRATCH)
    throw new Error(`the ${fbSize}-byte framebuffer is too small to migrate a workload`);
  const pb = alloc(RING_BYTES);
  const scratch = alloc(SCRATCH);
  const bulk = alloc(bulkSize);
  const copyDst = alloc(copyLen);
  const semaphore = alloc(PAGE_SIZE);
  const ch = io.rpc(RPC_CHANNEL_CREATE, [pb, 0, RING_BYTES], seq++, 1);
  if (ch.result !== RPC_OK) throw new Error(`channel creation failed with ${ch.result}`);
  const st: MigrationState = {
    channel: ch.words[0],
    pb,
    put: 0,
    bulk,
    bulkSize,
    scratch,
    copyDst,
    copyLen,
    semaphore,
    rounds: 0,
    scratchRound: {},
    bulkRound: {},
    inFlight: false,
    busyAtStop: false,
  };
  for (let i = 0; i < SCRATCH_WORDS; i++) io.setFb(scratch + i * 4, SEED ^ i);
  // The bulk buffer is the scratch pattern over and over, copied by the engine a ring at a time.
  for (let at = 0; at < bulkSize; ) {
    const methods: number[] = [];
    for (; at < bulkSize && methods.length < 200; at += SCRATCH)
      methods.push(methodHeader(METHOD_COPY), bulk + at, scratch, SCRATCH);
    push(io, st, methods);
    if (!(await waitIdle(io, st, 5000))) throw new Error('the engine did not finish filling the bulk buffer');
  }
  io.setReg(REG_INTR_STATUS, INTR_ALL);
  return st as unknown as GuestProgramState;
}

async function keepRunning(guest: GuestView, device: ProbedDevice, state: GuestProgramState): Promise<void> {
  const io = bars(guest, device);
  const st = asState(state);
  const r = st.rounds++;
  const scratchPage = r % (SCRATCH / PAGE_SIZE);
  for (let i = 0; i < PAGE_WORDS; i++)
    io.setFb(st.scratch + scratchPage * PAGE_SIZE + i * 4, roundWord(r, i));
  st.scratchRound[scratchPage] = r;
  if (channelIdle(io, st)) {
    const bulkPage = (r * 7) % (st.bulkSize / PAGE_SIZE);
    push(io, st, [
      methodHeader(METHOD_MEMSET),
      st.bulk + bulkPage * PAGE_SIZE,
      PAGE_SIZE,
      roundWord(r, 0xffff),
    ]);
    st.bulkRound[bulkPage] = r;
  }
}

async function leaveInFlight(
  guest: GuestView,
  device: ProbedDevice,
  state: GuestProgramState,
): Promise<void> {
  const io = bars(guest, device);
  const st = asState(state);
  io.setFb(st.semaphore, 0);
  push(io, st, [
    methodHeader(METHOD_COPY),
    st.copyDst,
    st.bulk,
    st.copyLen,
    methodHeader(METHOD_SEM_RELEASE, METHOD_FLAG_AWAKEN),
    st.semaphore,
    (SEMAPHORE_BASE + st.rounds) >>> 0,
  ]);
  st.inFlight = true;
  st.busyAtStop = !channelIdle(io, st);
}

async function verify(
  guest: GuestView,
  device: ProbedDevice,
  state: GuestProgramState,
): Promise<GuestDriverResult> {
  const io = bars(guest, device);
  const st = asState(state);
  const facts: Record<string, unknown> = { rounds: st.rounds, inFlightAtStop: st.busyAtStop };
  const want = (SEMAPHORE_BASE + st.rounds) >>> 0;
  let released = false;
  for (let t = 0; t < 5000 && !released; t++) {
    released = io.fb(st.semaphore) === want;
    if (!released) await sleep(1);
  }
  if (!released) return { ok: false, summary: 'the in-flight work never released its semaphore', facts };
  if (!(await waitIdle(io, st, 1000))) return { ok: false, summary: 'the channel never went idle', facts };
  const status = io.reg(REG_INTR_STATUS);
  facts.semaphoreInterrupt = (status & INTR_SEMAPHORE) !== 0;
  if (!facts.semaphoreInterrupt)
    return { ok: false, summary: 'the semaphore release raised no interrupt status', facts };
  io.setReg(REG_INTR_STATUS, INTR_ALL);
  for (let w = 0; w < SCRATCH_WORDS; w++) {
    if (io.fb(st.scratch + w * 4) !== scratchWord(st, w))
      return { ok: false, summary: `the scratch buffer differs at byte ${w * 4}`, facts };
  }
  for (let w = 0; w < st.bulkSize / 4; w++) {
    if (io.fb(st.bulk + w * 4) !== bulkWord(st, w))
      return { ok: false, summary: `the bulk buffer differs at byte ${w * 4}`, facts };
  }
  for (let w = 0; w < st.copyLen / 4; w++) {
    if (io.fb(st.copyDst + w * 4) !== bulkWord(st, w))
      return { ok: false, summary: `the in-flight copy differs at byte ${w * 4}`, facts };
  }
  const bytes = SCRATCH + st.bulkSize + st.copyLen;
  facts.bytesVerified = bytes;
  return {
    ok: true,
    summary: `${st.rounds} running bursts, in-flight copy and semaphore completed, ${bytes} bytes verified`,
    facts,
  };
}

export const nvidiaVgpuMigrationProgram: GuestMigrationProgram = {
  start,
  keepRunning,
  leaveInFlight,
  verify,
};
