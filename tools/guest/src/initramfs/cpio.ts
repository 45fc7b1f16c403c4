/**
 * The initramfs archive: cpio "newc" (SVR4 without CRC), the one format the kernel unpacks
 * (Documentation/driver-api/early-userspace/buffer-format.rst). Each entry is a 110-byte ASCII
 * header (magic 070701 and thirteen 8-digit hex fields), the NUL-terminated name padded to 4
 * bytes, and the data padded to 4 bytes; "TRAILER!!!" ends the archive.
 */

export type CpioEntry =
  | { readonly kind: 'dir'; readonly path: string; readonly mode?: number }
  | { readonly kind: 'file'; readonly path: string; readonly data: Uint8Array; readonly mode?: number }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string }
  /** A character device node (the kernel wants /dev/console before /init mounts devtmpfs). */
  | { readonly kind: 'char'; readonly path: string; readonly major: number; readonly minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const MAGIC = '070701';
const TRAILER = 'TRAILER!!!';
const enc = new TextEncoder();

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
    throw new RangeError(`cpio field ${n} does not fit 32 bits`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** A path as the archive holds it: relative, no `.` or `..` parts, no empty parts. */
export function normalisePath(path: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.some((p) => p === '..' || p.includes('\0')))
    throw new Error(`"${path}" is not a path inside the initramfs.`);
  return parts.join('/');
}

/**
 * The archive of `entries`, with every parent directory made (0755) where no entry names it.
 * A later entry for the same path replaces an earlier one.
 */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const byPath = new Map<string, CpioEntry>();
  for (const e of entries) {
    const path = normalisePath(e.path);
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const have = byPath.get(dir);
      if (have === undefined) byPath.set(dir, { kind: 'dir', path: dir });
      else if (have.kind !== 'dir')
        throw new Error(`"${dir}" is a file in the initramfs and also a directory of "${path}".`);
    }
    byPath.set(path, { ...e, path });
  }
  // A file (or link) named by a later entry may have replaced a directory an earlier one needed.
  for (const path of byPath.keys()) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (byPath.get(dir)?.kind !== 'dir')
        throw new Error(`"${dir}" is a file in the initramfs and also a directory of "${path}".`);
    }
  }
  const chunks: Buffer[] = [];
  let ino = 1;
  const push = (name: string, mode: number, data: Uint8Array, nlink: number, rdev = [0, 0]) => {
    const nameBytes = enc.encode(`${name}\0`);
    const header =
      MAGIC +
      hex8(ino++) +
      hex8(mode) +
      hex8(0) + // uid
      hex8(0) + // gid
      hex8(nlink) +
      hex8(0) + // mtime: fixed, so the same inputs make the same archive
      hex8(data.length) +
      hex8(0) + // devmajor
      hex8(0) + // devminor
      hex8(rdev[0]) + // rdevmajor
      hex8(rdev[1]) + // rdevminor
      hex8(nameBytes.length) +
      hex8(0); // check
    chunks.push(Buffer.from(header, 'ascii'), Buffer.from(nameBytes));
    chunks.push(Buffer.alloc(pad4(header.length + nameBytes.length)));
    chunks.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.alloc(pad4(data.length)));
  };
  // Directories first, parents before children: the kernel makes each path as it reads it.
  const sorted = [...byPath.values()].sort((a, b) => a.path.localeCompare(b.path));
  for (const e of sorted) {
    if (e.kind === 'dir') push(e.path, S_IFDIR | ((e.mode ?? 0o755) & 0o7777), new Uint8Array(0), 2);
  }
  for (const e of sorted) {
    if (e.kind === 'file') push(e.path, S_IFREG | ((e.mode ?? 0o644) & 0o7777), e.data, 1);
    else if (e.kind === 'symlink') push(e.path, S_IFLNK | 0o777, enc.encode(e.target), 1);
    else if (e.kind === 'char') push(e.path, S_IFCHR | 0o600, new Uint8Array(0), 1, [e.major, e.minor]);
  }
  push(TRAILER, 0, new Uint8Array(0), 1);
  return Buffer.concat(chunks);
}

export interface CpioMember {
  readonly path: string;
  readonly mode: number;
  readonly data: Uint8Array;
}

/** Read a newc archive back (the tests' check of the writer, and a guard for hand-made ones). */
export function readCpio(archive: Uint8Array): CpioMember[] {
  const out: CpioMember[] = [];
  const dec = new TextDecoder();
  let at = 0;
  for (;;) {
    if (at + 110 > archive.length) throw new Error(`the cpio archive ends inside a header at byte ${at}.`);
    const header = dec.decode(archive.subarray(at, at + 110));
    if (!header.startsWith(MAGIC)) throw new Error(`no newc magic at byte ${at}.`);
    const field = (i: number) => {
      const text = header.slice(6 + i * 8, 14 + i * 8);
      if (!/^[0-9a-fA-F]{8}$/.test(text)) throw new Error(`cpio header field ${i} at byte ${at} is not hex.`);
      return Number.parseInt(text, 16);
    };
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    if (nameSize < 1) throw new Error(`a cpio name at byte ${at} is empty.`);
    const nameEnd = at + 110 + nameSize;
    if (nameEnd > archive.length) throw new Error(`the cpio archive ends inside a name at byte ${at}.`);
    const path = dec.decode(archive.subarray(at + 110, nameEnd - 1));
    const dataAt = nameEnd + pad4(110 + nameSize);
    if (dataAt + size > archive.length)
      throw new Error(`the cpio member "${path}" runs past the archive's end.`);
    if (path === TRAILER) return out;
    out.push({ path, mode, data: archive.subarray(dataAt, dataAt + size) });
    at = dataAt + size + pad4(size);
  }
}
