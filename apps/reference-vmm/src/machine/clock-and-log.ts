/**
 * The time and logs the machine hands out: a monotonic real-time clock, a log that drops
 * everything (the defaults of MachineOptions), and each device's log, prefixed with its slot and
 * label.
 */
import type { Clock, Logger } from '@vfiokit/core';

/** A device's log: the machine's, each line prefixed with the slot and label. */
export class PrefixedLogger implements Logger {
  /** Made at the first line (most devices log nothing, and one is made at every attach). */
  #prefix: string | undefined;

  constructor(
    private readonly log: Logger,
    private readonly slot: string,
    private readonly label: string,
  ) {}

  private get prefix(): string {
    let p = this.#prefix;
    if (p === undefined) {
      p = `${this.slot} ${this.label}: `;
      this.#prefix = p;
    }
    return p;
  }

  debug(m: string): void {
    this.log.debug(this.prefix + m);
  }
  info(m: string): void {
    this.log.info(this.prefix + m);
  }
  warn(m: string): void {
    this.log.warn(this.prefix + m);
  }
  error(m: string): void {
    this.log.error(this.prefix + m);
  }
}

export function silentLogger(): Logger {
  const nothing = () => {};
  return { debug: nothing, info: nothing, warn: nothing, error: nothing };
}

/** A monotonic clock in nanoseconds; scheduled callbacks do not keep the process alive. */
export function realClock(): Clock {
  return {
    now: () => Number(process.hrtime.bigint()),
    schedule(ns: number, fn: () => void): () => void {
      const t = setTimeout(fn, Math.max(0, ns) / 1e6);
      t.unref?.();
      return () => clearTimeout(t);
    },
  };
}
