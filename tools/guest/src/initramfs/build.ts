/**
 * One boot's initramfs: busybox and /init, the check scripts in their order, the device
 * addresses as shell variables (/vfk/env), lspci/setpci with their libraries, the helper, the
 * modules the boot loads (with their modules.dep lines) and the suite's own files. Written
 * uncompressed: the guest unpacks it faster than it would gunzip it under TCG.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { GuestKernel } from '../assets/kernel.js';
import type { Userland } from '../assets/userland.js';
import type { GuestFile } from '../suite.js';
import { type CpioEntry, writeCpio } from './cpio.js';
import { libraryClosure, libraryDirs } from './elf.js';

export interface InitramfsInput {
  readonly kernel: GuestKernel;
  readonly userland: Userland;
  /** The package's guest/ folder (init, lib.sh). */
  readonly guestDir: string;
  /** Shell variables for /vfk/env. */
  readonly env: Readonly<Record<string, string>>;
  /** The check scripts in order, each with its timeout. */
  readonly checks: readonly { readonly script: string; readonly timeoutSec: number }[];
  readonly modules: readonly string[];
  readonly files: readonly GuestFile[];
}

/** A value as one single-quoted shell word. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function hostTree(dir: string, guest: string): CpioEntry[] {
  const out: CpioEntry[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      const st = statSync(full);
      const path = join(guest, relative(dir, full));
      if (st.isDirectory()) {
        out.push({ kind: 'dir', path, mode: st.mode & 0o7777 });
        walk(full);
      } else if (st.isFile())
        out.push({ kind: 'file', path, data: readFileSync(full), mode: st.mode & 0o7777 });
    }
  };
  walk(dir);
  return out;
}

export async function buildInitramfs(input: InitramfsInput): Promise<Buffer> {
  const { userland: u, kernel } = input;
  const entries: CpioEntry[] = [
    { kind: 'dir', path: 'dev' },
    { kind: 'char', path: 'dev/console', major: 5, minor: 1 },
    { kind: 'dir', path: 'proc' },
    { kind: 'dir', path: 'sys' },
    { kind: 'dir', path: 'tmp', mode: 0o1777 },
    { kind: 'file', path: 'bin/busybox', data: readFileSync(u.busybox), mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'file', path: 'init', data: readFileSync(join(input.guestDir, 'init')), mode: 0o755 },
    { kind: 'file', path: 'vfk/lib.sh', data: readFileSync(join(input.guestDir, 'lib.sh')) },
    { kind: 'file', path: 'vfk/bin/vfk', data: readFileSync(u.helper), mode: 0o755 },
    { kind: 'file', path: 'usr/bin/lspci', data: readFileSync(u.lspci), mode: 0o755 },
    { kind: 'file', path: 'usr/bin/setpci', data: readFileSync(u.setpci), mode: 0o755 },
  ];
  for (const lib of u.libraries)
    entries.push({ kind: 'file', path: lib.guestPath, data: readFileSync(lib.hostPath), mode: 0o755 });
  if (u.pciIds !== undefined)
    entries.push({ kind: 'file', path: 'usr/share/misc/pci.ids', data: readFileSync(u.pciIds) });

  const env = Object.entries(input.env)
    .map(([k, v]) => `export ${k}=${shellQuote(v)}\n`)
    .join('');
  entries.push({ kind: 'file', path: 'vfk/env', data: Buffer.from(env) });
  input.checks.forEach((c, i) => {
    const body = `# timeout: ${c.timeoutSec}\n${c.script}\n`;
    entries.push({
      kind: 'file',
      path: `vfk/checks/${String(i + 1).padStart(2, '0')}.sh`,
      data: Buffer.from(body),
    });
  });

  const mods = await kernel.modules(input.modules);
  const modDir = `lib/modules/${kernel.release}`;
  for (const m of mods.files)
    entries.push({ kind: 'file', path: `${modDir}/${m.path}`, data: readFileSync(m.file) });
  entries.push({ kind: 'file', path: `${modDir}/modules.dep`, data: Buffer.from(mods.modulesDep) });
  entries.push({
    kind: 'file',
    path: 'vfk/modules',
    data: Buffer.from(mods.load.map((m) => `${m}\n`).join('')),
  });

  for (const f of input.files) {
    if ('tree' in f) entries.push(...hostTree(f.tree, f.path));
    else if ('from' in f) {
      entries.push({ kind: 'file', path: f.path, data: readFileSync(f.from), mode: f.mode ?? 0o755 });
      if (f.withLibraries)
        for (const lib of libraryClosure(f.from, libraryDirs('/')))
          entries.push({ kind: 'file', path: lib.guestPath, data: readFileSync(lib.hostPath), mode: 0o755 });
    } else {
      const data = typeof f.data === 'string' ? Buffer.from(f.data) : f.data;
      entries.push({ kind: 'file', path: f.path, data, mode: f.mode ?? 0o644 });
    }
  }
  return writeCpio(entries);
}
