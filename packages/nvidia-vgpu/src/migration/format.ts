/**
 * The stream of VFIO migration v2 for a vGPU (STOP_COPY | P2P | PRE_COPY).
 *
 * The stream is a header and a run of records, each record header carrying a sequence number and
 * its own CRC32, so a cut, reordered, duplicated or altered stream is refused:
 *
 *   stream header (32): u32 magic "NVMS", u32 version, u32 vGPU type id, u32 flags,
 *                       f64 framebuffer bytes, u32 page size, u32 CRC32 of bytes 0..27
 *   record header (24): u32 tag, u32 sequence, u32 a, u32 b, u32 payload CRC32, u32 CRC32 of bytes 0..19
 *     FB    (1): a = first page, b = pages (1..256), payload = the pages
 *     STATE (2): a = payload bytes, payload = config space, registers, mailbox, allocations, channels
 *     END   (3): a = records before it
 *     BAR3  (4): a = first page of BAR3, b = pages (1..256), payload = the pages; only in the final
 *                pass, only pages that are not all zeros, before STATE
 *
 * Framebuffer payloads carry a CRC32 when the stream's flag PAYLOAD_CRC is set (the default); the
 * device state always does. PRE_COPY sends every page once while the vGPU runs, then the pages
 * dirtied since (engine writes and trapped BAR1 writes are tracked per page; writes through a
 * CPU mapping of BAR1 are found by comparing with what was sent); STOP_COPY sends what is still
 * dirty, then BAR3's non-zero pages (the guest writes BAR3 through its mapping only, so it cannot
 * be tracked while the vGPU runs; a BAR3 never mapped nor written is all zeros and costs nothing),
 * the device state and END. The source is never changed by saving, so it can always go
 * back to RUNNING. A resuming device writes pages into its own framebuffer only, and loads the
 * device state at RESUMING → STOP after END arrived; anything wrong is a VfioError (the core then
 * puts the device in ERROR).
 *
 * The saving side is save.ts, the resuming side resume.ts, the migration ops (the arcs between
 * states) ../migration.ts; this file is what both sides share: the constants, the record header
 * and its CRC, BAR3's page rules and the device-state record.
 */
import { type ConfigSpace, type MigState, migrationChecksum, type RegisterBank } from '@vfiokit/core';
import { BAR3_SIZE, MAILBOX_SIZE } from '../abi.js';
import type { VgpuProfile } from '../boards.js';
import { type Channel, ENGINE_STATE_SIZE, FbAllocator, VgpuEngine } from '../engine.js';

/** "NVMS" little-endian. */
export const MIG_MAGIC = 0x534d564e;
/** 2: BAR3 records. */
export const MIG_VERSION = 2;
export const MIG_PAGE_SIZE = 4096;
export const STREAM_HEADER_SIZE = 32;
export const RECORD_HEADER_SIZE = 24;
export const TAG_FB = 1;
export const TAG_STATE = 2;
export const TAG_END = 3;
export const TAG_BAR3 = 4;
export const MIG_FLAG_PAYLOAD_CRC = 1;
/** Pages per FB record (1 MiB). */
export const MAX_RUN_PAGES = 256;
const STATE_VERSION = 1;
export const BAR3_PAGES = BAR3_SIZE / MIG_PAGE_SIZE;
const ZERO_PAGE = Buffer.alloc(MIG_PAGE_SIZE);

/** Page `page` of BAR3 holds only zeros. */
export function zeroPage(bar3: Uint8Array, page: number): boolean {
  const o = page * MIG_PAGE_SIZE;
  return ZERO_PAGE.equals(bar3.subarray(o, o + MIG_PAGE_SIZE));
}

/** BAR3 pages from `from` on that the final pass will send, and their record headers' bytes. */
export function bar3Bytes(dev: MigrationHost, from: number): number {
  if (!dev.bar3Touched) return 0;
  let pages = 0;
  let runs = 0;
  let inRun = 0;
  for (let p = from; p < BAR3_PAGES; p++) {
    if (zeroPage(dev.bar3, p)) {
      inRun = 0;
      continue;
    }
    if (inRun === 0 || inRun === MAX_RUN_PAGES) {
      runs++;
      inRun = 0;
    }
    inRun++;
    pages++;
  }
  return pages * MIG_PAGE_SIZE + runs * RECORD_HEADER_SIZE;
}
export const MAX_STATE_BYTES = 1 << 20;

/**
 * What migration reads and changes of a vGPU (VgpuDevice implements it): the state it saves
 * and loads, the framebuffer it streams, and the dirty-page log the device keeps while a
 * saving stream tracks changes.
 */
