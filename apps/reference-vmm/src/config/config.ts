/**
 * Reading and checking a VMM configuration. A file (YAML or JSON — JSON is YAML) is parsed
 * with positions kept, checked by the valibot schema, then checked as a whole (every plugin a
 * device names is listed, no slot or UUID used twice). Every problem is a VfioError whose
 * problem is one sentence that starts with `file:line:col:` and names the field:
 *   config.yaml:7:11: devices[1].slot "00:3" is not a bus:device.function address such as 00:03.0.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { PAGE_SIZE, type PciAddress, VfioError } from '@vfiokit/core';
import * as v from 'valibot';
import { type Document, isMap, isScalar, LineCounter, type Node, parseDocument } from 'yaml';
import { DEFAULT_RAM_SIZE, MAX_RAM_SIZE, MIN_RAM_SIZE } from '../machine/index.js';
import {
  FIRST_AUTO_DEVICE,
  formatSlot,
  HOST_BRIDGE_SLOT,
  PCI_MAX_DEVICE,
  parsePciAddress,
  sameAddress,
} from './address.js';
import { type MdevDefinition, parseMdevctlList } from './mdevctl.js';
import { type ConfigInput, ConfigSchema, FIELD_MEANINGS, FIELD_PROBLEMS, KNOWN_FIELDS } from './schema.js';
import { formatSize, parseSize } from './size.js';
import { stableUuid } from './uuid.js';

export interface PluginConfig {
  /** The package name (or a path to a module, for a local plugin). */
  readonly package: string;
  readonly options: Readonly<Record<string, unknown>>;
  /** Where it was listed (`config.yaml:2:5 plugins[0]`), for errors found when it loads. */
  readonly origin?: string;
  /** The folder a module path is relative to: the configuration file's (else the working directory). */
  readonly baseDir?: string;
}

export interface MdevDeviceConfig {
  readonly kind: 'mdev';
  /** The plugin package; undefined for an mdevctl definition, whose plugin is the one that probes `parent`. */
  readonly plugin: string | undefined;
  /** The parent device; undefined: the first parent of the plugin that offers `type`. */
  readonly parent: string | undefined;
  readonly type: string;
  readonly uuid: string;
  readonly slot: PciAddress;
  readonly attrs: readonly (readonly [string, string])[];
  /** Where it was defined (`config.yaml:12:5 devices[1]`), for errors found later. */
  readonly origin: string;
}

export interface VfioUserDeviceConfig {
  readonly kind: 'vfio-user';
  readonly socket: string;
  readonly slot: PciAddress;
  readonly origin: string;
}

/** A device of the host kernel, opened through VFIO (a sysfs path, a PCI address or an mdev UUID). */
export interface VfioDeviceConfig {
  readonly kind: 'vfio';
  readonly device: string;
  readonly slot: PciAddress;
  readonly origin: string;
}

export type DeviceConfig = MdevDeviceConfig | VfioUserDeviceConfig | VfioDeviceConfig;

export interface VmmConfig {
  /** The file name, or a description (`the default configuration`). */
  readonly source: string;
  readonly plugins: readonly PluginConfig[];
  readonly machine: { readonly ramSize: number };
  readonly devices: readonly DeviceConfig[];
}

/** Where an entry came from, for messages: the place (`config.yaml:7:11`) and the field (`devices[1].slot`). */
export interface Place {
  readonly where: string;
  readonly field: string;
}

/** One device before the whole-configuration checks; `describe(key)` locates a field of it. */
export interface DeviceDraft {
  readonly kind: 'mdev' | 'vfio-user' | 'vfio';
  readonly plugin?: string;
  readonly parent?: string;
  readonly type?: string;
  readonly uuid?: string;
  readonly slot?: PciAddress;
  readonly socket?: string;
  /** The host device of a `vfio` entry. */
  readonly host?: string;
  readonly attrs?: readonly (readonly [string, string])[];
  describe(key?: string): Place;
}

export interface PluginDraft {
  readonly package: string;
  readonly options?: Readonly<Record<string, unknown>>;
  readonly baseDir?: string;
  describe(key?: string): Place;
}

