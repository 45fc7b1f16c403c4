/**
 * intelVbtDecode against igt-gpu-tools 1.27.1's intel_vbt_decode, character for character:
 * - the shared fixtures' recorded decode (stdout and stderr) for all eleven real VBTs;
 * - when `intel_vbt_decode` is installed (Debian: intel-gpu-tools; .ci/run installs it), the real
 *   tool on the fixtures with every option, on a synthetic Sandy Bridge VBT, and on mutated and
 *   generated VBTs (MIPI sequence blocks included), diffing its output with ours;
 * - properties: never a throw, whatever the bytes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildOpRegion,
  buildVbt,
  encodeDtd,
  findVbtSignature,
  type IntelVbtDecodeOptions,
  intelVbtDecode,
  lfpDataBlocks,
  type PanelTiming,
  syntheticVbt,
  type VbtBlockInput,
  vbtDecoderBlockIds,
  vbtPanels,
} from '../src/index.js';
import { fixtureSuite, fixturesDir, haveFixtures, loadFixtures } from './fixtures.js';
import { catchVfioError } from './helpers.js';

const fixtures = loadFixtures();
/** The two pre-Gen5 blobs were decoded with --devid (SOURCES.md). */
const DEVIDS: Record<string, number> = {
  'coreboot__intel__d945gclf__data.vbt': 0x2772,
  'coreboot__lenovo__x200__data_led.vbt': 0x2a42,
};
/** A recorded output file as the bytes the tool wrote (Latin-1), or '' when there is none. */
const recorded = (file: string) => (existsSync(file) ? readFileSync(file, 'latin1') : '');

const TOOL = 'intel_vbt_decode';
const haveTool = spawnSync(TOOL, ['--help'], { encoding: 'latin1' }).error === undefined;
const toolSuite = (what: string) =>
  haveTool ? what : `${what} — ${TOOL} is not installed (Debian: apt-get install intel-gpu-tools): skipped`;

const work = mkdtempSync(join(tmpdir(), 'vfiokit-vbt-'));
let fileNo = 0;

/** The real tool's stdout, stderr and status, or undefined when it died of a signal. */
function realDecode(bytes: Uint8Array, options: IntelVbtDecodeOptions) {
  const file = join(work, `v${fileNo++}.bin`);
  writeFileSync(file, bytes);
  const args = [`--file=${file}`];
  if (options.devid) args.push(`--devid=${options.devid.toString(16)}`);
  if (options.panelType !== undefined) args.push(`--panel-type=${options.panelType}`);
  if (options.allPanels) args.push('--all-panels');
  if (options.hexdump) args.push('--hexdump');
  if (options.block !== undefined) args.push(`--block=${options.block}`);
  if (options.header) args.push('--header');
  if (options.describe) args.push('--describe');
  const env = { ...process.env };
  delete env.DEVICE; // the tool reads a device id from it
  const r = spawnSync(TOOL, args, { encoding: 'latin1', env, maxBuffer: 1 << 26 });
  if (r.signal) return undefined;
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.status ?? -1 };
}

function firstDifference(want: string, got: string): string {
  const w = want.split('\n');
  const g = got.split('\n');
  for (let i = 0; i < Math.max(w.length, g.length); i++) {
    if (w[i] !== g[i]) return `line ${i + 1}: want ${JSON.stringify(w[i])}, got ${JSON.stringify(g[i])}`;
  }
  return 'equal';
}

function expectSame(bytes: Uint8Array, options: IntelVbtDecodeOptions, what: string): number {
  const real = realDecode(bytes, options);
  if (!real) return 0;
  const ours = intelVbtDecode(bytes, options);
  expect(firstDifference(real.stdout, ours.stdout), `${what}: stdout`).toBe('equal');
  expect(ours.stderr, `${what}: stderr`).toBe(real.stderr);
  expect(ours.exitCode, `${what}: exit status`).toBe(real.exitCode);
  return real.stdout.split('\n').length;
}

