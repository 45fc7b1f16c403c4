import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseGuestCli, USAGE } from '../src/cli-args.js';
import { adopt, liveChildren, stopAll } from '../src/run/children.js';

describe('the guest suite command line', () => {
  it('takes the options the README and the help name, after a leading --', () => {
    const r = parseGuestCli([
      '--',
      '--suite',
      'i915',
      '--suite',
      'gvt-g',
      '--boot',
      'mtty-2',
      '--jobs',
      '3',
      '--list',
    ]);
    expect(r).toEqual({
      ok: true,
      options: { suites: ['i915', 'gvt-g'], boots: ['mtty-2'], jobs: 3, list: true, help: false },
    });
    expect(parseGuestCli(['-h'])).toMatchObject({ ok: true, options: { help: true } });
    for (const o of ['--suite', '--boot', '--jobs', '--list', '--help']) expect(USAGE).toContain(o);
  });

  it('answers an unknown option, a stray word and a bad --jobs in one line, without a stack', () => {
    for (const [argv, words] of [
      [['--force'], "Unknown option '--force'"],
      [['i915'], "Unexpected argument 'i915'"],
      [['--jobs', '0'], '--jobs takes a whole number'],
      [['--jobs', 'two'], '(got "two")'],
      [['--suite'], "Option '--suite <value>' argument missing"],
    ] as const) {
      const r = parseGuestCli(argv);
      expect(r.ok).toBe(false);
      if (r.ok) continue;
      expect(r.error).toContain(words);
      expect(r.error.split('\n')).toHaveLength(1);
      expect(r.error).not.toMatch(/node:internal|\.[jt]s:\d+/);
    }
  });
});

describe('the run’s children', () => {
  it('stops every QEMU and server a run started, each with its own signal', async () => {
    const a = adopt(spawn('sleep', ['30'], { stdio: 'ignore' }), 'SIGKILL');
    const b = adopt(spawn('sleep', ['30'], { stdio: 'ignore' }), 'SIGTERM');
    const exited = (c: typeof a) =>
      new Promise<NodeJS.Signals | null>((resolve) => c.once('exit', (_code, signal) => resolve(signal)));
    const [ea, eb] = [exited(a), exited(b)];
    expect(liveChildren()).toBe(2);
    expect(stopAll()).toBe(2);
    expect(await ea).toBe('SIGKILL');
    expect(await eb).toBe('SIGTERM');
    expect(liveChildren()).toBe(0);
  });

  it('forgets a child that ended on its own', async () => {
    const c = adopt(spawn('true', [], { stdio: 'ignore' }), 'SIGKILL');
    await new Promise((resolve) => c.once('exit', resolve));
    expect(liveChildren()).toBe(0);
    expect(stopAll()).toBe(0);
  });
});