export interface ConfigDraft {
  readonly source: string;
  readonly plugins: PluginDraft[];
  readonly ramSize: number;
  readonly devices: DeviceDraft[];
}

export class ConfigError extends VfioError {
  constructor(
    readonly location: Place,
    sentence: string,
  ) {
    super('EINVAL', `${location.where}: ${sentence}`);
  }
}

type PathKey = string | number;

function fieldName(path: readonly PathKey[]): string {
  let s = '';
  for (const k of path) s += typeof k === 'number' ? `[${k}]` : s === '' ? k : `.${k}`;
  return s;
}

function fieldPattern(path: readonly PathKey[]): string {
  let s = '';
  for (const k of path) {
    if (typeof k === 'number') {
      s += '[]';
      continue;
    }
    const named = s === '' ? k : `${s}.${k}`;
    const wild = `${s}.*`;
    s = named in FIELD_PROBLEMS || named in KNOWN_FIELDS || !(wild in FIELD_PROBLEMS) ? named : wild;
  }
  return s;
}

/** `"00:3"`, `256`, or for containers the words that say what it is. */
function describeValue(value: unknown, noun: string): string {
  if (typeof value === 'string') return `${JSON.stringify(value)} is not ${noun}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${String(value)} is not ${noun}`;
  if (value === null || value === undefined) return `is empty, not ${noun}`;
  if (Array.isArray(value)) return `is a list, not ${noun}`;
  return `is a mapping, not ${noun}`;
}

function noun(pattern: string): string {
  const p = FIELD_PROBLEMS[pattern] ?? 'is not valid here';
  return p.replace(/^is not /, '');
}

/** Finds the line and column of a field in a parsed document. */
class Locator {
  constructor(
    private readonly file: string,
    private readonly doc: Document | undefined,
    private readonly lines: LineCounter | undefined,
  ) {}

  private pos(node: Node | null | undefined): string | undefined {
    if (!node?.range || !this.lines) return undefined;
    const { line, col } = this.lines.linePos(node.range[0]);
    return `${this.file}:${line}:${col}`;
  }

  private node(path: readonly PathKey[]): Node | undefined {
    if (!this.doc) return undefined;
    if (path.length === 0) return (this.doc.contents as Node | null) ?? undefined;
    const n = this.doc.getIn(path as PathKey[], true);
    return n && typeof n === 'object' && 'range' in (n as object) ? (n as Node) : undefined;
  }

  /** The value at `path`, or the nearest enclosing node that exists. */
  at(path: readonly PathKey[]): string {
    for (let i = path.length; i >= 0; i--) {
      const p = this.pos(this.node(path.slice(0, i)));
      if (p) return p;
    }
    return this.file;
  }

  /** The key `path[last]` itself (for an unknown field). */
  keyAt(path: readonly PathKey[]): string {
    const parent = this.node(path.slice(0, -1));
    const key = path[path.length - 1];
    if (parent && isMap(parent)) {
      const pair = parent.items.find((it) => isScalar(it.key) && it.key.value === key);
      const p = pair ? this.pos(pair.key as Node) : undefined;
      if (p) return p;
    }
    return this.at(path);
  }

  place(path: readonly PathKey[]): Place {
    return { where: this.at(path), field: fieldName(path) };
  }
}

function issueSentence(issue: v.BaseIssue<unknown>, loc: Locator): ConfigError {
  const path: PathKey[] = (issue.path ?? []).map((p) => p.key as PathKey);
  const last = issue.path?.[issue.path.length - 1];
  const parentPath = path.slice(0, -1);
  const parentField = fieldName(parentPath) || 'the configuration';
  if (
    last &&
    issue.input === undefined &&
    typeof last.input === 'object' &&
    last.input !== null &&
    !(String(last.key) in (last.input as object))
  ) {
    const meaning = FIELD_MEANINGS[fieldPattern(path)];
    return new ConfigError(
      { where: loc.at(parentPath), field: fieldName(path) },
      `${parentField} is missing ${String(last.key)}${meaning ? ` (${meaning})` : ''}.`,
    );
  }
  if (issue.type === 'strict_object' && issue.expected === 'never' && last) {
    const known = KNOWN_FIELDS[fieldPattern(parentPath)];
    const list = known ? `; the known fields are ${known.join(', ')}` : '';
    return new ConfigError(
      { where: loc.keyAt(path), field: fieldName(path) },
      `${parentField} has an unknown field "${String(last.key)}"${list}.`,
    );
  }
  const field = fieldName(path) || 'the configuration';
  return new ConfigError(
    { where: loc.at(path), field },
    `${field} ${describeValue(issue.input, noun(fieldPattern(path)))}.`,
  );
}

