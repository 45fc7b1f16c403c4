import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../../test/helpers.js';
import { MigState } from '../contract/migration.js';
import { VfioError } from '../errors.js';
import { MigrationController } from './controller.js';
import { type ResumingStream, type SavingStream, StreamArcs, StreamQueue, StreamRefusal } from './streams.js';

/** A device whose saving stream carries "H" then "S" (the state), and whose resume loads the bytes written. */
function device(options: { failFinalize?: boolean } = {}) {
  const log: string[] = [];
  let loaded: string | undefined;
  class Save implements SavingStream {
    readonly out = new StreamQueue();
    closed = false;
    constructor(precopy: boolean) {
      this.out.push(new Uint8Array([0x48]));
      if (!precopy) this.out.push(new Uint8Array([0x53]));
    }
    finalize() {
      log.push('finalize');
      if (options.failFinalize) throw new Error('the device did not stop');
      this.out.push(new Uint8Array([0x53]));
    }
    close() {
      this.closed = true;
      log.push('close');
    }
    read(max: number) {
      return this.out.read(max);
    }
  }
  class Resume implements ResumingStream<string> {
    bytes: number[] = [];
    close() {
      log.push('close resume');
    }
    write(chunk: Uint8Array) {
      this.bytes.push(...chunk);
    }
    complete() {
      if (this.bytes.length === 0) throw new VfioError('EINVAL', 'migration data refused: nothing came.');
      return String.fromCharCode(...this.bytes);
    }
  }
  const arcs = new StreamArcs<Save, Resume, string>('dev0', {
    save: (precopy) => {
      log.push(precopy ? 'save precopy' : 'save stopped');
      return new Save(precopy);
    },
    resume: () => {
      log.push('resume');
      return new Resume();
    },
    load: (state) => {
      loaded = state;
    },
  });
  const ctl = new MigrationController('dev0', {
    caps: { stopCopy: true, p2p: true, preCopy: true },
    step: (from, to) => arcs.step(from, to),
  });
  return { arcs, ctl, log, loaded: () => loaded };
}

function drain(ctl: MigrationController): string {
  let s = '';
  for (;;) {
    const chunk = ctl.read(1 << 20);
    if (chunk.length === 0) return s;
    s += String.fromCharCode(...chunk);
  }
}

