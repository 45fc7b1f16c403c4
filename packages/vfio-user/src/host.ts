/** Host services shared by the server and the client: a real clock and loggers. */
import type { Clock, Logger } from '@vfiokit/core';

/** Monotonic nanoseconds from process.hrtime; callbacks through setTimeout (millisecond grain). */
export function createRealClock(): Clock {
  return {
    now: () => Number(process.hrtime.bigint()),
    schedule(ns: number, fn: () => void): () => void {
      const timer = setTimeout(fn, Math.max(0, Math.ceil(ns / 1e6)));
      timer.unref?.();
      return () => clearTimeout(timer);
    },
  };
}

/** Drops everything: for tests and benchmarks that provoke errors on purpose. */
export const silentLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});

/** Warnings and errors to stderr, prefixed with `name`; debug and info are dropped. */
export function stderrLogger(name = 'vfio-user'): Logger {
  const write = (level: string, m: string) => process.stderr.write(`${name}: ${level}: ${m}\n`);
  return {
    debug() {},
    info() {},
    warn: (m) => write('warning', m),
    error: (m) => write('error', m),
  };
}
