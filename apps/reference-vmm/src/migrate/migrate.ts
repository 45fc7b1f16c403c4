/**
 * Live migration of a running guest between two VMM processes, as QEMU's vfio migration does it.
 *
 * Source: the guest runs while each device goes RUNNING → PRE_COPY (when it offers PRE_COPY) and
 * the VMM iterates: let the guest run a burst, send guest RAM and device data, ask
 * VFIO_MIG_GET_PRECOPY_INFO what is left; when the first pass is done and little is dirty, the
 * guest's vCPUs stop, the devices go to STOP_COPY, the rest of each stream is read to its end,
 * the RAM pages dirtied since they were sent follow, and the guest's own state goes last.
 * Destination: the same configuration boots and probes, each device goes STOP → RESUMING, takes
 * the stream, then → STOP → RUNNING, and the guest program continues there. If the destination
 * refuses (a corrupted stream, say) it answers ERROR and the source goes back to RUNNING.
 */
import { performance } from 'node:perf_hooks';
import {
  type DeviceFile,
  decodeDeviceFeature,
  encodeDeviceFeature,
  type GuestDriver,
  type GuestDriverResult,
  type GuestMigrationProgram,
  type GuestProgramState,
  MigState,
  type ProbedDevice,
  toVfioError,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_MIGRATION_PRE_COPY,
  VfioError,
  vfio_device_feature_mig_data_size,
} from '@vfiokit/core';
import { formatSlot } from '../config/index.js';
import type { Machine } from '../machine/index.js';
import {
  type Channel,
  decodeRam,
  devicePayload,
  type Message,
  MSG_COMPLETE,
  MSG_DEVICE,
  MSG_DONE,
  MSG_ERROR,
  MSG_HELLO,
  MSG_RAM,
  MSG_READY,
  MSG_RESUMED,
  parseJson,
  ramPayload,
} from './wire.js';

export const MIGRATION_PROTOCOL_VERSION = 1;
/** Bytes read from a device's data fd (or of RAM) per message. */
export const CHUNK_BYTES = 1 << 20;
const PAGE = 4096;

/** One device that migrates, with the guest program that drives it. */
export interface MigratingDevice {
  readonly slot: string;
  readonly file: DeviceFile;
  readonly probed: ProbedDevice;
  readonly driver: GuestDriver & { readonly migration: GuestMigrationProgram };
}

export interface MigrationTuning {
  /** Bytes sent per pre-copy round before the guest runs again (default 1 MiB). */
  readonly roundBytes?: number;
  /** Stop iterating when the first pass is done and at most this much is dirty (default 64 KiB). */
  readonly stopBytes?: number;
  /** Give up iterating after this many rounds and stop-copy the rest (default 200). */
  readonly maxRounds?: number;
  /** For tests: flip the byte at this offset of the first device's stream on its way out. */
  readonly corruptAt?: number;
}

export interface MigrationProgress {
  readonly sent: number;
  /** Estimated bytes still to send (precopy info, MIG_DATA_SIZE and unsent RAM). */
  readonly pending: number;
  readonly rounds: number;
  /** Bytes dirtied per second while iterating (device dirty bytes and RAM). */
  readonly dirtyRate: number;
  readonly phase: 'pre-copy' | 'stop-copy' | 'resuming';
}

export interface MigrationOutcome {
  readonly ok: boolean;
  readonly totalMs: number;
  /** From the vCPUs stopping on the source to the devices RUNNING on the destination. */
  readonly downtimeMs: number;
  readonly rounds: number;
  readonly bytes: { readonly device: number; readonly ram: number; readonly stopCopy: number };
  readonly preCopy: boolean;
  /** The destination's verdict on each guest program, or the problem it reported. */
  readonly results: readonly { slot: string; driver: string; result: GuestDriverResult }[];
  readonly error?: string;
}

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

  /** Send up to `budget` bytes of the first pass; returns the bytes sent. */
  async sendFirstPass(ch: Channel, budget: number): Promise<number> {
    let n = 0;
    while (n < budget && this.next < this.ram.length) {
      const len = Math.min(CHUNK_BYTES, this.ram.length - this.next, budget - n);
      const bytes = this.ram.subarray(this.next, this.next + len);
      this.sent.set(bytes, this.next);
      await ch.send(MSG_RAM, ramPayload(this.next, bytes));
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
      await ch.send(MSG_RAM, ramPayload(at, this.ram.subarray(at, run)));
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
  corrupt: { at: number | undefined; streamed: number },
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
    let out = devicePayload(index, chunk);
    if (
      index === 0 &&
      corrupt.at !== undefined &&
      corrupt.at >= corrupt.streamed &&
      corrupt.at < corrupt.streamed + chunk.length
    ) {
      out = out.slice();
      out[1 + corrupt.at - corrupt.streamed] ^= 0xff;
    }
    if (index === 0) corrupt.streamed += chunk.length;
    await ch.send(MSG_DEVICE, out);
    n += chunk.length;
  }
  counters.device += n;
  return n;
}