describe('StreamArcs', () => {
  it('opens a stopped-device stream at STOP → STOP_COPY that carries header and state', () => {
    const d = device();
    d.ctl.setState(MigState.STOP_COPY);
    expect(d.log).toEqual(['save stopped']);
    expect(drain(d.ctl)).toBe('HS');
  });

  it('finishes a pre-copy stream on the same data fd at PRE_COPY_P2P → STOP_COPY', () => {
    const d = device();
    const fd = d.ctl.setState(MigState.PRE_COPY);
    expect(fd).toBeDefined();
    expect(d.ctl.setState(MigState.PRE_COPY_P2P)).toBeUndefined();
    expect(d.ctl.setState(MigState.STOP_COPY)).toBeUndefined();
    expect(d.log).toEqual(['save precopy', 'finalize']);
    expect(drain(d.ctl)).toBe('HS');
  });

  it('closes the saving stream when the device goes back to RUNNING, and on reset', () => {
    const d = device();
    d.ctl.setState(MigState.PRE_COPY);
    const saving = d.arcs.saving;
    d.ctl.setState(MigState.RUNNING);
    expect(saving?.closed).toBe(true);
    expect(d.arcs.saving).toBeUndefined();
    d.ctl.setState(MigState.PRE_COPY);
    d.arcs.reset();
    expect(d.log.filter((l) => l === 'close')).toHaveLength(2);
    expect(d.arcs.saving).toBeUndefined();
  });

  it('closes an open saving stream before it opens the next one', () => {
    const d = device();
    d.arcs.step(MigState.RUNNING, MigState.PRE_COPY);
    d.arcs.step(MigState.STOP, MigState.STOP_COPY);
    expect(d.log).toEqual(['save precopy', 'close', 'save stopped']);
  });

  it('ends the streams on its own arcs, without the core: back to STOP, and a resuming stream once loaded', () => {
    const d = device();
    d.arcs.step(MigState.STOP, MigState.STOP_COPY);
    d.arcs.step(MigState.STOP_COPY, MigState.STOP);
    const fd = d.arcs.step(MigState.STOP, MigState.RESUMING);
    fd?.write?.(new Uint8Array([0x6f, 0x6b]));
    d.arcs.step(MigState.RESUMING, MigState.STOP);
    expect(d.loaded()).toBe('ok');
    expect(d.log).toEqual(['save stopped', 'close', 'resume', 'close resume']);
  });

  it('closes a pre-copy stream the core drops with its device file, once, and forgets it: PRE_COPY_P2P → STOP_COPY then finishes nothing', () => {
    const d = device();
    const file = {};
    d.ctl.setState(MigState.PRE_COPY, file);
    const saving = d.arcs.saving;
    d.ctl.closeStream(file);
    expect(saving?.closed).toBe(true);
    expect(d.arcs.saving).toBeUndefined();
    expect(d.ctl.state).toBe(MigState.PRE_COPY);
    // the next device file: the state stays, with none of the stream (mtty_disable_files)
    expect(codeOf(() => d.ctl.read(10))).toBe('EBADF');
    expect(d.ctl.setState(MigState.STOP_COPY, {})).toBeUndefined();
    expect(d.ctl.state).toBe(MigState.STOP_COPY);
    expect(codeOf(() => d.ctl.read(10))).toBe('EBADF');
    d.ctl.setState(MigState.STOP);
    d.ctl.reset();
    expect(d.log).toEqual(['save precopy', 'close']);
    // out and back in: a stream of its own
    d.ctl.setState(MigState.STOP_COPY);
    expect(drain(d.ctl)).toBe('HS');
  });

  it('closes a resuming stream the core drops with its device file; RESUMING → STOP then loads nothing (EBADF, ERROR)', () => {
    const d = device();
    d.ctl.setState(MigState.RESUMING);
    d.ctl.write(new Uint8Array([0x6f, 0x6b]));
    d.ctl.closeStream();
    expect(d.arcs.resuming).toBeUndefined();
    expect(() => d.ctl.setState(MigState.STOP)).toThrow(
      /EBADF: device dev0: migration arc RESUMING -> STOP failed: the resuming stream was closed with the device file that opened it/,
    );
    expect(d.ctl.state).toBe(MigState.ERROR);
    expect(d.loaded()).toBeUndefined();
    d.ctl.reset();
    expect(d.log).toEqual(['resume', 'close resume']);
  });

  it('closes each stream once whichever way it ends, and never the one in use', () => {
    const closes = (d: ReturnType<typeof device>) => d.log.filter((l) => l.startsWith('close')).length;
    const d = device();
    // an arc back to RUNNING: StreamArcs ends it, the core drops its data fd
    d.ctl.setState(MigState.PRE_COPY);
    d.ctl.setState(MigState.RUNNING);
    expect(closes(d)).toBe(1);
    // a device reset, as DeviceFile runs it: the device's (StreamArcs.reset) and the core's
    d.ctl.setState(MigState.STOP_COPY);
    d.arcs.reset();
    d.ctl.reset();
    expect(closes(d)).toBe(2);
    // loaded: the resuming stream ends at RESUMING → STOP
    d.ctl.setState(MigState.RESUMING);
    d.ctl.write(new Uint8Array([0x6f]));
    d.ctl.setState(MigState.STOP);
    expect(closes(d)).toBe(3);
    // the one in use is never closed
    d.ctl.setState(MigState.PRE_COPY);
    d.ctl.setState(MigState.STOP_COPY);
    expect(closes(d)).toBe(3);
    expect(d.arcs.saving?.closed).toBe(false);
    // a failing arc: the core drops the stream StreamArcs still holds
    const f = device({ failFinalize: true });
    f.ctl.setState(MigState.PRE_COPY);
    expect(codeOf(() => f.ctl.setState(MigState.STOP_COPY))).toBe('EIO');
    expect(f.arcs.saving).toBeUndefined();
    f.ctl.reset();
    expect(f.log).toEqual(['save precopy', 'finalize', 'close']);
  });

  it('loads what the resuming stream carried at RESUMING → STOP', () => {
    const d = device();
    d.ctl.setState(MigState.STOP);
    d.ctl.setState(MigState.RESUMING);
    d.ctl.write(new Uint8Array([0x6f, 0x6b]));
    d.ctl.setState(MigState.STOP);
    expect(d.loaded()).toBe('ok');
    expect(d.arcs.resuming).toBeUndefined();
  });

  it('puts the device in ERROR when the resuming stream is refused at RESUMING → STOP', () => {
    const d = device();
    d.ctl.setState(MigState.STOP);
    d.ctl.setState(MigState.RESUMING);
    expect(() => d.ctl.setState(MigState.STOP)).toThrow(/nothing came/);
    expect(d.ctl.state).toBe(MigState.ERROR);
    expect(d.loaded()).toBeUndefined();
  });

  it('refuses with EIO an arc that needs a stream it does not have', () => {
    const d = device();
    const e1 = (() => {
      try {
        d.arcs.step(MigState.PRE_COPY_P2P, MigState.STOP_COPY);
      } catch (err) {
        return err;
      }
    })();
    expect(e1).toBeInstanceOf(VfioError);
    expect((e1 as VfioError).code).toBe('EIO');
    expect(() => d.arcs.step(MigState.RESUMING, MigState.STOP)).toThrow(/RESUMING has no stream to load/);
  });

  it('changes no stream on the arcs that move no data', () => {
    const d = device();
    for (const [from, to] of [
      [MigState.RUNNING, MigState.RUNNING_P2P],
      [MigState.RUNNING_P2P, MigState.STOP],
      [MigState.STOP, MigState.RUNNING_P2P],
      [MigState.PRE_COPY, MigState.PRE_COPY_P2P],
    ] as const) {
      expect(d.arcs.step(from, to)).toBeUndefined();
    }
    expect(d.log).toEqual([]);
  });
});

