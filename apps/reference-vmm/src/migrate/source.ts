/**
 * Live migration of a running guest between two VMM processes, as QEMU's vfio migration does it.
 *
 * Source: the guest runs while each device goes RUNNING → PRE_COPY (when it offers PRE_COPY) and
 * the VMM iterates: let the guest run a burst, send guest RAM and device data, ask
 * VFIO_MIG_GET_PRECOPY_INFO what is left; when the first pass is done and little is dirty, the
 * guest's vCPUs stop, the devices go to STOP_COPY, the rest of each stream is read to its end,
 * the RAM pages dirtied since they were sent follow, and the guest's own state goes last.
 * The destination (destination.ts) boots its own configuration, compares it with the source's
 * description and takes the streams; if it refuses (a corrupted stream, another machine) it
 * answers ERROR and the source goes back to RUNNING.
 */
import { performance } from 'node:perf_hooks';
import { type GuestProgramState, MigState, VfioError } from '@vfiokit/core';
import {
  decodeDeviceFeature,
  encodeDeviceFeature,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_MIGRATION_PRE_COPY,
  vfio_device_feature_mig_data_size,
} from '@vfiokit/core/abi';
import { type DeviceFile, toVfioError } from '@vfiokit/core/host';
import { pluginFault } from '../loader/plugin-fault.js';
import type { Machine } from '../machine/index.js';
import {
  CHUNK_BYTES,
  DEFAULT_IDLE_MS,
  MIGRATION_PROTOCOL_VERSION,
  type MigratingDevice,
  type MigrationOutcome,
  type MigrationProgress,
  type MigrationTuning,
  PAGE,
} from './common.js';
import { describeMachine } from './describe.js';
import { type Complete, type Hello, readDone, readPeerError } from './messages.js';
import {
  type Channel,
  type Message,
  MSG_COMPLETE,
  MSG_DEVICE,
  MSG_DONE,
  MSG_ERROR,
  MSG_HELLO,
  MSG_RAM,
  MSG_READY,
  MSG_RESUMED,
  messageName,
  ramPrefix,
} from './wire.js';

/** VFIO_DEVICE_FEATURE_MIG_DATA_SIZE through the device's ioctl: its estimate of the STOP_COPY stream. */
export function migDataSize(file: DeviceFile): number {
  const data = new Uint8Array(vfio_device_feature_mig_data_size.size);
  const arg = encodeDeviceFeature({
    argsz: 8 + data.length,
    flags: VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
    data,
  });
  const r = file.ioctl(VFIO_DEVICE_FEATURE, arg);
  if (r.ret !== 0) return 0;
  const out = decodeDeviceFeature(r.out).data;
  const dv = new DataView(out.buffer, out.byteOffset, 8);
  return dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
}

/** Guest RAM sent while the guest runs, then the pages that changed since (found against a copy of what was sent). */
class RamCopy {
  private next = 0;
  private readonly sent: Uint8Array;
  bytes = 0;

  constructor(private readonly ram: Uint8Array) {
    this.sent = new Uint8Array(ram.length);
  }

  get firstPassDone(): boolean {
    return this.next >= this.ram.length;
  }

  get unsent(): number {
    return this.ram.length - this.next;
  }

  /**
   * Send about `budget` bytes of the first pass, in whole pages (the destination counts pages);
   * returns the bytes sent. What goes out is the copy kept to compare against, so the message
   * and its checksum hold the same bytes while the guest keeps writing.
   */
  async sendFirstPass(ch: Channel, budget: number): Promise<number> {
    let n = 0;
    while (n < budget && this.next < this.ram.length) {
      const want = Math.ceil(Math.min(CHUNK_BYTES, budget - n) / PAGE) * PAGE;
      const len = Math.min(want, this.ram.length - this.next);
      const at = this.next;
      this.sent.set(this.ram.subarray(at, at + len), at);
      await ch.send(MSG_RAM, ramPrefix(at), this.sent.subarray(at, at + len));
      this.next += len;
      n += len;
    }
    this.bytes += n;
    return n;
  }

