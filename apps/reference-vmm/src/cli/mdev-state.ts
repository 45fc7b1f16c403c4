/**
 * mdev definitions on disk, laid out as mdevctl lays out /etc/mdevctl.d: one file per device,
 * `<state>/mdevctl.d/<parent>/<uuid>`, holding mdevctl's single-device JSON. A definition is
 * active when `<state>/active/<uuid>` exists (it holds the parent name).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isUuid, VfioError } from '@vfiokit/core';
import { type MdevDefinition, parseMdevctlDevice, toMdevctlDevice } from '../config/index.js';

export function defaultStateDir(env: Readonly<Record<string, string | undefined>>): string {
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, 'vfiokit');
  return join(env.HOME ?? homedir(), '.local', 'state', 'vfiokit');
}

export interface StoredDefinition extends MdevDefinition {
  readonly active: boolean;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** A parent name must be one path component (sysfs names like 0000:00:02.0 are). */
function checkParent(parent: string): void {
  if (parent.length === 0 || parent.includes('/') || parent === '.' || parent === '..') {
    throw new VfioError('EINVAL', `"${parent}" is not a parent device name.`, {
      hint: 'Use the name vfiokit types lists, such as mtty.',
    });
  }
}

export class MdevStore {
  constructor(readonly dir: string) {}

  private get defsDir(): string {
    return join(this.dir, 'mdevctl.d');
  }
  private get activeDir(): string {
    return join(this.dir, 'active');
  }

  list(): StoredDefinition[] {
    const out: StoredDefinition[] = [];
    if (!isDir(this.defsDir)) return out;
    for (const parent of readdirSync(this.defsDir).sort()) {
      const pdir = join(this.defsDir, parent);
      if (!isDir(pdir)) continue;
      for (const uuid of readdirSync(pdir).sort()) {
        const file = join(pdir, uuid);
        let value: unknown;
        try {
          value = JSON.parse(readFileSync(file, 'utf8'));
        } catch (err) {
          throw new VfioError('EINVAL', `the definition ${file} is not JSON (${(err as Error).message}).`, {
            hint: 'Fix or delete the file; it should hold mdevctl single-device JSON.',
          });
        }
        const def = parseMdevctlDevice(value, parent, uuid, file);
        out.push({ ...def, active: existsSync(join(this.activeDir, def.uuid)) });
      }
    }
    return out;
  }

  find(uuid: string): StoredDefinition | undefined {
    const key = uuid.toLowerCase();
    return this.list().find((d) => d.uuid === key);
  }

  /** Add a definition; a UUID is generated when none is given. EEXIST when the UUID is defined already. */
  define(def: Omit<MdevDefinition, 'uuid'> & { uuid?: string }): MdevDefinition {
    checkParent(def.parent);
    const uuid = (def.uuid ?? randomUUID()).toLowerCase();
    if (!isUuid(uuid)) {
      throw new VfioError('EINVAL', `"${def.uuid}" is not a UUID.`, {
        hint: 'Give a UUID such as 83b8f4f2-509f-382f-3c1e-e6bfe0fa1001, or none to have one generated.',
      });
    }
    const existing = this.find(uuid);
    if (existing) {
      throw new VfioError(
        'EEXIST',
        `a device with UUID ${uuid} is already defined on parent ${existing.parent}.`,
        {
          hint: 'Pick another UUID, or leave --uuid out to have one generated.',
        },
      );
    }
    const full: MdevDefinition = { ...def, uuid };
    mkdirSync(join(this.defsDir, def.parent), { recursive: true });
    writeFileSync(
      join(this.defsDir, def.parent, uuid),
      `${JSON.stringify(toMdevctlDevice(full), null, 2)}\n`,
    );
    return full;
  }

  private need(uuid: string): StoredDefinition {
    const d = this.find(uuid);
    if (!d) {
      throw new VfioError('ENOENT', `no mdev with UUID ${uuid.toLowerCase()} is defined in ${this.dir}.`, {
        hint: 'Define it first with vfiokit mdev define, or list the definitions with vfiokit mdev list --defined.',
      });
    }
    return d;
  }

  start(uuid: string): StoredDefinition {
    const d = this.need(uuid);
    if (d.active) throw new VfioError('EBUSY', `mdev ${d.uuid} is already active.`);
    mkdirSync(this.activeDir, { recursive: true });
    writeFileSync(join(this.activeDir, d.uuid), `${d.parent}\n`);
    return { ...d, active: true };
  }

  stop(uuid: string): StoredDefinition {
    const d = this.need(uuid);
    if (!d.active)
      throw new VfioError('EINVAL', `mdev ${d.uuid} is not active.`, {
        hint: 'Start it with vfiokit mdev start.',
      });
    rmSync(join(this.activeDir, d.uuid), { force: true });
    return { ...d, active: false };
  }

  /** What `vfiokit run --defined` creates: active definitions and those that start automatically. */
  runnable(): StoredDefinition[] {
    return this.list().filter((d) => d.active || d.start === 'auto');
  }
}
