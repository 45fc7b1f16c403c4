import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VFIO_MIGRATION_P2P, VFIO_MIGRATION_PRE_COPY, VFIO_MIGRATION_STOP_COPY } from '../abi/constants.js';
import { type MigrationCaps, MigState } from '../contract/migration.js';
import { VfioError } from '../errors.js';
import { isStateSupported, migNextState, migPath, migrationFlags } from './fsm.js';

const { ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P } = MigState;
const S = 'STOP';
const R = 'RUNNING';
const SC = 'STOP_COPY';
const RS = 'RESUMING';
const RP = 'RUNNING_P2P';
const PC = 'PRE_COPY';
const PP = 'PRE_COPY_P2P';
type Name = typeof S | typeof R | typeof SC | typeof RS | typeof RP | typeof PC | typeof PP;

const ALL_STATES = [ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P, PRE_COPY, PRE_COPY_P2P];

const CAPS: Record<string, MigrationCaps> = {
  'stop-copy only': { stopCopy: true, p2p: false, preCopy: false },
  p2p: { stopCopy: true, p2p: true, preCopy: false },
  'pre-copy': { stopCopy: true, p2p: false, preCopy: true },
  'p2p + pre-copy': { stopCopy: true, p2p: true, preCopy: true },
};

/**
 * Expected paths, derived by hand from vfio_from_fsm_table and the skip rule of
 * vfio_mig_get_next_state() in drivers/vfio/vfio_main.c; for full caps every multi-step path is
 * also one that the comment above the table lists. Missing pairs (other than cur === target) are
 * refused. Key: "CUR>TARGET", value: the states entered.
 */
const EXPECTED: Record<string, Record<string, Name[]>> = {
  'stop-copy only': {
    'STOP>RUNNING': [R],
    'STOP>STOP_COPY': [SC],
    'STOP>RESUMING': [RS],
    'RUNNING>STOP': [S],
    'RUNNING>STOP_COPY': [S, SC],
    'RUNNING>RESUMING': [S, RS],
    'STOP_COPY>STOP': [S],
    'STOP_COPY>RUNNING': [S, R],
    'STOP_COPY>RESUMING': [S, RS],
    'RESUMING>STOP': [S],
    'RESUMING>RUNNING': [S, R],
    'RESUMING>STOP_COPY': [S, SC],
  },
  p2p: {
    'STOP>RUNNING': [RP, R],
    'STOP>STOP_COPY': [SC],
    'STOP>RESUMING': [RS],
    'STOP>RUNNING_P2P': [RP],
    'RUNNING>STOP': [RP, S],
    'RUNNING>STOP_COPY': [RP, S, SC],
    'RUNNING>RESUMING': [RP, S, RS],
    'RUNNING>RUNNING_P2P': [RP],
    'STOP_COPY>STOP': [S],
    'STOP_COPY>RUNNING': [S, RP, R],
    'STOP_COPY>RESUMING': [S, RS],
    'STOP_COPY>RUNNING_P2P': [S, RP],
    'RESUMING>STOP': [S],
    'RESUMING>RUNNING': [S, RP, R],
    'RESUMING>STOP_COPY': [S, SC],
    'RESUMING>RUNNING_P2P': [S, RP],
    'RUNNING_P2P>STOP': [S],
    'RUNNING_P2P>RUNNING': [R],
    'RUNNING_P2P>STOP_COPY': [S, SC],
    'RUNNING_P2P>RESUMING': [S, RS],
  },
  'pre-copy': {
    'STOP>RUNNING': [R],
    'STOP>STOP_COPY': [SC],
    'STOP>RESUMING': [RS],
    'STOP>PRE_COPY': [R, PC],
    'RUNNING>STOP': [S],
    'RUNNING>STOP_COPY': [S, SC],
    'RUNNING>RESUMING': [S, RS],
    'RUNNING>PRE_COPY': [PC],
    'STOP_COPY>STOP': [S],
    'STOP_COPY>RUNNING': [S, R],
    'STOP_COPY>RESUMING': [S, RS],
    'RESUMING>STOP': [S],
    'RESUMING>RUNNING': [S, R],
    'RESUMING>STOP_COPY': [S, SC],
    'RESUMING>PRE_COPY': [S, R, PC],
    'PRE_COPY>STOP': [R, S],
    'PRE_COPY>RUNNING': [R],
    'PRE_COPY>STOP_COPY': [SC],
    'PRE_COPY>RESUMING': [R, S, RS],
  },
  'p2p + pre-copy': {
    'STOP>RUNNING': [RP, R],
    'STOP>STOP_COPY': [SC],
    'STOP>RESUMING': [RS],
    'STOP>RUNNING_P2P': [RP],
    'STOP>PRE_COPY': [RP, R, PC],
    'STOP>PRE_COPY_P2P': [RP, PP],
    'RUNNING>STOP': [RP, S],
    'RUNNING>STOP_COPY': [RP, S, SC],
    'RUNNING>RESUMING': [RP, S, RS],
    'RUNNING>RUNNING_P2P': [RP],
    'RUNNING>PRE_COPY': [PC],
    'RUNNING>PRE_COPY_P2P': [RP, PP],
    'STOP_COPY>STOP': [S],
    'STOP_COPY>RUNNING': [S, RP, R],
    'STOP_COPY>RESUMING': [S, RS],
    'STOP_COPY>RUNNING_P2P': [S, RP],
    'RESUMING>STOP': [S],
    'RESUMING>RUNNING': [S, RP, R],
    'RESUMING>STOP_COPY': [S, SC],
    'RESUMING>RUNNING_P2P': [S, RP],
    'RESUMING>PRE_COPY': [S, RP, R, PC],
    'RESUMING>PRE_COPY_P2P': [S, RP, PP],
    'RUNNING_P2P>STOP': [S],
    'RUNNING_P2P>RUNNING': [R],
    'RUNNING_P2P>STOP_COPY': [S, SC],
    'RUNNING_P2P>RESUMING': [S, RS],
    'RUNNING_P2P>PRE_COPY': [R, PC],
    'RUNNING_P2P>PRE_COPY_P2P': [PP],
    'PRE_COPY>STOP': [R, RP, S],
    'PRE_COPY>RUNNING': [R],
    'PRE_COPY>STOP_COPY': [PP, SC],
    'PRE_COPY>RESUMING': [R, RP, S, RS],
    'PRE_COPY>RUNNING_P2P': [R, RP],
    'PRE_COPY>PRE_COPY_P2P': [PP],
    'PRE_COPY_P2P>STOP': [RP, S],
    'PRE_COPY_P2P>RUNNING': [RP, R],
    'PRE_COPY_P2P>STOP_COPY': [SC],
    'PRE_COPY_P2P>RESUMING': [RP, S, RS],
    'PRE_COPY_P2P>RUNNING_P2P': [RP],
    'PRE_COPY_P2P>PRE_COPY': [PC],
  },
};

