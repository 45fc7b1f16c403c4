/**
 * `vfiokit mdev`: mdevctl's verbs, flags, JSON and messages (mdevctl/mdevctl src/cli.rs,
 * src/main.rs, src/mdev.rs), over the definitions and active devices of a state directory
 * (mdev-state.ts) instead of /etc/mdevctl.d and sysfs. There is no daemon: `start` records a
 * device active, and `vfiokit run --defined` creates the active ones and the definitions that
 * start automatically. Each sentence mdevctl prints for a mistake is printed for the same
 * mistake, with a hint on the line below.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { VfioError } from '@vfiokit/core';
import { type MdevDefinition, parseMdevctlDevice } from '../config/index.js';
import { type OptionSpec, parseCommand, strings, UsageError } from './args.js';
import { USAGE } from './help.js';
import type { CliIo } from './io.js';
import {
  type ActiveDevice,
  checkParent,
  checkUuid,
  defaultStateDir,
  MdevStore,
  type StoredDefinition,
} from './mdev-state.js';
import { type CatalogueParent, loadCatalogue } from './parents.js';
import { CONFIG_OPTIONS } from './setup.js';

const COMMON = {
  help: { type: 'boolean', short: 'h' },
  'state-dir': { type: 'string' },
} as const satisfies OptionSpec;

const PLUGINS = { plugin: CONFIG_OPTIONS.plugin } as const satisfies OptionSpec;

/** Each verb's options, as mdevctl's clap definitions have them. */
const VERBS: Readonly<Record<string, { options: OptionSpec; positionals: number }>> = {
  define: {
    options: {
      uuid: { type: 'string', short: 'u' },
      auto: { type: 'boolean', short: 'a' },
      parent: { type: 'string', short: 'p' },
      type: { type: 'string', short: 't' },
      jsonfile: { type: 'string' },
    },
    positionals: 0,
  },
  undefine: {
    options: { uuid: { type: 'string', short: 'u' }, parent: { type: 'string', short: 'p' } },
    positionals: 0,
  },
  modify: {
    options: {
      uuid: { type: 'string', short: 'u' },
      parent: { type: 'string', short: 'p' },
      type: { type: 'string', short: 't' },
      addattr: { type: 'string' },
      delattr: { type: 'boolean' },
      index: { type: 'string', short: 'i' },
      value: { type: 'string' },
      auto: { type: 'boolean', short: 'a' },
      manual: { type: 'boolean', short: 'm' },
      jsonfile: { type: 'string' },
    },
    positionals: 0,
  },
  start: {
    options: {
      uuid: { type: 'string', short: 'u' },
      parent: { type: 'string', short: 'p' },
      type: { type: 'string', short: 't' },
      jsonfile: { type: 'string' },
      ...PLUGINS,
    },
    positionals: 1,
  },
  stop: { options: { uuid: { type: 'string', short: 'u' } }, positionals: 0 },
  list: {
    options: {
      defined: { type: 'boolean', short: 'd' },
      dumpjson: { type: 'boolean' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean', short: 'v' },
      uuid: { type: 'string', short: 'u' },
      parent: { type: 'string', short: 'p' },
    },
    positionals: 0,
  },
  types: {
    options: { parent: { type: 'string', short: 'p' }, dumpjson: { type: 'boolean' }, ...PLUGINS },
    positionals: 1,
  },
};

/** clap's conflicts_with: two options that mdevctl refuses together, a usage error. */
function conflicts(
  verb: string,
  values: Record<string, unknown>,
  a: string,
  others: readonly string[],
): void {
  if (values[a] === undefined || values[a] === false) return;
  for (const b of others) {
    if (values[b] !== undefined && values[b] !== false)
      throw new UsageError(`vfiokit mdev ${verb}: --${a} cannot be used with --${b}.`, 'mdev');
  }
}

/** mdevctl reads a device from a JSON file: it must hold mdev_type and start ("invalid json" otherwise). */
function readJsonfile(io: CliIo, path: string, parent: string, uuid: string): MdevDefinition {
  let text: string;
  try {
    text = readFileSync(resolve(io.cwd, path), 'utf8');
  } catch (err) {
    throw new VfioError(
      'ENOENT',
      `Unable to read file "${path}" (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}).`,
      {
        hint: 'Give --jsonfile a file holding mdevctl single-device JSON.',
      },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new VfioError('EINVAL', `${(err as Error).message} in "${path}".`, {
      hint: 'The file must be JSON: { "mdev_type": "<type>", "start": "auto" | "manual", "attrs": [] }.',
    });
  }
  const v = value as Record<string, unknown> | null;
  if (typeof v !== 'object' || v === null || v.mdev_type == null || v.start == null) {
    throw new VfioError('EINVAL', 'invalid json', {
      hint: `"${path}" needs both "mdev_type" and "start", as mdevctl writes them.`,
    });
  }
  return parseMdevctlDevice(value, parent, uuid, path);
}

function uuidOption(values: Record<string, unknown>, verb: string, required: boolean): string | undefined {
  const u = strings(values.uuid)[0];
  if (u === undefined) {
    if (required) throw new UsageError(`vfiokit mdev ${verb} needs --uuid.`, 'mdev');
    return undefined;
  }
  try {
    return checkUuid(u);
  } catch {
    throw new UsageError(`vfiokit mdev ${verb}: "${u}" is not a UUID for --uuid.`, 'mdev');
  }
}

function parentOption(values: Record<string, unknown>): string | undefined {
  const p = strings(values.parent)[0];
  if (p !== undefined) checkParent(p);
  return p;
}

const quoteAttr = (k: string, v: string) => `{"${k}":"${v}"}`;

/** mdevctl's fmt_attrs: "  Attrs:" then "    @{i}: {"name":"value"}". */
function formatAttrs(attrs: MdevDefinition['attrs']): string {
  if (attrs.length === 0) return '';
  return `  Attrs:\n${attrs.map(([k, v], i) => `    @{${i}}: ${quoteAttr(k, v)}\n`).join('')}`;
}

function attributeHint(uuid: string, attrs: MdevDefinition['attrs']): string {
  return attrs.length === 0 ? `Device ${uuid} has no attributes` : formatAttrs(attrs).replace(/\n$/, '');
}

/** get_defined_device: exactly one definition of the UUID (under the parent, when given). */
function oneDefinition(store: MdevStore, uuid: string, parent: string | undefined): StoredDefinition {
  const defs = store.defined({ uuid, parent });
  const where = parent === undefined ? uuid : `${parent}/${uuid}`;
  if (defs.length === 0)
    throw new VfioError('ENOENT', `Mediated device ${where} is not defined`, {
      hint: `List the definitions in ${store.dir} with vfiokit mdev list --defined.`,
    });
  if (defs.length > 1)
    throw new VfioError(
      'EINVAL',
      parent === undefined
        ? `Multiple definitions found for ${uuid}, specify a parent`
        : `Multiple definitions found for ${where}`,
      { hint: `Parents: ${defs.map((d) => d.parent).join(', ')}.` },
    );
  return defs[0];
}

function define(store: MdevStore, values: Record<string, unknown>, io: CliIo): void {
  conflicts('define', values, 'jsonfile', ['type', 'auto']);
  const given = uuidOption(values, 'define', false);
  let parent = parentOption(values);
  if (given === undefined && parent === undefined)
    throw new UsageError('vfiokit mdev define needs --uuid or --parent.', 'mdev');
  const uuid = given ?? randomUUID();
  const jsonfile = strings(values.jsonfile)[0];
  let def: MdevDefinition;
  if (jsonfile !== undefined) {
    if (parent === undefined)
      throw new VfioError('EINVAL', `Parent device required to define device via "${jsonfile}"`, {
        hint: 'Add --parent: the file holds the type, start mode and attributes, not the parent.',
      });
    if (store.isDefined(parent, uuid))
      throw new VfioError('EEXIST', `Cowardly refusing to overwrite existing config for ${parent}/${uuid}`, {
        hint: 'Change it with vfiokit mdev modify, or undefine it first.',
      });
    def = readJsonfile(io, jsonfile, parent, uuid);
  } else {
    let type = strings(values.type)[0];
    if (given !== undefined) {
      // a running device may be defined from what it is: its parent and type
      const active = store.active({ uuid, parent })[0];
      if (parent === undefined && (!active || type !== undefined))
        throw new VfioError('EINVAL', 'No parent specified', { hint: 'Add --parent <name>.' });
      parent ??= active?.parent;
      type ??= active?.type;
    }
    if (parent === undefined)
      throw new VfioError('EINVAL', 'No parent specified', { hint: 'Add --parent <name>.' });
    if (type === undefined)
      throw new VfioError('EINVAL', 'No type specified', {
        hint: 'Add --type <type>; vfiokit mdev types lists them.',
      });
    if (store.isDefined(parent, uuid))
      throw new VfioError('EEXIST', `Device ${uuid} on ${parent} already defined`, {
        hint: 'Change it with vfiokit mdev modify, or pick another UUID.',
      });
    def = { parent, uuid, type, start: values.auto ? 'auto' : 'manual', attrs: [] };
  }
  store.writeDefinition(def);
  if (given === undefined) io.stdout.write(`${uuid}\n`);
}

function undefine(store: MdevStore, values: Record<string, unknown>): void {
  const uuid = uuidOption(values, 'undefine', true) as string;
  const defs = store.defined({ uuid, parent: parentOption(values) });
  if (defs.length === 0)
    throw new VfioError('ENOENT', 'No devices match the specified uuid', {
      hint: `List the definitions in ${store.dir} with vfiokit mdev list --defined.`,
    });
  for (const d of defs) store.removeDefinition(d.parent, d.uuid);
}

function modify(store: MdevStore, values: Record<string, unknown>, io: CliIo): void {
  conflicts('modify', values, 'jsonfile', ['type', 'addattr', 'delattr', 'index', 'value', 'auto', 'manual']);
  conflicts('modify', values, 'addattr', ['delattr']);
  conflicts('modify', values, 'manual', ['auto']);
  const uuid = uuidOption(values, 'modify', true) as string;
  const parent = parentOption(values);
  const jsonfile = strings(values.jsonfile)[0];
  let dev: MdevDefinition;
  if (jsonfile !== undefined) {
    if (parent === undefined)
      throw new VfioError('EINVAL', 'Parent device required to modify device via json file', {
        hint: 'Add --parent <name>.',
      });
    dev = readJsonfile(io, jsonfile, parent, uuid);
  } else {
    const { active: _active, ...found } = oneDefinition(store, uuid, parent);
    dev = found;
    const type = strings(values.type)[0];
    if (type !== undefined) dev = { ...dev, type };
    if (values.auto) dev = { ...dev, start: 'auto' };
    else if (values.manual) dev = { ...dev, start: 'manual' };
  }
  const indexText = strings(values.index)[0];
  let index: number | undefined;
  if (indexText !== undefined) {
    if (!/^\d+$/.test(indexText))
      throw new UsageError(
        `vfiokit mdev modify: --index takes an attribute position (0, 1, ...), not "${indexText}".`,
        'mdev',
      );
    index = Number(indexText);
  }
  const addattr = strings(values.addattr)[0];
  const attrs = [...dev.attrs];
  if (addattr !== undefined) {
    const value = strings(values.value)[0];
    if (value === undefined)
      throw new VfioError('EINVAL', 'No attribute value provided', {
        hint: `Add --value <value> for ${addattr}.`,
      });
    if (index !== undefined && index > attrs.length)
      throw new VfioError('EINVAL', `Attribute index ${index} is invalid\n${attributeHint(uuid, attrs)}`);
    attrs.splice(index ?? attrs.length, 0, [addattr, value]);
  } else if (values.delattr) {
    if (index !== undefined) {
      if (index >= attrs.length)
        throw new VfioError('EINVAL', `Attribute index ${index} is invalid\n${attributeHint(uuid, attrs)}`);
      attrs.splice(index, 1);
    } else attrs.pop();
  }
  store.writeDefinition({ ...dev, attrs });
}

/** available_instances as sysfs would show it now: the probe's count less the devices already active. */
function available(parent: CatalogueParent, typeId: string, active: readonly ActiveDevice[]): number {
  const t = parent.types.find((x) => x.type.id === typeId);
  if (!t) return 0;
  const used = active.filter((a) => a.parent === parent.name && a.type === typeId).length;
  return Math.max(0, t.type.availableInstances - used);
}

async function start(
  store: MdevStore,
  values: Record<string, unknown>,
  positionals: string[],
  io: CliIo,
): Promise<void> {
  conflicts('start', values, 'jsonfile', ['type']);
  const given = uuidOption(values, 'start', false);
  const parent = parentOption(values);
  if (given === undefined && parent === undefined)
    throw new UsageError('vfiokit mdev start needs --uuid or --parent.', 'mdev');
  const type = strings(values.type)[0];
  const jsonfile = strings(values.jsonfile)[0];
  let dev: { parent?: string; uuid: string; type?: string; attrs: MdevDefinition['attrs'] } | undefined;
  if (jsonfile !== undefined) {
    if (parent === undefined)
      throw new VfioError('EINVAL', 'Parent device required to start device via json file', {
        hint: 'Add --parent <name>.',
      });
    dev = readJsonfile(io, jsonfile, parent, given ?? randomUUID());
  } else {
    if (given !== undefined) {
      const defs = store.defined({ uuid: given, parent });
      if (defs.length > 1)
        throw new VfioError(
          'EINVAL',
          `Multiple definitions found for device ${given}. Please specify a parent.`,
          {
            hint: `Parents: ${defs.map((d) => d.parent).join(', ')}.`,
          },
        );
      if (defs.length === 1) {
        const d = defs[0];
        if (type !== undefined && type !== d.type)
          throw new VfioError(
            'EEXIST',
            `Device ${d.uuid} already exists on parent ${d.parent} with type ${d.type}`,
            {
              hint: 'Leave --type out to start the definition, or modify its type first.',
            },
          );
        dev = d;
      }
    }
    dev ??= { parent, uuid: given ?? randomUUID(), type, attrs: [] };
    if (dev.type !== undefined && dev.parent === undefined)
      throw new VfioError('EINVAL', "can't provide type without parent", { hint: 'Add --parent <name>.' });
    if (dev.type === undefined || dev.parent === undefined)
      throw new VfioError('EINVAL', 'Device is insufficiently specified', {
        hint: 'Give --parent and --type, or the --uuid of a definition.',
      });
  }
  const full = { parent: dev.parent as string, uuid: dev.uuid, type: dev.type as string, attrs: dev.attrs };
  // mdevctl's MDev::create, against the parents the plugins offer instead of /sys/class/mdev_bus
  const running = store.active();
  const existing = running.find((a) => a.uuid === full.uuid);
  if (existing) {
    if (existing.parent !== full.parent)
      throw new VfioError('EEXIST', 'Device exists under different parent', {
        hint: `${full.uuid} is active on ${existing.parent}.`,
      });
    if (existing.type !== full.type)
      throw new VfioError('EEXIST', 'Device exists with different type', {
        hint: `${full.uuid} is active as ${existing.type}.`,
      });
    throw new VfioError('EEXIST', 'Device already exists', {
      hint: `Stop it first: vfiokit mdev stop --uuid ${full.uuid}`,
    });
  }
  const catalogue = await loadCatalogue(values, positionals, io, 'mdev');
  const p = catalogue.find((c) => c.name === full.parent);
  if (!p) {
    const similar = catalogue.find((c) => c.name.toLowerCase() === full.parent.toLowerCase());
    throw new VfioError(
      'ENODEV',
      similar
        ? `Unable to find parent device '${full.parent}'. Did you mean '${similar.name}'?`
        : `Unable to find parent device '${full.parent}'`,
      { hint: `The plugins offer: ${catalogue.map((c) => c.name).join(', ') || 'no parents'}.` },
    );
  }
  if (!p.types.some((t) => t.type.id === full.type))
    throw new VfioError('EINVAL', `Parent ${full.parent} does not support mdev type ${full.type}`, {
      hint: `Its types: ${p.types.map((t) => t.type.id).join(', ')}.`,
    });
  if (available(p, full.type, running) === 0)
    throw new VfioError('ENOSPC', `No available instances of ${full.type} on ${full.parent}`, {
      hint: 'Stop a device of that type first.',
    });
  store.activate(full);
  if (given === undefined) io.stdout.write(`${full.uuid}\n`);
}

function stop(store: MdevStore, values: Record<string, unknown>): void {
  const uuid = uuidOption(values, 'stop', true) as string;
  if (store.active({ uuid }).length === 0)
    throw new VfioError('ENODEV', `Error removing device ${uuid}`, {
      hint: 'It is not active; vfiokit mdev list shows the active devices.',
    });
  store.deactivate(uuid);
}

/** mdevctl list: text, or --dumpjson (one device's bare JSON when --uuid picks exactly one). */
function list(store: MdevStore, values: Record<string, unknown>, io: CliIo): void {
  const uuid = strings(values.uuid)[0] !== undefined ? uuidOption(values, 'list', true) : undefined;
  const filter = { uuid, parent: parentOption(values) };
  const definedMode = values.defined === true;
  const devs: (MdevDefinition & { flag: boolean })[] = definedMode
    ? store.defined(filter).map((d) => ({ ...d, flag: d.active }))
    : store.active(filter).map((d) => ({ ...d, flag: d.defined }));
  if (values.dumpjson || values.json) {
    const one = (d: MdevDefinition) => ({
      mdev_type: d.type,
      start: d.start,
      attrs: d.attrs.map(([k, v]) => ({ [k]: v })),
    });
    let json: unknown;
    if (uuid === undefined || devs.length > 1) {
      const byParent: Record<string, Record<string, ReturnType<typeof one>>[]> = {};
      for (const d of devs) (byParent[d.parent] ??= []).push({ [d.uuid]: one(d) });
      json = devs.length ? [byParent] : [];
    } else json = devs.length ? one(devs[0]) : [];
    io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return;
  }
  let out = '';
  for (const d of devs) {
    out += `${d.uuid} ${d.parent} ${d.type} ${d.start}${d.flag ? (definedMode ? ' (active)' : ' (defined)') : ''}\n`;
    if (values.verbose) out += formatAttrs(d.attrs);
  }
  // mdevctl prints the listing with println!, one newline more
  io.stdout.write(`${out}\n`);
}

/** mdevctl types: per parent its types with available instances, device API, name and description. */
async function types(
  store: MdevStore,
  values: Record<string, unknown>,
  positionals: string[],
  io: CliIo,
): Promise<void> {
  const parent = strings(values.parent)[0];
  const running = store.active();
  const catalogue = (await loadCatalogue(values, positionals, io, 'mdev')).filter(
    (c) => parent === undefined || c.name === parent,
  );
  const describe = (text: string | undefined) => text?.trim().replace(/\n/g, ', ') ?? '';
  if (values.dumpjson) {
    const json = catalogue.length
      ? [
          Object.fromEntries(
            catalogue.map((c) => [
              c.name,
              c.types.map(({ type: t }) => ({
                [t.id]: {
                  available_instances: available(c, t.id, running),
                  device_api: t.deviceApi,
                  ...(t.name ? { name: t.name } : {}),
                  ...(describe(t.description) ? { description: describe(t.description) } : {}),
                },
              })),
            ]),
          ),
        ]
      : [];
    io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return;
  }
  let out = '';
  for (const c of catalogue) {
    out += `${c.name}\n`;
    for (const { type: t } of c.types) {
      out += `  ${t.id}\n    Available instances: ${available(c, t.id, running)}\n    Device API: ${t.deviceApi}\n`;
      if (t.name) out += `    Name: ${t.name}\n`;
      if (describe(t.description)) out += `    Description: ${describe(t.description)}\n`;
    }
  }
  io.stdout.write(`${out}\n`);
}

export async function mdevCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const verb = argv[0];
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    io.stdout.write(USAGE.mdev);
    return verb === undefined ? 2 : 0;
  }
  const spec = VERBS[verb];
  if (!spec)
    throw new UsageError(
      `"${verb}" is not an mdev action; use ${Object.keys(VERBS).slice(0, -1).join(', ')} or types.`,
      'mdev',
    );
  const { values, positionals } = parseCommand(
    `mdev ${verb}`,
    argv.slice(1),
    { ...COMMON, ...spec.options },
    spec.positionals,
  );
  if (values.help) {
    io.stdout.write(USAGE.mdev);
    return 0;
  }
  const stateDir = strings(values['state-dir'])[0];
  const store = new MdevStore(stateDir !== undefined ? resolve(io.cwd, stateDir) : defaultStateDir(io.env));
  switch (verb) {
    case 'define':
      define(store, values, io);
      break;
    case 'undefine':
      undefine(store, values);
      break;
    case 'modify':
      modify(store, values, io);
      break;
    case 'start':
      await start(store, values, positionals, io);
      break;
    case 'stop':
      stop(store, values);
      break;
    case 'list':
      list(store, values, io);
      break;
    default:
      await types(store, values, positionals, io);
  }
  return 0;
}
