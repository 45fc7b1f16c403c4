/**
 * Device definitions in mdevctl's JSON format, so people who use mdevctl feel at home.
 *
 * One device (mdevctl's configuration file, `/etc/mdevctl.d/<parent>/<uuid>`):
 *   { "mdev_type": "mtty-2", "start": "auto" | "manual", "attrs": [ { "name": "value" }, ... ] }
 * A list (`mdevctl list --defined --dumpjson`): one object keyed by parent, each holding a list of
 * one-key objects keyed by UUID:
 *   [ { "mtty": [ { "<uuid>": { "mdev_type": ..., "start": ..., "attrs": [...] } } ] } ]
 * `attrs` is an ordered list because mdevctl writes attributes in order and allows a name twice.
 */
import { isUuid, VfioError } from '@vfiokit/core';

export type MdevStart = 'auto' | 'manual';

export interface MdevDefinition {
  readonly parent: string;
  readonly uuid: string;
  /** The type id (`mdev_type`): `mtty-2`. */
  readonly type: string;
  readonly start: MdevStart;
  /** Attributes in order, as [name, value]; a name may repeat. */
  readonly attrs: readonly (readonly [string, string])[];
}

/** The single-device JSON object. */
export interface MdevctlDevice {
  mdev_type: string;
  start: MdevStart;
  attrs: Record<string, string>[];
}

function invalid(where: string, problem: string): VfioError {
  return new VfioError('EINVAL', `${where} ${problem}`, {
    hint: 'mdevctl writes { "mdev_type": "<type>", "start": "auto" | "manual", "attrs": [{ "<name>": "<value>" }] }.',
  });
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** One device's JSON object, read for `parent` and `uuid`. `where` names the place for messages. */
export function parseMdevctlDevice(
  value: unknown,
  parent: string,
  uuid: string,
  where = 'the device',
): MdevDefinition {
  if (!isRecord(value)) throw invalid(where, 'is not a JSON object with mdev_type, start and attrs.');
  for (const key of Object.keys(value)) {
    if (key !== 'mdev_type' && key !== 'start' && key !== 'attrs') {
      throw invalid(where, `has an unknown field "${key}"; mdevctl knows mdev_type, start and attrs.`);
    }
  }
  const type = value.mdev_type;
  if (typeof type !== 'string' || type.length === 0) {
    throw invalid(`${where}.mdev_type`, 'is missing or not a type id such as "mtty-2".');
  }
  const start = value.start ?? 'manual';
  if (start !== 'auto' && start !== 'manual') {
    throw invalid(`${where}.start`, `${JSON.stringify(start)} is neither "auto" nor "manual".`);
  }
  const attrsIn = value.attrs ?? [];
  if (!Array.isArray(attrsIn))
    throw invalid(`${where}.attrs`, 'is not a list of { "name": "value" } objects.');
  const attrs: (readonly [string, string])[] = [];
  attrsIn.forEach((a, i) => {
    const keys = isRecord(a) ? Object.keys(a) : [];
    if (!isRecord(a) || keys.length !== 1 || typeof a[keys[0]] !== 'string') {
      throw invalid(`${where}.attrs[${i}]`, 'is not an object with one attribute name and its string value.');
    }
    attrs.push([keys[0], a[keys[0]] as string]);
  });
  if (!isUuid(uuid)) throw invalid(where, `is keyed by "${uuid}", which is not a UUID.`);
  if (parent.length === 0) throw invalid(where, 'has an empty parent name.');
  return { parent, uuid: uuid.toLowerCase(), type, start, attrs };
}

/** A `mdevctl list --dumpjson` document (already parsed from JSON). */
export function parseMdevctlList(value: unknown, where = 'the list'): MdevDefinition[] {
  const out: MdevDefinition[] = [];
  // mdevctl prints `[]`-wrapped output; an unwrapped parent map is accepted too.
  const top = Array.isArray(value) ? value : [value];
  top.forEach((byParent, i) => {
    const at = Array.isArray(value) ? `${where === 'the list' ? '' : where}[${i}]` : where;
    if (!isRecord(byParent)) throw invalid(at, 'is not an object keyed by parent device name.');
    for (const [parent, list] of Object.entries(byParent)) {
      const pat = `${at}["${parent}"]`;
      if (!Array.isArray(list)) throw invalid(pat, 'is not a list of { "<uuid>": { ... } } objects.');
      list.forEach((entry, j) => {
        const keys = isRecord(entry) ? Object.keys(entry) : [];
        if (!isRecord(entry) || keys.length !== 1) {
          throw invalid(`${pat}[${j}]`, 'is not an object with exactly one UUID key.');
        }
        out.push(parseMdevctlDevice(entry[keys[0]], parent, keys[0], `${pat}[${j}]["${keys[0]}"]`));
      });
    }
  });
  return out;
}

export function toMdevctlDevice(def: MdevDefinition): MdevctlDevice {
  return { mdev_type: def.type, start: def.start, attrs: def.attrs.map(([k, val]) => ({ [k]: val })) };
}

/** The `mdevctl list --dumpjson` value: parents in first-seen order, devices in order. */
export function toMdevctlList(
  defs: readonly MdevDefinition[],
): Record<string, Record<string, MdevctlDevice>[]>[] {
  if (defs.length === 0) return [];
  const byParent: Record<string, Record<string, MdevctlDevice>[]> = {};
  for (const d of defs) {
    byParent[d.parent] ??= [];
    byParent[d.parent].push({ [d.uuid]: toMdevctlDevice(d) });
  }
  return [byParent];
}

/** JSON text as mdevctl prints it (two-space indent). */
export function formatMdevctlList(defs: readonly MdevDefinition[]): string {
  return JSON.stringify(toMdevctlList(defs), null, 2);
}
