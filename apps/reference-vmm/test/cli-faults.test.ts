/**
 * Each failure blamed on the party that caused it, in its own words; paths under /proc that used
 * to spin forever; and the small command-line traps of issue 17.
 */
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bufferIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { makeDirectory } from '../src/make-directory.js';
import { tempDir } from './temp-dirs.js';

const workdir = () => tempDir('vfiokit-faults-');
const fixtures = fileURLToPath(new URL('./fixtures/plugins/', import.meta.url));
const hasProc = existsSync('/proc/self');

async function cli(argv: string[], cwd = workdir()) {
  const io = bufferIo({ cwd, env: { XDG_STATE_HOME: join(cwd, 'state') } });
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err(), cwd };
}

/** No failure of these is a device access: none may say so. */
function notBlamedOnADevice(text: string): void {
  expect(text).not.toMatch(/the device handler failed|access was refused and the device state/);
}

describe('makeDirectory', () => {
  it('makes every missing level, and a folder that exists is fine', () => {
    const dir = join(workdir(), 'a', 'b', 'c');
    makeDirectory(dir, 'the frames folder');
    makeDirectory(dir, 'the frames folder');
    expect(statSync(dir).isDirectory()).toBe(true);
  });

  it('says a file is in the way, at the folder itself or above it', () => {
    const file = join(workdir(), 'f');
    writeFileSync(file, 'x');
    expect(() => makeDirectory(file, 'the frames folder')).toThrow(
      `EEXIST: cannot create the frames folder ${file}: a file that is not a folder is there.`,
    );
    expect(() => makeDirectory(join(file, 'x', 'y'), 'the frames folder')).toThrow(
      `ENOTDIR: cannot create the frames folder ${join(file, 'x', 'y')}: ${file} is a file, not a folder.`,
    );
  });

  it.skipIf(!hasProc)(
    'answers at once under /proc, where recursive mkdir spun forever (skipped without /proc)',
    () => {
      const t0 = Date.now();
      expect(() => makeDirectory('/proc/nope/deeper', 'the frames folder')).toThrow(
        /^ENOENT: cannot create the frames folder \/proc\/nope\/deeper: making \/proc\/nope: the file system of \/proc does not allow new folders/,
      );
      expect(Date.now() - t0).toBeLessThan(5000);
    },
  );
});

describe('errors blamed on the right party', () => {
  it.skipIf(!hasProc)(
    'run --save-frames under /proc answers with a clear error instead of hanging',
    async () => {
      const r = await cli(['run', '--save-frames', '/proc/nope']);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        /^vfiokit run: cannot create the frames folder \/proc\/nope: the file system of \/proc does not allow new folders/,
      );
      notBlamedOnADevice(r.err);
    },
  );

  it('run --save-frames on an existing file says EEXIST of the folder, not a device fault', async () => {
    const cwd = workdir();
    writeFileSync(join(cwd, 'frames'), 'x');
    const r = await cli(['run', '--save-frames', 'frames'], cwd);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /cannot create the frames folder \S*\/frames: a file that is not a folder is there\.\n {2}Give the path of a folder/,
    );
    notBlamedOnADevice(r.err);
  });

  it.each([
    [
      'a file',
      (cwd: string) => {
        writeFileSync(join(cwd, 'st'), 'x');
        return join(cwd, 'st');
      },
      /is a file, not a folder|a file that is not a folder is there/,
    ],
    ...(hasProc
      ? [['/proc', () => '/proc/nope', /the file system of \/proc does not allow new folders/] as const]
      : []),
  ] as const)('mdev define --state-dir on %s says what is wrong with the folder', async (_, dir, why) => {
    const cwd = workdir();
    const r = await cli(
      ['mdev', 'define', '-p', 'mtty', '-t', 'mtty-1', '--auto', '--state-dir', dir(cwd)],
      cwd,
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot create the mdev state folder/);
    expect(r.err).toMatch(why);
    notBlamedOnADevice(r.err);
  });

  it('a plugin whose probe throws is the plugin at fault, not a device access', async () => {
    const r = await cli(['run', '--device', `${join(fixtures, 'probe-throws.mjs')}:x-1`]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /failed to probe its parent devices: the plugin's code threw an Error: no hardware here\./,
    );
    expect(r.err).toMatch(/This is a bug in plugin ".*probe-throws\.mjs"/);
    notBlamedOnADevice(r.err);
  });

  it('migrate --incoming on a path where a socket is already says so', async () => {
    const cwd = workdir();
    const sock = join(cwd, 'in.sock');
    const first = main(['migrate', '--incoming', sock], bufferIo({ cwd }));
    for (let i = 0; !existsSync(sock); i++) {
      if (i > 600) throw new Error('the first destination never listened');
      await new Promise((r) => setTimeout(r, 25));
    }
    const r = await cli(['migrate', '--incoming', sock], cwd);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      `vfiokit migrate: the socket path ${sock} is in use: a socket file is already there.`,
    );
    notBlamedOnADevice(r.err);
    // End the first one: a peer that connects and leaves.
    const { connect } = await import('node:net');
    connect(sock).end();
    expect(await first).toBe(1);
  });
});