describe.skipIf(!haveFixtures)(
  fixtureSuite('intelVbtDecode on the real VBTs: the recorded intel_vbt_decode 1.27.1 output'),
  () => {
    it.each(fixtures.map((f) => [f.name, f] as const))(
      '%s: stdout and stderr, character for character',
      (_n, f) => {
        const ours = intelVbtDecode(f.bytes, { devid: DEVIDS[f.name] });
        expect(firstDifference(recorded(join(fixturesDir, `${f.name}.decode.txt`)), ours.stdout)).toBe(
          'equal',
        );
        expect(ours.stderr).toBe(recorded(join(fixturesDir, `${f.name}.decode.stderr.txt`)));
        expect(ours.exitCode).toBe(0);
      },
    );

    it('decodes every block the tool decodes, lists the blocks it lists, and counts the lines compared', () => {
      let lines = 0;
      const decoded = new Set<number>();
      for (const f of fixtures) {
        const ours = intelVbtDecode(f.bytes, { devid: DEVIDS[f.name] });
        lines += ours.stdout.split('\n').length;
        for (const m of ours.stdout.matchAll(/^BDB block (\d+) \(\d+ bytes\) - (.*):$/gm)) {
          if (!m[2].startsWith('Unknown')) decoded.add(Number(m[1]));
        }
        expect(vbtDecoderBlockIds(f.bytes)).toEqual(f.facts.decoder.blocks_present_as_printed);
      }
      expect([...decoded].sort((a, b) => a - b)).toEqual([
        1, 2, 9, 11, 12, 22, 23, 27, 40, 41, 42, 43, 44, 52, 56,
      ]);
      console.log(`vbt-decode: ${fixtures.length} fixtures, ${lines} lines equal to intel_vbt_decode 1.27.1`);
    });

    it('gives each panel as data: Haswell Chromebook (slippy) panel 2 is a 1024x768 eDP panel at 65 MHz', () => {
      const slippy = fixtures.find((f) => f.name.includes('slippy'));
      expect(slippy).toBeDefined();
      const p = vbtPanels(slippy!.bytes);
      expect(p.panelType).toBe(2);
      const lfp = p.lfp[2];
      expect(lfp).toMatchObject({ xRes: 1366, yRes: 768, name: 'LFP_PanelName' });
      expect(lfp.timing).toEqual({
        hdisplay: 1024,
        hsyncStart: 1048,
        hsyncEnd: 1184,
        htotal: 1344,
        vdisplay: 768,
        vsyncStart: 771,
        vsyncEnd: 777,
        vtotal: 806,
        clockHz: 65_000_000,
      });
      expect(lfp.registers).toEqual({
        lvds: 0x300,
        ppOnDelays: 0x025807d0,
        ppOffDelays: 0x01f407d0,
        ppDivisor: 0x00270f05,
        pfit: 0x00414000,
      });
      expect(lfp.pnp).toMatchObject({ manufacturer: 'MS_', mfgName: 0x7f36, mfgYear: 2002 });
      expect(p.edp[2].powerSequence).toBeDefined();
    });
  },
);

/** Sandy Bridge (BDB 168) laptop: an eDP panel on port A, 1024x768 at 65 MHz, panel type 3. */
function sandyBridgeLaptop(): Uint8Array {
  const child = new Uint8Array(33);
  child[0] = 0x08; // LFP 1
  child[2] = 0xc6; // DEVICE_TYPE_eDP 0x78c6
  child[3] = 0x78;
  child[16] = 10; // DP-A
  child[25] = 0x40; // AUX-A
  child[27] = 1 << 5; // integrated encoder
  const defs = new Uint8Array(5 + 33);
  defs[4] = 33;
  defs.set(child, 5);
  const edp = new Uint8Array(216);
  const dv = new DataView(edp.buffer);
  const panel = 3;
  for (const [k, t] of [2000, 10, 2000, 500, 5000].entries()) dv.setUint16(10 * panel + 2 * k, t, true); // T3 T7 T9 T10 T12
  dv.setUint32(160, 1 << (2 * panel), true); // 24 bpp
  edp[164 + 2 * panel] = 1 | (0 << 4); // 2.7 Gbps, 1 lane
  const options = new Uint8Array(24);
  options[0] = panel;
  const timing: PanelTiming = {
    hdisplay: 1024,
    hsyncStart: 1048,
    hsyncEnd: 1184,
    htotal: 1344,
    vdisplay: 768,
    vsyncStart: 771,
    vsyncEnd: 777,
    vtotal: 806,
    clockHz: 65_000_000,
  };
  const before: VbtBlockInput[] = [
    { id: 1, data: new Uint8Array([0x0f, 0x02, 0x00, 0x01, 0x01]) },
    { id: 2, data: defs },
    { id: 27, data: edp },
    { id: 40, data: options },
  ];
  const panels = Array.from({ length: 16 }, (_, i) => ({
    timing,
    registers: { ppOnDelays: 0x07d00001 + i, ppOffDelays: 0x01f40001, ppDivisor: 0x00270f05 },
    pnp: { manufacturer: 'LGD', productCode: 0x02d8, serial: 0, mfgWeek: 1, mfgYear: 2011 },
    name: i === panel ? 'LP140WH1-TLA1' : `panel ${i}`,
  }));
  return buildVbt([...before, ...lfpDataBlocks(panels, before)], {
    platform: 'SANDYBRIDGE-M',
    bdbVersion: 168,
  });
}

