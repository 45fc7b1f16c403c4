/** Turning command-line arguments into a checked configuration. */

import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { VfioError } from '@vfiokit/core';
import {
  type ConfigDraft,
  type DeviceDraft,
  draftFromObject,
  finishConfig,
  parseConfigDraft,
  parsePciAddress,
  type VmmConfig,
} from '../config/index.js';
import { DEFAULT_CONFIG, DEFAULT_CONFIG_SOURCE } from '../default-config.js';
import { UsageError } from './args.js';
import type { CliIo } from './io.js';
import { defaultStateDir, MdevStore } from './mdev-state.js';

export interface ConfigArgs {
  readonly file?: string;
  readonly plugins: readonly string[];
  readonly devices: readonly string[];
  /** Devices of the host kernel given as `--vfio <device>` (lspci): as `--device vfio:<device>`. */
  readonly vfio?: readonly string[];
  readonly defined: boolean;
  readonly stateDir?: string;
}

export const CONFIG_OPTIONS = {
  plugin: { type: 'string', multiple: true },
  device: { type: 'string', multiple: true },
  defined: { type: 'boolean' },
  'state-dir': { type: 'string' },
} as const;

function defaultDraft(): ConfigDraft {
  return draftFromObject(DEFAULT_CONFIG, DEFAULT_CONFIG_SOURCE);
}

/** The prefix of a `--device` that another process serves: `vfio-user:<socket path>[@slot]`. */
export const VFIO_USER_DEVICE_PREFIX = 'vfio-user:';

/** vfio-user:<socket>[@slot] — the slot follows the last `@`, so a socket path with an `@` needs one. */
function parseVfioUserFlag(text: string, index: number, command: string): DeviceDraft {
  const rest = text.slice(VFIO_USER_DEVICE_PREFIX.length);
  const at = rest.lastIndexOf('@');
  const socket = at >= 0 ? rest.slice(0, at) : rest;
  const slotText = at >= 0 ? rest.slice(at + 1) : undefined;
  if (socket.length === 0) {
    throw new UsageError(
      `--device "${text}" names no socket; write vfio-user:<socket path>[@slot], such as vfio-user:/run/vfiokit/mtty0.sock@00:05.0.`,
      command,
    );
  }
  const slot = deviceSlot(text, slotText, command);
  return {
    kind: 'vfio-user',
    socket,
    ...(slot ? { slot } : {}),
    describe: (key?: string) => ({
      where: 'command line',
      field: `--device #${index + 1}${key ? ` ${key}` : ''}`,
    }),
  };
}

/** The slot after a `--device`'s `@`, or undefined without one; a malformed one is refused. */
function deviceSlot(text: string, slotText: string | undefined, command: string) {
  if (slotText === undefined) return undefined;
  const slot = parsePciAddress(slotText);
  if (!slot)
    throw new UsageError(
      `--device "${text}" has slot "${slotText}", which is not a bus:device.function address such as 00:05.0.`,
      command,
    );
  return slot;
}

/** The prefix of a `--device` of the host kernel: `vfio:<device>[@slot]`. */
export const VFIO_DEVICE_PREFIX = 'vfio:';

/** vfio:<device>[@slot] — a sysfs path, a PCI address or an mdev UUID; the slot follows the `@`. */
function parseVfioFlag(
  text: string,
  index: number,
  command: string,
  flag = `--device #${index + 1}`,
): DeviceDraft {
  const rest = text.slice(VFIO_DEVICE_PREFIX.length);
  const at = rest.lastIndexOf('@');
  const host = at >= 0 ? rest.slice(0, at) : rest;
  const slotText = at >= 0 ? rest.slice(at + 1) : undefined;
  if (host.length === 0) {
    throw new UsageError(
      `--device "${text}" names no host device; write vfio:<device>[@slot], such as vfio:0000:01:00.0@00:05.0.`,
      command,
    );
  }
  const slot = deviceSlot(text, slotText, command);
  return {
    kind: 'vfio',
    host,
    ...(slot ? { slot } : {}),
    describe: (key?: string) => ({ where: 'command line', field: `${flag}${key ? ` ${key}` : ''}` }),
  };
}