describe('the small ones', () => {
  it('takes the `--` that pnpm run passes on before the command', async () => {
    const r = await cli(['--', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: vfiokit <command>/);
  });

  it('reads a dash-led value as a value problem, not as "takes no value"', async () => {
    const r = await cli(['migrate', '--corrupt-at', '-5']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /^vfiokit migrate: option --corrupt-at needs a value, and "-5" after it starts with a dash; write --corrupt-at=-5 if that is the value\./,
    );
    const eq = await cli(['migrate', '--corrupt-at=-5']);
    expect(eq.err).toMatch(/^vfiokit migrate: --corrupt-at "-5" is not a whole number of bytes\./);
  });

  it('refuses --round-bytes below a page', async () => {
    const r = await cli(['migrate', '--round-bytes', '0']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^vfiokit migrate: --round-bytes 0 is below 4096 bytes\./);
  });

  it('keeps the test-only --corrupt-at out of the help', async () => {
    const r = await cli(['migrate', '--help']);
    expect(r.out).toMatch(/--round-bytes/);
    expect(r.out).not.toMatch(/corrupt/);
  });

  it('fails a --corrupt-at past the end of the stream instead of doing nothing', async () => {
    const r = await cli(['migrate', '--corrupt-at', String(2 ** 40)]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      `--corrupt-at ${2 ** 40} lies past the end of the first device's stream, so nothing was flipped.`,
    );
  }, 60_000);

  it('serve --socket in a missing folder names the folder', async () => {
    const r = await cli([
      'serve',
      '--socket',
      '/nonexistent-folder/x.sock',
      '--device',
      '@vfiokit/sample-mtty:mtty-1',
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /^vfiokit serve: the folder \/nonexistent-folder of the socket path \/nonexistent-folder\/x\.sock does not exist\./,
    );
    expect(r.err).not.toMatch(/another server/);
  });

  it('reports an unknown plugin and a slot off bus 00 at their file:line', async () => {
    const cwd = workdir();
    writeFileSync(
      join(cwd, 'vm.yaml'),
      "plugins:\n  - package: '@nobody/ghost'\ndevices:\n  - plugin: '@nobody/ghost'\n    type: ghost-1\n",
    );
    const ghost = await cli(['run', 'vm.yaml'], cwd);
    expect(ghost.err).toMatch(
      /^vfiokit run: vm\.yaml:2:5 plugins\[0\]: plugin package "@nobody\/ghost" is not installed/,
    );
    writeFileSync(
      join(cwd, 'bus.yaml'),
      "plugins:\n  - package: '@vfiokit/sample-mtty'\ndevices:\n  - plugin: '@vfiokit/sample-mtty'\n    type: mtty-2\n    slot: '01:03.0'\n",
    );
    const bus = await cli(['run', 'bus.yaml'], cwd);
    expect(bus.err).toMatch(
      /^vfiokit run: bus\.yaml:6:11: devices\[0\]\.slot 01:03\.0 is on bus 01, but this machine has one PCI bus, 00; use 00:03\.0 or another free slot on it\./,
    );
  });

  it("resolves a relative plugin path in a configuration against the configuration's folder", async () => {
    const cwd = workdir();
    const conf = join(cwd, 'conf');
    mkdirSync(conf);
    writeFileSync(
      join(conf, 'empty-plugin.mjs'),
      "export default { name: 'empty', contractVersion: 1, deviceApi: 'vfio-pci', description: 'x', probe: () => [] };\n",
    );
    writeFileSync(join(conf, 'vm.yaml'), 'plugins:\n  - package: ./empty-plugin.mjs\n');
    const r = await cli(['run', 'conf/vm.yaml'], cwd);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });
});