function yieldToGuest(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** What the source says about itself first, so the destination can check it built the same machine. */
export interface Hello {
  readonly version: number;
  readonly config: unknown;
  readonly devices: readonly {
    slot: string;
    name: string;
    bars: { index: number; address: number }[];
    vectors: readonly number[];
  }[];
}

export interface Complete {
  readonly guest: readonly { slot: string; driver: string; state: GuestProgramState }[];
}

function describeProbed(p: ProbedDevice): {
  bars: { index: number; address: number }[];
  vectors: readonly number[];
} {
  return {
    bars: p.bars.map((b) => ({ index: b.index, address: b.address })),
    vectors: [...p.interrupts.vectors],
  };
}

async function expect(ch: Channel, type: number, what: string): Promise<Message> {
  const m = await ch.next();
  if (m.type === MSG_ERROR) {
    const e = parseJson<{ message: string; states?: string[] }>(m, 'error');
    const states = e.states?.length ? ` (its devices are in ${e.states.join(', ')})` : '';
    throw new VfioError('EIO', `the destination refused the migration${states}: ${e.message}`);
  }
  if (m.type !== type)
    throw new VfioError('EPROTO', `the destination sent message ${m.type} where ${what} was due.`);
  return m;
}

/**
 * The source half: migrate `devices` (already running their guest programs' `start`) and guest
 * RAM over `ch`. On failure every device is back in RUNNING and the outcome says why.
 */
export async function migrateOut(opts: {
  readonly ch: Channel;
  readonly machine: Machine;
  readonly config: unknown;
  readonly devices: readonly MigratingDevice[];
  readonly states: readonly GuestProgramState[];
  readonly tuning?: MigrationTuning;
  readonly onProgress?: (p: MigrationProgress) => void;
}): Promise<MigrationOutcome> {
  const { ch, machine, devices, states } = opts;
  const roundBytes = opts.tuning?.roundBytes ?? CHUNK_BYTES;
  const stopBytes = opts.tuning?.stopBytes ?? 64 * 1024;
  const maxRounds = opts.tuning?.maxRounds ?? 200;
  const corrupt = { at: opts.tuning?.corruptAt, streamed: 0 };
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
  try {
    const hello: Hello = {
      version: MIGRATION_PROTOCOL_VERSION,
      config: opts.config,
      devices: devices.map((d) => ({ slot: d.slot, name: d.file.name, ...describeProbed(d.probed) })),
    };
    await ch.sendJson(MSG_HELLO, hello);
    await expect(ch, MSG_READY, 'READY');
    started = true;
    if (preCopy) {
      for (const d of devices) d.file.setMigrationState(MigState.PRE_COPY);
      let pending = devices.reduce((n, d) => n + migDataSize(d.file), 0) + ram.unsent;
      progress('pre-copy', pending, 0);
      for (;;) {
        const roundStart = performance.now();
        rounds++;
        for (let i = 0; i < devices.length; i++)
          await devices[i].driver.migration.keepRunning(machine.guest, devices[i].probed, states[i]);
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
        if (ch.poll() !== undefined) throw new VfioError('EPROTO', 'the destination spoke during pre-copy.');
        if ((initialLeft === 0 && ram.firstPassDone && pending <= stopBytes) || rounds >= maxRounds) break;
      }
    }
    // The vCPUs stop: the guest's last act leaves work in flight.
    for (let i = 0; i < devices.length; i++)
      await devices[i].driver.migration.leaveInFlight(machine.guest, devices[i].probed, states[i]);
    tStop = performance.now();
    for (const d of devices) d.file.setMigrationState(MigState.STOP_COPY);
    const before = counters.device + ram.bytes;
    progress('stop-copy', devices.reduce((n, d) => n + migDataSize(d.file), 0) + ram.unsent, 0);
    for (let i = 0; i < devices.length; i++)
      await drain(ch, devices[i], i, Number.POSITIVE_INFINITY, counters, corrupt);
    await ram.sendRest(ch);
    stopCopyBytes = counters.device + ram.bytes - before;
    const complete: Complete = {
      guest: devices.map((d, i) => ({ slot: d.slot, driver: d.driver.name, state: states[i] })),
    };
    await ch.sendJson(MSG_COMPLETE, complete);
    progress('resuming', 0, 0);
    await expect(ch, MSG_RESUMED, 'RESUMED');
    const tResumed = performance.now();
    const done = parseJson<{ results: MigrationOutcome['results'] }>(
      await expect(ch, MSG_DONE, 'DONE'),
      'done',
    );
    // The guest lives on at the destination; the source's devices stay stopped.
    for (const d of devices) d.file.setMigrationState(MigState.STOP);
    return {
      ok: done.results.every((r) => r.result.ok),
      totalMs: tResumed - t0,
      downtimeMs: tResumed - tStop,
      rounds,
      bytes: { device: counters.device, ram: ram.bytes, stopCopy: stopCopyBytes },
      preCopy,
      results: done.results,
    };
  } catch (err) {
    const e = toVfioError(err);
    // Back to RUNNING with nothing lost: saving never changed the source's state.
    const back: string[] = [];
    for (const d of devices) {
      try {
        d.file.setMigrationState(MigState.RUNNING);
      } catch (err2) {
        back.push(`${d.slot} stays in ${migStateName(d.file.migrationState)}: ${toVfioError(err2).problem}`);
      }
    }
    return {
      ok: false,
      totalMs: performance.now() - t0,
      downtimeMs: started ? performance.now() - tStop : 0,
      rounds,
      bytes: { device: counters.device, ram: ram.bytes, stopCopy: stopCopyBytes },
      preCopy,
      results: [],
      error: [e.message, ...back].join('; '),
    };
  }
}

/** The destination half's view of its booted machine. */
export interface IncomingMachine {
  readonly machine: Machine;
  readonly drivers: readonly GuestDriver[];
}

/**
 * The destination half: answer HELLO by building the machine (`build`, from the source's
 * configuration), check it matches, take the streams, resume and run the guest programs' verify.
 * Every refusal goes back as ERROR with the sentence; the result says what happened here.
 */
export async function migrateIn(
  ch: Channel,
  build: (config: unknown) => Promise<IncomingMachine>,
): Promise<{
  ok: boolean;
  error?: string;
  results: { slot: string; driver: string; result: GuestDriverResult }[];
}> {
  const files: DeviceFile[] = [];
  const refuse = async (problem: string) => {
    await ch
      .sendJson(MSG_ERROR, { message: problem, states: files.map((f) => migStateName(f.migrationState)) })
      .catch(() => {});
    return { ok: false, error: problem, results: [] };
  };
  let target: IncomingMachine;
  let hello: Hello;
  try {
    const first = await ch.next();
    if (first.type !== MSG_HELLO) return refuse(`message ${first.type} came where HELLO was due.`);
    hello = parseJson<Hello>(first, 'hello');
    if (hello.version !== MIGRATION_PROTOCOL_VERSION)
      return refuse(
        `the source speaks migration protocol ${hello.version}; this VMM speaks ${MIGRATION_PROTOCOL_VERSION}.`,
      );
    target = await build(hello.config);
    const probed = target.machine.guest.devices();
    for (const d of hello.devices) {
      const here = probed.find((p) => formatSlot(p.address) === d.slot);
      const attached = target.machine.devices().find((a) => formatSlot(a.slot) === d.slot);
      if (!here || !attached) return refuse(`there is no device at ${d.slot} on the destination.`);
      if (JSON.stringify(describeProbed(here)) !== JSON.stringify({ bars: d.bars, vectors: d.vectors }))
        return refuse(
          `the device at ${d.slot} was probed with other BAR addresses or vectors than on the source.`,
        );
      files.push(attached.file);
    }
    for (const f of files) f.setMigrationState(MigState.RESUMING);
  } catch (err) {
    return refuse(toVfioError(err).message);
  }
  await ch.sendJson(MSG_READY, {});
  let writeError: string | undefined;
  let complete: Complete | undefined;
  try {
    while (complete === undefined) {
      const m = await ch.next();
      if (m.type === MSG_RAM) {
        const { gpa, bytes } = decodeRam(m.payload);
        target.machine.ram.write(gpa, bytes);
      } else if (m.type === MSG_DEVICE) {
        const index = m.payload[0];
        const f = files[index];
        if (!f) return refuse(`device data for device ${index}, which the source did not announce.`);
        if (writeError === undefined) {
          try {
            f.migrationWrite(m.payload.subarray(1));
          } catch (err) {
            writeError = toVfioError(err).message;
          }
        }
      } else if (m.type === MSG_COMPLETE) {
        complete = parseJson<Complete>(m, 'complete');
      } else return refuse(`message ${m.type} came during the transfer.`);
    }
    const problems: string[] = writeError ? [writeError] : [];
    for (const f of files) {
      try {
        f.setMigrationState(MigState.STOP);
      } catch (err) {
        // The device is in ERROR now; a refused write already said why.
        if (!writeError) problems.push(toVfioError(err).message);
      }
    }
    if (problems.length) return refuse(problems.join('; '));
    for (const f of files) f.setMigrationState(MigState.RUNNING);
  } catch (err) {
    return refuse(toVfioError(err).message);
  }
  await ch.sendJson(MSG_RESUMED, {});
  const results: { slot: string; driver: string; result: GuestDriverResult }[] = [];
  for (const g of complete.guest) {
    const driver = target.drivers.find((d) => d.name === g.driver && d.migration);
    const probed = target.machine.guest.devices().find((p) => formatSlot(p.address) === g.slot);
    let result: GuestDriverResult;
    if (!driver?.migration || !probed)
      result = { ok: false, summary: `no guest driver ${g.driver} for ${g.slot} here` };
    else {
      try {
        result = await driver.migration.verify(target.machine.guest, probed, g.state);
      } catch (err) {
        result = { ok: false, summary: `verify threw: ${toVfioError(err).problem}` };
      }
    }
    results.push({ slot: g.slot, driver: g.driver, result });
  }
  await ch.sendJson(MSG_DONE, { results });
  return { ok: results.every((r) => r.result.ok), results };
}
