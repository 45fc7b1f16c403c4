/** mdev lifecycle: capacity, available_instances, duplicate UUIDs and removing an open device. */
import { randomUUID } from 'node:crypto';
import { type MdevInstance, VfioError } from '@vfiokit/core';
import { ERRNO } from '@vfiokit/core/abi';
import type { CheckContext, ConformanceCheck, PluginModel } from '../types.js';
import { describeError, pluginModel } from './util.js';

/** More instances than this are not created to find the limit; the beyond-capacity part is then skipped. */
export const CAPACITY_PROBE_LIMIT = 64;

function available(m: PluginModel): number | undefined {
  const t = m.parent.types().find((x) => x.id === m.type.id);
  return t?.availableInstances;
}

function expectErrno(ctx: CheckContext, what: string, errno: keyof typeof ERRNO, fn: () => unknown): boolean {
  try {
    fn();
  } catch (err) {
    if (err instanceof VfioError && err.errno === ERRNO[errno]) return true;
    ctx.fail({
      problem: `${what} failed the wrong way`,
      expected: `VfioError ${errno}`,
      actual: describeError(err),
    });
    return false;
  }
  ctx.fail({ problem: `${what} succeeded`, expected: `VfioError ${errno}`, actual: 'success' });
  return false;
}

export const capacityChecks: readonly ConformanceCheck[] = [
  {
    id: 'capacity.lifecycle',
    title: 'a duplicate UUID is EEXIST and removing an open device is EBUSY, with nothing changed',
    run(ctx) {
      const m = pluginModel(ctx, 'the mdev lifecycle of a parent');
      const count = m.parent.instances().length;
      const avail = available(m);
      expectErrno(ctx, `creating a second ${m.type.id} with UUID ${m.instance.uuid}`, 'EEXIST', () =>
        m.parent.create(m.type.id, m.instance.uuid),
      );
      expectErrno(ctx, `removing the open device ${m.instance.uuid}`, 'EBUSY', () =>
        m.parent.remove(m.instance.uuid),
      );
      if (!m.parent.instances().some((i) => i.uuid === m.instance.uuid)) {
        ctx.fail({
          problem: 'the open device disappeared from the instance list after a refused removal',
          expected: `instance ${m.instance.uuid} listed`,
          actual: 'not listed',
        });
      }
      if (m.parent.instances().length !== count) {
        ctx.fail({
          problem: 'refused requests changed the number of instances',
          expected: String(count),
          actual: String(m.parent.instances().length),
        });
      }
      if (available(m) !== avail) {
        ctx.fail({
          problem: 'refused requests changed available_instances',
          expected: String(avail),
          actual: String(available(m)),
        });
      }
      expectErrno(ctx, 'removing an unknown UUID', 'ENODEV', () => m.parent.remove(randomUUID()));
    },
  },
  {
    id: 'capacity.limit',
    title:
      'available_instances falls with each create, creating beyond it is ENOSPC, and it returns after removal',
    run(ctx) {
      const m = pluginModel(ctx, 'the capacity of an mdev type');
      const start = available(m);
      if (start === undefined) {
        ctx.fail({
          problem: `the parent no longer lists type ${m.type.id}`,
          expected: 'the type listed',
          actual: 'missing',
        });
        return;
      }
      if (!Number.isSafeInteger(start) || start < 0) {
        ctx.fail({
          problem: 'available_instances is not a count',
          expected: 'an integer >= 0',
          actual: String(start),
        });
        return;
      }
      const created: MdevInstance[] = [];
      try {
        let avail = start;
        const target = Math.min(start, CAPACITY_PROBE_LIMIT);
        for (let k = 0; k < target; k++) {
          const uuid = randomUUID();
          let inst: MdevInstance;
          try {
            inst = m.parent.create(m.type.id, uuid);
          } catch (err) {
            ctx.fail({
              problem: `create ${k + 1} of ${start} failed although available_instances was ${avail}`,
              expected: 'a new instance',
              actual: describeError(err),
            });
            return;
          }
          created.push(inst);
          const now = available(m) ?? -1;
          if (now >= avail) {
            ctx.fail({
              problem: `available_instances did not fall after creating ${uuid}`,
              expected: `< ${avail}`,
              actual: String(now),
            });
          }
          avail = now;
        }
        if (start > CAPACITY_PROBE_LIMIT) {
          ctx.note(
            `available_instances is ${start}; only ${CAPACITY_PROBE_LIMIT} instances were created, so creation beyond capacity was not tried`,
          );
        } else {
          if (avail !== 0) {
            ctx.fail({
              problem: `available_instances after ${start} creates is not 0`,
              expected: '0',
              actual: String(avail),
            });
          }
          const before = m.parent.instances().length;
          const extra = randomUUID();
          let made: MdevInstance | undefined;
          try {
            made = m.parent.create(m.type.id, extra);
            created.push(made);
            ctx.fail({
              problem: 'creating beyond capacity succeeded',
              expected: 'VfioError ENOSPC',
              actual: `instance ${extra} created`,
            });
          } catch (err) {
            if (!(err instanceof VfioError) || err.errno !== ERRNO.ENOSPC) {
              ctx.fail({
                problem: 'creating beyond capacity failed the wrong way',
                expected: 'VfioError ENOSPC',
                actual: describeError(err),
              });
            }
          }
          if (!made && m.parent.instances().length !== before) {
            ctx.fail({
              problem: 'a refused create still added an instance',
              expected: `${before} instances`,
              actual: `${m.parent.instances().length} instances`,
            });
          }
        }
      } finally {
        for (const inst of created) {
          const err = tryRemove(m, inst.uuid);
          if (err)
            ctx.fail({ problem: `removing instance ${inst.uuid} failed`, expected: 'removal', actual: err });
        }
      }
      const end = available(m);
      if (end !== start) {
        ctx.fail({
          problem: 'available_instances did not return to its value after every created instance was removed',
          expected: String(start),
          actual: String(end),
        });
      }
    },
  },
];

function tryRemove(m: PluginModel, uuid: string): string | undefined {
  try {
    m.parent.remove(uuid);
    return undefined;
  } catch (err) {
    return describeError(err);
  }
}
