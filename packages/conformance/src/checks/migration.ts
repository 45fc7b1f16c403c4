/**
 * Migration v2 where a device offers it: every arc between supported states, a save/load round
 * trip, and the end of a pre-copy stream with its device file.
 */
import {
  type MigrationCaps,
  type MigrationOps,
  MigState,
  VFIO_PCI_CONFIG_REGION_INDEX,
  type VfioDevice,
  VfioError,
} from '@vfiokit/core';
import {
  ERRNO,
  encodeMigState,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_INTERRUPT_LINE,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_SET,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_RESET,
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY,
} from '@vfiokit/core/abi';
import { DeviceFile, isStateSupported, migNextState, migPath, migStateName } from '@vfiokit/core/host';
import type { CheckContext, ConformanceCheck, ConformanceFile } from '../types.js';
import { openConfig } from './config.js';
import {
  ConfigAccess,
  describeError,
  describeRet,
  deviceFeature,
  firstDifference,
  getDeviceInfo,
  hex,
  ioctl,
} from './util.js';

/** Chunk size for the data stream: QEMU's VFIO_MIG_DEFAULT_DATA_BUFFER_SIZE (hw/vfio/migration.c). */
const CHUNK = 1 << 20;
/** A stream longer than this is refused by the suite rather than held in memory. */
const MAX_STREAM = 256 << 20;

const ALL_STATES = [
  MigState.STOP,
  MigState.RUNNING,
  MigState.STOP_COPY,
  MigState.RESUMING,
  MigState.RUNNING_P2P,
  MigState.PRE_COPY,
  MigState.PRE_COPY_P2P,
];

/** MIGRATION GET: the caps, or a skip when the device does not migrate. */
function migrationCaps(ctx: CheckContext, file: ConformanceFile): MigrationCaps {
  const r = deviceFeature(file, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION, new Uint8Array(8));
  if (r.ret === -ERRNO.ENOTTY)
    return ctx.skip('the device does not offer migration (VFIO_DEVICE_FEATURE_MIGRATION answers ENOTTY).');
  if (r.ret !== 0) {
    ctx.fail({
      problem: 'VFIO_DEVICE_FEATURE_MIGRATION GET failed',
      expected: '0 or ENOTTY',
      actual: describeRet(r.ret),
    });
    return ctx.skip('migration flags unreadable.');
  }
  const flags = new DataView(r.out.buffer, r.out.byteOffset + 8, 8).getUint32(0, true);
  if (!(flags & VFIO_MIGRATION_STOP_COPY)) {
    ctx.fail({
      problem: 'migration is offered without VFIO_MIGRATION_STOP_COPY',
      expected: 'STOP_COPY flag',
      actual: `flags ${hex(flags)}`,
    });
    return ctx.skip('migration without STOP_COPY cannot be exercised.');
  }
  return {
    stopCopy: true,
    p2p: (flags & VFIO_MIGRATION_P2P) !== 0,
    preCopy: (flags & VFIO_MIGRATION_PRE_COPY) !== 0,
  };
}

function setState(file: ConformanceFile, state: number): { ret: number; why: string } {
  const r = deviceFeature(
    file,
    VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
    encodeMigState(state, -1),
  );
  return { ret: r.ret, why: `${describeRet(r.ret)}${r.error ? `: ${r.error.message}` : ''}` };
}

function getState(file: ConformanceFile): number | undefined {
  const r = deviceFeature(
    file,
    VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
    encodeMigState(0, -1),
  );
  if (r.ret !== 0) return undefined;
  return new DataView(r.out.buffer, r.out.byteOffset + 8, 4).getUint32(0, true);
}

function stateName(state: number | undefined): string {
  return state === undefined ? 'unreadable' : migStateName(state as MigState);
}

/** Read a saving stream to its end. */
function readStream(file: ConformanceFile): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const chunk = file.migrationRead(CHUNK);
    if (chunk.length === 0) break;
    chunks.push(chunk.slice());
    total += chunk.length;
    if (total > MAX_STREAM) throw new Error(`the migration stream is longer than ${MAX_STREAM} bytes`);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * A probe read's size: unlike readStream's reads of CHUNK, which move a device's own stream (its
 * length is the device's), a probe asks only whether a read is refused, so that a differential
 * against a kernel device compares the refusals and not the two streams' lengths.
 */