describe('a Sandy Bridge laptop: a 1024x768 eDP panel at 65 MHz', () => {
  const vbt = sandyBridgeLaptop();

  it('reads back as data: panel type, DTD, power sequencing, PnP id, name and eDP settings', () => {
    const p = vbtPanels(vbt);
    expect(p.panelType).toBe(3);
    expect(p.lfp[3].timing.clockHz).toBe(65_000_000);
    expect([p.lfp[3].timing.hdisplay, p.lfp[3].timing.vdisplay]).toEqual([1024, 768]);
    expect(p.lfp[3].registers.ppOnDelays).toBe(0x07d00004);
    expect(p.lfp[3].pnp).toMatchObject({ manufacturer: 'LGD', productCode: 0x02d8, mfgYear: 2011 });
    expect(p.lfp[3].name).toBe('LP140WH1-TLA1');
    expect(p.edp[3]).toMatchObject({
      powerSequence: { t3: 2000, t7: 10, t9: 2000, t10: 500, t12: 5000 },
      colorDepthBpp: 24,
      fastLink: { rateGbps: 2.7, lanes: 1 },
    });
    expect(p.warnings).toEqual([]);
  });

  it('prints as intel_vbt_decode prints it', () => {
    const text = intelVbtDecode(vbt).stdout;
    expect(text).toContain('\tVBT signature:\t\t"$VBT SANDYBRIDGE-M  "\n');
    expect(text).toContain('\t\tDevice type: 0x78c6 (eDP)\n');
    expect(text).toContain('\tPanel 3 *\n\t\t1024x768 clock 65000000\n');
    expect(text).toContain('\t\ttimings: 1024 1048 1184 1344 768 771 777 806 65000.00 (good)\n');
    expect(text).toContain('\t\t  PP_ON_DELAYS: 0x07d00004\n');
    expect(text).toContain('\t\t  Mfg name: LGD (0xe430)\n');
    expect(text).toContain('\t\tPanel name: LP140WH1-TLA1\n');
    expect(text).toContain('\t\tPower Sequence: T3 2000 T7 10 T9 2000 T10 500 T12 5000\n');
    expect(text).toContain('\t\t\trate: 2.7Gbpc\n\t\t\tlanes: X1\t\t\tpre-emphasis: 0dB (0x0)\n');
  });

  it.skipIf(!haveTool)(toolSuite('is decoded by the real intel_vbt_decode exactly as by us'), () => {
    for (const options of [{}, { allPanels: true }, { hexdump: true }, { block: 42 }, { panelType: 0 }]) {
      expectSame(vbt, options, JSON.stringify(options));
    }
  });
});

