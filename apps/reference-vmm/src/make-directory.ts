/**
 * Creating a folder the VMM writes into (`--save-frames`, the mdev state folder), one level at a
 * time. Node's recursive mkdir retries forever when mkdir answers ENOENT for a folder whose parent
 * exists, as it does under /proc and /sys; here every level is tried once, so the work is bounded
 * by the path's length, and each failure says which level and why.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type ErrnoName, VfioError } from '@vfiokit/core';

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function failure(what: string, path: string, at: string, err: unknown): VfioError {
  const code = errnoOf(err);
  const known: Partial<Record<string, [ErrnoName, string, string]>> = {
    EACCES: ['EACCES', 'this user may not create folders there', 'Give a folder this user may write.'],
    EPERM: [
      'EPERM',
      'the file system there does not allow new folders',
      'Give a folder on an ordinary file system.',
    ],
    EROFS: ['EPERM', 'the file system there is read-only', 'Give a folder on a writable file system.'],
    ENOSPC: ['ENOSPC', 'the file system is full', 'Free some space or give another folder.'],
    // mkdir answers ENOENT although the parent exists under /proc and /sys: no new entries there.
    ENOENT: [
      'ENOENT',
      `the file system of ${dirname(at)} does not allow new folders (mkdir answers ENOENT although it exists, as /proc and /sys do)`,
      'Give a folder on an ordinary file system.',
    ],
  };
  const k = code ? known[code] : undefined;
  const [errno, why, hint] = k ?? ['EIO', `mkdir failed (${code ?? String(err)})`, 'Give another folder.'];
  return new VfioError(
    errno,
    `cannot create ${what} ${path}: ${at === resolve(path) ? '' : `making ${at}: `}${why}.`,
    {
      hint,
      cause: err,
    },
  );
}

/** Make `path` (and the folders above it that are missing); `what` names it in errors (`the frames folder`). */
export function makeDirectory(path: string, what: string): void {
  const target = resolve(path);
  const missing: string[] = [];
  for (let p = target; ; ) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (err) {
      // Missing (ENOENT), or below a file (ENOTDIR, found further up): go up a level.
      const code = errnoOf(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw failure(what, path, p, err);
      missing.unshift(p);
      const up = dirname(p);
      if (up === p) throw failure(what, path, p, err);
      p = up;
      continue;
    }
    if (!isDir) {
      throw new VfioError(
        p === target ? 'EEXIST' : 'ENOTDIR',
        p === target
          ? `cannot create ${what} ${path}: a file that is not a folder is there.`
          : `cannot create ${what} ${path}: ${p} is a file, not a folder.`,
        {
          hint:
            p === target
              ? 'Give the path of a folder, or remove that file.'
              : 'Give a path whose every level is a folder.',
        },
      );
    }
    break;
  }
  for (const m of missing) {
    try {
      mkdirSync(m);
    } catch (err) {
      // Made meanwhile by someone else: fine, as long as it is a folder.
      if (errnoOf(err) === 'EEXIST' && statSync(m, { throwIfNoEntry: false })?.isDirectory()) continue;
      throw failure(what, path, m, err);
    }
  }
}