export interface ParseOptions {
  /** Plugins to use when the document is a bare `mdevctl list --dumpjson` list (the in-tree ones). */
  readonly defaultPlugins?: readonly PluginConfig[];
  /** The configuration file's folder: plugin module paths in it are relative to it. */
  readonly dir?: string;
}

function attrsOf(rec: Readonly<Record<string, string | number | boolean>> | undefined): [string, string][] {
  return Object.entries(rec ?? {}).map(([k, val]) => [k, String(val)]);
}

function mdevctlDrafts(defs: readonly MdevDefinition[], where: string): DeviceDraft[] {
  return defs.map((d) => ({
    kind: 'mdev' as const,
    parent: d.parent,
    type: d.type,
    uuid: d.uuid,
    attrs: d.attrs,
    describe: (key?: string) => ({ where, field: `mdev ${d.uuid}${key ? ` ${key}` : ''}` }),
  }));
}

/** Draft a configuration from a value already checked to be an object, locating fields through `loc`. */
function draftFromValue(value: unknown, source: string, loc: Locator, opts: ParseOptions): ConfigDraft {
  if (value === null || value === undefined) value = {};
  if (Array.isArray(value)) {
    // A bare mdevctl list: the definitions, run with the default plugins.
    const defs = parseMdevctlListAt(value, loc, []);
    return {
      source,
      plugins: (opts.defaultPlugins ?? []).map((p) => ({
        ...p,
        describe: () => ({ where: source, field: 'plugins' }),
      })),
      ramSize: DEFAULT_RAM_SIZE,
      devices: mdevctlDrafts(defs, source),
    };
  }
  const parsed = v.safeParse(ConfigSchema, value, { abortEarly: true });
  if (!parsed.success) throw issueSentence(parsed.issues[0], loc);
  const input: ConfigInput = parsed.output;

  let ramSize = DEFAULT_RAM_SIZE;
  const ram = input.machine?.ramSize;
  if (ram !== undefined) {
    const bytes = typeof ram === 'number' ? ram : (parseSize(ram) as number);
    const place = loc.place(['machine', 'ramSize']);
    if (bytes < MIN_RAM_SIZE || bytes > MAX_RAM_SIZE || bytes % PAGE_SIZE !== 0) {
      throw new ConfigError(
        place,
        `machine.ramSize ${typeof ram === 'number' ? ram : JSON.stringify(ram)} is not a whole number of 4 KiB pages between ${formatSize(MIN_RAM_SIZE)} and ${formatSize(MAX_RAM_SIZE)}.`,
      );
    }
    ramSize = bytes;
  }

  const plugins: PluginDraft[] = (input.plugins ?? []).map((p, i) => ({
    package: p.package,
    options: p.options ?? {},
    ...(opts.dir !== undefined ? { baseDir: opts.dir } : {}),
    describe: (key?: string) => loc.place(key ? ['plugins', i, key] : ['plugins', i]),
  }));

  const devices: DeviceDraft[] = (input.devices ?? []).map((d, i) => {
    const describe = (key?: string): Place => loc.place(key ? ['devices', i, key] : ['devices', i]);
    if ('vfioUser' in d) {
      return { kind: 'vfio-user' as const, socket: d.vfioUser, slot: parsePciAddress(d.slot), describe };
    }
    if ('vfio' in d) return { kind: 'vfio' as const, host: d.vfio, slot: parsePciAddress(d.slot), describe };
    return {
      kind: 'mdev' as const,
      plugin: d.plugin,
      parent: d.parent,
      type: d.type,
      uuid: d.uuid?.toLowerCase(),
      slot: d.slot === undefined ? undefined : parsePciAddress(d.slot),
      attrs: attrsOf(d.attrs),
      describe,
    };
  });
  if (input.mdevctl !== undefined) {
    const defs = parseMdevctlListAt(input.mdevctl, loc, ['mdevctl']);
    devices.push(...mdevctlDrafts(defs, loc.at(['mdevctl'])));
  }
  return { source, plugins, ramSize, devices };
}

