/**
 * Where the guests of one boot that run at once (the boot's own and its companions) wait for
 * each other and for the host: each QEMU connects its third UART (the guest's ttyS2) to this
 * UNIX socket, and the guest's lib.sh writes one line and reads the answer:
 *
 *   meet <name>   answered `go <name>` once every guest still running has met <name> (a guest
 *                 whose QEMU has exited counts as arrived: it will never come);
 *   wait <name>   answered `go <name>` once a host check released <name> (release()).
 *
 * A line that is neither is ignored. Names are words ([A-Za-z0-9_.-]).
 */
import { createServer, type Server, type Socket } from 'node:net';

export interface Rendezvous {
  readonly socketPath: string;
  /** Answer every guest waiting for `name`, now and later. */
  release(name: string): void;
  /** One more guest QEMU was started (it connects when it starts). */
  guestStarted(): void;
  /** A guest QEMU exited: it meets nothing any more. */
  guestExited(): void;
  /** Names met or waited for so far, with how many guests reached each (for reports). */
  reached(): ReadonlyMap<string, number>;
  close(): Promise<void>;
}

const NAME = /^[A-Za-z0-9_.-]+$/;

export async function startRendezvous(socketPath: string): Promise<Rendezvous> {
  /** Guests started and not exited: the ones a meeting waits for. */
  let running = 0;
  const released = new Set<string>();
  /** Per connection: the names it has reached (met or waited for). */
  const reachedBy = new Map<Socket, Set<string>>();
  const waiting = new Map<Socket, { kind: 'meet' | 'wait'; name: string }>();
  const counts = new Map<string, number>();

  const answer = (sock: Socket, name: string) => {
    waiting.delete(sock);
    if (!sock.destroyed) sock.write(`go ${name}\n`);
  };
  /** Release every meeting that all running guests have reached. */
  const settle = () => {
    for (const [sock, w] of [...waiting]) {
      if (w.kind === 'wait') {
        if (released.has(w.name)) answer(sock, w.name);
        continue;
      }
      const arrived = [...reachedBy.values()].filter((names) => names.has(w.name)).length;
      // Every connected guest reached it, and every running guest is connected.
      const open = [...reachedBy.keys()].filter((s) => !s.destroyed).length;
      if (arrived >= open && open >= running) answer(sock, w.name);
    }
  };

  const server: Server = createServer((sock) => {
    reachedBy.set(sock, new Set());
    let pending = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      pending += chunk;
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const line = pending.slice(0, nl).replace(/\r$/, '').trim();
        pending = pending.slice(nl + 1);
        const [kind, name, ...rest] = line.split(/\s+/);
        if ((kind !== 'meet' && kind !== 'wait') || name === undefined || rest.length > 0 || !NAME.test(name))
          continue;
        reachedBy.get(sock)!.add(name);
        counts.set(name, (counts.get(name) ?? 0) + 1);
        waiting.set(sock, { kind, name });
      }
      settle();
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      waiting.delete(sock);
      reachedBy.delete(sock);
      settle();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    socketPath,
    release(name) {
      released.add(name);
      settle();
    },
    guestStarted() {
      running++;
    },
    guestExited() {
      running = Math.max(0, running - 1);
      settle();
    },
    reached: () => counts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of reachedBy.keys()) s.destroy();
        server.close(() => resolve());
      }),
  };
}