/** A well-formed MIPI sequence block (v1..v3) for panels 0..5 with random elements. */
function mipiSequenceBlock(version: number, rnd: () => number): Uint8Array {
  const ri = (n: number) => Math.floor(rnd() * n);
  const bytes: number[] = [];
  const u32 = (v: number) => bytes.push(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff);
  const panelBlocks: number[][] = [];
  for (let panel = 0; panel < 6; panel++) {
    const seqData: number[] = [];
    const ids = [...new Set(Array.from({ length: 1 + ri(5) }, () => 1 + ri(version >= 3 ? 11 : 8)))];
    for (const id of ids) {
      const elems: number[] = [];
      for (let k = ri(5); k > 0; k--) {
        const op = 1 + ri(version >= 3 ? 6 : version >= 2 ? 4 : 3);
        let payload: number[];
        if (op === 1) {
          const len = ri(6);
          payload = [ri(16), ri(256), len & 0xff, len >> 8, ...Array.from({ length: len }, () => ri(256))];
        } else if (op === 2) payload = [ri(256), ri(256), 0, 0];
        else if (op === 3) payload = version >= 3 ? [ri(64), ri(64), ri(4)] : [ri(64), ri(8)];
        else if (op === 4) {
          const len = ri(4);
          payload = [
            ri(4),
            ri(4),
            ri(8),
            ri(256),
            0,
            ri(256),
            len,
            ...Array.from({ length: len }, () => ri(256)),
          ];
        } else payload = Array.from({ length: ri(6) }, () => ri(256)); // SPI / PMIC, skipped by size
        elems.push(op);
        if (version >= 3) elems.push(payload.length);
        elems.push(...payload);
      }
      elems.push(0);
      seqData.push(id);
      if (version >= 3) {
        const n = elems.length;
        seqData.push(n & 0xff, (n >> 8) & 0xff, 0, 0);
      }
      seqData.push(...elems);
    }
    seqData.push(0); // MIPI_SEQ_END
    panelBlocks.push(seqData);
  }
  const body: number[] = [];
  for (const [panel, data] of panelBlocks.entries()) {
    body.push(panel);
    if (version >= 3) body.push(data.length & 0xff, (data.length >> 8) & 0xff, 0, 0);
    else body.push(data.length & 0xff, data.length >> 8);
    body.push(...data);
  }
  bytes.push(version);
  if (version >= 3) u32(body.length);
  bytes.push(...body);
  return new Uint8Array(bytes);
}

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cases the real tool cannot decode deterministically (it divides by zero or reads past its buffer). */
function toolIsDeterministicOn(bytes: Uint8Array, options: IntelVbtDecodeOptions): boolean {
  const at = findVbtSignature(bytes);
  if (at < 0) return true;
  const ids = vbtDecoderBlockIds(bytes, options);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bdb = at + view.getUint32(at + 0x1c, true);
  // Walk as the tool does to look at blocks 2, 11, 52 and 53.
  let i = bdb + view.getUint16(bdb + 0x12, true);
  const end = Math.min(bytes.length, bdb + view.getUint16(bdb + 0x14, true));
  const seen = new Set<number>();
  while (i + 3 < end) {
    const id = bytes[i];
    const size = id === 53 && bytes[i + 3] >= 3 ? view.getUint32(i + 4, true) : view.getUint16(i + 1, true);
    if (i + 3 + size > end) break;
    if (!seen.has(id)) {
      seen.add(id);
      if (
        (id === 2 && (size < 5 || bytes[i + 3 + 4] === 0)) ||
        (id === 11 && (size < 1 || bytes[i + 3] === 0))
      )
        return false;
    }
    i += 3 + size;
  }
  if (ids.includes(52) && options.allPanels) {
    const panelType = options.panelType ?? vbtPanels(bytes).panelType;
    if (panelType >= 6) return false;
  }
  return true;
}