/** mdevctl definitions inside a configuration; a problem is located at the list. */
function parseMdevctlListAt(value: unknown, loc: Locator, path: readonly PathKey[]): MdevDefinition[] {
  try {
    return parseMdevctlList(value, path.length ? fieldName(path) : 'the list');
  } catch (err) {
    if (!(err instanceof VfioError)) throw err;
    throw new ConfigError(loc.place(path), err.problem);
  }
}

/** Parse configuration text (YAML or JSON); `file` names it in messages. */
export function parseConfigDraft(text: string, file: string, opts: ParseOptions = {}): ConfigDraft {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const loc = new Locator(file, doc, lines);
  const err = doc.errors[0];
  if (err) {
    const p = lines.linePos(err.pos[0]);
    const what = err.message
      .split('\n')[0]
      .replace(/\s+at line \d+, column \d+:?$/, '')
      .replace(/\.$/, '');
    throw new ConfigError(
      { where: `${file}:${p.line}:${p.col}`, field: '' },
      `the file is not valid YAML or JSON: ${what}.`,
    );
  }
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (e) {
    // An alias without its anchor, or too many aliases (a YAML bomb): the document has no value.
    const what = (e instanceof Error ? e.message : String(e)).split('\n')[0].replace(/\.$/, '');
    throw new ConfigError({ where: file, field: '' }, `the file is not valid YAML or JSON: ${what}.`);
  }
  return draftFromValue(value, file, loc, opts);
}

/** Draft a configuration from a plain object (the embedded default, a test); fields are located by name only. */
export function draftFromObject(value: unknown, source: string, opts: ParseOptions = {}): ConfigDraft {
  return draftFromValue(value, source, new Locator(source, undefined, undefined), opts);
}

