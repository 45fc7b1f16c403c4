import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bufferIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { tempDir } from './temp-dirs.js';

/** A working directory with no node_modules above it: plugins resolve from vfiokit's own location. */
function workdir(): string {
  return tempDir('vfiokit-cli-');
}

async function cli(
  argv: string[],
  opts: { cwd?: string; tty?: boolean; files?: Record<string, string> } = {},
) {
  const cwd = opts.cwd ?? workdir();
  for (const [name, text] of Object.entries(opts.files ?? {})) writeFileSync(join(cwd, name), text);
  const io = bufferIo({ cwd, env: { XDG_STATE_HOME: join(cwd, 'state') }, tty: opts.tty });
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err(), cwd };
}

const MTTY = '@vfiokit/sample-mtty';
/** A few entries of pci.ids, so the names do not depend on the machine's database. */
const PCI_IDS = fileURLToPath(new URL('./fixtures/pci.ids', import.meta.url));

describe('vfiokit run', () => {
  it('boots the embedded default configuration, runs the mtty driver and prints the report', async () => {
    const r = await cli(['run']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('vfiokit run: the default configuration');
    expect(r.out).toMatch(
      /0000:00:03\.0 mtty-2 83b8f4f2 {2}4348:3253 class 070002 {2}plugin @vfiokit\/sample-mtty, parent mtty/,
    );
    expect(r.out).toMatch(/BAR0 +8 io at 0xc[0-9a-f]{3} {2}trapped/);
    expect(r.out).toMatch(/interrupts: intx, INTx vector 0x[0-9a-f]+, \d+ delivered/);
    expect(r.out).toMatch(/ok {3}00:03\.0 mtty-/);
    expect(r.out).toContain('Errors: none');
    expect(r.out).toMatch(/ok {3}00:04\.0 i915 on a GVT-g vGPU: vGPU 1: PVINFO found/);
    expect(r.out).toMatch(/ok {3}00:05\.0 nvidia-vgpu-guest: handshake/);
    expect(r.out).toMatch(/Result: ok: \d+ driver runs? ok, 0 failed, 0 device errors\.\n$/);
  });

  it('prints the same run as JSON with --json', async () => {
    const r = await cli(['run', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.outcome).toMatchObject({ driversFailed: 0, deviceErrors: 0, ok: true });
    expect(j.outcome.driversOk).toBe(j.drivers.length);
    expect(j.devices).toContainEqual({
      slot: '00:03.0',
      plugin: MTTY,
      parent: 'mtty',
      type: 'mtty-2',
      uuid: '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001',
    });
    expect(j.devices).toContainEqual(
      expect.objectContaining({ slot: '00:04.0', plugin: '@vfiokit/gvt-g', type: 'i915-GVTg_V5_8' }),
    );
    expect(j.devices).toContainEqual(
      expect.objectContaining({ slot: '00:05.0', plugin: '@vfiokit/nvidia-vgpu', type: 'nvidia-319' }),
    );
    expect(j.report.devices.map((d: { slot: string }) => d.slot)).toEqual(
      expect.arrayContaining(['0000:00:00.0', '0000:00:03.0', '0000:00:04.0', '0000:00:05.0']),
    );
  });

  it('runs a YAML configuration file with two devices', async () => {
    const r = await cli(['run', 'vm.yaml'], {
      files: {
        'vm.yaml': `plugins:\n  - package: '${MTTY}'\ndevices:\n  - { plugin: '${MTTY}', type: mtty-1, slot: '00:04.0' }\n  - { plugin: '${MTTY}', type: mtty-2 }\n`,
      },
    });
    expect(r.code).toBe(0);
    expect(r.out).toContain('vfiokit run: vm.yaml');
    expect(r.out).toMatch(/0000:00:03\.0 mtty-2/);
    expect(r.out).toMatch(/0000:00:04\.0 mtty-1/);
  });

  it('adds one-off devices from --device, starting from an empty configuration', async () => {
    const r = await cli(['run', '--json', '--device', `${MTTY}:mtty-1@00:05.0`]);
    expect(r.code).toBe(0);
    expect(
      JSON.parse(r.out).devices.map((d: { slot: string; type: string }) => `${d.slot} ${d.type}`),
    ).toEqual(['00:05.0 mtty-1']);
  });

  it('says in one sentence which field of a wrong configuration is wrong, and exits 1', async () => {
    const r = await cli(['run', 'bad.yaml'], {
      files: {
        'bad.yaml': `plugins:\n  - package: '${MTTY}'\ndevices:\n  - plugin: '${MTTY}'\n    type: mtty-2\n    slot: 00:3\n`,
      },
    });
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(
      'vfiokit run: bad.yaml:6:11: devices[0].slot "00:3" is not a bus:device.function address such as 00:03.0.\n',
    );
  });

  it('says a configuration file that does not exist does not exist', async () => {
    const r = await cli(['run', 'nope.yaml']);
    expect(r.code).toBe(1);
    expect(r.err.split('\n')[0]).toBe('vfiokit run: the configuration file nope.yaml does not exist.');
  });

  it('says an unknown plugin package is not installed, and exits 1', async () => {
    const r = await cli(['run', '--device', '@nobody/ghost:ghost-1']);
    expect(r.code).toBe(1);
    expect(r.err.split('\n')[0]).toMatch(
      /^vfiokit run: command line --device #1: plugin package "@nobody\/ghost" is not installed where .* or vfiokit can find it\.$/,
    );
    expect(r.err.split('\n')[1]).toBe(
      '  Install it in your project (pnpm add @nobody/ghost) or check the name.',
    );
  });

  it('says a device naming a plugin that is not listed is an unknown plugin', async () => {
    const r = await cli(['run', 'vm.yaml'], {
      files: { 'vm.yaml': 'plugins: []\ndevices:\n  - { plugin: "@x/y", type: t }\n' },
    });
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `vfiokit run: vm.yaml:3:15: devices[0].plugin "@x/y" is not in the plugins list; add { package: '@x/y' } to plugins.\n`,
    );
  });

  it('says a busy slot is busy, naming both devices, and exits 1', async () => {
    const r = await cli(['run', 'vm.yaml'], {
      files: {
        'vm.yaml': `plugins: [{ package: '${MTTY}' }]\ndevices:\n  - { plugin: '${MTTY}', type: mtty-1, slot: '00:03.0' }\n  - { plugin: '${MTTY}', type: mtty-1, slot: '00:03.0' }\n`,
      },
    });
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      'vfiokit run: vm.yaml:4:59: devices[1].slot 00:03.0 is already taken by devices[0] (vm.yaml:3:59); give each device its own slot.\n',
    );
  });

  it('says a --device at a slot the configuration already uses is busy', async () => {
    const r = await cli(['run', 'vm.yaml', '--device', `${MTTY}:mtty-1@00:03.0`], {
      files: {
        'vm.yaml': `plugins: [{ package: '${MTTY}' }]\ndevices:\n  - { plugin: '${MTTY}', type: mtty-1, slot: '00:03.0' }\n`,
      },
    });
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      'vfiokit run: command line: --device #1 slot 00:03.0 is already taken by devices[0] (vm.yaml:3:59); give each device its own slot.\n',
    );
  });

  it('says when a plugin has no such mdev type', async () => {
    const r = await cli(['run', '--device', `${MTTY}:mtty-9`]);
    expect(r.code).toBe(1);
    expect(r.err.split('\n')[0]).toBe(
      `vfiokit run: command line --device #1: plugin "${MTTY}" offers no mdev type "mtty-9" (types: mtty-1, mtty-2).`,
    );
  });

  it('says which vfio-user device cannot be attached when nothing serves its socket', async () => {
    const r = await cli(['run', 'vm.yaml'], {
      files: { 'vm.yaml': 'devices:\n  - { vfioUser: /run/dev0.sock, slot: "00:06.0" }\n' },
    });
    expect(r.code).toBe(1);
    expect(r.err.split('\n')[0]).toMatch(
      /^vfiokit run: vm\.yaml:2:5 devices\[0\]: the vfio-user device at 00:06\.0 cannot be attached from \/run\/dev0\.sock: .+\.$/,
    );
  });

  it('refuses a malformed --device with the usage and exit 2', async () => {
    const r = await cli(['run', '--device', 'just-a-name']);
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe(
      'vfiokit run: --device "just-a-name" is not plugin:type[:uuid][@slot], such as @vfiokit/sample-mtty:mtty-2@00:04.0.',
    );
    expect(r.err).toContain('Usage: vfiokit run');
  });

  it('draws a progress bar on a terminal and nothing when piped', async () => {
    const tty = await cli(['run'], { tty: true });
    expect(tty.code).toBe(0);
    expect(tty.err).toMatch(/booting \[#+\.*\] \d+\/\d+/);
    const piped = await cli(['run']);
    expect(piped.err).toBe('');
  });
});

describe('vfiokit lspci', () => {
  it('prints what the guest sees, one line per function, named from the PCI ID database', async () => {
    const r = await cli(['lspci', '-i', PCI_IDS]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      [
        '00:00.0 Host bridge: Intel Corporation 82G33/G31/P35/P31 Express DRAM Controller (rev 07)',
        '00:02.0 VGA compatible controller: Intel Corporation HD Graphics 530 (rev 06)',
        '00:03.0 Serial controller: WCH.CN CH352 PCI Dual Serial Port Controller (rev 10)',
        '00:04.0 VGA compatible controller: Intel Corporation HD Graphics 630 (rev 04)',
        '00:05.0 3D controller: NVIDIA Corporation TU104GL [Tesla T4] (rev a1)',
        '00:1f.0 ISA bridge: Intel Corporation Z170 Chipset LPC/eSPI Controller (rev 31)',
        '',
      ].join('\n'),
    );
  });

  it('says which pci.ids it could not read given -i, and why', async () => {
    const r = await cli(['lspci', '-i', 'no-such.ids']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^vfiokit lspci: the PCI ID database no-such\.ids cannot be read \(ENOENT\)\./);
    expect(r.err).toContain('Give -i a pci.ids file');
  });

  it('dumps configuration space with -xxx as lspci does: the header line, 16 rows, a blank line', async () => {
    const r = await cli(['lspci', '-xxx', '-i', PCI_IDS]);
    const block = r.out.split('\n\n').find((b) => b.startsWith('00:03.0')) ?? '';
    const lines = block.split('\n');
    expect(lines).toHaveLength(17);
    expect(lines[1]).toMatch(/^00: 48 43 53 32 /);
    expect(lines[16]).toMatch(/^f0: /);
  });

  it('with -k lists the guest drivers whose id tables match each function', async () => {
    const r = await cli(['lspci', '-k', '-i', PCI_IDS]);
    const lines = r.out.split('\n');
    const at = lines.findIndex((l) => l.startsWith('00:03.0 '));
    expect(lines[at + 1]).toBe('\tSubsystem: WCH.CN CH352 PCI Dual Serial Port Controller');
    expect(lines[at + 2]).toMatch(/^\tKernel modules: \S/);
  });

  it('prints numeric IDs with -n', async () => {
    const r = await cli(['lspci', '-n']);
    expect(r.out.split('\n')).toContain('00:03.0 0700: 4348:3253 (rev 10)');
    expect(r.out.split('\n')).toContain('00:02.0 0300: 8086:1912 (rev 06)');
  });

  it('with -vvv shows the mtty BARs with their sizes, and capabilities exactly when the status says so', async () => {
    const r = await cli(['lspci', '-vvv', '-i', PCI_IDS]);
    expect(r.code).toBe(0);
    const block = r.out.split('\n\n').find((b) => b.startsWith('00:03.0')) ?? '';
    const lines = block.split('\n');
    expect(lines[0]).toBe(
      '00:03.0 Serial controller: WCH.CN CH352 PCI Dual Serial Port Controller (rev 10) (prog-if 02 [16550])',
    );
    expect(lines).toContain('\tSubsystem: WCH.CN CH352 PCI Dual Serial Port Controller');
    expect(lines.some((l) => /^\tControl: I\/O\+ Mem[+-] BusMaster[+-] /.test(l))).toBe(true);
    expect(lines).toContainEqual(
      expect.stringMatching(/^\tRegion 0: I\/O ports at c[0-9a-f]{3} \[size=8\]$/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^\tRegion 1: I\/O ports at c[0-9a-f]{3} \[size=8\]$/),
    );
    expect(lines).toContainEqual(expect.stringMatching(/^\tInterrupt: pin A routed to IRQ \d+$/));
    const capList = lines.find((l) => l.startsWith('\tStatus: '))?.includes('Cap+');
    expect(lines.some((l) => l.startsWith('\tCapabilities: '))).toBe(capList);
  });

  it('prints the functions as JSON with --json', async () => {
    const r = await cli(['lspci', '--json']);
    const j = JSON.parse(r.out);
    const mtty = j.find((d: { slot: string }) => d.slot === '00:03.0');
    expect(mtty).toMatchObject({
      vendorId: '4348',
      deviceId: '3253',
      classCode: '070002',
      className: 'Serial controller',
    });
    expect(mtty.bars.map((b: { kind: string; size: number }) => `${b.kind}/${b.size}`)).toEqual([
      'io/8',
      'io/8',
    ]);
  });
});

describe('vfiokit usage', () => {
  it('prints help with usage, options and an example for every command', async () => {
    for (const cmd of ['run', 'types', 'lspci', 'mdev']) {
      const r = await cli([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.out).toContain(`Usage: vfiokit ${cmd}`);
      expect(r.out).toContain('Options:');
      expect(r.out).toContain('Example:');
    }
    expect((await cli(['--help'])).out).toContain('Commands:');
  });

  it('refuses an unknown command with one sentence, the usage and exit 2', async () => {
    const r = await cli(['boot']);
    expect(r.code).toBe(2);
    // Every registered command is listed; other commands join the list as they are added.
    expect(r.err.split('\n')[0]).toMatch(
      /^vfiokit: "boot" is not a command; the commands are run, types, lspci, mdev(, [a-z-]+)* and [a-z-]+\.$/,
    );
    expect(r.err.split('\n')[0]).toContain(' serve');
    expect(r.err).toContain('Usage: vfiokit <command>');
  });

  it('refuses an unknown option with one sentence, the command usage and exit 2', async () => {
    const r = await cli(['lspci', '--colour']);
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toBe('vfiokit lspci has no option --colour.');
    expect(r.err).toContain('Usage: vfiokit lspci');
  });

  it('refuses a second positional argument and an option without its value', async () => {
    expect((await cli(['run', 'a.yaml', 'b.yaml'])).err.split('\n')[0]).toBe(
      'vfiokit run does not take the argument "b.yaml".',
    );
    expect((await cli(['run', '--plugin'])).err.split('\n')[0]).toBe(
      'vfiokit run: option --plugin needs a value.',
    );
  });

  it('prints the version', async () => {
    expect((await cli(['--version'])).out).toMatch(/^vfiokit \d+\.\d+\.\d+\n$/);
  });
});

describe('the built executable', () => {
  const bin = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
  it.runIf(existsSync(bin))('starts node without the memory reducer, as its #! line says', () => {
    // Run it as the kernel runs a script: the #! line's interpreter, the rest of the line as one
    // argument, then the script's path.
    const line = readFileSync(bin, 'utf8').split('\n')[0];
    expect(line).toMatch(/^#!\S+ \S/);
    const interpreter = line.slice(2, line.indexOf(' '));
    const rest = line.slice(line.indexOf(' ') + 1);
    const dir = tempDir('vfiokit-shebang-');
    const probe = join(dir, 'exec-argv.cjs');
    writeFileSync(probe, "process.stderr.write(JSON.stringify(process.execArgv) + '\\n');\n");
    const r = spawnSync(interpreter, [rest, bin, '--version'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: `--require ${probe}` },
      timeout: 60_000,
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^vfiokit \d+\.\d+\.\d+\n$/);
    expect(JSON.parse(r.stderr.split('\n')[0])).toContain('--no-memory-reducer');
  });

  it.runIf(existsSync(bin))('runs the default configuration from dist/cli.js and exits 0', () => {
    const r = spawnSync(process.execPath, [bin, 'run'], { encoding: 'utf8', cwd: tmpdir(), timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Result: ok: /);
  });
});
