/**
 * What a dynamically linked x86-64 executable needs in the guest: its interpreter (PT_INTERP)
 * and the libraries its dynamic section names (DT_NEEDED), found in a list of directories as
 * ld.so searches them, and theirs in turn. Layouts from elf(5): the ELF64 header, program
 * headers (56 bytes each) and Elf64_Dyn (16 bytes).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;

export interface ElfDeps {
  readonly interpreter: string | undefined;
  readonly needed: readonly string[];
}

/** The interpreter and DT_NEEDED names of an ELF64 little-endian file; a clear error otherwise. */
export function elfDeps(bytes: Uint8Array, what: string): ElfDeps {
  const bad = (why: string) =>
    new Error(`${what} is not an ELF64 little-endian file the guest can run: ${why}.`);
  if (bytes.length < 64 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46)
    throw bad('no ELF magic');
  if (bytes[4] !== 2 || bytes[5] !== 1) throw bad('not 64-bit little-endian');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const phoff = Number(dv.getBigUint64(32, true));
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phentsize < 56 || phoff + phnum * phentsize > bytes.length)
    throw bad('program headers outside the file');
  const loads: { vaddr: number; offset: number; size: number }[] = [];
  let dynamic: { offset: number; size: number } | undefined;
  let interpreter: string | undefined;
  const cstring = (at: number, limit: number) => {
    let end = at;
    while (end < limit && bytes[end] !== 0) end++;
    if (end >= limit) throw bad('a string runs past its section');
    return new TextDecoder().decode(bytes.subarray(at, end));
  };
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = dv.getUint32(p, true);
    const offset = Number(dv.getBigUint64(p + 8, true));
    const vaddr = Number(dv.getBigUint64(p + 16, true));
    const filesz = Number(dv.getBigUint64(p + 32, true));
    if (offset + filesz > bytes.length) throw bad(`segment ${i} runs past the file`);
    if (type === PT_LOAD) loads.push({ vaddr, offset, size: filesz });
    else if (type === PT_DYNAMIC) dynamic = { offset, size: filesz };
    else if (type === PT_INTERP) interpreter = cstring(offset, offset + filesz);
  }
  if (dynamic === undefined) return { interpreter, needed: [] };
  const toOffset = (vaddr: number) => {
    const seg = loads.find((l) => vaddr >= l.vaddr && vaddr < l.vaddr + l.size);
    if (!seg) throw bad(`address 0x${vaddr.toString(16)} is in no loaded segment`);
    return { at: seg.offset + (vaddr - seg.vaddr), limit: seg.offset + seg.size };
  };
  const neededOffsets: number[] = [];
  let strtab: number | undefined;
  for (let p = dynamic.offset; p + 16 <= dynamic.offset + dynamic.size; p += 16) {
    const tag = dv.getBigInt64(p, true);
    const val = dv.getBigUint64(p + 8, true);
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) neededOffsets.push(Number(val));
    else if (tag === DT_STRTAB) strtab = Number(val);
  }
  if (neededOffsets.length > 0 && strtab === undefined) throw bad('DT_NEEDED without DT_STRTAB');
  const table = strtab === undefined ? undefined : toOffset(strtab);
  const needed = neededOffsets.map((o) => {
    if (table === undefined || table.at + o >= table.limit)
      throw bad('a DT_NEEDED name is outside the string table');
    return cstring(table.at + o, table.limit);
  });
  return { interpreter, needed };
}

/** The x86-64 library directories of a Debian system under `root`, each with the guest directory it stands for. */
export function libraryDirs(root = '/'): { host: string; guest: string }[] {
  return ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64', 'lib', 'usr/lib'].map((d) => ({
    host: join(root, d),
    guest: `/${d}`,
  }));
}

export interface LibraryFile {
  /** Where the guest looks for it: the directory of the search list it was found in, made absolute in the guest. */
  readonly guestPath: string;
  /** The real file on the host. */
  readonly hostPath: string;
}

/**
 * `executable` and everything it loads, as pairs of guest path and host file. `search` lists
 * host directories paired with the guest directory they stand for (the first match wins);
 * the interpreter is taken from the host root's path of the same name.
 */
export function libraryClosure(
  executable: string,
  search: readonly { readonly host: string; readonly guest: string }[],
): LibraryFile[] {
  const out = new Map<string, LibraryFile>();
  const queue = [executable];
  const seen = new Set<string>();
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const deps = elfDeps(readFileSync(file), file);
    if (deps.interpreter !== undefined && !out.has(deps.interpreter)) {
      if (!existsSync(deps.interpreter))
        throw new Error(
          `${file} needs the interpreter ${deps.interpreter}, which this machine does not have.`,
        );
      out.set(deps.interpreter, { guestPath: deps.interpreter, hostPath: realpathSync(deps.interpreter) });
    }
    for (const name of deps.needed) {
      const hit = search.find((s) => existsSync(join(s.host, name)));
      if (!hit)
        throw new Error(
          `${file} needs ${name}, found in none of ${search.map((s) => s.host).join(', ')}: install the Debian package that has it.`,
        );
      const guestPath = `${hit.guest}/${name}`;
      if (out.has(guestPath)) continue;
      const hostPath = realpathSync(join(hit.host, name));
      out.set(guestPath, { guestPath, hostPath });
      queue.push(hostPath);
    }
  }
  return [...out.values()];
}
