/**
 * Promises that plugin code leaves rejected with nobody to catch them: a guest driver that starts
 * work it never awaits, say. Node would end the process on the first one with a raw stack. While
 * plugin code runs inside `watchRejections`, such a rejection is taken instead and handed back
 * with the code's own result, so the runner reports it against the driver that left it. One that
 * surfaces later (from a timer long after the code returned) is the executable's to report
 * (cli.ts).
 */

type Sink = (reason: unknown) => void;

const sinks: Sink[] = [];

function onRejection(reason: unknown): void {
  // Windows nest (a driver's program inside a run): the innermost one is the code that ran last.
  sinks[sinks.length - 1]?.(reason);
}

/** True while some plugin code runs inside watchRejections (its rejections are taken there). */
export function watchingRejections(): boolean {
  return sinks.length > 0;
}

export interface Watched<T> {
  readonly result: PromiseSettledResult<T>;
  /** The reasons of the rejections nobody handled while the code ran (and one turn after it settled). */
  readonly rejections: readonly unknown[];
}

/** Run plugin code, catching what it throws or rejects and what it leaves rejected behind. */
export async function watchRejections<T>(fn: () => Promise<T> | T): Promise<Watched<T>> {
  const rejections: unknown[] = [];
  const sink: Sink = (r) => rejections.push(r);
  if (sinks.length === 0) process.on('unhandledRejection', onRejection);
  sinks.push(sink);
  let result: PromiseSettledResult<T>;
  try {
    result = { status: 'fulfilled', value: await fn() };
  } catch (reason) {
    result = { status: 'rejected', reason };
  }
  try {
    // Node reports a rejection nobody handled once the microtasks have run: wait one turn for them.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    sinks.splice(sinks.lastIndexOf(sink), 1);
    if (sinks.length === 0) process.off('unhandledRejection', onRejection);
  }
  return { result, rejections };
}

/** A rejection's reason as one sentence: the message, never the stack. */
export function reasonText(reason: unknown): string {
  return (reason instanceof Error ? reason.message : String(reason)).split('\n')[0];
}
