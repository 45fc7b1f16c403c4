/**
 * The VFIO migration v2 state machine, computed exactly as drivers/vfio/vfio_main.c
 * vfio_mig_get_next_state() computes it: a next-hop table written for a device with every
 * optional feature, plus a rule that skips over states the device does not support by applying
 * the table again from the skipped state.
 */
import { VFIO_MIGRATION_P2P, VFIO_MIGRATION_PRE_COPY, VFIO_MIGRATION_STOP_COPY } from '../abi/constants.js';
import { type MigrationCaps, MigState } from '../contract/migration.js';
import { VfioError } from '../errors.js';

const { ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P } = MigState;

/** VFIO_DEVICE_NUM_STATES: PRE_COPY_P2P + 1 (vfio_main.c). */
const NUM_STATES = PRE_COPY_P2P + 1;

/**
 * vfio_from_fsm_table: NEXT[cur][target] is the first hop from `cur` towards `target` for a
 * device with STOP_COPY, P2P and PRE_COPY. ERROR as a hop means the request is refused.
 * Rows and columns are in enum order: ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P,
 * PRE_COPY, PRE_COPY_P2P.
 */
const NEXT: readonly (readonly MigState[])[] = [
  /* ERROR        */ [ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR, ERROR],
  /* STOP         */ [ERROR, STOP, RUNNING_P2P, STOP_COPY, RESUMING, RUNNING_P2P, RUNNING_P2P, RUNNING_P2P],
  /* RUNNING      */ [
    ERROR,
    RUNNING_P2P,
    RUNNING,
    RUNNING_P2P,
    RUNNING_P2P,
    RUNNING_P2P,
    PRE_COPY,
    RUNNING_P2P,
  ],
  /* STOP_COPY    */ [ERROR, STOP, STOP, STOP_COPY, STOP, STOP, ERROR, ERROR],
  /* RESUMING     */ [ERROR, STOP, STOP, STOP, RESUMING, STOP, STOP, STOP],
  /* RUNNING_P2P  */ [ERROR, STOP, RUNNING, STOP, STOP, RUNNING_P2P, RUNNING, PRE_COPY_P2P],
  /* PRE_COPY     */ [ERROR, RUNNING, RUNNING, PRE_COPY_P2P, RUNNING, RUNNING, PRE_COPY, PRE_COPY_P2P],
  /* PRE_COPY_P2P */ [
    ERROR,
    RUNNING_P2P,
    RUNNING_P2P,
    STOP_COPY,
    RUNNING_P2P,
    RUNNING_P2P,
    PRE_COPY,
    PRE_COPY_P2P,
  ],
];

/**
 * state_flags_table (vfio_main.c): the VFIO_MIGRATION_* flags a device needs for each state.
 * ERROR needs every bit (~0U), so no device supports it as a request.
 */
const REQUIRED_FLAGS: readonly number[] = [
  /* ERROR        */ 0xffffffff,
  /* STOP         */ VFIO_MIGRATION_STOP_COPY,
  /* RUNNING      */ VFIO_MIGRATION_STOP_COPY,
  /* STOP_COPY    */ VFIO_MIGRATION_STOP_COPY,
  /* RESUMING     */ VFIO_MIGRATION_STOP_COPY,
  /* RUNNING_P2P  */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
  /* PRE_COPY     */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
  /* PRE_COPY_P2P */ VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
];

/** The VFIO_MIGRATION_* flags (struct vfio_device_feature_migration.flags) of `caps`. */
export function migrationFlags(caps: MigrationCaps): number {
  return (
    (caps.stopCopy === true ? VFIO_MIGRATION_STOP_COPY : 0) |
    (caps.p2p === true ? VFIO_MIGRATION_P2P : 0) |
    (caps.preCopy === true ? VFIO_MIGRATION_PRE_COPY : 0)
  );
}

function isStateNumber(state: unknown): state is MigState {
  return typeof state === 'number' && Number.isInteger(state) && state >= 0 && state < NUM_STATES;
}

function supported(flags: number, state: MigState): boolean {
  const need = REQUIRED_FLAGS[state];
  return (need & flags) >>> 0 === need >>> 0;
}

/** Whether a device with `caps` has `state` (ERROR never counts: it cannot be requested). */
export function isStateSupported(caps: MigrationCaps, state: MigState): boolean {
  return isStateNumber(state) && supported(migrationFlags(caps), state);
}

/**
 * vfio_mig_get_next_state(): the next single arc from `cur` towards `target`, or 'invalid' where
 * the kernel answers -EINVAL (an unsupported or out-of-range state at either end, ERROR, or a
 * blocked request such as STOP_COPY → PRE_COPY). When `cur === target` the answer is `cur`.
 */
export function migNextState(caps: MigrationCaps, cur: MigState, target: MigState): MigState | 'invalid' {
  if (!isStateNumber(cur) || !isStateNumber(target)) return 'invalid';
  const flags = migrationFlags(caps);
  if (!supported(flags, cur) || !supported(flags, target)) return 'invalid';
  let next = NEXT[cur][target];
  // "Arcs touching optional and unsupported states are skipped over." ERROR is never supported,
  // so the walk always ends: at a supported hop, or at ERROR after it.
  while (next !== ERROR && !supported(flags, next)) next = NEXT[next][target];
  return next === ERROR ? 'invalid' : next;
}

/**
 * The arcs the kernel walks from `cur` to `target`: the states entered, in order, ending with
 * `target` (empty when `cur === target`). Throws VfioError EINVAL where migNextState is 'invalid'.
 */
export function migPath(caps: MigrationCaps, cur: MigState, target: MigState): MigState[] {
  const path: MigState[] = [];
  let at = cur;
  for (;;) {
    const next = migNextState(caps, at, target);
    if (next === 'invalid') {
      throw new VfioError(
        'EINVAL',
        `migration state ${migStateName(target)} cannot be reached from ${migStateName(cur)}.`,
        {
          hint: invalidHint(caps, cur, target),
        },
      );
    }
    if (next === at) return path;
    path.push(next);
    at = next;
    // Every path has at most four arcs (RESUMING → … → PRE_COPY); more would be a table bug.
    if (path.length > NUM_STATES)
      throw new VfioError('EIO', 'the migration state table does not converge.', {
        hint: 'This is a bug in @vfiokit/core.',
      });
  }
}

/** The state's name as in enum vfio_device_mig_state, or the raw number for anything else. */
export function migStateName(state: MigState): string {
  return isStateNumber(state) ? MigState[state] : `#${String(state)}`;
}

/** The states that carry a saving data stream (read side). */
export function isSavingState(state: MigState): boolean {
  return state === STOP_COPY || state === PRE_COPY || state === PRE_COPY_P2P;
}

function invalidHint(caps: MigrationCaps, cur: MigState, target: MigState): string {
  if (cur === ERROR) return 'The device is in ERROR; only VFIO_DEVICE_RESET leaves it.';
  if (target === ERROR) return 'ERROR is entered only when a transition fails; it cannot be requested.';
  if (!isStateNumber(target) || !isStateNumber(cur)) return 'Use a state of enum vfio_device_mig_state.';
  if (!isStateSupported(caps, target))
    return `The device does not support ${migStateName(target)} (check VFIO_DEVICE_FEATURE_MIGRATION flags).`;
  if (!isStateSupported(caps, cur)) return `The device cannot be in ${migStateName(cur)}.`;
  return 'Pre-copy cannot be re-entered once STOP_COPY has started; go through STOP first.';
}
