/**
 * UNIX socket paths the CLI listens on (`serve --socket`, `migrate --incoming`): checked before
 * bind() so each failure says what is wrong with the path, and created owner-only where the CLI
 * itself binds.
 */
import { lstatSync, statSync } from 'node:fs';
import type { Server } from 'node:net';
import { dirname } from 'node:path';
import { VfioError } from '@vfiokit/core';

/** A missing folder, a folder that is a file, or a file that is not a socket: say it plainly before bind() does vaguely. */
export function checkSocketPath(path: string): void {
  const dir = dirname(path);
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new VfioError('ENOENT', `the folder ${dir} of the socket path ${path} does not exist.`, {
      hint: 'Create the folder first, or give a socket path in a folder that exists.',
    });
  }
  if (!isDir)
    throw new VfioError(
      'ENOENT',
      `the socket path ${path} is inside ${dir}, which is a file, not a folder.`,
      {
        hint: 'Give a socket path in a folder.',
      },
    );
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) {
    throw new VfioError('EEXIST', `the socket path ${path} is in use by a file that is not a socket.`, {
      hint: 'Give a path where nothing exists yet, or remove that file.',
    });
  }
}

/** bind() failed with EADDRINUSE: a socket file is there (a server listens, or one that stopped without removing it). */
export function addressInUse(path: string, cause: unknown): VfioError {
  return new VfioError('EADDRINUSE', `the socket path ${path} is in use: a socket file is already there.`, {
    hint: 'If a server still listens there, stop it or give another path; if none does (one that was killed left its socket behind), remove the file.',
    cause,
  });
}

/**
 * Listen on `path` so that only this user (and root) can connect: the socket is bound with umask
 * 0177, so it is created 0600 and never reachable by others, not even for a moment.
 */
export async function listenOwnerOnly(server: Server, path: string): Promise<void> {
  checkSocketPath(path);
  await new Promise<void>((ok, fail) => {
    const onError = (err: NodeJS.ErrnoException) => {
      fail(err.code === 'EADDRINUSE' ? addressInUse(path, err) : listenFailed(path, err));
    };
    server.once('error', onError);
    // bind() happens inside listen() itself, so the umask covers exactly the socket's creation.
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', onError);
        ok();
      });
    } finally {
      process.umask(umask);
    }
  });
}

function listenFailed(path: string, err: NodeJS.ErrnoException): VfioError {
  const code = err.code === 'EACCES' || err.code === 'ENOENT' || err.code === 'EPERM' ? err.code : 'EIO';
  return new VfioError(code, `cannot listen on the socket path ${path}: ${err.message}.`, {
    hint: 'Give a socket path in a folder this user may write.',
    cause: err,
  });
}