export interface MigrationHost {
  readonly name: string;
  readonly profile: VgpuProfile;
  readonly gpu: { kick(): void; readonly payloadChecksum: boolean };
  readonly config: ConfigSpace;
  readonly bank: RegisterBank;
  readonly allocator: FbAllocator;
  readonly engine: VgpuEngine;
  readonly mailbox: Uint8Array;
  readonly fb: Uint8Array;
  readonly fbSize: number;
  /** BAR3, BAR3_SIZE bytes. */
  readonly bar3: Uint8Array;
  /** BAR3 may hold something other than zeros (it was mapped, written or loaded). */
  bar3Touched: boolean;
  handshaken: boolean;
  /** The migration state as the core last set it. */
  migState: MigState;
  /** BAR1 was handed out as a CPU mapping: writes through it bypass the device. */
  readonly cpuMapped: boolean;
  /** Page-granular dirty bitmap while a saving stream tracks changes; undefined otherwise. */
  dirtyPages: Uint32Array | undefined;
  dirtyCount: number;
  /** Called when a page becomes dirty (the save stream's accounting). */
  onPageDirtied: ((page: number) => void) | undefined;
  markDirty(offset: number, length: number): void;
  running(): boolean;
  hasPendingWork(): boolean;
}

export function recordHeader(tag: number, seq: number, a: number, b: number, payloadCrc: number): Uint8Array {
  const h = new Uint8Array(RECORD_HEADER_SIZE);
  const v = new DataView(h.buffer);
  v.setUint32(0, tag, true);
  v.setUint32(4, seq, true);
  v.setUint32(8, a, true);
  v.setUint32(12, b, true);
  v.setUint32(16, payloadCrc >>> 0, true);
  v.setUint32(20, migrationChecksum(h.subarray(0, 20)), true);
  return h;
}

// ---- device state --------------------------------------------------------------------------------

export function saveDeviceState(dev: MigrationHost): Uint8Array {
  const config = dev.config.snapshot();
  const bank = dev.bank.snapshot();
  const allocs = dev.allocator.snapshot();
  const engine = dev.engine.snapshot();
  const size = 8 + 4 + config.length + 4 + bank.length + MAILBOX_SIZE + allocs.length + engine.length;
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let at = 0;
  v.setUint32(at, STATE_VERSION, true);
  v.setUint32(at + 4, dev.handshaken ? 1 : 0, true);
  at += 8;
  v.setUint32(at, config.length, true);
  out.set(config, at + 4);
  at += 4 + config.length;
  v.setUint32(at, bank.length, true);
  out.set(bank, at + 4);
  at += 4 + bank.length;
  out.set(dev.mailbox, at);
  at += MAILBOX_SIZE;
  out.set(allocs, at);
  at += allocs.length;
  out.set(engine, at);
  return out;
}

export interface ParsedState {
  handshaken: boolean;
  config: Uint8Array;
  bank: Uint8Array;
  mailbox: Uint8Array;
  allocs: { offset: number; size: number }[];
  engine: { frames: number; rr: number; channels: Channel[] };
}

/** Parse and check a device state for `dev`; a string is the problem. */
export function parseDeviceState(dev: MigrationHost, bytes: Uint8Array): ParsedState | string {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n: number) => at + n <= bytes.length;
  if (!need(12)) return 'the device state is cut short';
  if (v.getUint32(0, true) !== STATE_VERSION) return `the device state has version ${v.getUint32(0, true)}`;
  const hs = v.getUint32(4, true);
  if (hs > 1) return 'the handshake flag is not 0 or 1';
  at = 8;
  const configLen = v.getUint32(at, true);
  at += 4;
  if (configLen !== dev.config.size || !need(configLen))
    return `the config space is ${configLen} bytes, not ${dev.config.size}`;
  const config = bytes.subarray(at, at + configLen);
  at += configLen;
  if (!need(4)) return 'the device state is cut short';
  const bankLen = v.getUint32(at, true);
  at += 4;
  if (!need(bankLen)) return 'the register snapshot is cut short';
  const bank = bytes.subarray(at, at + bankLen);
  at += bankLen;
  if (!need(MAILBOX_SIZE)) return 'the mailbox page is cut short';
  const mailbox = bytes.subarray(at, at + MAILBOX_SIZE);
  at += MAILBOX_SIZE;
  const allocs = FbAllocator.parse(bytes.subarray(at), dev.fbSize);
  if (typeof allocs === 'string') return allocs;
  at += allocs.length;
  if (bytes.length - at !== ENGINE_STATE_SIZE) return 'the channel state has the wrong length';
  const engine = VgpuEngine.parse(bytes.subarray(at), dev.fbSize);
  if (typeof engine === 'string') return engine;
  return { handshaken: hs === 1, config, bank, mailbox, allocs: allocs.allocs, engine };
}

/** Load a parsed state; config and registers are checked by their own restore before anything changes. */
export function loadDeviceState(dev: MigrationHost, s: ParsedState): void {
  const config = dev.config.snapshot();
  dev.config.restore(s.config);
  try {
    dev.bank.restore(s.bank);
  } catch (err) {
    dev.config.restore(config);
    throw err;
  }
  dev.mailbox.set(s.mailbox);
  dev.allocator.load(s.allocs);
  dev.engine.load(s.engine);
  dev.handshaken = s.handshaken;
}