/** plugin:type[:uuid][@slot] — the slot follows the last `@` that is not the scope's. */
export function parseDeviceFlag(text: string, index: number, command: string): DeviceDraft {
  if (text.startsWith(VFIO_USER_DEVICE_PREFIX)) return parseVfioUserFlag(text, index, command);
  if (text.startsWith(VFIO_DEVICE_PREFIX)) return parseVfioFlag(text, index, command);
  const bad = () =>
    new UsageError(
      `--device "${text}" is not plugin:type[:uuid][@slot], such as @vfiokit/sample-mtty:mtty-2@00:04.0.`,
      command,
    );
  const at = text.lastIndexOf('@');
  let head = text;
  let slotText: string | undefined;
  if (at > 0) {
    head = text.slice(0, at);
    slotText = text.slice(at + 1);
  }
  const parts = head.split(':');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p.length === 0)) throw bad();
  const slot = slotText === undefined ? undefined : parsePciAddress(slotText);
  if (slotText !== undefined && !slot) {
    throw new UsageError(
      `--device "${text}" has slot "${slotText}", which is not a bus:device.function address such as 00:03.0.`,
      command,
    );
  }
  const [plugin, type, uuid] = parts;
  return {
    kind: 'mdev',
    plugin,
    type,
    ...(uuid !== undefined ? { uuid: uuid.toLowerCase() } : {}),
    ...(slot ? { slot } : {}),
    attrs: [],
    describe: (key?: string) => ({
      where: 'command line',
      field: `--device #${index + 1}${key ? ` ${key}` : ''}`,
    }),
  };
}

export async function buildConfig(args: ConfigArgs, io: CliIo, command: string): Promise<VmmConfig> {
  let draft: ConfigDraft;
  const defaults = {
    defaultPlugins: defaultDraft().plugins.map((p) => ({ package: p.package, options: p.options ?? {} })),
  };
  if (args.file !== undefined) {
    const path = resolve(io.cwd, args.file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new VfioError(
        code === 'ENOENT' ? 'ENOENT' : 'EIO',
        `the configuration file ${args.file} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}.`,
        { hint: 'Give the path of a YAML or JSON configuration, or none for the default configuration.' },
      );
    }
    draft = parseConfigDraft(text, basename(path), { ...defaults, dir: dirname(path) });
  } else if (args.devices.length > 0 || (args.vfio ?? []).length > 0) {
    draft = { source: 'the command line', plugins: [], ramSize: defaultDraft().ramSize, devices: [] };
  } else {
    draft = defaultDraft();
  }
  const plugins = [...draft.plugins];
  const addPlugin = (name: string, flag: string) => {
    if (!plugins.some((p) => p.package === name)) {
      plugins.push({ package: name, options: {}, describe: () => ({ where: 'command line', field: flag }) });
    }
  };
  for (const p of args.plugins) addPlugin(p, `--plugin ${p}`);
  const devices = [...draft.devices];
  args.devices.forEach((text, i) => {
    const d = parseDeviceFlag(text, i, command);
    if (d.kind === 'mdev') addPlugin(d.plugin as string, `--device #${i + 1}`);
    devices.push(d);
  });
  for (const host of args.vfio ?? [])
    devices.push(parseVfioFlag(`${VFIO_DEVICE_PREFIX}${host}`, devices.length, command, `--vfio ${host}`));
  if (args.defined) {
    const store = new MdevStore(args.stateDir ?? defaultStateDir(io.env));
    for (const def of store.runnable()) {
      devices.push({
        kind: 'mdev',
        parent: def.parent,
        type: def.type,
        uuid: def.uuid,
        attrs: def.attrs,
        describe: (key?: string) => ({
          where: store.dir,
          field: `defined mdev ${def.uuid}${key ? ` ${key}` : ''}`,
        }),
      });
    }
  }
  return finishConfig({ ...draft, plugins, devices });
}

export function configArgs(values: Record<string, unknown>, positionals: readonly string[]): ConfigArgs {
  const list = (v: unknown) => (Array.isArray(v) ? (v as string[]) : typeof v === 'string' ? [v] : []);
  return {
    ...(positionals[0] !== undefined ? { file: positionals[0] } : {}),
    plugins: list(values.plugin),
    devices: list(values.device),
    defined: values.defined === true,
    ...(typeof values['state-dir'] === 'string' ? { stateDir: values['state-dir'] } : {}),
  };
}