describe(toolSuite('intelVbtDecode against the real intel_vbt_decode'), () => {
  it.skipIf(!haveTool || !haveFixtures)(
    fixtureSuite('decodes every fixture with every option as the tool does'),
    () => {
      let lines = 0;
      for (const f of fixtures) {
        const devid = DEVIDS[f.name];
        for (const o of [
          {},
          { allPanels: true },
          { hexdump: true },
          { header: true },
          { describe: true },
          { panelType: 0 },
          { panelType: 15, allPanels: true },
          { block: 41 },
          { block: 42 },
          { block: 200 },
        ] as IntelVbtDecodeOptions[]) {
          const options = { ...o, devid };
          if (!toolIsDeterministicOn(f.bytes, options)) continue;
          lines += expectSame(f.bytes, options, `${f.name} ${JSON.stringify(o)}`);
        }
      }
      console.log(`vbt-decode: fixtures with every option: ${lines} lines equal to the real ${TOOL}`);
    },
    300_000,
  );

  it.skipIf(!haveTool || !haveFixtures)(
    fixtureSuite('decodes mutated real VBTs as the tool does (differential)'),
    () => {
      const runs = Number(process.env.VFIOKIT_FUZZ_RUNS ?? 150);
      const seed = Number(process.env.VFIOKIT_FUZZ_SEED ?? Date.now() % 1_000_000);
      const rnd = mulberry(seed);
      const ri = (n: number) => Math.floor(rnd() * n);
      let compared = 0;
      let lines = 0;
      for (let n = 0; n < runs; n++) {
        const f = fixtures[ri(fixtures.length)];
        const b = f.bytes.slice();
        const at = findVbtSignature(b);
        const view = new DataView(b.buffer);
        const bdb = at + view.getUint32(at + 0x1c, true);
        const start = bdb + view.getUint16(bdb + 0x12, true);
        const end = Math.min(b.length, bdb + view.getUint16(bdb + 0x14, true));
        for (let k = 1 + ri(20); k > 0; k--) {
          const p = start + ri(end - start);
          b[p] = ri(2) ? ri(256) : b[p] ^ (1 << ri(8));
        }
        if (ri(3) === 0) view.setUint16(bdb + 0x10, 100 + ri(180), true);
        const options: IntelVbtDecodeOptions = { devid: DEVIDS[f.name] };
        if (ri(3) === 0) options.panelType = ri(16);
        if (ri(4) === 0) options.allPanels = true;
        if (ri(5) === 0) options.hexdump = true;
        if (!toolIsDeterministicOn(b, options)) continue;
        const l = expectSame(b, options, `seed ${seed} case ${n} (${f.name}, ${JSON.stringify(options)})`);
        if (l) {
          compared++;
          lines += l;
        }
      }
      console.log(
        `vbt-decode: seed ${seed}: ${compared} mutated VBTs, ${lines} lines equal to the real ${TOOL}`,
      );
      expect(compared).toBeGreaterThan(runs / 2);
    },
    600_000,
  );

  it.skipIf(!haveTool)(
    'decodes generated VBTs, MIPI configuration and sequence blocks included, as the tool does',
    () => {
      const seed = Number(process.env.VFIOKIT_FUZZ_SEED ?? Date.now() % 1_000_000);
      const rnd = mulberry(seed);
      const ri = (n: number) => Math.floor(rnd() * n);
      const rb = (n: number) => Uint8Array.from({ length: n }, () => ri(256));
      let lines = 0;
      let sequences = 0;
      const count = Math.max(20, Math.round(Number(process.env.VFIOKIT_FUZZ_RUNS ?? 150) / 2.5));
      for (let n = 0; n < count; n++) {
        const version = [120, 155, 165, 175, 190, 200, 211, 226, 235, 240, 251][ri(11)];
        const options = new Uint8Array(34);
        options.set(rb(34));
        options[0] = ri(6);
        const blocks: VbtBlockInput[] = [
          { id: 1, data: rb(5 + ri(3)) },
          { id: 9, data: rb(100) },
          { id: 12, data: rb(19) },
          { id: 22, data: rb(22) },
          { id: 23, data: rb(18 * ri(4)) },
          { id: 27, data: rb([212, 280, 748, 812][ri(4)]) },
          { id: 40, data: options },
          { id: 43, data: Uint8Array.from([6, ...rb(ri(2) ? 304 : 128)]) },
          { id: 44, data: rb([21, 58, 78][ri(3)]) },
          { id: 52, data: rb(822) },
          { id: 56, data: rb(210) },
          { id: 99, data: rb(ri(9)) },
        ];
        blocks.push({ id: 53, data: mipiSequenceBlock(1 + ri(3), rnd) }); // last: the tool's walk skips v3 blocks short
        const vbt = buildVbt(blocks, { bdbVersion: version });
        lines += expectSame(
          vbt,
          { allPanels: ri(2) === 0 },
          `seed ${seed} generated VBT ${n} (BDB ${version})`,
        );
        sequences += intelVbtDecode(vbt, { allPanels: true }).stdout.split('\t\tSequence ').length - 1;
      }
      console.log(
        `vbt-decode: seed ${seed}: ${count} generated VBTs (${sequences} MIPI sequences), ${lines} lines equal to the real ${TOOL}`,
      );
      expect(sequences).toBeGreaterThan(count);
    },
    300_000,
  );

  it.skipIf(!haveTool)(
    'reports a missing VBT, a BDB past the end and a missing block as the tool does',
    () => {
      expectSame(new TextEncoder().encode('no table here'), {}, 'no $VBT');
      const v = syntheticVbt();
      const far = v.slice();
      new DataView(far.buffer).setUint32(0x1c, 0x10000, true);
      expectSame(far, {}, 'BDB past the end');
      expectSame(v, { block: 77 }, 'missing block');
      expectSame(buildOpRegion({ vbt: v }), {}, 'a VBT inside an OpRegion');
    },
  );
});