const PROBE = 4096;

/** The errno name of what a probe read of the stream threw, if it names one. */
function readError(file: ConformanceFile): string | undefined {
  try {
    file.migrationRead(PROBE);
    return undefined;
  } catch (err) {
    if (err instanceof VfioError) return err.code;
    throw err;
  }
}

function writeStream(file: ConformanceFile, data: Uint8Array): void {
  for (let at = 0; at < data.length; at += CHUNK)
    file.migrationWrite(data.subarray(at, Math.min(data.length, at + CHUNK)));
}

/** The device with its migration ops wrapped so that the arcs the core asks for are recorded. */
function recordingDevice(device: VfioDevice, arcs: [MigState, MigState][]): VfioDevice {
  const ops = device.migration as MigrationOps;
  const wrapped: MigrationOps = {
    caps: ops.caps,
    step(from, to) {
      arcs.push([from, to]);
      return ops.step(from, to);
    },
    ...(ops.stopCopySize ? { stopCopySize: () => ops.stopCopySize!() } : {}),
  };
  return new Proxy(device, {
    get(target, prop) {
      if (prop === 'migration') return wrapped;
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

export const migrationChecks: readonly ConformanceCheck[] = [
  {
    id: 'migration.arcs',
    title:
      'MIG_DEVICE_STATE reaches every supported state from every other along the kernel path; ERROR cannot be requested',
    run(ctx) {
      migrationCaps(ctx, ctx.file);
      const model = ctx.model;
      if (model && !model.instance.device.migration)
        return ctx.skip('the device object has no migration ops to observe.');
      const reset = ((getDeviceInfo(ctx.file).info?.flags ?? 0) & VFIO_DEVICE_FLAGS_RESET) !== 0;
      // A plugin's instance is reopened through a recorder of the arcs the core walks; a kernel
      // device walks its path inside the kernel, so only where each request lands is checked.
      const arcs: [MigState, MigState][] | undefined = model ? [] : undefined;
      let file: ConformanceFile = ctx.file;
      if (model && arcs) {
        ctx.file.close();
        file = ctx.track(new DeviceFile(recordingDevice(model.instance.device, arcs), model.host));
        file.open();
      } else
        ctx.note("the kernel walks multi-step arcs inside one ioctl: only each arc's end state is checked");
      try {
        const caps = migrationCaps(ctx, file);
        const states = ALL_STATES.filter((s) => isStateSupported(caps, s));
        let saved: Uint8Array;
        try {
          const s = setState(file, MigState.STOP_COPY);
          if (s.ret !== 0) throw new Error(`RUNNING → STOP_COPY answered ${s.why}`);
          saved = readStream(file);
          for (const t of [MigState.STOP, MigState.RUNNING]) {
            const r = setState(file, t);
            if (r.ret !== 0) throw new Error(`→ ${migStateName(t)} answered ${r.why}`);
          }
        } catch (err) {
          ctx.fail({
            problem: 'saving the device state (RUNNING → STOP_COPY → STOP → RUNNING) failed',
            expected: 'a complete stream',
            actual: describeError(err),
          });
          return;
        }
        /** SET `to`; a RESUMING device is fed the saved stream at once so that it may leave again. */
        const go = (to: MigState): { ret: number; why: string } => {
          const r = setState(file, to);
          if (r.ret === 0 && to === MigState.RESUMING) writeStream(file, saved);
          return r;
        };
        const recover = (): boolean => {
          if (getState(file) !== MigState.ERROR) return true;
          if (!reset) return false;
          return ioctl(file, VFIO_DEVICE_RESET, new Uint8Array(0)).ret === 0;
        };
        /** Get to `state`, through STOP when the kernel refuses the direct request (STOP_COPY → PRE_COPY). */
        const reach = (state: MigState): { ret: number; why: string } => {
          const cur = getState(file);
          if (cur === state) return { ret: 0, why: '0' };
          if (cur !== undefined && migNextState(caps, cur, state) === 'invalid') {
            const r = go(MigState.STOP);
            if (r.ret !== 0) return r;
          }
          return go(state);
        };
        for (const from of states) {
          for (const to of states) {
            if (from === to) continue;
            if (getState(file) !== from) {
              const r = reach(from);
              if (r.ret !== 0 || getState(file) !== from) {
                ctx.fail({
                  problem: `could not reach ${migStateName(from)} to test the arc to ${migStateName(to)}`,
                  expected: migStateName(from),
                  actual: `${r.why}, state ${stateName(getState(file))}`,
                });
                if (!recover()) return ctx.skip('the device is in ERROR and cannot be reset.');
                continue;
              }
            }
            if (arcs) arcs.length = 0;
            if (migNextState(caps, from, to) === 'invalid') {
              // A request the kernel blocks outright (STOP_COPY → PRE_COPY): refused, state kept.
              const r = setState(file, to);
              const now = getState(file);
              if (r.ret !== -ERRNO.EINVAL || now !== from) {
                ctx.fail({
                  problem: `MIG_DEVICE_STATE ${migStateName(from)} → ${migStateName(to)} must be refused`,
                  expected: `EINVAL and state ${migStateName(from)}`,
                  actual: `${r.why}, state ${stateName(now)}`,
                });
                if (!recover()) return ctx.skip('the device is in ERROR and cannot be reset.');
              }
              continue;
            }
            const r = go(to);
            const now = getState(file);
            if (r.ret !== 0 || now !== to) {
              ctx.fail({
                problem: `MIG_DEVICE_STATE ${migStateName(from)} → ${migStateName(to)} failed`,
                expected: `ret 0 and state ${migStateName(to)}`,
                actual: `${r.why}, state ${stateName(now)}`,
              });
              if (!recover()) return ctx.skip('the device is in ERROR and cannot be reset.');
              continue;
            }
            if (!arcs) continue;
            const want = [from, ...migPath(caps, from, to)];
            const path = [from, ...arcs.map((a) => a[1])];
            if (want.join() !== path.join() || arcs.some((a, k) => a[0] !== path[k])) {
              ctx.fail({
                problem: `${migStateName(from)} → ${migStateName(to)} did not follow the kernel's path`,
                expected: want.map((s) => migStateName(s)).join(' → '),
                actual: path.map((s) => migStateName(s)).join(' → '),
              });
            }
          }
        }
        // ERROR, unsupported states and numbers past the enum cannot be requested; the state stays.
        const refused = [
          MigState.ERROR,
          ...ALL_STATES.filter((s) => !isStateSupported(caps, s)),
          8,
          0xffffffff,
        ];
        for (const bad of refused) {
          const before = getState(file);
          const r = setState(file, bad);
          const after = getState(file);
          if (r.ret !== -ERRNO.EINVAL || after !== before) {
            ctx.fail({
              problem: `requesting migration state ${stateName(bad)} was not refused`,
              expected: `EINVAL and state ${stateName(before)}`,
              actual: `${r.why}, state ${stateName(after)}`,
            });
            if (!recover()) return;
          }
        }
        // Leave the device running, as it was found: the state is the device's and outlives the
        // file (mtty keeps mdev_state->state across close), so the next check would find it here.
        const back = reach(MigState.RUNNING);
        if (back.ret !== 0 || getState(file) !== MigState.RUNNING) {
          ctx.fail({
            problem: 'returning the device to RUNNING after the arcs failed',
            expected: 'ret 0 and state RUNNING',
            actual: `${back.why}, state ${stateName(getState(file))}`,
          });
        }
      } finally {
        if (model) file.close();
      }
    },
  },
  {
    id: 'migration.save-resume',
    title:
      'state saved in STOP_COPY from one instance loads in RESUMING into another (or, for a type with one instance, into the same one after a reset) with equal config space (for a plugin)',
    run(ctx) {
      migrationCaps(ctx, ctx.file);
      // A second instance when the type allows one; otherwise the same instance, reset between
      // the save and the load, so that only the stream can bring its state back.
      let other: { name: string; file: ConformanceFile };
      let sameInstance = false;
      try {
        other = ctx.openAnother();
      } catch (err) {
        if (!ctx.file.deviceInfo().reset) {
          return ctx.skip(
            `a second instance could not be created (${describeError(err)}) and the device cannot reset to be reused`,
          );
        }
        other = { name: ctx.device.uuid ?? ctx.file.name, file: ctx.file };
        sameInstance = true;
      }
      const src = openConfig(ctx);
      src.writeU16(PCI_COMMAND, src.readU16(PCI_COMMAND) | PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
      src.write(PCI_INTERRUPT_LINE, new Uint8Array([0x5a]));
      const before = src.snapshot();
      let data: Uint8Array;
      // The state is the device's: an earlier user may have left it stopped. Start from RUNNING,
      // or a SET to the state it is already in would open no stream.
      const start = getState(ctx.file);
      if (start !== undefined && start !== MigState.RUNNING) {
        ctx.note(`the device was in ${stateName(start)} when the check began; it was moved to RUNNING first`);
        const s0 = setState(ctx.file, MigState.RUNNING);
        if (s0.ret !== 0) {
          ctx.fail({
            problem: `${stateName(start)} → RUNNING on the source failed`,
            expected: '0',
            actual: s0.why,
          });
          return;
        }
      }
      const s1 = setState(ctx.file, MigState.STOP_COPY);
      if (s1.ret !== 0) {
        ctx.fail({ problem: 'RUNNING → STOP_COPY on the source failed', expected: '0', actual: s1.why });
        return;
      }
      try {
        data = readStream(ctx.file);
      } catch (err) {
        ctx.fail({
          problem: 'reading the STOP_COPY stream failed',
          expected: 'the stream to its end',
          actual: describeError(err),
        });
        return;
      }
      const s2 = setState(ctx.file, MigState.STOP);
      if (s2.ret !== 0)
        ctx.fail({ problem: 'STOP_COPY → STOP on the source failed', expected: '0', actual: s2.why });
      if (sameInstance) {
        try {
          ctx.file.reset();
        } catch (err) {
          ctx.fail({
            problem: 'resetting the device before reusing it failed',
            expected: 'reset',
            actual: describeError(err),
          });
          return;
        }
      }

      const r1 = setState(other.file, MigState.RESUMING);
      if (r1.ret !== 0) {
        ctx.fail({ problem: 'RUNNING → RESUMING on the destination failed', expected: '0', actual: r1.why });
        return;
      }
      try {
        writeStream(other.file, data);
      } catch (err) {
        ctx.fail({
          problem: `writing the ${data.length}-byte stream into the destination failed`,
          expected: 'the stream accepted',
          actual: describeError(err),
        });
        return;
      }
      for (const t of [MigState.STOP, MigState.RUNNING]) {
        const r = setState(other.file, t);
        if (r.ret !== 0) {
          ctx.fail({
            problem: `the destination's move to ${migStateName(t)} after loading failed`,
            expected: '0',
            actual: r.why,
          });
          return;
        }
      }
      const after = ConfigAccess.open(other.file).snapshot();
      const at = firstDifference(before, after);
      // A kernel driver's stream is its device state; config space is the VMM's to carry
      // (QEMU saves it in its own section: vfio_pci_save_config), as the kernel's mtty does.
      if (at >= 0 && ctx.subject !== 'plugin') {
        ctx.note(
          `config space is not in the kernel device's stream (it differs first at ${hex(at)}); a VMM carries config space itself`,
        );
      } else if (at >= 0) {
        ctx.fail({
          region: VFIO_PCI_CONFIG_REGION_INDEX,
          offset: at,
          problem: `config space of the resumed device ${other.name} differs from the source at ${hex(at)}`,
          expected: `byte ${hex(before[at] ?? 0)}`,
          actual: `byte ${hex(after[at] ?? 0)}`,
        });
      }
      if (sameInstance) return;
      const back = setState(ctx.file, MigState.RUNNING);
      if (back.ret !== 0)
        ctx.fail({
          problem: 'the source could not return to RUNNING after the save',
          expected: '0',
          actual: back.why,
        });
    },
  },
  {
    id: 'migration.precopy-close',
    title:
      'a device file closed in PRE_COPY ends its stream: the next file finds PRE_COPY (RUNNING for a vfio-pci function) with reads refused (EBADF), and a new PRE_COPY stream reads to its end',
    run(ctx) {
      const caps = migrationCaps(ctx, ctx.file);
      if (!caps.preCopy) return ctx.skip('the device does not offer PRE_COPY (no VFIO_MIGRATION_PRE_COPY).');
      const file = ctx.file;
      // The state is the device's: an earlier user may have left it elsewhere.
      /** Move the device to `to`; false, with the check failed, when it refuses. */
      const move = (to: MigState, what: string): boolean => {
        const r = setState(file, to);
        if (r.ret === 0) return true;
        ctx.fail({ problem: `${what} failed`, expected: '0', actual: r.why });
        return false;
      };
      const start = getState(file);
      if (start !== MigState.RUNNING && !move(MigState.RUNNING, `${stateName(start)} → RUNNING`)) return;
      const open = (what: string): boolean => {
        if (!move(MigState.PRE_COPY, `RUNNING → PRE_COPY for the ${what} stream`)) return false;
        const code = readError(file);
        if (code === undefined || code === 'ENOMSG') return true;
        ctx.fail({
          problem: `a read of the ${what} PRE_COPY stream failed`,
          expected: 'data, or ENOMSG while there is none yet',
          actual: code,
        });
        return false;
      };
      if (!open('first')) return;
      // The VMM goes away in pre-copy: an mdev keeps its state and drops the stream
      // (mtty_close's mtty_disable_files); a vfio-pci function runs again at the next open
      // (mlx5vf_pci_close_device's mlx5vf_disable_fds, then mlx5vf_pci_open_device).
      file.close();
      try {
        file.open();
      } catch (err) {
        return ctx.fail({
          problem: 'opening the device file again after closing it in PRE_COPY failed',
          expected: 'the device open',
          actual: describeError(err),
        });
      }
      // The title's rule; a kernel function's driver is not known from here, so either is taken.
      const now = getState(file);
      const want =
        ctx.subject === 'kernel-pci'
          ? [MigState.RUNNING, MigState.PRE_COPY]
          : [ctx.model?.instance.device.driver === 'vfio-pci' ? MigState.RUNNING : MigState.PRE_COPY];
      if (ctx.subject === 'kernel-pci')
        ctx.note(
          `the function was in ${stateName(now)} when opened again (a vfio-pci variant driver sets RUNNING)`,
        );
      if (now === undefined || !want.includes(now)) {
        ctx.fail({
          problem: 'the device file opened after one closed in PRE_COPY found the wrong migration state',
          expected: want.map((w) => migStateName(w)).join(' or '),
          actual: stateName(now),
        });
        return;
      }
      if (now === MigState.PRE_COPY) {
        const code = readError(file);
        if (code !== 'EBADF') {
          ctx.fail({
            problem: 'a read in PRE_COPY after the device file that opened the stream closed was not refused',
            expected: 'EBADF: none of the closed stream reaches the next user',
            actual: code ?? 'data',
          });
        }
        if (!move(MigState.RUNNING, 'PRE_COPY → RUNNING after the reopen')) return;
      }
      if (!open('next')) return;
      if (!move(MigState.STOP_COPY, 'PRE_COPY → STOP_COPY for the next stream')) return;
      try {
        readStream(file);
      } catch (err) {
        ctx.fail({
          problem: 'reading the next stream to its end failed',
          expected: 'the stream to its end',
          actual: describeError(err),
        });
      }
      for (const t of [MigState.STOP, MigState.RUNNING])
        if (!move(t, `→ ${migStateName(t)} after the next stream`)) return;
    },
  },
];
