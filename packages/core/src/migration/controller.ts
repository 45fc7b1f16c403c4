/**
 * One device's migration: the current v2 state, the multi-arc walk to a requested state (the
 * loop a kernel driver runs around vfio_mig_get_next_state()), and the data stream the kernel
 * hands out as the migration data fd, with the checks the kernel drivers apply to it.
 *
 * There is one per device, not per open file: the kernel keeps the state with the device
 * (mtty's mdev_state->state, mlx5vf's mvdev->mig_state), and every file of the device sees it.
 * The stream remembers which file opened it, so that closing that file ends it. Every stream the
 * controller drops, whichever way, is closed once (MigrationStream.close): the kernel's drivers
 * release a migration file on each of these paths (mtty_disable_files at an arc that ends it, a
 * deferred reset or mtty_close; mlx5vf_disable_fds), so a stream frees what it holds when it
 * ends, not at the next arc.
 *
 * Choices, where the kernel leaves them to the driver:
 * - A failing arc leaves the device in ERROR (the header allows ERROR or the old state; we always
 *   choose ERROR) and drops the stream; only reset() leaves ERROR.
 * - An arc that must open a stream (into STOP_COPY, PRE_COPY or PRE_COPY_P2P from outside the
 *   saving states, into RESUMING) and returns none is a device failure: ERROR, EIO.
 * - In PRE_COPY and PRE_COPY_P2P a read that finds no data yet throws VfioError ENOMSG, as
 *   read() on the data fd fails with -ENOMSG; in STOP_COPY an empty array is the end of the stream.
 */
import type { Logger } from '../contract/context.js';
import {
  type MigrationOps,
  type MigrationStream,
  MigState,
  type PrecopyInfo,
} from '../contract/migration.js';
import { type ErrnoName, VfioError } from '../errors.js';
import { isSavingState, migPath, migStateName } from './fsm.js';

/** Whether the arc `from` → `to` opens a new data stream. */
export function arcOpensStream(from: MigState, to: MigState): boolean {
  if (to === MigState.RESUMING) return true;
  return isSavingState(to) && !isSavingState(from);
}

/** States that end any data stream. */
function closesStream(state: MigState): boolean {
  return state === MigState.STOP || state === MigState.RUNNING || state === MigState.RUNNING_P2P;
}

export class MigrationController {
  #state: MigState = MigState.RUNNING;
  #stream: MigrationStream | undefined;
  /** Whoever opened the stream (a device file), given to setState(); closeStream() asks for it. */
  #owner: object | undefined;

  /**
   * `log` takes the error of a stream's close() that throws (a plugin bug: the stream is dropped
   * all the same, as a kernel file's release cannot fail); without one that error is thrown to
   * the caller, once the controller has dropped the stream.
   */
  constructor(
    readonly device: string,
    readonly ops: MigrationOps,
    private readonly log?: Pick<Logger, 'error'>,
  ) {}

  /** The current state (VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE GET). */
  get state(): MigState {
    return this.#state;
  }

  /** The open data stream, if any. */
  get stream(): MigrationStream | undefined {
    return this.#stream;
  }

  /**
   * VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE SET: walk the kernel's arcs to `target`. Returns the
   * stream opened by the transition (the new data fd), or undefined when none was opened.
   * Throws EINVAL for a target that cannot be reached (state unchanged); a failing arc leaves
   * the device in ERROR and throws its error. `owner` (the device file asking) owns a stream the
   * walk opens: closeStream(owner) ends it.
   */
  setState(target: MigState, owner?: object): MigrationStream | undefined {
    const from = this.#state;
    if (from === MigState.ERROR) {
      throw new VfioError(
        'EINVAL',
        `migration state ${migStateName(target)} requested while the device is in ERROR.`,
        {
          device: this.device,
          hint: 'Reset the device (VFIO_DEVICE_RESET) to leave ERROR; it then runs again in RUNNING.',
        },
      );
    }
    let path: MigState[];
    try {
      path = migPath(this.ops.caps, from, target);
    } catch (err) {
      throw err instanceof VfioError ? err.at({ device: this.device }) : err;
    }
    let opened: MigrationStream | undefined;
    for (const to of path) {
      const at = this.#state;
      let result: MigrationStream | undefined;
      try {
        result = this.ops.step(at, to);
      } catch (err) {
        this.#fail();
        const code: ErrnoName = err instanceof VfioError ? err.code : 'EIO';
        const why =
          err instanceof VfioError ? err.problem : `${err instanceof Error ? err.message : String(err)}.`;
        throw new VfioError(code, `migration arc ${migStateName(at)} -> ${migStateName(to)} failed: ${why}`, {
          device: this.device,
          hint: 'The device is now in ERROR; reset it (VFIO_DEVICE_RESET) before migrating again.',
          cause: err,
        });
      }
      const returned = result ?? undefined;
      const opens = arcOpensStream(at, to);
      if (opens && returned === undefined) {
        this.#fail();
        throw new VfioError(
          'EIO',
          `migration arc ${migStateName(at)} -> ${migStateName(to)} opened no data stream.`,
          {
            device: this.device,
            hint: 'This is a bug in the plugin: an arc into STOP_COPY, PRE_COPY(_P2P) from a running or stopped state, or into RESUMING, must return a MigrationStream. The device is now in ERROR.',
          },
        );
      }
      this.#state = to;
      if (returned !== undefined && (opens || isSavingState(to))) {
        // The stream an arc opens, or a fresh one handed over within the saving states: it
        // replaces the old one.
        this.#setStream(returned, owner);
        opened = returned;
      }
      if (closesStream(to)) {
        const stray = returned !== this.#stream ? returned : undefined;
        this.#setStream(undefined, undefined);
        opened = undefined;
        // A stream returned by an arc into STOP, RUNNING or RUNNING_P2P is no data fd: nobody holds it.
        if (stray !== undefined) this.#close(stray);
      }
    }
    return opened;
  }