describe('intelVbtDecode properties', () => {
  it('never throws, whatever the bytes, and always ends its stderr lines', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (tail, allPanels) => {
        const b = new Uint8Array(48 + tail.length);
        b.set(syntheticVbt().subarray(0, 48));
        b.set(tail, 48);
        const r = intelVbtDecode(b, { allPanels });
        expect(r.stderr === '' || r.stderr.endsWith('\n')).toBe(true);
        expect([0, 1]).toContain(r.exitCode);
      }),
      { numRuns: 400 },
    );
  });

  it('never throws on a mutated VBT, and vbtPanels throws only VfioError', () => {
    const base = sandyBridgeLaptop();
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat({ max: base.length - 1 }), v: fc.nat({ max: 255 }) }), {
          maxLength: 30,
        }),
        fc.integer({ min: 0, max: 15 }),
        (muts, panelType) => {
          const b = base.slice();
          for (const m of muts) b[m.at] = m.v;
          intelVbtDecode(b, { panelType, allPanels: true, hexdump: true });
          if (findVbtSignature(b) < 0) {
            expect(catchVfioError(() => vbtPanels(b)).code).toBe('EINVAL');
            return;
          }
          const p = vbtPanels(b);
          expect(p.lfp.length === 0 || p.lfp.length === 16).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
    expect(catchVfioError(() => vbtPanels(new Uint8Array(10))).code).toBe('EINVAL');
  });

  it('round-trips a panel timing through encodeDtd and blocks 41/42', () => {
    fc.assert(
      fc.property(
        fc.record({
          hdisplay: fc.integer({ min: 1, max: 4095 }),
          hblank: fc.integer({ min: 0, max: 4095 }),
          hso: fc.integer({ min: 0, max: 1023 }),
          hsw: fc.integer({ min: 0, max: 1023 }),
          vdisplay: fc.integer({ min: 1, max: 4095 }),
          vblank: fc.integer({ min: 0, max: 4095 }),
          vso: fc.integer({ min: 0, max: 63 }),
          vsw: fc.integer({ min: 0, max: 63 }),
          clock: fc.integer({ min: 0, max: 65535 }),
        }),
        (t) => {
          const timing: PanelTiming = {
            hdisplay: t.hdisplay,
            hsyncStart: t.hdisplay + t.hso,
            hsyncEnd: t.hdisplay + t.hso + t.hsw,
            htotal: t.hdisplay + t.hblank,
            vdisplay: t.vdisplay,
            vsyncStart: t.vdisplay + t.vso,
            vsyncEnd: t.vdisplay + t.vso + t.vsw,
            vtotal: t.vdisplay + t.vblank,
            clockHz: t.clock * 10000,
          };
          expect(encodeDtd(timing).length).toBe(18);
          const options = new Uint8Array(24);
          options[0] = 5;
          const before = [{ id: 40, data: options }];
          const vbt = buildVbt(
            [
              ...before,
              ...lfpDataBlocks(
                [0, 1, 2, 3, 4, 5].map(() => ({ timing })),
                before,
              ),
            ],
            {
              bdbVersion: 200,
            },
          );
          expect(vbtPanels(vbt).lfp[5].timing).toEqual(timing);
        },
      ),
      { numRuns: 200 },
    );
  });
});
