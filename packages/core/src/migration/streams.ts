/**
 * The parts of a device's migration that are the same in every plugin: which arc opens, finishes
 * or loads a data stream (the arc table of samples/vfio-mdev/mtty.c mtty_step_state and of the
 * kernel's vfio-pci variant drivers), the queue of bytes a saving stream hands out, and the
 * refusal a resuming stream keeps once it found a problem. A plugin supplies its own stream
 * format: how to save (a header, pages, device state) and how to check and load what arrives.
 */

import type { MigrationStream } from '../contract/migration.js';
import { MigState } from '../contract/migration.js';
import { VfioError } from '../errors.js';

/**
 * The saving side of a data stream, as StreamArcs drives it. Its close() (MigrationStream's)
 * runs once when the stream is dropped: back to STOP or RUNNING, a new stream, a reset, a failing
 * arc, or the close of the device file that opened it.
 */
export interface SavingStream extends MigrationStream {
  /** PRE_COPY_P2P → STOP_COPY: the device stopped; finish the stream on the same data fd. */
  finalize(): void;
}

/** The resuming side of a data stream, as StreamArcs drives it; closed once, like a saving stream. */
export interface ResumingStream<T> extends MigrationStream {
  /** At RESUMING → STOP: what to load; throw (EINVAL) when the stream was refused or ended early. */
  complete(): T;
}

/** What a device gives StreamArcs: how to open each side of a stream and how to load one. */
export interface StreamEnds<S extends SavingStream, R extends ResumingStream<T>, T> {
  /** A saving stream: `precopy` for RUNNING → PRE_COPY (the device runs on), else STOP → STOP_COPY. */
  save(precopy: boolean): S;
  /** A resuming stream for STOP → RESUMING. */
  resume(): R;
  /** Load what a complete resuming stream carried (RESUMING → STOP). */
  load(state: T): void;
}

/**
 * A stream StreamArcs opened and the data fd the core holds for it. The core's close() of the
 * data fd and StreamArcs' own end of the stream (an arc that ends it, a reset) both come to
 * end(): the device's stream is closed once, then forgotten (`stream` undefined), while StreamArcs
 * still knows that the state had a stream and that it was closed.
 */
class OpenStream<T extends MigrationStream> {
  stream: T | undefined;
  /** What the core holds: the stream's own read, write and precopyInfo, and a close that ends it. */
  readonly fd: MigrationStream;

  constructor(stream: T) {
    this.stream = stream;
    const fd: MigrationStream = { close: () => this.end() };
    if (stream.read) fd.read = stream.read.bind(stream);
    if (stream.write) fd.write = stream.write.bind(stream);
    if (stream.precopyInfo) fd.precopyInfo = stream.precopyInfo.bind(stream);
    this.fd = fd;
  }

  /** Close the device's stream, once, and let go of it. */
  end(): void {
    const stream = this.stream;
    if (stream === undefined) return;
    this.stream = undefined;
    stream.close?.();
  }
}

/**
 * The arcs of a device with STOP_COPY, P2P and PRE_COPY, one at a time (the core walks
 * multi-arc transitions): RUNNING → PRE_COPY and RUNNING_P2P → PRE_COPY_P2P open a saving
 * stream while the device runs, STOP → STOP_COPY opens one of a stopped device,
 * PRE_COPY_P2P → STOP_COPY finishes the open one, STOP → RESUMING opens a resuming stream and
 * RESUMING → STOP loads it; an arc into STOP, RUNNING or RUNNING_P2P ends the saving stream.
 * Every other arc (RUNNING ⇄ RUNNING_P2P, PRE_COPY ⇄ PRE_COPY_P2P, ...) changes no stream.
 *
 * The core gets a data fd for each stream, whose close() ends it: a stream the core drops behind
 * the arcs (the device file that opened it was closed, a failing arc) is closed then and
 * forgotten, and the arcs that would have used it find none (mtty_disable_files sets
 * saving_migf and resuming_migf to NULL).
 */
export class StreamArcs<S extends SavingStream, R extends ResumingStream<T>, T> {
  #saving: OpenStream<S> | undefined;
  #resuming: OpenStream<R> | undefined;

  constructor(
    private readonly device: string,
    private readonly ends: StreamEnds<S, R, T>,
  ) {}

  /** The open saving stream, if any. */
  get saving(): S | undefined {
    return this.#saving?.stream;
  }

  /** The open resuming stream, if any. */
  get resuming(): R | undefined {
    return this.#resuming?.stream;
  }

