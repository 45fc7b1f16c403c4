import { describe, expect, it } from 'vitest';
import { codeOf } from '../../test/helpers.js';
import {
  type MigrationCaps,
  type MigrationOps,
  type MigrationStream,
  MigState,
} from '../contract/migration.js';
import { VfioError } from '../errors.js';
import { arcOpensStream, MigrationController } from './controller.js';

const ALL: MigrationCaps = { stopCopy: true, p2p: true, preCopy: true };

interface FakeOptions {
  caps?: MigrationCaps;
  failOn?: string;
  failWith?: unknown;
  noStreamOn?: string;
  data?: Uint8Array[];
  precopy?: boolean;
  /** Arcs that return a stream besides the ones that open one (a fresh stream, a stray one). */
  extraStreamOn?: string[];
  /** Arcs that return the stream the last opening arc returned. */
  sameStreamOn?: string[];
  /** What close() of every stream does, besides counting. */
  onClose?: () => void;
}

/** A stream of the fake device and how often the core closed it. */
interface FakeStream {
  readonly arc: string;
  closes: number;
}

function fakeDevice(options: FakeOptions = {}) {
  const arcs: string[] = [];
  const written: number[] = [];
  const chunks = [...(options.data ?? [])];
  const streams: FakeStream[] = [];
  const counted = <T extends MigrationStream>(arc: string, stream: T): T => {
    const entry: FakeStream = { arc, closes: 0 };
    streams.push(entry);
    stream.close = () => {
      entry.closes++;
      options.onClose?.();
    };
    return stream;
  };
  let last: MigrationStream | undefined;
  const ops: MigrationOps = {
    caps: options.caps ?? ALL,
    step(from, to) {
      const arc = `${MigState[from]}>${MigState[to]}`;
      arcs.push(arc);
      if (arc === options.failOn) throw options.failWith ?? new Error('firmware said no');
      if (arc === options.noStreamOn) return undefined;
      if (options.sameStreamOn?.includes(arc)) return last;
      if (to === MigState.RESUMING) {
        last = counted(arc, { write: (chunk: Uint8Array) => void written.push(...chunk) });
        return last;
      }
      if (arcOpensStream(from, to) || options.extraStreamOn?.includes(arc)) {
        const stream: MigrationStream = {
          read: (max: number) => {
            const next = chunks.shift();
            if (next === undefined) return new Uint8Array(0);
            if (next.length > max) {
              chunks.unshift(next.subarray(max));
              return next.subarray(0, max);
            }
            return next;
          },
        };
        if (options.precopy !== false)
          stream.precopyInfo = () => ({ initialBytes: chunks.length, dirtyBytes: 0 });
        last = counted(arc, stream);
        return last;
      }
      return undefined;
    },
    stopCopySize: () => 1234,
  };
  /** How often each stream was closed, by the arc that made it. */
  const closes = () => streams.map((x) => `${x.arc}:${x.closes}`);
  return { ops, arcs, written, chunks, streams, closes };
}

