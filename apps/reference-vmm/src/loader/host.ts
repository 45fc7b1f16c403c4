/** The host services a plugin's probe gets: a monotonic clock and a logger. */
import type { Clock, Logger } from '@vfiokit/core';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A logger that writes `level: message` lines at or above `level` to `write`, and keeps every entry. */
export interface CollectingLogger extends Logger {
  readonly entries: readonly { readonly level: LogLevel; readonly message: string }[];
}

export function createLogger(write: (line: string) => void, level: LogLevel = 'warn'): CollectingLogger {
  const entries: { level: LogLevel; message: string }[] = [];
  const at = (l: LogLevel) => (message: string) => {
    entries.push({ level: l, message });
    if (RANK[l] >= RANK[level]) write(`${l}: ${message}`);
  };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Wall-clock monotonic time in nanoseconds, timers from the event loop. */
export const systemClock: Clock = {
  now: () => Number(process.hrtime.bigint()),
  schedule(ns: number, fn: () => void): () => void {
    const t = setTimeout(fn, Math.max(0, Math.ceil(ns / 1e6)));
    t.unref?.();
    return () => clearTimeout(t);
  },
};