  /**
   * The reset path: back to RUNNING from any state, ERROR included; the stream is dropped and
   * closed. The device is not stepped through arcs: this follows a reset of the device (the
   * deferred reset of mtty_state_mutex_unlock, which runs mtty_disable_files, and of
   * mlx5vf_state_mutex_unlock, which runs mlx5vf_disable_fds), a vfio-pci driver's open
   * (mlx5vf_pci_open_device sets RUNNING after vfio_pci_core_enable) or a vfio-user client's
   * end (libvfio-user's do_device_reset at VFU_RESET_LOST_CONN).
   */
  reset(): void {
    this.#state = MigState.RUNNING;
    this.#setStream(undefined, undefined);
  }

  /**
   * The device file that had the data fd was closed: the stream ends with it, closed, and the
   * state stays (mtty_close's mtty_disable_files, mlx5vf_disable_fds). The next user of the device gets no
   * bytes of this one's stream: it must leave the saving or resuming state and enter it again
   * for a stream of its own. With `owner`, only a stream that owner opened ends; without, any.
   */
  closeStream(owner?: object): void {
    if (owner !== undefined && owner !== this.#owner) return;
    this.#setStream(undefined, undefined);
  }

  /** Make `stream` the current one; the one it replaces, if another, is closed. */
  #setStream(stream: MigrationStream | undefined, owner: object | undefined): void {
    const old = this.#stream;
    this.#stream = stream;
    this.#owner = stream === undefined ? undefined : owner;
    if (old !== undefined && old !== stream) this.#close(old);
  }