describe('StreamQueue', () => {
  it('hands out the pushed bytes in order, whatever the chunking of pushes and reads', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
        (pushes, reads) => {
          const q = new StreamQueue();
          const want: number[] = [];
          for (const p of pushes) {
            q.push(p);
            want.push(...p);
          }
          expect(q.queued).toBe(want.length);
          const got: number[] = [];
          for (let i = 0; q.queued > 0; i++) {
            const max = reads[i % reads.length];
            const chunk = q.read(max);
            expect(chunk.length).toBeGreaterThan(0);
            expect(chunk.length).toBeLessThanOrEqual(max);
            got.push(...chunk);
          }
          expect(got).toEqual(want);
          expect(q.empty).toBe(true);
          expect(q.read(10).length).toBe(0);
        },
      ),
    );
  });

  it('hands out a whole chunk without a copy when the reader takes all of it', () => {
    const q = new StreamQueue();
    const chunk = new Uint8Array([1, 2, 3]);
    q.push(chunk);
    expect(q.read(3)).toBe(chunk);
  });
});

describe('StreamRefusal', () => {
  it('keeps the first refusal and repeats it on every later check', () => {
    const r = new StreamRefusal('dev0', 'Send the stream saved from the same device.');
    r.check();
    expect(() => r.refuse('the magic is wrong')).toThrow('migration data refused: the magic is wrong.');
    let err: unknown;
    try {
      r.check();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VfioError);
    expect((err as VfioError).code).toBe('EINVAL');
    expect((err as VfioError).message).toContain('dev0');
    expect((err as VfioError).message).toContain('the magic is wrong');
    expect(r.problem).toBe('the magic is wrong');
  });

  it('builds an error without keeping it for a refusal that does not end the stream', () => {
    const r = new StreamRefusal('dev0', 'hint');
    expect(r.error('too long').message).toContain('migration data refused: too long.');
    expect(r.problem).toBeUndefined();
    r.check();
  });
});