  /** After the guest stopped: the rest of the first pass, then every page that differs from what was sent. */
  async sendRest(ch: Channel): Promise<number> {
    await this.sendFirstPass(ch, Number.POSITIVE_INFINITY);
    let n = 0;
    const ram = Buffer.from(this.ram.buffer, this.ram.byteOffset, this.ram.length);
    const sent = Buffer.from(this.sent.buffer, this.sent.byteOffset, this.sent.length);
    for (let at = 0; at < this.ram.length; at += PAGE) {
      const end = Math.min(at + PAGE, this.ram.length);
      if (ram.compare(sent, at, end, at, end) === 0) continue;
      let run = end;
      while (
        run < this.ram.length &&
        ram.compare(sent, run, run + PAGE, run, run + PAGE) !== 0 &&
        run - at < CHUNK_BYTES
      )
        run += PAGE;
      // The guest is stopped: its RAM is sent as it is, without a copy.
      await ch.send(MSG_RAM, ramPrefix(at), this.ram.subarray(at, run));
      n += run - at;
      at = run - PAGE;
    }
    this.bytes += n;
    return n;
  }
}

function migStateName(s: MigState): string {
  return MigState[s] ?? String(s);
}

/** Read what a device has now: in PRE_COPY until ENOMSG (or the budget), in STOP_COPY to the end. */
async function drain(
  ch: Channel,
  dev: MigratingDevice,
  index: number,
  budget: number,
  counters: { device: number },
  corrupt: { at: number | undefined; streamed: number; hit: boolean },
): Promise<number> {
  let n = 0;
  while (n < budget) {
    let chunk: Uint8Array;
    try {
      chunk = dev.file.migrationRead(Math.min(CHUNK_BYTES, budget - n));
    } catch (err) {
      if (err instanceof VfioError && err.code === 'ENOMSG') break;
      throw err;
    }
    if (chunk.length === 0) break;
    let out = chunk;
    if (
      index === 0 &&
      corrupt.at !== undefined &&
      corrupt.at >= corrupt.streamed &&
      corrupt.at < corrupt.streamed + chunk.length
    ) {
      // Damaged before it is framed, so the channel's checksum covers the flipped byte: the device must refuse it.
      out = chunk.slice();
      out[corrupt.at - corrupt.streamed] ^= 0xff;
      corrupt.hit = true;
    }
    if (index === 0) corrupt.streamed += chunk.length;
    await ch.send(MSG_DEVICE, Uint8Array.of(index), out);
    n += chunk.length;
  }
  counters.device += n;
  return n;
}

/** One step of a device's guest program: what it throws is the plugin's failure, said so. */
async function guestStep(d: MigratingDevice, step: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    throw pluginFault(err, `the guest program ${d.driver.name} of ${d.slot} failed in ${step}`, d.plugin);
  }
}

