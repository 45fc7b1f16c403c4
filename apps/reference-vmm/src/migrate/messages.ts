/**
 * The JSON control messages of the migration channel and their checks. Whatever the peer sends
 * is checked against these shapes before it is used, so a message with a missing or mistyped
 * field is refused with the field named instead of failing somewhere inside the migration.
 */
import type { GuestProgramState } from '@vfiokit/core';
import { VfioError } from '@vfiokit/core';
import * as v from 'valibot';
import type { GuestVerdict } from './common.js';
import type { MachineDescription } from './describe.js';
import { type Message, parseJson } from './wire.js';

const count = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
const text = v.pipe(v.string(), v.maxLength(4096));

const DeviceDescriptionSchema = v.strictObject({
  slot: text,
  plugin: text,
  type: text,
  vendorId: count,
  deviceId: count,
  subsystemVendorId: count,
  subsystemId: count,
  classCode: count,
  revision: count,
  bars: v.pipe(
    v.array(v.strictObject({ index: count, kind: text, size: count, address: count })),
    v.maxLength(6),
  ),
  interrupts: v.strictObject({ kind: text, vectors: v.pipe(v.array(count), v.maxLength(2048)) }),
});

const HelloSchema = v.strictObject({
  version: v.number(),
  machine: v.strictObject({
    ramSize: count,
    devices: v.pipe(v.array(DeviceDescriptionSchema), v.maxLength(256)),
  }),
});

const CompleteSchema = v.strictObject({
  messages: count,
  guest: v.pipe(
    v.array(v.strictObject({ slot: text, driver: text, state: v.record(v.string(), v.unknown()) })),
    v.maxLength(256),
  ),
});

const ResultSchema = v.object({
  ok: v.boolean(),
  summary: v.string(),
  facts: v.optional(v.record(v.string(), v.unknown())),
});

const DoneSchema = v.strictObject({
  results: v.array(v.strictObject({ slot: text, driver: text, result: ResultSchema })),
});

const ErrorSchema = v.object({
  message: v.string(),
  states: v.optional(v.array(v.string())),
});

export interface Hello {
  readonly version: number;
  readonly machine: MachineDescription;
}

export interface Complete {
  /** How many messages the source sent before this one: the destination must have taken as many. */
  readonly messages: number;
  readonly guest: readonly { slot: string; driver: string; state: GuestProgramState }[];
}

export interface Done {
  readonly results: readonly GuestVerdict[];
}

export interface PeerError {
  readonly message: string;
  readonly states?: readonly string[];
}

function where(issue: v.BaseIssue<unknown>): string {
  const path = (issue.path ?? []).map((p) =>
    typeof p.key === 'number' ? `[${p.key}]` : `.${String(p.key)}`,
  );
  return path.length ? path.join('').replace(/^\./, '') : 'the message';
}

function check<T>(schema: v.GenericSchema<unknown, T>, m: Message, what: string): T {
  const value = parseJson<unknown>(m, what);
  const r = v.safeParse(schema, value, { abortEarly: true });
  if (r.success) return r.output;
  const issue = r.issues[0];
  const problem =
    issue.type === 'strict_object' && issue.expected === 'never'
      ? `has a field ${where(issue)} that a ${what} message does not have`
      : `has ${where(issue)} missing or not valid`;
  throw new VfioError('EPROTO', `the migration peer sent a ${what} message that ${problem}.`);
}

/** HELLO: the version is read first, so a peer speaking another version is told so, not that a field is wrong. */
export function readHello(m: Message, version: number): Hello {
  const value = parseJson<unknown>(m, 'HELLO');
  const theirs = (value as { version?: unknown } | null)?.version;
  if (theirs !== version)
    throw new VfioError(
      'EPROTO',
      `the source speaks migration protocol ${typeof theirs === 'number' ? theirs : JSON.stringify(theirs ?? null)}; this VMM speaks ${version}.`,
      { hint: 'Run the same vfiokit release on both ends.' },
    );
  return check(HelloSchema, m, 'HELLO');
}

export const readComplete = (m: Message): Complete => check(CompleteSchema, m, 'COMPLETE');
export const readDone = (m: Message): Done => check(DoneSchema, m, 'DONE');
export const readPeerError = (m: Message): PeerError => check(ErrorSchema, m, 'ERROR');