describe('MigrationController.setState', () => {
  it('starts in RUNNING and walks the kernel arcs, calling step for each', () => {
    const dev = fakeDevice();
    const mig = new MigrationController('vgpu0', dev.ops);
    expect(mig.state).toBe(MigState.RUNNING);
    const stream = mig.setState(MigState.STOP_COPY);
    expect(dev.arcs).toEqual(['RUNNING>RUNNING_P2P', 'RUNNING_P2P>STOP', 'STOP>STOP_COPY']);
    expect(mig.state).toBe(MigState.STOP_COPY);
    expect(stream).toBeDefined();
    expect(mig.stream).toBe(stream);
  });

  it('returns no new stream when moving within the saving states, and keeps the old one', () => {
    const dev = fakeDevice();
    const mig = new MigrationController('vgpu0', dev.ops);
    const pre = mig.setState(MigState.PRE_COPY);
    expect(pre).toBeDefined();
    expect(mig.setState(MigState.STOP_COPY)).toBeUndefined();
    expect(dev.arcs.slice(-2)).toEqual(['PRE_COPY>PRE_COPY_P2P', 'PRE_COPY_P2P>STOP_COPY']);
    expect(mig.stream).toBe(pre);
  });

  it('closes the stream on entering STOP, RUNNING or RUNNING_P2P', () => {
    const mig = new MigrationController('vgpu0', fakeDevice().ops);
    mig.setState(MigState.PRE_COPY_P2P);
    expect(mig.stream).toBeDefined();
    mig.setState(MigState.RUNNING_P2P);
    expect(mig.stream).toBeUndefined();
    mig.setState(MigState.STOP_COPY);
    expect(mig.setState(MigState.STOP)).toBeUndefined();
    expect(mig.stream).toBeUndefined();
  });

  it('does nothing for a request of the current state', () => {
    const dev = fakeDevice();
    const mig = new MigrationController('vgpu0', dev.ops);
    expect(mig.setState(MigState.RUNNING)).toBeUndefined();
    expect(dev.arcs).toEqual([]);
  });

  it('refuses an unreachable or unsupported target with EINVAL and leaves the state alone', () => {
    const dev = fakeDevice({ caps: { stopCopy: true, p2p: false, preCopy: false } });
    const mig = new MigrationController('vgpu0', dev.ops);
    expect(() => mig.setState(MigState.PRE_COPY)).toThrow(/EINVAL: device vgpu0/);
    expect(codeOf(() => mig.setState(MigState.RUNNING_P2P))).toBe('EINVAL');
    expect(codeOf(() => mig.setState(MigState.ERROR))).toBe('EINVAL');
    expect(codeOf(() => mig.setState(42 as MigState))).toBe('EINVAL');
    expect(mig.state).toBe(MigState.RUNNING);
    expect(dev.arcs).toEqual([]);
    const full = new MigrationController('vgpu1', fakeDevice().ops);
    full.setState(MigState.STOP_COPY);
    expect(codeOf(() => full.setState(MigState.PRE_COPY))).toBe('EINVAL');
    expect(full.state).toBe(MigState.STOP_COPY);
  });

  it('enters ERROR when a step throws, rethrowing EIO that names the device and the arc', () => {
    const dev = fakeDevice({ failOn: 'RUNNING_P2P>STOP' });
    const mig = new MigrationController('vgpu0', dev.ops);
    expect(() => mig.setState(MigState.STOP_COPY)).toThrow(
      /EIO: device vgpu0: migration arc RUNNING_P2P -> STOP failed: firmware said no/,
    );
    expect(mig.state).toBe(MigState.ERROR);
    expect(dev.arcs).toEqual(['RUNNING>RUNNING_P2P', 'RUNNING_P2P>STOP']);
  });

  it('keeps the code of a VfioError thrown by a step', () => {
    const dev = fakeDevice({
      failOn: 'RESUMING>STOP',
      failWith: new VfioError('EPROTO', 'the stream was cut short.'),
    });
    const mig = new MigrationController('vgpu0', dev.ops);
    mig.setState(MigState.RESUMING);
    expect(codeOf(() => mig.setState(MigState.RUNNING))).toBe('EPROTO');
    expect(mig.state).toBe(MigState.ERROR);
    expect(mig.stream).toBeUndefined();
  });

  it('fails every request in ERROR until reset, which returns to RUNNING', () => {
    const dev = fakeDevice({ failOn: 'RUNNING>PRE_COPY' });
    const mig = new MigrationController('vgpu0', dev.ops);
    expect(codeOf(() => mig.setState(MigState.PRE_COPY))).toBe('EIO');
    for (const target of [MigState.RUNNING, MigState.STOP, MigState.ERROR, MigState.RESUMING]) {
      expect(codeOf(() => mig.setState(target))).toBe('EINVAL');
    }
    expect(codeOf(() => mig.read(10))).toBe('EINVAL');
    expect(codeOf(() => mig.write(new Uint8Array(1)))).toBe('EINVAL');
    expect(codeOf(() => mig.precopyInfo())).toBe('EINVAL');
    mig.reset();
    expect(mig.state).toBe(MigState.RUNNING);
    mig.setState(MigState.STOP);
    expect(mig.state).toBe(MigState.STOP);
  });

  it('treats an opening arc that returns no stream as a device failure', () => {
    const mig = new MigrationController('vgpu0', fakeDevice({ noStreamOn: 'STOP>RESUMING' }).ops);
    mig.setState(MigState.STOP);
    expect(() => mig.setState(MigState.RESUMING)).toThrow(/EIO.*STOP -> RESUMING opened no data stream/);
    expect(mig.state).toBe(MigState.ERROR);
  });

  it('reset drops the stream', () => {
    const mig = new MigrationController('vgpu0', fakeDevice().ops);
    mig.setState(MigState.STOP_COPY);
    mig.reset();
    expect(mig.stream).toBeUndefined();
    expect(mig.state).toBe(MigState.RUNNING);
  });
});