function yieldToGuest(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The destination's ERROR answers: it took nothing, so the source can run on. */
const refusals = new WeakSet<Error>();

function refused(m: Message): VfioError {
  const e = readPeerError(m);
  const states = e.states?.length ? ` (its devices are in ${e.states.join(', ')})` : '';
  const err = new VfioError('EIO', `the destination refused the migration${states}: ${e.message}`);
  refusals.add(err);
  return err;
}

/** The ERROR the destination sent, if one arrived: it says why better than a failed write does. */
function queuedRefusal(ch: Channel): VfioError | undefined {
  for (let m = ch.poll(); m !== undefined; m = ch.poll()) {
    if (m.type === MSG_ERROR) {
      try {
        return refused(m);
      } catch (err) {
        return toVfioError(err);
      }
    }
  }
  return undefined;
}

async function expect(ch: Channel, type: number, what: string, timeoutMs: number): Promise<Message> {
  const m = await ch.next(timeoutMs);
  if (m.type === MSG_ERROR) throw refused(m);
  if (m.type !== type)
    throw new VfioError('EPROTO', `the destination sent ${messageName(m.type)} where ${what} was due.`);
  return m;
}

/**
 * The source half: migrate `devices` (already running their guest programs' `start`) and guest
 * RAM over `ch`. On failure every device is back in RUNNING and the outcome says why.
 */
export async function migrateOut(opts: {
  readonly ch: Channel;
  readonly machine: Machine;
  readonly devices: readonly MigratingDevice[];
  readonly states: readonly GuestProgramState[];
  readonly tuning?: MigrationTuning;
  readonly onProgress?: (p: MigrationProgress) => void;
}): Promise<MigrationOutcome> {
  const { ch, machine, devices, states } = opts;
  const roundBytes = opts.tuning?.roundBytes ?? CHUNK_BYTES;
  const stopBytes = opts.tuning?.stopBytes ?? 64 * 1024;
  const maxRounds = opts.tuning?.maxRounds ?? 200;
  const idleMs = opts.tuning?.idleMs ?? DEFAULT_IDLE_MS;
  const corrupt = { at: opts.tuning?.corruptAt, streamed: 0, hit: false };
  const t0 = performance.now();
  const counters = { device: 0 };
  let stopCopyBytes = 0;
  let rounds = 0;
  let tStop = t0;
  const ram = new RamCopy(machine.ram.bytes);
  const preCopy = devices.every((d) => (d.file.migrationCaps() & VFIO_MIGRATION_PRE_COPY) !== 0);
  const progress = (phase: MigrationProgress['phase'], pending: number, dirtyRate: number) =>
    opts.onProgress?.({ sent: counters.device + ram.bytes, pending, rounds, dirtyRate, phase });
  let started = false;
  let stopped = false;
  let completeSent = false;
  const corrupted = () => (corrupt.at === undefined ? {} : { corrupted: corrupt.hit });
  try {
    const hello: Hello = {
      version: MIGRATION_PROTOCOL_VERSION,
      machine: describeMachine(machine.ram.size, devices),
    };
    await ch.sendJson(MSG_HELLO, hello);
    await expect(ch, MSG_READY, 'READY', 2 * idleMs);
    started = true;
    if (preCopy) {
      for (const d of devices) d.file.setMigrationState(MigState.PRE_COPY);
      let pending = devices.reduce((n, d) => n + migDataSize(d.file), 0) + ram.unsent;
      progress('pre-copy', pending, 0);
      for (;;) {
        const roundStart = performance.now();
        rounds++;
        for (let i = 0; i < devices.length; i++)
          await guestStep(devices[i], 'keepRunning', () =>
            devices[i].driver.migration.keepRunning(machine.guest, devices[i].probed, states[i]),
          );
        await yieldToGuest();
        let dirtied = 0;
        for (const d of devices) {
          const info = d.file.precopyInfo();
          if (info.initialBytes === 0) dirtied += info.dirtyBytes;
        }
        let budget = roundBytes;
        for (let i = 0; i < devices.length && budget > 0; i++)
          budget -= await drain(ch, devices[i], i, budget, counters, corrupt);
        if (budget > 0) await ram.sendFirstPass(ch, budget);
        pending = ram.unsent;
        let initialLeft = 0;
        for (const d of devices) {
          const info = d.file.precopyInfo();
          pending += info.initialBytes + info.dirtyBytes;
          initialLeft += info.initialBytes;
        }
        const rate = dirtied / Math.max(1e-3, (performance.now() - roundStart) / 1000);
        progress('pre-copy', pending, rate);
        const early = ch.poll();
        if (early)
          throw early.type === MSG_ERROR
            ? refused(early)
            : new VfioError('EPROTO', `the destination sent ${messageName(early.type)} during pre-copy.`);
        if ((initialLeft === 0 && ram.firstPassDone && pending <= stopBytes) || rounds >= maxRounds) break;
      }
    }
    // The vCPUs stop: the guest's last act leaves work in flight.
    for (let i = 0; i < devices.length; i++)
      await guestStep(devices[i], 'leaveInFlight', () =>
        devices[i].driver.migration.leaveInFlight(machine.guest, devices[i].probed, states[i]),
      );
    tStop = performance.now();
    stopped = true;
    for (const d of devices) d.file.setMigrationState(MigState.STOP_COPY);
    const before = counters.device + ram.bytes;
    progress('stop-copy', devices.reduce((n, d) => n + migDataSize(d.file), 0) + ram.unsent, 0);
    for (let i = 0; i < devices.length; i++)
      await drain(ch, devices[i], i, Number.POSITIVE_INFINITY, counters, corrupt);
    await ram.sendRest(ch);
    stopCopyBytes = counters.device + ram.bytes - before;
    const complete: Complete = {
      messages: ch.sent,
      guest: devices.map((d, i) => ({ slot: d.slot, driver: d.driver.name, state: states[i] })),
    };
    await ch.sendJson(MSG_COMPLETE, complete);
    completeSent = true;
    progress('resuming', 0, 0);
    await expect(ch, MSG_RESUMED, 'RESUMED', 2 * idleMs);
    const tResumed = performance.now();
    // The guest lives on at the destination from here: the source's devices stay stopped, whatever follows.
    for (const d of devices) d.file.setMigrationState(MigState.STOP);
    const finished = {
      totalMs: tResumed - t0,
      downtimeMs: tResumed - tStop,
      rounds,
      bytes: { device: counters.device, ram: ram.bytes, stopCopy: stopCopyBytes },
      preCopy,
      stopped,
      resumed: true,
      ...corrupted(),
    };
    try {
      const done = readDone(await expect(ch, MSG_DONE, 'DONE', 2 * idleMs));
      return { ...finished, ok: done.results.every((r) => r.result.ok), results: done.results };
    } catch (err) {
      return {
        ...finished,
        ok: false,
        results: [],
        error: `the guest resumed on the destination, which then gave no verdict: ${toVfioError(err).message}`,
      };
    }
  } catch (err) {
    const queued = queuedRefusal(ch);
    const e = queued ?? toVfioError(err);
    const wasRefused = queued !== undefined || refusals.has(err as Error);
    const failed = {
      ok: false,
      totalMs: performance.now() - t0,
      downtimeMs: started ? performance.now() - tStop : 0,
      rounds,
      bytes: { device: counters.device, ram: ram.bytes, stopCopy: stopCopyBytes },
      preCopy,
      stopped,
      results: [],
      ...corrupted(),
    };
    if (completeSent && !wasRefused) {
      // The whole state went out and no refusal came back: the destination may be running the
      // guest, so the source must not run it too. It stays stopped, as QEMU's source stays paused.
      const stay: string[] = [];
      for (const d of devices) {
        try {
          d.file.setMigrationState(MigState.STOP);
        } catch (err2) {
          stay.push(`${d.slot} is in ${migStateName(d.file.migrationState)}: ${toVfioError(err2).problem}`);
        }
      }
      return {
        ...failed,
        resumed: true,
        error: [
          `the destination gave no verdict after the whole state was sent, so it may be running the guest; the source's devices stay stopped: ${e.message}`,
          ...stay,
        ].join('; '),
      };
    }
    // Back to RUNNING with nothing lost: saving never changed the source's state.
    const back: string[] = [];
    for (const d of devices) {
      try {
        d.file.setMigrationState(MigState.RUNNING);
      } catch (err2) {
        back.push(`${d.slot} stays in ${migStateName(d.file.migrationState)}: ${toVfioError(err2).problem}`);
      }
    }
    return { ...failed, resumed: false, error: [e.message, ...back].join('; ') };
  }
}
