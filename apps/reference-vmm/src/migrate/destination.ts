/**
 * The destination half of a live migration. It was booted from its own configuration before it
 * listened (QEMU's `-incoming`): the stream carries device and RAM state and a description of the
 * source's machine, never a configuration or anything that names code, so a peer can send the
 * guest's state and nothing else. The description is compared with this machine's own before any
 * state is taken; then each device goes STOP → RESUMING, takes its stream, → STOP → RUNNING, and
 * the guest program verifies its memory and in-flight work here.
 *
 * Every refusal goes back to the source as ERROR with the sentence, and the source goes back to
 * RUNNING; the result says what happened here.
 */
import { type GuestDriverResult, MigState, VfioError } from '@vfiokit/core';
import { type DeviceFile, toVfioError } from '@vfiokit/core/host';
import { reasonText, watchRejections } from '../machine/plugin-rejections.js';
import {
  DEFAULT_IDLE_MS,
  type GuestVerdict,
  type IncomingOutcome,
  MIGRATION_PROTOCOL_VERSION,
  type MigratingDevice,
  type MigratingMachine,
  PAGE,
} from './common.js';
import { compareMachines, describeMachine } from './describe.js';
import { type Complete, readComplete, readHello } from './messages.js';
import {
  type Channel,
  decodeRam,
  MSG_COMPLETE,
  MSG_DEVICE,
  MSG_DONE,
  MSG_ERROR,
  MSG_HELLO,
  MSG_RAM,
  MSG_READY,
  MSG_RESUMED,
  messageName,
} from './wire.js';

function stateName(f: DeviceFile): string {
  return MigState[f.migrationState] ?? String(f.migrationState);
}

/** The guest programs of COMPLETE, one per migrating device, each with this destination's driver for it. */
function matchGuest(
  complete: Complete,
  order: readonly MigratingDevice[],
): { device: MigratingDevice; state: Complete['guest'][number]['state'] }[] | string {
  const out: { device: MigratingDevice; state: Complete['guest'][number]['state'] }[] = [];
  for (const d of order) {
    const g = complete.guest.filter((x) => x.slot === d.slot);
    if (g.length !== 1) return `the source's COMPLETE has ${g.length} guest programs for ${d.slot}, not one.`;
    if (g[0].driver !== d.driver.name)
      return `the guest at ${d.slot} ran driver ${g[0].driver} on the source, but this destination's driver for it is ${d.driver.name}.`;
    out.push({ device: d, state: g[0].state });
  }
  if (complete.guest.length !== order.length)
    return `the source's COMPLETE has ${complete.guest.length} guest programs for ${order.length} devices.`;
  return out;
}

