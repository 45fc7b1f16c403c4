/** What both halves of a live migration share: the devices that move, the knobs and the outcome. */

import type { GuestDriver, GuestDriverResult, GuestMigrationProgram, ProbedDevice } from '@vfiokit/core';
import { PAGE_SIZE } from '@vfiokit/core';
import type { DeviceFile } from '@vfiokit/core/host';
import type { Machine } from '../machine/index.js';

/** Version 2: the destination boots its own configuration and compares the source's description with it. */
export const MIGRATION_PROTOCOL_VERSION = 2;
/** Bytes read from a device's data fd (or of RAM) per message. */
export const CHUNK_BYTES = 1 << 20;
/** The page size, under the name this module's users know (PAGE_SIZE in @vfiokit/core). */
export const PAGE = PAGE_SIZE;
/** How long one end waits for the other's next message before it gives up (MigrationTuning.idleMs). */
export const DEFAULT_IDLE_MS = 30_000;

/** One device that migrates, with the guest program that drives it. */
export interface MigratingDevice {
  readonly slot: string;
  /** The plugin's name (`@vfiokit/nvidia-vgpu`), as its definePlugin says. */
  readonly plugin: string;
  /** The mdev type id (`nvidia-319`). */
  readonly type: string;
  readonly file: DeviceFile;
  readonly probed: ProbedDevice;
  readonly driver: GuestDriver & { readonly migration: GuestMigrationProgram };
}

/** A machine booted for a migration: the source's, or the destination's from its own configuration. */
export interface MigratingMachine {
  readonly machine: Machine;
  readonly devices: readonly MigratingDevice[];
}

export interface MigrationTuning {
  /** Bytes sent per pre-copy round before the guest runs again (default 1 MiB). */
  readonly roundBytes?: number;
  /** Stop iterating when the first pass is done and at most this much is dirty (default 64 KiB). */
  readonly stopBytes?: number;
  /** Give up iterating after this many rounds and stop-copy the rest (default 200). */
  readonly maxRounds?: number;
  /** For tests: flip the byte at this offset of the first device's stream on its way out. */
  readonly corruptAt?: number;
  /**
   * Give up when the peer sends nothing for this long (default 30 s). The source waits twice as
   * long for the destination's verdict, so a destination that times out first can still say so.
   */
  readonly idleMs?: number;
}

export interface MigrationProgress {
  readonly sent: number;
  /** Estimated bytes still to send (precopy info, MIG_DATA_SIZE and unsent RAM). */
  readonly pending: number;
  readonly rounds: number;
  /** Bytes dirtied per second while iterating (device dirty bytes and RAM). */
  readonly dirtyRate: number;
  readonly phase: 'pre-copy' | 'stop-copy' | 'resuming';
}

export interface GuestVerdict {
  readonly slot: string;
  readonly driver: string;
  readonly result: GuestDriverResult;
}

export interface MigrationOutcome {
  readonly ok: boolean;
  readonly totalMs: number;
  /** From the vCPUs stopping on the source to the devices RUNNING on the destination. */
  readonly downtimeMs: number;
  readonly rounds: number;
  readonly bytes: { readonly device: number; readonly ram: number; readonly stopCopy: number };
  readonly preCopy: boolean;
  /** The vCPUs stopped on the source (the guest's last act, leaveInFlight, ran there). */
  readonly stopped: boolean;
  /**
   * The guest resumed on the destination, or may have (the whole state was sent and no refusal
   * came back): the source's devices stay stopped and the source must not run the guest again.
   */
  readonly resumed: boolean;
  /** With `corruptAt`: whether that offset was inside the first device's stream (false: nothing was flipped). */
  readonly corrupted?: boolean;
  /** The destination's verdict on each guest program, or the problem it reported. */
  readonly results: readonly GuestVerdict[];
  readonly error?: string;
}

/** What the destination did with one incoming migration. */
export interface IncomingOutcome {
  readonly ok: boolean;
  /** The devices took the state and went RUNNING here (RESUMED was sent): the guest lives here now. */
  readonly resumed: boolean;
  readonly error?: string;
  readonly results: readonly GuestVerdict[];
}
