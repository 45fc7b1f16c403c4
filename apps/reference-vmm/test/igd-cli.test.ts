import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildOpRegion, buildVbt, syntheticVbt } from '@vfiokit/gvt-d';
import { describe, expect, it } from 'vitest';
import { bufferIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { loadPackageExport } from '../src/loader/index.js';
import { tempDir } from './temp-dirs.js';

function workdir(): string {
  return tempDir('vfiokit-igd-');
}

async function cli(argv: string[], cwd = workdir()) {
  const io = bufferIo({ cwd, env: { XDG_STATE_HOME: join(cwd, 'state') } });
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err(), cwd };
}

const here = fileURLToPath(new URL('.', import.meta.url));
const sharedDir = process.env.VFIOKIT_SHARED
  ? resolve(process.env.VFIOKIT_SHARED)
  : resolve(here, '../../../../shared');
const REAL_OPREGION = join(sharedDir, 'fixtures', 'vbt', 'rikka0w0-qemu-gvt-d__opregion.bin');
const haveReal = existsSync(REAL_OPREGION);

describe('vfiokit run with the gvt-d IGD', () => {
  it('the default configuration attaches the IGD at 00:02.0 and its OpRegion driver passes', async () => {
    const r = await cli(['run']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Result: ok: \d+ driver runs ok, 0 failed/);
    expect(r.out).toMatch(
      /0000:00:02\.0 gvt-d-igd 83b8f4f2 {2}8086:1912 class 030000 {2}plugin @vfiokit\/gvt-d/,
    );
    expect(r.out).toMatch(
      /ok {3}00:02\.0 gvt-d-opregion: OpRegion 2\.0\.0 at guest 0x[0-9a-f]+: VBT \$VBT SYNTHETIC/,
    );
    expect(r.out).toMatch(/ok {3}00:03\.0 mtty-8250/);
    expect(r.out).toContain('IGD assignment: 0000:00:02.0 generation 9, stolen memory 32M');
    expect(r.out).toContain('legacy mode: on');
    expect(r.out).toMatch(
      /firmware: ok: OpRegion at 0x[0-9a-f]+ \(ASLS\), 32 MiB stolen memory at 0x[0-9a-f]+ \(BDSM\)/,
    );
  });

  it('the IGD and the mtty card alone: both drivers pass and run exits 0', async () => {
    const r = await cli([
      'run',
      '--plugin',
      '@vfiokit/sample-mtty',
      '--plugin',
      '@vfiokit/gvt-d',
      '--device',
      '@vfiokit/sample-mtty:mtty-2@00:03.0',
      '--device',
      '@vfiokit/gvt-d:gvt-d-igd@00:02.0',
      '--json',
    ]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as {
      drivers: { driver: string; ok: boolean }[];
      report: { igd: { firmware: { ok: boolean }; legacyMode: { enabled: boolean } } };
    };
    expect(report.drivers.map((d) => [d.driver, d.ok])).toEqual([
      ['gvt-d-opregion', true],
      ['mtty-8250', true],
    ]);
    expect(report.report.igd.firmware.ok).toBe(true);
    expect(report.report.igd.legacyMode.enabled).toBe(true);
  });

  it("lspci -vvv shows the IGD's capabilities and the legacy-mode LPC bridge", async () => {
    const r = await cli([
      'lspci',
      '-vvv',
      '-nn',
      '-i',
      fileURLToPath(new URL('./fixtures/pci.ids', import.meta.url)),
    ]);
    expect(r.code).toBe(0);
    const igd = r.out.slice(r.out.indexOf('00:02.0 VGA compatible controller'));
    const block = igd.slice(0, igd.indexOf('\n\n'));
    expect(block).toContain('Intel Corporation HD Graphics 530 [8086:1912]');
    expect(block).toContain('Capabilities: [40] Vendor Specific Information');
    expect(block).toContain('Capabilities: [70] Express');
    expect(block).toContain('Capabilities: [ac] MSI: Enable+ Count=1/1');
    expect(block).toContain('Capabilities: [d0] Power Management version 3');
    expect(r.out).toContain(
      '00:1f.0 ISA bridge [0601]: Intel Corporation Z170 Chipset LPC/eSPI Controller [8086:a145]',
    );
  });
});

describe('vfiokit opregion dump', () => {
  it('prints the header, mailboxes and VBT blocks of a synthetic OpRegion', async () => {
    const cwd = workdir();
    writeFileSync(join(cwd, 'op.bin'), buildOpRegion({ vbt: syntheticVbt() }));
    const r = await cli(['opregion', 'dump', 'op.bin'], cwd);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^IGD OpRegion\n {2}signature {6}IntelGraphicsMem/);
    expect(r.out).toContain('Mailbox 3 (ASLE)');
    expect(r.out).toContain('VBT in mailbox 4 at 0x400');
    expect(r.out).toMatch(/Blocks \(\d+\)/);
  });

  it('accepts a bare VBT, and prints JSON with --json', async () => {
    const cwd = workdir();
    writeFileSync(join(cwd, 'data.vbt'), syntheticVbt());
    const text = await cli(['opregion', 'dump', 'data.vbt'], cwd);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^VBT header\n/);
    const json = await cli(['opregion', 'dump', 'data.vbt', '--json'], cwd);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({ kind: 'vbt' });
  });

  it('says what is wrong with a file that is neither, a missing file, and a missing argument', async () => {
    const cwd = workdir();
    writeFileSync(join(cwd, 'junk.bin'), new Uint8Array(64));
    const junk = await cli(['opregion', 'dump', 'junk.bin'], cwd);
    expect(junk.code).toBe(1);
    expect(junk.err).toMatch(/starts with neither "IntelGraphicsMem" nor "\$VBT"/);
    const missing = await cli(['opregion', 'dump', 'nope.bin'], cwd);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('cannot read nope.bin: no such file.');
    const none = await cli(['opregion', 'dump'], cwd);
    expect(none.code).toBe(2);
    expect(none.err).toContain('vfiokit opregion dump needs the file to dump.');
    const action = await cli(['opregion', 'show'], cwd);
    expect(action.code).toBe(2);
    expect(action.err).toContain('"show" is not an opregion action');
  });

  it('has --help, and the main help lists it', async () => {
    const h = await cli(['opregion', 'dump', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/^Usage: vfiokit opregion dump <file> \[--json\]/);
    const main = await cli(['--help']);
    expect(main.out).toContain('opregion dump <f>');
  });

  it.runIf(haveReal)(
    haveReal
      ? 'dumps the real Skylake OpRegion fixture (rikka0w0/qemu-gvt-d)'
      : `dumps the real Skylake OpRegion fixture — ${REAL_OPREGION} not found: skipped`,
    async () => {
      const r = await cli(['opregion', 'dump', REAL_OPREGION]);
      expect(r.code).toBe(0);
      expect(r.out).toContain('version        2.0.0');
      expect(r.out).toContain('vbios_ver      "1046"');
      expect(r.out).toMatch(/signature {6}"\$VBT SKYLAKE/);
    },
  );
});

describe('vfiokit opregion decode', () => {
  it("prints an OpRegion's VBT as intel_vbt_decode does", async () => {
    const cwd = workdir();
    writeFileSync(join(cwd, 'op.bin'), buildOpRegion({ vbt: syntheticVbt() }));
    const r = await cli(['opregion', 'decode', 'op.bin'], cwd);
    // No block 41/42 (BDB 221): the tool says on stderr that it tries to build block 41.
    expect(r.err).toMatch(/^(Generating LVDS data table pointers\n)+$/);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^VBT header:\n\tVBT signature:\t\t"\$VBT SYNTHETIC {6}"\n/);
    expect(r.out).toContain('BDB blocks present:\n\t  1   2  12  40\n\n');
    expect(r.out).toContain('BDB block 40 (4 bytes) - LVDS options block:\n\tPanel type: 2\n');
    const options = new Uint8Array(24);
    options[0] = 3;
    writeFileSync(join(cwd, 'panels.vbt'), buildVbt([{ id: 40, data: options }], { bdbVersion: 200 }));
    const one = await cli(
      ['opregion', 'decode', 'panels.vbt', '--block=40', '--panel-type', '0x5', '--all-panels'],
      cwd,
    );
    expect(one.code).toBe(0);
    expect(one.out).toMatch(/^BDB block 40 \(24 bytes\) - LVDS options block:\n\tPanel type: 3\n/);
    expect(one.out).toContain('\tPanel 5 *\n');
    expect(one.out.match(/\tPanel \d+/g)?.length).toBe(16);
    expect((await cli(['opregion', 'decode', 'op.bin', '--describe'], cwd)).out).toBe('221-synthetic\n');
  });

  it("ends 1 with the tool's message for a missing block, and refuses bad options", async () => {
    const cwd = workdir();
    writeFileSync(join(cwd, 'data.vbt'), syntheticVbt());
    const missing = await cli(['opregion', 'decode', 'data.vbt', '--block', '99'], cwd);
    expect(missing).toMatchObject({ code: 1, out: '', err: 'Block 99 not found\n' });
    const bad = await cli(['opregion', 'decode', 'data.vbt', '--panel-type', '16'], cwd);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("invalid panel type '16'");
    expect((await cli(['opregion', 'decode', 'data.vbt', '--devid', 'zz'], cwd)).err).toContain(
      "invalid devid 'zz'",
    );
    writeFileSync(join(cwd, 'notes.txt'), 'no VBT here\n');
    expect(await cli(['opregion', 'decode', 'notes.txt'], cwd)).toMatchObject({
      code: 1,
      out: '',
      err: 'VBT signature missing\n  notes.txt holds no usable VBT: give a VBT (data.vbt, /sys/kernel/debug/dri/0/i915_vbt), an OpRegion dump (i915_opregion) or a video BIOS image.\n',
    });
    expect((await cli(['opregion', 'decode'], cwd)).err).toContain(
      'vfiokit opregion decode needs the file to decode.',
    );
    const main = await cli(['--help']);
    expect(main.out).toContain('opregion decode <f>');
  });

  it.runIf(haveReal)(
    haveReal
      ? 'decodes the real Skylake OpRegion exactly as intel_vbt_decode 1.27.1 did'
      : `decodes the real Skylake OpRegion — ${REAL_OPREGION} not found: skipped`,
    async () => {
      const r = await cli(['opregion', 'decode', REAL_OPREGION]);
      expect(r.code).toBe(0);
      expect(r.out).toBe(readFileSync(`${REAL_OPREGION}.decode.txt`, 'latin1'));
    },
  );
});

describe('loading a named export of a package through the plugin loader', () => {
  it('returns the export when the package has it', async () => {
    expect(typeof (await loadPackageExport('@vfiokit/gvt-d', 'opregionDump'))).toBe('function');
  });

  it('says the package is missing, or has no such export, in one sentence', async () => {
    await expect(loadPackageExport('@vfiokit/not-installed-here', 'opregionDump')).rejects.toThrow(
      /plugin package "@vfiokit\/not-installed-here" is not installed/,
    );
    await expect(
      loadPackageExport(
        fileURLToPath(new URL('./fixtures/plugins/empty-plugin.mjs', import.meta.url)),
        'opregionDump',
      ),
    ).rejects.toThrow(/has no export named opregionDump/);
  });
});
