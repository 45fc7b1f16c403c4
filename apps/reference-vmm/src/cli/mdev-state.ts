/**
 * mdev definitions and active devices on disk, laid out as mdevctl lays out /etc/mdevctl.d and
 * /sys/bus/mdev/devices: a definition is `<state>/mdevctl.d/<parent>/<uuid>` holding mdevctl's
 * single-device JSON (mdevctl's write_config); an active device is `<state>/active/<uuid>`
 * holding `{ "parent", "mdev_type", "attrs" }` — what sysfs would tell about it. As in mdevctl a
 * UUID may be defined under several parents, but only one device with a UUID can be active.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isUuid, VfioError } from '@vfiokit/core';
import { type MdevDefinition, type MdevStart, parseMdevctlDevice, toMdevctlDevice } from '../config/index.js';
import { makeDirectory } from '../make-directory.js';

export function defaultStateDir(env: Readonly<Record<string, string | undefined>>): string {
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, 'vfiokit');
  return join(env.HOME ?? homedir(), '.local', 'state', 'vfiokit');
}

/** A definition and whether a device with its UUID and parent is active. */
export interface StoredDefinition extends MdevDefinition {
  readonly active: boolean;
}

/** An active device, with the start mode of its definition when it has one (mdevctl's list). */
export interface ActiveDevice extends MdevDefinition {
  readonly defined: boolean;
}

export interface Filter {
  readonly uuid?: string;
  readonly parent?: string;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** A parent name must be one path component (sysfs names like 0000:00:02.0 are). */
export function checkParent(parent: string): void {
  if (
    parent.length === 0 ||
    parent.includes('/') ||
    parent.includes('\0') ||
    parent === '.' ||
    parent === '..'
  ) {
    throw new VfioError('EINVAL', `"${parent}" is not a parent device name.`, {
      hint: 'Use a name vfiokit mdev types lists, such as mtty or 0000:00:02.0.',
    });
  }
}

export function checkUuid(uuid: string, what = 'UUID'): string {
  if (!isUuid(uuid)) {
    throw new VfioError('EINVAL', `"${uuid}" is not a ${what}.`, {
      hint: 'Give a UUID such as 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001.',
    });
  }
  return uuid.toLowerCase();
}

const byParentThenUuid = (a: MdevDefinition, b: MdevDefinition) =>
  a.parent < b.parent ? -1 : a.parent > b.parent ? 1 : a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0;

export class MdevStore {
  constructor(readonly dir: string) {}

  private get defsDir(): string {
    return join(this.dir, 'mdevctl.d');
  }
  private get activeDir(): string {
    return join(this.dir, 'active');
  }

  private ensureDir(path: string): void {
    makeDirectory(path, 'the mdev state folder');
  }

  private readDefinition(parent: string, uuid: string): MdevDefinition {
    const file = join(this.defsDir, parent, uuid);
    let value: unknown;
    try {
      value = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new VfioError('EINVAL', `the definition ${file} is not JSON (${(err as Error).message}).`, {
        hint: 'Fix or delete the file; it should hold mdevctl single-device JSON.',
      });
    }
    return parseMdevctlDevice(value, parent, uuid, file);
  }

  /** Definitions matching the filter, sorted by parent then UUID (mdevctl's defined_devices). */
  defined(filter: Filter = {}): StoredDefinition[] {
    const out: StoredDefinition[] = [];
    if (!isDir(this.defsDir)) return out;
    const uuid = filter.uuid?.toLowerCase();
    const active = new Map(this.active().map((a) => [a.uuid, a.parent]));
    for (const parent of readdirSync(this.defsDir)) {
      if (filter.parent !== undefined && filter.parent !== parent) continue;
      const pdir = join(this.defsDir, parent);
      if (!isDir(pdir)) continue;
      for (const name of readdirSync(pdir)) {
        // mdevctl skips (with a warning) files whose name is not a UUID
        if (!isUuid(name)) continue;
        if (uuid !== undefined && name.toLowerCase() !== uuid) continue;
        const def = this.readDefinition(parent, name);
        out.push({ ...def, active: active.get(def.uuid) === parent });
      }
    }
    return out.sort(byParentThenUuid);
  }