/** The arcs the kernel comment above vfio_from_fsm_table requires a driver to implement. */
function requiredArcs(caps: MigrationCaps): Set<string> {
  const arcs = ['RESUMING>STOP', 'STOP>RESUMING', 'STOP>STOP_COPY', 'STOP_COPY>STOP'];
  if (caps.p2p)
    arcs.push('RUNNING>RUNNING_P2P', 'RUNNING_P2P>RUNNING', 'RUNNING_P2P>STOP', 'STOP>RUNNING_P2P');
  else arcs.push('RUNNING>STOP', 'STOP>RUNNING');
  if (caps.preCopy && caps.p2p) {
    arcs.push(
      'PRE_COPY>RUNNING',
      'PRE_COPY>PRE_COPY_P2P',
      'PRE_COPY_P2P>PRE_COPY',
      'PRE_COPY_P2P>RUNNING_P2P',
      'PRE_COPY_P2P>STOP_COPY',
      'RUNNING>PRE_COPY',
      'RUNNING_P2P>PRE_COPY_P2P',
    );
  } else if (caps.preCopy) {
    arcs.push('RUNNING>PRE_COPY', 'PRE_COPY>RUNNING', 'PRE_COPY>STOP_COPY');
  }
  return new Set(arcs);
}

describe('migPath against the kernel table', () => {
  for (const [capsName, caps] of Object.entries(CAPS)) {
    it(`takes exactly the kernel's arcs for every (cur, target) pair with ${capsName}`, () => {
      let checked = 0;
      for (const cur of ALL_STATES) {
        for (const target of ALL_STATES) {
          const key = `${MigState[cur]}>${MigState[target]}`;
          const expected = EXPECTED[capsName][key];
          const bothSupported =
            cur !== ERROR && isStateSupported(caps, cur) && isStateSupported(caps, target);
          if (cur === target && bothSupported) {
            expect(migPath(caps, cur, target), key).toEqual([]);
            expect(migNextState(caps, cur, target), key).toBe(cur);
          } else if (expected === undefined) {
            expect(migNextState(caps, cur, target), key).toBe('invalid');
            expect(() => migPath(caps, cur, target), key).toThrow(VfioError);
          } else {
            expect(
              migPath(caps, cur, target).map((s) => MigState[s]),
              key,
            ).toEqual(expected);
            expect(MigState[migNextState(caps, cur, target) as MigState], key).toBe(expected[0]);
          }
          checked++;
        }
      }
      expect(checked).toBe(64);
    });

    it(`uses only arcs the kernel requires a driver to implement with ${capsName}`, () => {
      const allowed = requiredArcs(caps);
      for (const [key, path] of Object.entries(EXPECTED[capsName])) {
        let at = key.split('>')[0];
        for (const step of path) {
          expect(allowed.has(`${at}>${step}`), `${key}: ${at}>${step}`).toBe(true);
          at = step;
        }
      }
    });
  }

  it('never passes through RESUMING and never enters a saving state from outside mid-path', () => {
    const saving = new Set<string>([SC, PC, PP]);
    for (const table of Object.values(EXPECTED)) {
      for (const [key, path] of Object.entries(table)) {
        const from = key.split('>')[0];
        path.slice(0, -1).forEach((s, i) => {
          expect(s, key).not.toBe(RS);
          const prev = i === 0 ? from : path[i - 1];
          if (saving.has(s)) expect(saving.has(prev), key).toBe(true);
        });
      }
    }
  });
});