describe('MigrationController.closeStream (the device file was closed)', () => {
  it('ends the stream and keeps the state, as mtty_close keeps it', () => {
    const mig = new MigrationController('vgpu0', fakeDevice({ data: [Uint8Array.of(1, 2, 3)] }).ops);
    mig.setState(MigState.STOP_COPY);
    mig.closeStream();
    expect(mig.stream).toBeUndefined();
    expect(mig.state).toBe(MigState.STOP_COPY);
  });

  it("refuses the closed stream's bytes with EBADF that names the device and the state", () => {
    const dev = fakeDevice({ data: [Uint8Array.of(1, 2, 3), Uint8Array.of(4)] });
    const mig = new MigrationController('vgpu0', dev.ops);
    mig.setState(MigState.PRE_COPY);
    expect(Array.from(mig.read(1))).toEqual([1]);
    mig.closeStream();
    expect(codeOf(() => mig.read(10))).toBe('EBADF');
    expect(codeOf(() => mig.precopyInfo())).toBe('EBADF');
    expect(() => mig.read(10)).toThrow(/vgpu0.*no migration data stream is open to read in state PRE_COPY/);
    // within the saving states nothing opens a new one (the device returns none here)
    mig.setState(MigState.STOP_COPY);
    expect(codeOf(() => mig.read(10))).toBe('EBADF');
    // out and back in: a stream of its own, from the device's next bytes
    mig.setState(MigState.STOP);
    mig.setState(MigState.STOP_COPY);
    expect(Array.from(mig.read(10))).toEqual([2, 3]);
  });

  it('ends only the stream of the owner named: closing another file leaves it open', () => {
    const dev = fakeDevice({ data: [Uint8Array.of(1), Uint8Array.of(2)] });
    const mig = new MigrationController('vgpu0', dev.ops);
    const owner = {};
    mig.setState(MigState.STOP_COPY, owner);
    mig.closeStream({});
    expect(Array.from(mig.read(10))).toEqual([1]);
    mig.closeStream(owner);
    expect(codeOf(() => mig.read(10))).toBe('EBADF');
    // out and back in for another owner: the new stream is that one's only
    mig.setState(MigState.STOP);
    const next = {};
    mig.setState(MigState.STOP_COPY, next);
    mig.closeStream(owner);
    expect(Array.from(mig.read(10))).toEqual([2]);
  });

  it('refuses writes to a closed resuming stream with EBADF and passes nothing to the device', () => {
    const dev = fakeDevice();
    const mig = new MigrationController('vgpu0', dev.ops);
    mig.setState(MigState.RESUMING);
    mig.write(Uint8Array.of(9));
    mig.closeStream();
    expect(codeOf(() => mig.write(Uint8Array.of(10)))).toBe('EBADF');
    expect(dev.written).toEqual([9]);
  });
});