  isDefined(parent: string, uuid: string): boolean {
    return existsSync(join(this.defsDir, parent, uuid.toLowerCase()));
  }

  /** Write (or overwrite) a definition, as mdevctl's write_config does. */
  writeDefinition(def: MdevDefinition): void {
    checkParent(def.parent);
    const uuid = checkUuid(def.uuid);
    this.ensureDir(join(this.defsDir, def.parent));
    writeFileSync(join(this.defsDir, def.parent, uuid), `${JSON.stringify(toMdevctlDevice(def), null, 2)}\n`);
  }

  removeDefinition(parent: string, uuid: string): void {
    rmSync(join(this.defsDir, parent, uuid.toLowerCase()), { force: true });
  }

  /** Active devices matching the filter, sorted by parent then UUID, with their definitions' start mode. */
  active(filter: Filter = {}): ActiveDevice[] {
    const out: ActiveDevice[] = [];
    if (!isDir(this.activeDir)) return out;
    const uuid = filter.uuid?.toLowerCase();
    for (const name of readdirSync(this.activeDir)) {
      if (!isUuid(name) || (uuid !== undefined && name.toLowerCase() !== uuid)) continue;
      const rec = this.readActive(name);
      if (!rec || (filter.parent !== undefined && rec.parent !== filter.parent)) continue;
      const defined = this.isDefined(rec.parent, rec.uuid);
      let start: MdevStart = 'manual';
      if (defined) start = this.readDefinition(rec.parent, rec.uuid).start;
      out.push({ ...rec, start, defined });
    }
    return out.sort(byParentThenUuid);
  }

  private readActive(uuid: string): Omit<MdevDefinition, 'start'> | undefined {
    const file = join(this.activeDir, uuid);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
    try {
      const v = JSON.parse(text) as { parent?: unknown; mdev_type?: unknown; attrs?: unknown };
      if (typeof v.parent !== 'string' || typeof v.mdev_type !== 'string')
        throw new Error('no parent or type');
      const def = parseMdevctlDevice({ mdev_type: v.mdev_type, attrs: v.attrs ?? [] }, v.parent, uuid, file);
      return { parent: def.parent, uuid: def.uuid, type: def.type, attrs: def.attrs };
    } catch {
      // a record from before active devices carried their type: the parent's name alone, and the
      // definition under that parent holds the rest
      const parent = text.trim();
      if (!parent || !this.isDefined(parent, uuid)) return undefined;
      const def = this.readDefinition(parent, uuid.toLowerCase());
      return { parent, uuid: def.uuid, type: def.type, attrs: def.attrs };
    }
  }

  activate(dev: Omit<MdevDefinition, 'start'>): void {
    checkParent(dev.parent);
    const uuid = checkUuid(dev.uuid);
    this.ensureDir(this.activeDir);
    const record = {
      parent: dev.parent,
      mdev_type: dev.type,
      attrs: dev.attrs.map(([k, v]) => ({ [k]: v })),
    };
    writeFileSync(join(this.activeDir, uuid), `${JSON.stringify(record, null, 2)}\n`);
  }

  deactivate(uuid: string): void {
    rmSync(join(this.activeDir, uuid.toLowerCase()), { force: true });
  }

  /**
   * What `vfiokit run --defined` creates: the active devices, and the definitions that start
   * automatically (mdevctl's start-parent-mdevs) whose UUID is not active already.
   */
  runnable(): MdevDefinition[] {
    const active = this.active();
    const taken = new Set(active.map((a) => a.uuid));
    const auto = this.defined().filter((d) => d.start === 'auto' && !taken.has(d.uuid));
    const seen = new Set<string>();
    // one device per UUID: the first parent (in sorted order) whose definition starts automatically
    const once = auto.filter((d) => {
      if (seen.has(d.uuid)) return false;
      seen.add(d.uuid);
      return true;
    });
    return [...active.map(({ defined: _d, ...a }) => a), ...once.map(({ active: _a, ...d }) => d)];
  }
}