describe('migNextState', () => {
  const all = CAPS['p2p + pre-copy'];

  it('refuses ERROR as a target and as a current state', () => {
    for (const s of ALL_STATES) {
      expect(migNextState(all, s, ERROR)).toBe('invalid');
      expect(migNextState(all, ERROR, s)).toBe('invalid');
    }
  });

  it('blocks STOP_COPY -> PRE_COPY and STOP_COPY -> PRE_COPY_P2P', () => {
    expect(migNextState(all, STOP_COPY, PRE_COPY)).toBe('invalid');
    expect(migNextState(all, STOP_COPY, PRE_COPY_P2P)).toBe('invalid');
    expect(() => migPath(all, STOP_COPY, PRE_COPY)).toThrow(/EINVAL.*PRE_COPY.*STOP_COPY/);
  });

  it('refuses states the caps do not support', () => {
    const plain = CAPS['stop-copy only'];
    expect(migNextState(plain, RUNNING, RUNNING_P2P)).toBe('invalid');
    expect(migNextState(plain, RUNNING, PRE_COPY)).toBe('invalid');
    expect(migNextState(plain, RUNNING_P2P, RUNNING)).toBe('invalid');
    expect(migNextState(CAPS['p2p'], RUNNING, PRE_COPY_P2P)).toBe('invalid');
    expect(migNextState(CAPS['pre-copy'], RUNNING, PRE_COPY_P2P)).toBe('invalid');
  });

  it('refuses numbers outside enum vfio_device_mig_state', () => {
    for (const bad of [-1, 8, 1.5, Number.NaN, 2 ** 32]) {
      expect(migNextState(all, bad as MigState, RUNNING)).toBe('invalid');
      expect(migNextState(all, RUNNING, bad as MigState)).toBe('invalid');
    }
  });

  it('treats a device without stopCopy as supporting nothing', () => {
    const none = { stopCopy: false, p2p: true, preCopy: true } as unknown as MigrationCaps;
    expect(migNextState(none, RUNNING, STOP)).toBe('invalid');
  });

  it('maps caps to the VFIO_MIGRATION_* flags', () => {
    expect(migrationFlags(all)).toBe(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY);
    expect(migrationFlags(CAPS['stop-copy only'])).toBe(VFIO_MIGRATION_STOP_COPY);
  });

  it('always reaches the target in at most four arcs, or refuses (property)', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: -2, max: 10 }),
        fc.integer({ min: -2, max: 10 }),
        (p2p, preCopy, cur, target) => {
          const caps: MigrationCaps = { stopCopy: true, p2p, preCopy };
          try {
            const path = migPath(caps, cur, target);
            expect(path.length).toBeLessThanOrEqual(4);
            if (path.length > 0) expect(path[path.length - 1]).toBe(target);
            for (const s of path) expect(isStateSupported(caps, s)).toBe(true);
          } catch (err) {
            expect(err).toBeInstanceOf(VfioError);
            expect((err as VfioError).code).toBe('EINVAL');
          }
        },
      ),
    );
  });
});
