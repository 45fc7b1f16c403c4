/** The migration half of the contract (VFIO migration v2). */

/** enum vfio_device_mig_state, linux/vfio.h */
export enum MigState {
  ERROR = 0,
  STOP = 1,
  RUNNING = 2,
  STOP_COPY = 3,
  RESUMING = 4,
  RUNNING_P2P = 5,
  PRE_COPY = 6,
  PRE_COPY_P2P = 7,
}

export interface MigrationCaps {
  /** VFIO_MIGRATION_STOP_COPY: mandatory for migration support. */
  readonly stopCopy: true;
  /** VFIO_MIGRATION_P2P: RUNNING_P2P exists. */
  readonly p2p: boolean;
  /** VFIO_MIGRATION_PRE_COPY: PRE_COPY exists (and PRE_COPY_P2P with p2p). */
  readonly preCopy: boolean;
}

export interface PrecopyInfo {
  readonly initialBytes: number;
  readonly dirtyBytes: number;
}

/**
 * The data stream of one migration: read from the saving device (STOP_COPY, PRE_COPY) or
 * written to the resuming one (RESUMING). It is the kernel's data fd.
 */
export interface MigrationStream {
  /**
   * Next chunk of at most `max` bytes; an empty array is the end of the stream. In PRE_COPY an
   * empty array is a temporary end (the kernel's -ENOMSG): more may appear later.
   */
  read?(max: number): Uint8Array;
  /** Accept the next chunk of a RESUMING stream; throw a VfioError for malformed data. */
  write?(chunk: Uint8Array): void;
  /** VFIO_MIG_GET_PRECOPY_INFO; only asked in PRE_COPY and PRE_COPY_P2P. */
  precopyInfo?(): PrecopyInfo;
  /**
   * The stream was dropped: release what it holds (dirty-page tracking, buffers, threads). The
   * core calls it at most once, whichever way the stream ends: an arc into STOP, RUNNING or
   * RUNNING_P2P, a failing arc, a reset, a fresh stream a step hands over in its place (this one
   * is closed after that one was made), or the close of the device file that opened it, after
   * which the state stays (mtty_disable_files, mlx5vf_disable_fds). It is never called for the
   * stream in use, and nothing is asked of the stream after it. It must not throw: the release
   * of a kernel file cannot fail (the core logs a throw and goes on).
   */
  close?(): void;
}

/**
 * What a device implements for migration: one single-step arc at a time. The core's state
 * machine walks multi-step transitions (vfio_mig_get_next_state) and calls `step` for each arc.
 */
export interface MigrationOps {
  readonly caps: MigrationCaps;
  /**
   * Perform the direct arc `from` → `to`. Return the new data stream when the arc opens one
   * (into STOP_COPY, PRE_COPY or PRE_COPY_P2P from a non-saving state, into RESUMING). Throwing
   * puts the device in ERROR. RESUMING → STOP must throw if the written stream was incomplete.
   */
  step(from: MigState, to: MigState): MigrationStream | undefined;
  /** VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: estimated STOP_COPY length in bytes. */
  stopCopySize?(): number;
}
