/**
 * Every QEMU and `vfiokit serve` a run starts, so a run that is interrupted (SIGINT, SIGTERM) or
 * dies leaves none of them behind: QEMU is killed outright, a server gets SIGTERM so that it
 * ends its session and removes its socket file as it does when QEMU leaves.
 */
import type { ChildProcess } from 'node:child_process';

const live = new Map<ChildProcess, NodeJS.Signals>();

/** Keep `child` until it exits; `signal` is what stops it when the run is interrupted. */
export function adopt<T extends ChildProcess>(child: T, signal: NodeJS.Signals): T {
  live.set(child, signal);
  const forget = () => live.delete(child);
  child.once('exit', forget);
  child.once('error', forget);
  return child;
}

/** The adopted children still running. */
export function liveChildren(): number {
  let n = 0;
  for (const c of live.keys()) if (c.exitCode === null && c.signalCode === null) n++;
  return n;
}

/** Stop every adopted child that still runs (synchronous: safe in an 'exit' handler); how many. */
export function stopAll(): number {
  let n = 0;
  for (const [c, signal] of live) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    try {
      if (c.kill(signal)) n++;
    } catch {
      // already gone between the check and the kill
    }
  }
  live.clear();
  return n;
}

/**
 * On SIGINT or SIGTERM: stop the children, say so in one line and exit 130 or 143 (the shell's
 * numbers for those signals); on any other exit of this process, stop them silently.
 */
export function stopChildrenOnExit(log: (line: string) => void): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      const n = stopAll();
      log(
        `interrupted by ${sig}: stopped ${n} QEMU and server process${n === 1 ? '' : 'es'}; no report written.`,
      );
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  process.once('exit', () => {
    stopAll();
  });
}