/** The whole-configuration checks: plugins listed once, device plugins listed, slots and UUIDs unique, free slots assigned. */
export function finishConfig(draft: ConfigDraft): VmmConfig {
  const seenPlugins = new Map<string, PluginDraft>();
  for (const p of draft.plugins) {
    const first = seenPlugins.get(p.package);
    if (first) {
      const place = p.describe('package');
      throw new ConfigError(
        place,
        `${place.field} "${p.package}" is listed twice (first as ${first.describe().field}); list each plugin once.`,
      );
    }
    seenPlugins.set(p.package, p);
  }

  const taken: { slot: PciAddress; by: DeviceDraft }[] = [];
  const uuids = new Map<string, DeviceDraft>();
  for (const d of draft.devices) {
    if (d.kind === 'mdev' && d.plugin !== undefined && !seenPlugins.has(d.plugin)) {
      const place = d.describe('plugin');
      throw new ConfigError(
        place,
        `${place.field} "${d.plugin}" is not in the plugins list; add { package: '${d.plugin}' } to plugins.`,
      );
    }
    if (d.slot) {
      const place = d.describe('slot');
      const slotText = formatSlot(d.slot);
      if (d.slot.bus !== 0) {
        throw new ConfigError(
          place,
          `${place.field} ${slotText} is on bus ${slotText.slice(0, 2)}, but this machine has one PCI bus, 00; ${d.slot.device === 0 ? 'use a free slot on it, such as 00:03.0' : `use 00:${slotText.slice(3)} or another free slot on it`}.`,
        );
      }
      if (sameAddress(d.slot, HOST_BRIDGE_SLOT)) {
        throw new ConfigError(
          place,
          `${place.field} ${slotText} is the host bridge's slot; use 00:03.0 or another free slot.`,
        );
      }
      const other = taken.find((t) => sameAddress(t.slot, d.slot as PciAddress));
      if (other) {
        const o = other.by.describe('slot');
        throw new ConfigError(
          place,
          `${place.field} ${slotText} is already taken by ${other.by.describe().field} (${o.where}); give each device its own slot.`,
        );
      }
      taken.push({ slot: d.slot, by: d });
    }
    if (d.uuid) {
      const other = uuids.get(d.uuid);
      if (other) {
        const place = d.describe('uuid');
        throw new ConfigError(
          place,
          `${place.field} ${d.uuid} is already used by ${other.describe().field}; each device needs its own UUID.`,
        );
      }
      uuids.set(d.uuid, d);
    }
  }
  for (const t of taken) {
    if (t.slot.function !== 0 && !taken.some((o) => sameAddress(o.slot, { ...t.slot, function: 0 }))) {
      const place = t.by.describe('slot');
      throw new ConfigError(
        place,
        `${place.field} ${formatSlot(t.slot)} is a function of a slot with nothing at function 0, so the guest would never find it; use ${formatSlot({ ...t.slot, function: 0 })}.`,
      );
    }
  }

  const devices: DeviceConfig[] = draft.devices.map((d) => {
    let slot = d.slot;
    if (!slot) {
      slot = freeSlot(taken.map((t) => t.slot));
      if (!slot) {
        const place = d.describe();
        throw new ConfigError(
          place,
          `${place.field} has no slot and bus 00 has no free slot left; give it one.`,
        );
      }
      taken.push({ slot, by: d });
    }
    const head = d.describe();
    const origin = `${head.where} ${head.field}`.trim();
    if (d.kind === 'vfio-user') return { kind: 'vfio-user', socket: d.socket as string, slot, origin };
    if (d.kind === 'vfio') return { kind: 'vfio', device: d.host as string, slot, origin };
    const type = d.type as string;
    let uuid = d.uuid;
    if (!uuid) {
      uuid = stableUuid(`${d.plugin ?? ''}/${d.parent ?? ''}/${type}@${formatSlot(slot)}`);
      if (uuids.has(uuid)) uuid = stableUuid(`${uuid}/${uuids.size}`);
      uuids.set(uuid, d);
    }
    return {
      kind: 'mdev',
      plugin: d.plugin,
      parent: d.parent,
      type,
      uuid,
      slot,
      attrs: d.attrs ?? [],
      origin,
    };
  });

  return {
    source: draft.source,
    plugins: draft.plugins.map((p) => {
      const head = p.describe();
      return {
        package: p.package,
        options: p.options ?? {},
        origin: `${head.where} ${head.field}`.trim(),
        ...(p.baseDir !== undefined ? { baseDir: p.baseDir } : {}),
      };
    }),
    machine: { ramSize: draft.ramSize },
    devices,
  };
}

function freeSlot(taken: readonly PciAddress[]): PciAddress | undefined {
  for (let dev = FIRST_AUTO_DEVICE; dev <= PCI_MAX_DEVICE; dev++) {
    if (!taken.some((t) => t.bus === 0 && t.device === dev)) return { bus: 0, device: dev, function: 0 };
  }
  return undefined;
}

/** Parse and check configuration text. */
export function parseConfig(text: string, file = 'config.yaml', opts: ParseOptions = {}): VmmConfig {
  return finishConfig(parseConfigDraft(text, file, opts));
}

/** Read, parse and check a configuration file; messages name it by its base name. */
export async function loadConfigFile(path: string, opts: ParseOptions = {}): Promise<VmmConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new VfioError(
      code === 'ENOENT' ? 'ENOENT' : 'EIO',
      `the configuration file ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'error'})`}.`,
      { hint: 'Give the path of a YAML or JSON configuration, or no path for the default configuration.' },
    );
  }
  return parseConfig(text, basename(path), { dir: dirname(path), ...opts });
}