  /** One arc; returns the data fd of the stream it opens, if it opens one. */
  step(from: MigState, to: MigState): MigrationStream | undefined {
    if (
      (from === MigState.RUNNING && to === MigState.PRE_COPY) ||
      (from === MigState.RUNNING_P2P && to === MigState.PRE_COPY_P2P)
    ) {
      return this.openSaving(true);
    }
    if (from === MigState.STOP && to === MigState.STOP_COPY) return this.openSaving(false);
    if (from === MigState.PRE_COPY_P2P && to === MigState.STOP_COPY) {
      const open = this.#saving;
      if (!open)
        throw new VfioError('EIO', 'PRE_COPY_P2P has no stream to complete.', { device: this.device });
      // Closed with the device file that opened it: nothing to finish, and the core answers
      // reads in STOP_COPY with EBADF until the device leaves it and opens a stream again.
      open.stream?.finalize(); // the same data fd carries on
      return undefined;
    }
    if (from === MigState.STOP && to === MigState.RESUMING) {
      this.dropResuming();
      this.#resuming = new OpenStream(this.ends.resume());
      return this.#resuming.fd;
    }
    if (from === MigState.RESUMING && to === MigState.STOP) {
      const open = this.#resuming;
      this.#resuming = undefined;
      if (!open) throw new VfioError('EIO', 'RESUMING has no stream to load.', { device: this.device });
      const stream = open.stream;
      if (stream === undefined) {
        throw new VfioError(
          'EBADF',
          'the resuming stream was closed with the device file that opened it, so there is nothing to load.',
          {
            device: this.device,
            hint: 'Reset the device, then enter RESUMING again and write the whole stream before moving to STOP.',
          },
        );
      }
      this.ends.load(stream.complete());
      open.end(); // loaded: the stream ends (mtty_disable_files after mtty_load_state)
      return undefined;
    }
    if (to === MigState.STOP || to === MigState.RUNNING || to === MigState.RUNNING_P2P) this.dropSaving();
    return undefined;
  }

  /** End both streams (a device reset). */
  reset(): void {
    this.dropSaving();
    this.dropResuming();
  }

  private openSaving(precopy: boolean): MigrationStream {
    this.dropSaving();
    this.#saving = new OpenStream(this.ends.save(precopy));
    return this.#saving.fd;
  }

  private dropSaving(): void {
    this.#saving?.end();
    this.#saving = undefined;
  }

  private dropResuming(): void {
    this.#resuming?.end();
    this.#resuming = undefined;
  }
}

/**
 * The bytes a saving stream has made and the user has not read yet, in the order they were
 * made. A chunk is handed out as it was pushed (no copy) or, when the reader asks for fewer
 * bytes, a view of its head.
 */
export class StreamQueue {
  private readonly chunks: Uint8Array[] = [];
  #queued = 0;

  /** Bytes waiting to be read. */
  get queued(): number {
    return this.#queued;
  }

  get empty(): boolean {
    return this.chunks.length === 0;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.#queued += chunk.length;
  }

  /** The next at most `max` bytes; an empty array when nothing waits. */
  read(max: number): Uint8Array {
    const head = this.chunks[0];
    if (head === undefined || max <= 0) return new Uint8Array(0);
    if (head.length <= max) {
      this.chunks.shift();
      this.#queued -= head.length;
      return head;
    }
    this.chunks[0] = head.subarray(max);
    this.#queued -= max;
    return head.subarray(0, max);
  }
}

/**
 * The refusal of a resuming stream: "migration data refused: <problem>." naming the device, with
 * a hint on what to send instead. The first problem that makes the stream unusable is kept, so
 * every later write and the final complete() are refused with it.
 */
export class StreamRefusal {
  #problem: string | undefined;

  constructor(
    private readonly device: string,
    private readonly hint: string,
  ) {}

  /** The kept problem, if the stream was refused. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /** Throw the kept refusal again, if there is one. */
  check(): void {
    if (this.#problem !== undefined) throw this.error(this.#problem);
  }

  /** Keep `problem` and throw it: the stream is unusable from here on. */
  refuse(problem: string): never {
    this.#problem = problem;
    throw this.error(problem);
  }

  /** The error for `problem`, without keeping it (a write that is refused alone, an early end). */
  error(problem: string): VfioError {
    return new VfioError('EINVAL', `migration data refused: ${problem}.`, {
      device: this.device,
      hint: this.hint,
    });
  }
}