export async function migrateIn(
  ch: Channel,
  target: MigratingMachine,
  opts: { readonly idleMs?: number } = {},
): Promise<IncomingOutcome> {
  const { machine } = target;
  const idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
  /** The destination's devices in the order the source announced them (DEVICE messages carry that index). */
  const order: MigratingDevice[] = [];
  let resumed = false;
  /** Refuse with a sentence the source shows: an error's whole message, or a protocol problem (EPROTO). */
  const refuse = async (why: string | { readonly message: string }): Promise<IncomingOutcome> => {
    const problem = typeof why === 'string' ? new VfioError('EPROTO', why).message : why.message;
    await ch
      .sendJson(MSG_ERROR, { message: problem, states: order.map((d) => stateName(d.file)) })
      .catch(() => {});
    return { ok: false, resumed, error: problem, results: [] };
  };
  try {
    const first = await ch.next(idleMs);
    if (first.type !== MSG_HELLO) return refuse(`${messageName(first.type)} came where HELLO was due.`);
    const hello = readHello(first, MIGRATION_PROTOCOL_VERSION);
    const mismatch = compareMachines(hello.machine, describeMachine(machine.ram.size, target.devices));
    if (mismatch)
      return refuse(
        new VfioError('EINVAL', mismatch, {
          hint: 'Start the destination with the configuration the source runs (the same devices, slots and machine.ramSize).',
        }),
      );
    for (const s of hello.machine.devices) {
      const d = target.devices.find((x) => x.slot === s.slot);
      if (d) order.push(d);
    }
    for (const d of order) d.file.setMigrationState(MigState.RESUMING);
  } catch (err) {
    return refuse(toVfioError(err));
  }
  await ch.sendJson(MSG_READY, {});
  const ramSize = machine.ram.size;
  const pages = new Uint8Array(Math.ceil(ramSize / PAGE));
  let pagesSeen = 0;
  let writeError: string | undefined;
  let complete: Complete | undefined;
  try {
    while (complete === undefined) {
      const m = await ch.next(idleMs);
      if (m.type === MSG_RAM) {
        const { gpa, bytes } = decodeRam(m.payload);
        const end = gpa + bytes.length;
        if (end > ramSize)
          return refuse(
            `a RAM message covers guest addresses 0x${gpa.toString(16)}-0x${end.toString(16)}, beyond the ${ramSize}-byte guest RAM.`,
          );
        if (gpa % PAGE !== 0 || (bytes.length % PAGE !== 0 && end !== ramSize) || bytes.length === 0)
          return refuse(
            `a RAM message covers 0x${gpa.toString(16)}-0x${end.toString(16)}, which is not a run of whole ${PAGE}-byte pages.`,
          );
        machine.ram.write(gpa, bytes);
        for (let p = gpa / PAGE; p < Math.ceil(end / PAGE); p++) {
          if (pages[p] === 0) pagesSeen++;
          pages[p] = 1;
        }
      } else if (m.type === MSG_DEVICE) {
        const index = m.payload[0];
        const d = m.payload.length > 0 ? order[index] : undefined;
        if (!d)
          return refuse(`device data for device ${index ?? '(none)'}, which the source did not announce.`);
        if (writeError === undefined) {
          try {
            d.file.migrationWrite(m.payload.subarray(1));
          } catch (err) {
            writeError = toVfioError(err).message;
          }
        }
      } else if (m.type === MSG_COMPLETE) {
        complete = readComplete(m);
        if (complete.messages !== m.seq)
          return refuse(
            `the source's COMPLETE says it sent ${complete.messages} messages before it, but ${m.seq} arrived.`,
          );
      } else return refuse(`${messageName(m.type)} came during the transfer.`);
    }
    // Each problem is a whole message (code and sentence); several are joined.
    const problems: string[] = writeError ? [writeError] : [];
    if (pagesSeen !== pages.length)
      problems.push(
        new VfioError(
          'EPROTO',
          `the source sent ${pagesSeen} of the ${pages.length} pages of guest RAM before COMPLETE (the first is missing at 0x${(pages.indexOf(0) * PAGE).toString(16)}).`,
        ).message,
      );
    const guest = matchGuest(complete, order);
    if (typeof guest === 'string') problems.push(new VfioError('EPROTO', guest).message);
    for (const d of order) {
      try {
        d.file.setMigrationState(MigState.STOP);
      } catch (err) {
        // The device is in ERROR now; a refused write already said why.
        if (!writeError) problems.push(toVfioError(err).message);
      }
    }
    if (problems.length || typeof guest === 'string') return refuse({ message: problems.join('; ') });
    for (const d of order) d.file.setMigrationState(MigState.RUNNING);
    resumed = true;
    await ch.sendJson(MSG_RESUMED, {});
    const results: GuestVerdict[] = [];
    for (const { device, state } of guest) {
      const w = await watchRejections(() =>
        device.driver.migration.verify(machine.guest, device.probed, state),
      );
      let result: GuestDriverResult;
      if (w.result.status === 'rejected')
        result = { ok: false, summary: `verify threw: ${reasonText(w.result.reason)}` };
      else if (w.rejections.length > 0)
        result = {
          ok: false,
          summary: `verify left a Promise rejected that it never awaited: ${w.rejections.map(reasonText).join('; ')}`,
        };
      else result = w.result.value;
      results.push({ slot: device.slot, driver: device.driver.name, result });
    }
    await ch.sendJson(MSG_DONE, { results });
    return { ok: results.every((r) => r.result.ok), resumed, results };
  } catch (err) {
    return refuse(toVfioError(err));
  }
}
