/**
 * A DeviceHost for tests: guest memory mapped at IOVA 0, a clock that moves only when told, a
 * logger that keeps every message, and eventfds that count their signals, so a check can see
 * which vectors fired.
 */
import { allocateSharedMemory, type Clock, type Logger, type SharedMemory, VfioError } from '@vfiokit/core';
import { type DeviceHost, DirtyTracker, HostDma, IovaMap, type IrqTrigger } from '@vfiokit/core/host';

export interface TestHostOptions {
  /** Bytes of guest memory mapped read/write at IOVA 0 (rounded up to pages). Default 1 MiB. */
  readonly memorySize?: number;
  /** Start time of the fake clock in nanoseconds. Default 0. */
  readonly startNs?: number;
  /** Device name used in DMA error messages. */
  readonly device?: string;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface LogEntry {
  readonly level: LogLevel;
  readonly message: string;
}

export interface RecordingLogger extends Logger {
  readonly entries: readonly LogEntry[];
  clear(): void;
}

export interface FakeClock extends Clock {
  /** Move time forward by `ns`, running every callback that falls due, in time order. */
  advance(ns: number): void;
  /** Callbacks scheduled and not yet run or cancelled. */
  readonly pending: number;
}

/** An eventfd as the test host models it: it counts signals. */
export interface CountingTrigger extends IrqTrigger {
  readonly fd: number;
  /** Times the trigger was signalled. */
  readonly count: number;
  /**
   * Whether the dispatcher let go of it (replaced, de-assigned or disabled); undefined where the
   * host cannot see that (a kernel device keeps its own reference).
   */
  readonly released: boolean | undefined;
}

export interface TestHost extends DeviceHost {
  readonly memory: SharedMemory;
  readonly iova: IovaMap;
  readonly dma: HostDma;
  readonly dirty: HostDma;
  readonly tracker: DirtyTracker;
  readonly clock: FakeClock;
  readonly log: RecordingLogger;
  /** A new counting eventfd; pass its number in SET_IRQS EVENTFD data. */
  createEventfd(): number;
  /** The counting trigger behind an fd made by createEventfd; undefined for other numbers. */
  eventfd(fd: number): CountingTrigger | undefined;
  resolveEventfd(fd: number): IrqTrigger;
}

/** First fd number handed out: above 0..2 so that stdio numbers are never valid eventfds here. */
const FIRST_EVENTFD = 100;

export function createTestHost(opts: TestHostOptions = {}): TestHost {
  const memory = allocateSharedMemory(opts.memorySize ?? 1 << 20);
  const iova = new IovaMap();
  iova.map({ iova: 0, size: memory.size, read: true, write: true, memory: memory.bytes });
  const tracker = new DirtyTracker();
  const dma = new HostDma({ map: iova, dirty: tracker, device: opts.device });
  const eventfds = new Map<number, CountingTrigger & { count: number; released: boolean }>();
  let nextFd = FIRST_EVENTFD;

  return {
    memory,
    iova,
    dma,
    dirty: dma,
    tracker,
    clock: createFakeClock(opts.startNs ?? 0),
    log: createRecordingLogger(),
    dmaLogging: {
      start: (pageSize, ranges) => {
        tracker.start(pageSize, ranges);
      },
      stop: () => tracker.stop(),
      report: (at, length, pageSize) => tracker.report(at, length, pageSize),
    },
    createEventfd(): number {
      const fd = nextFd++;
      const trigger = {
        fd,
        count: 0,
        released: false,
        signal() {
          trigger.count++;
        },
        release() {
          trigger.released = true;
        },
      };
      eventfds.set(fd, trigger);
      return fd;
    },
    eventfd: (fd) => eventfds.get(fd),
    resolveEventfd(fd: number): IrqTrigger {
      const trigger = eventfds.get(fd);
      if (!trigger) {
        throw new VfioError('EBADF', `${fd} is not an eventfd of this host.`, {
          hint: 'Make eventfds with createEventfd() and pass their numbers.',
        });
      }
      // A trigger handed out again is live again (the kernel takes a new reference).
      trigger.released = false;
      return trigger;
    },
  };
}

export function createFakeClock(startNs = 0): FakeClock {
  let now = startNs;
  let seq = 0;
  const timers: { at: number; seq: number; fn: () => void }[] = [];
  return {
    now: () => now,
    schedule(ns: number, fn: () => void): () => void {
      const timer = { at: now + Math.max(0, ns), seq: seq++, fn };
      timers.push(timer);
      return () => {
        const i = timers.indexOf(timer);
        if (i >= 0) timers.splice(i, 1);
      };
    },
    advance(ns: number): void {
      const end = now + Math.max(0, ns);
      for (;;) {
        let next = -1;
        for (let i = 0; i < timers.length; i++) {
          const t = timers[i];
          if (
            t.at <= end &&
            (next < 0 || t.at < timers[next].at || (t.at === timers[next].at && t.seq < timers[next].seq))
          ) {
            next = i;
          }
        }
        if (next < 0) break;
        const [t] = timers.splice(next, 1);
        now = Math.max(now, t.at);
        t.fn();
      }
      now = end;
    },
    get pending() {
      return timers.length;
    },
  };
}

export function createRecordingLogger(): RecordingLogger {
  const entries: LogEntry[] = [];
  const at = (level: LogLevel) => (message: string) => {
    entries.push({ level, message });
  };
  return {
    entries,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    clear: () => {
      entries.length = 0;
    },
  };
}