describe('MigrationController closes every stream it drops, once (MigrationStream.close)', () => {
  it('closes the stream on an arc into STOP, RUNNING or RUNNING_P2P, and never the one in use', () => {
    const dev = fakeDevice();
    const mig = new MigrationController('vgpu0', dev.ops);
    mig.setState(MigState.PRE_COPY);
    mig.setState(MigState.PRE_COPY_P2P);
    mig.setState(MigState.STOP_COPY);
    expect(dev.closes()).toEqual(['RUNNING>PRE_COPY:0']);
    mig.setState(MigState.STOP);
    mig.setState(MigState.STOP_COPY);
    mig.setState(MigState.RUNNING);
    mig.setState(MigState.PRE_COPY_P2P);
    expect(dev.closes()).toEqual(['RUNNING>PRE_COPY:1', 'STOP>STOP_COPY:1', 'RUNNING_P2P>PRE_COPY_P2P:0']);
    mig.setState(MigState.RUNNING_P2P);
    expect(dev.closes()).toEqual(['RUNNING>PRE_COPY:1', 'STOP>STOP_COPY:1', 'RUNNING_P2P>PRE_COPY_P2P:1']);
    // one walk ends the resuming stream and opens the next: RESUMING -> STOP -> STOP_COPY
    mig.setState(MigState.RESUMING);
    mig.setState(MigState.STOP_COPY);
    expect(dev.closes().slice(3)).toEqual(['STOP>RESUMING:1', 'STOP>STOP_COPY:0']);
  });

  it('closes the stream when the device file that opened it closes, and keeps the state', () => {
    const dev = fakeDevice();
    const mig = new MigrationController('vgpu0', dev.ops);
    const owner = {};
    mig.setState(MigState.PRE_COPY, owner);
    mig.closeStream({});
    expect(dev.closes()).toEqual(['RUNNING>PRE_COPY:0']);
    mig.closeStream(owner);
    expect(dev.closes()).toEqual(['RUNNING>PRE_COPY:1']);
    expect(mig.state).toBe(MigState.PRE_COPY);
    // nothing is closed again: not by a second close, the arcs after, nor a reset
    mig.closeStream(owner);
    mig.closeStream();
    mig.setState(MigState.STOP_COPY);
    mig.setState(MigState.STOP);
    mig.reset();
    expect(dev.closes()).toEqual(['RUNNING>PRE_COPY:1']);
  });

  it('closes the stream at a reset and at a failing arc', () => {
    const dev = fakeDevice({ failOn: 'PRE_COPY_P2P>STOP_COPY' });
    const mig = new MigrationController('vgpu0', dev.ops);
    mig.setState(MigState.RESUMING);
    mig.reset();
    expect(dev.closes()).toEqual(['STOP>RESUMING:1']);
    mig.setState(MigState.PRE_COPY);
    expect(codeOf(() => mig.setState(MigState.STOP_COPY))).toBe('EIO');
    expect(mig.state).toBe(MigState.ERROR);
    expect(dev.closes()).toEqual(['STOP>RESUMING:1', 'RUNNING>PRE_COPY:1']);
    mig.reset();
    expect(dev.closes()).toEqual(['STOP>RESUMING:1', 'RUNNING>PRE_COPY:1']);
  });

  it('closes a stream a fresh one replaces within the saving states, and not the same one handed back', () => {
    const dev = fakeDevice({
      extraStreamOn: ['PRE_COPY_P2P>STOP_COPY'],
      sameStreamOn: ['PRE_COPY>PRE_COPY_P2P'],
    });
    const mig = new MigrationController('vgpu0', dev.ops);
    const pre = mig.setState(MigState.PRE_COPY);
    expect(mig.setState(MigState.PRE_COPY_P2P)).toBe(pre);
    expect(dev.closes()).toEqual(['RUNNING>PRE_COPY:0']);
    const fresh = mig.setState(MigState.STOP_COPY);
    expect(fresh).not.toBe(pre);
    expect(mig.stream).toBe(fresh);
    expect(dev.closes()).toEqual(['RUNNING>PRE_COPY:1', 'PRE_COPY_P2P>STOP_COPY:0']);
  });

  it('closes a stream an arc into STOP returns, which no data fd holds', () => {
    const dev = fakeDevice({ extraStreamOn: ['RUNNING_P2P>STOP'] });
    const mig = new MigrationController('vgpu0', dev.ops);
    expect(mig.setState(MigState.STOP)).toBeUndefined();
    expect(dev.closes()).toEqual(['RUNNING_P2P>STOP:1']);
  });

  it('logs a close() that throws and drops the stream all the same; without a log it throws EIO once the stream is dropped', () => {
    const onClose = () => {
      throw new Error('the buffers were already gone');
    };
    const logged: string[] = [];
    const mig = new MigrationController('vgpu0', fakeDevice({ onClose }).ops, {
      error: (m) => logged.push(m),
    });
    mig.setState(MigState.PRE_COPY);
    mig.setState(MigState.RUNNING);
    expect(mig.state).toBe(MigState.RUNNING);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(
      /EIO: device vgpu0: closing a dropped migration data stream failed: the buffers were already gone\..*must not throw/,
    );
    const bare = new MigrationController('vgpu1', fakeDevice({ onClose }).ops);
    bare.setState(MigState.STOP_COPY);
    expect(() => bare.closeStream()).toThrow(
      /EIO: device vgpu1: closing a dropped migration data stream failed/,
    );
    expect(bare.stream).toBeUndefined();
    expect(bare.state).toBe(MigState.STOP_COPY);
  });
});