  /** Close a stream the controller no longer holds (MigrationStream.close). */
  #close(stream: MigrationStream): void {
    if (stream.close === undefined) return;
    try {
      stream.close();
    } catch (err) {
      const message =
        err instanceof VfioError ? err.problem : `${err instanceof Error ? err.message : String(err)}.`;
      const error = new VfioError('EIO', `closing a dropped migration data stream failed: ${message}`, {
        device: this.device,
        hint: 'This is a bug in the plugin: MigrationStream.close() must not throw. The stream was dropped all the same.',
        cause: err,
      });
      if (this.log === undefined) throw error;
      this.log.error(error.message);
    }
  }

  /** EBADF: in a saving or resuming state whose stream was closed with the device file. */
  #noStream(what: string): VfioError {
    return new VfioError(
      'EBADF',
      `no migration data stream is open to ${what} in state ${migStateName(this.#state)}: the device file that opened it was closed.`,
      {
        device: this.device,
        hint: 'Move the device to STOP (or RUNNING) and back into the saving or resuming state for a new stream.',
      },
    );
  }

  /**
   * read() on the data fd: at most `max` bytes of the saving stream. An empty array is the end of
   * the stream in STOP_COPY; in PRE_COPY(_P2P) no data throws ENOMSG (more may come later).
   */
  read(max: number): Uint8Array {
    const state = this.#state;
    if (!isSavingState(state)) {
      throw new VfioError('EINVAL', `cannot read migration data in state ${migStateName(state)}.`, {
        device: this.device,
        hint: 'Read the data stream only in STOP_COPY, PRE_COPY or PRE_COPY_P2P.',
      });
    }
    if (!Number.isSafeInteger(max) || max < 0) {
      throw new VfioError('EINVAL', `cannot read ${String(max)} bytes of migration data.`, {
        device: this.device,
        hint: 'Ask for a non-negative whole number of bytes.',
      });
    }
    const stream = this.#stream;
    if (stream === undefined) throw this.#noStream('read');
    if (stream.read === undefined) {
      throw new VfioError(
        'EINVAL',
        `the migration data stream in state ${migStateName(state)} cannot be read.`,
        {
          device: this.device,
          hint: 'This is a bug in the plugin: a saving stream must implement read().',
        },
      );
    }
    if (max === 0) return new Uint8Array(0);
    let chunk: Uint8Array;
    try {
      chunk = stream.read(max);
    } catch (err) {
      throw this.#streamError(err, 'read');
    }
    if (!(chunk instanceof Uint8Array) || chunk.length > max) {
      throw new VfioError(
        'EIO',
        `the migration stream returned ${describeChunk(chunk)} for a read of at most ${max} bytes.`,
        {
          device: this.device,
          hint: 'This is a bug in the plugin: read(max) must return a Uint8Array of at most max bytes.',
        },
      );
    }
    if (chunk.length === 0 && state !== MigState.STOP_COPY) {
      throw new VfioError('ENOMSG', `no pre-copy data is available yet in state ${migStateName(state)}.`, {
        device: this.device,
        hint: 'This is a temporary end of the stream: read again later, or move to STOP_COPY for the rest.',
      });
    }
    return chunk;
  }

  /** write() on the data fd of a RESUMING device; returns the bytes accepted. */
  write(chunk: Uint8Array): number {
    const state = this.#state;
    if (state !== MigState.RESUMING) {
      throw new VfioError('EINVAL', `cannot write migration data in state ${migStateName(state)}.`, {
        device: this.device,
        hint: 'Write the data stream only in RESUMING.',
      });
    }
    if (!(chunk instanceof Uint8Array)) {
      throw new VfioError('EINVAL', 'migration data must be a Uint8Array.', { device: this.device });
    }
    const stream = this.#stream;
    if (stream === undefined) throw this.#noStream('write');
    if (stream.write === undefined) {
      throw new VfioError('EINVAL', 'the RESUMING data stream cannot be written.', {
        device: this.device,
        hint: 'This is a bug in the plugin: a resuming stream must implement write().',
      });
    }
    try {
      stream.write(chunk);
    } catch (err) {
      throw this.#streamError(err, 'write');
    }
    return chunk.length;
  }

  /** VFIO_MIG_GET_PRECOPY_INFO on the data fd: only in PRE_COPY and PRE_COPY_P2P. */
  precopyInfo(): PrecopyInfo {
    const state = this.#state;
    if (state !== MigState.PRE_COPY && state !== MigState.PRE_COPY_P2P) {
      throw new VfioError('EINVAL', `VFIO_MIG_GET_PRECOPY_INFO in state ${migStateName(state)}.`, {
        device: this.device,
        hint: 'Pre-copy information exists only in PRE_COPY and PRE_COPY_P2P.',
      });
    }
    const stream = this.#stream;
    if (stream === undefined) throw this.#noStream('ask for pre-copy information on');
    if (stream.precopyInfo === undefined) {
      throw new VfioError('ENOTTY', 'the pre-copy data stream does not report VFIO_MIG_GET_PRECOPY_INFO.', {
        device: this.device,
        hint: 'This is a bug in the plugin: a device with PRE_COPY must implement precopyInfo().',
      });
    }
    let info: PrecopyInfo;
    try {
      info = stream.precopyInfo();
    } catch (err) {
      throw this.#streamError(err, 'precopy info');
    }
    if (!isByteCount(info?.initialBytes) || !isByteCount(info?.dirtyBytes)) {
      throw new VfioError(
        'EIO',
        'the pre-copy stream reported byte counts that are not whole non-negative numbers.',
        {
          device: this.device,
          hint: 'This is a bug in the plugin: initialBytes and dirtyBytes must be u64 byte counts.',
        },
      );
    }
    return { initialBytes: info.initialBytes, dirtyBytes: info.dirtyBytes };
  }

  /** VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: the device's estimate of the STOP_COPY length. */
  stopCopySize(): number {
    if (this.ops.stopCopySize === undefined) {
      throw new VfioError('ENOTTY', 'the device does not estimate its STOP_COPY size.', {
        device: this.device,
        hint: 'Implement MigrationOps.stopCopySize() to answer VFIO_DEVICE_FEATURE_MIG_DATA_SIZE.',
      });
    }
    let size: number;
    try {
      size = this.ops.stopCopySize();
    } catch (err) {
      throw this.#streamError(err, 'data size');
    }
    if (!isByteCount(size)) {
      throw new VfioError('EIO', `the device estimated its STOP_COPY size as ${String(size)}.`, {
        device: this.device,
        hint: 'This is a bug in the plugin: stopCopySize() must return a whole non-negative number.',
      });
    }
    return size;
  }

  #fail(): void {
    this.#state = MigState.ERROR;
    this.#setStream(undefined, undefined);
  }

  #streamError(err: unknown, what: string): VfioError {
    if (err instanceof VfioError) return err.at({ device: this.device });
    const message = err instanceof Error ? err.message : String(err);
    return new VfioError('EIO', `the migration ${what} failed: ${message}.`, {
      device: this.device,
      hint: 'This is a bug in the plugin; the migration state is unchanged.',
      cause: err,
    });
  }
}

function isByteCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function describeChunk(chunk: unknown): string {
  return chunk instanceof Uint8Array ? `${chunk.length} bytes` : `a ${typeof chunk}`;
}