describe('MigrationController data stream', () => {
  it('reads the saving stream in STOP_COPY; an empty read is the end', () => {
    const mig = new MigrationController('vgpu0', fakeDevice({ data: [Uint8Array.of(1, 2, 3, 4, 5)] }).ops);
    mig.setState(MigState.STOP_COPY);
    expect(Array.from(mig.read(3))).toEqual([1, 2, 3]);
    expect(Array.from(mig.read(100))).toEqual([4, 5]);
    expect(mig.read(100).length).toBe(0);
    expect(mig.read(0).length).toBe(0);
  });

  it('throws ENOMSG when pre-copy has no data yet', () => {
    const dev = fakeDevice({ data: [Uint8Array.of(7)] });
    const mig = new MigrationController('vgpu0', dev.ops);
    mig.setState(MigState.PRE_COPY);
    expect(Array.from(mig.read(10))).toEqual([7]);
    expect(codeOf(() => mig.read(10))).toBe('ENOMSG');
    mig.setState(MigState.PRE_COPY_P2P);
    expect(codeOf(() => mig.read(10))).toBe('ENOMSG');
    dev.chunks.push(Uint8Array.of(8));
    expect(Array.from(mig.read(10))).toEqual([8]);
  });

  it('refuses reads outside the saving states and bad sizes with EINVAL', () => {
    const mig = new MigrationController('vgpu0', fakeDevice().ops);
    expect(codeOf(() => mig.read(10))).toBe('EINVAL');
    mig.setState(MigState.RESUMING);
    expect(codeOf(() => mig.read(10))).toBe('EINVAL');
    mig.setState(MigState.STOP);
    mig.setState(MigState.STOP_COPY);
    expect(codeOf(() => mig.read(-1))).toBe('EINVAL');
    expect(codeOf(() => mig.read(1.5))).toBe('EINVAL');
  });

  it('reports a stream that returns more than asked as EIO', () => {
    const ops: MigrationOps = {
      caps: ALL,
      step: (from, to) => (arcOpensStream(from, to) ? { read: () => new Uint8Array(10) } : undefined),
    };
    const mig = new MigrationController('vgpu0', ops);
    mig.setState(MigState.STOP_COPY);
    expect(codeOf(() => mig.read(4))).toBe('EIO');
    expect(mig.state).toBe(MigState.STOP_COPY);
  });

  it('writes only in RESUMING, passing the bytes to the device', () => {
    const dev = fakeDevice();
    const mig = new MigrationController('vgpu0', dev.ops);
    expect(codeOf(() => mig.write(Uint8Array.of(1)))).toBe('EINVAL');
    mig.setState(MigState.RESUMING);
    expect(mig.write(Uint8Array.of(1, 2))).toBe(2);
    expect(mig.write(Uint8Array.of(3))).toBe(1);
    expect(dev.written).toEqual([1, 2, 3]);
    mig.setState(MigState.STOP);
    expect(codeOf(() => mig.write(Uint8Array.of(4)))).toBe('EINVAL');
  });

  it('passes a VfioError from the stream through with the device name', () => {
    const ops: MigrationOps = {
      caps: ALL,
      step: (_from, to) =>
        to === MigState.RESUMING
          ? {
              write: () => {
                throw new VfioError('EINVAL', 'bad magic in the migration header.');
              },
            }
          : undefined,
    };
    const mig = new MigrationController('vgpu0', ops);
    mig.setState(MigState.RESUMING);
    expect(() => mig.write(Uint8Array.of(0))).toThrow(/EINVAL: device vgpu0: bad magic/);
    expect(mig.state).toBe(MigState.RESUMING);
  });

  it('answers precopy info only in PRE_COPY and PRE_COPY_P2P', () => {
    const mig = new MigrationController(
      'vgpu0',
      fakeDevice({ data: [Uint8Array.of(1), Uint8Array.of(2)] }).ops,
    );
    expect(codeOf(() => mig.precopyInfo())).toBe('EINVAL');
    mig.setState(MigState.PRE_COPY);
    expect(mig.precopyInfo()).toEqual({ initialBytes: 2, dirtyBytes: 0 });
    mig.setState(MigState.PRE_COPY_P2P);
    expect(mig.precopyInfo().initialBytes).toBe(2);
    mig.setState(MigState.STOP_COPY);
    expect(codeOf(() => mig.precopyInfo())).toBe('EINVAL');
  });

  it('answers ENOTTY when the pre-copy stream has no precopy info', () => {
    const mig = new MigrationController('vgpu0', fakeDevice({ precopy: false }).ops);
    mig.setState(MigState.PRE_COPY);
    expect(codeOf(() => mig.precopyInfo())).toBe('ENOTTY');
  });

  it('returns the STOP_COPY size estimate, or ENOTTY without one', () => {
    expect(new MigrationController('vgpu0', fakeDevice().ops).stopCopySize()).toBe(1234);
    const ops: MigrationOps = { caps: ALL, step: () => undefined };
    expect(codeOf(() => new MigrationController('vgpu0', ops).stopCopySize())).toBe('ENOTTY');
  });
});

describe('arcOpensStream', () => {
  it('opens on entering STOP_COPY or PRE_COPY(_P2P) from outside the saving states, and on RESUMING', () => {
    expect(arcOpensStream(MigState.STOP, MigState.STOP_COPY)).toBe(true);
    expect(arcOpensStream(MigState.RUNNING, MigState.PRE_COPY)).toBe(true);
    expect(arcOpensStream(MigState.RUNNING_P2P, MigState.PRE_COPY_P2P)).toBe(true);
    expect(arcOpensStream(MigState.STOP, MigState.RESUMING)).toBe(true);
    expect(arcOpensStream(MigState.PRE_COPY, MigState.PRE_COPY_P2P)).toBe(false);
    expect(arcOpensStream(MigState.PRE_COPY_P2P, MigState.STOP_COPY)).toBe(false);
    expect(arcOpensStream(MigState.STOP_COPY, MigState.STOP)).toBe(false);
  });
});
