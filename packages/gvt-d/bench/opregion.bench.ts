/**
 * Parse + validate speed of the IGD OpRegion and VBT parsers on the shared real fixtures
 * (<repo>/../shared/fixtures/vbt or $VFIOKIT_SHARED/fixtures/vbt), with a plain copy of the same
 * bytes as the in-run baseline. Without fixtures it measures a synthetic OpRegion and says so.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { newBench, ratioTarget, report, runBench, target } from '../../../scripts/bench-report.js';
import { buildOpRegion, buildVbt, parseOpRegion, parseVbt } from '../src/index.js';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(packageDir, '../..');
const sharedDir = process.env.VFIOKIT_SHARED
  ? resolve(process.env.VFIOKIT_SHARED)
  : resolve(repoRoot, '../shared');
const fixturesDir = join(sharedDir, 'fixtures', 'vbt');
const MIN_OPREGIONS_PER_SEC = 20_000;

interface Input {
  name: string;
  bytes: Uint8Array;
  isOpRegion: boolean;
}

function loadInputs(): Input[] {
  if (!existsSync(fixturesDir)) return [];
  return readdirSync(fixturesDir)
    .filter((f) => f.endsWith('.vbt') || f.endsWith('opregion.bin'))
    .sort()
    .map((f) => ({
      name: f,
      bytes: new Uint8Array(readFileSync(join(fixturesDir, f))),
      isOpRegion: f.endsWith('opregion.bin'),
    }));
}

const inputs = loadInputs();
const synthetic = inputs.length === 0;
if (synthetic) {
  process.stderr.write(`fixtures not found at ${fixturesDir}: measuring a synthetic OpRegion instead\n`);
}

const bench = newBench();
let sink = 0;
for (const input of inputs) {
  bench.add(`parse ${input.name}`, () => {
    sink += input.isOpRegion ? parseOpRegion(input.bytes).sizeKiB : parseVbt(input.bytes).blocks.length;
  });
}

// The largest VBT, wrapped in an OpRegion by the builder (extended 2.1 when it exceeds 6 KiB).
const largest = inputs
  .filter((i) => !i.isOpRegion)
  .sort((a, b) => parseVbt(b.bytes).header.vbtSize - parseVbt(a.bytes).header.vbtSize)[0];
const opregionName = largest ? `OpRegion around ${largest.name}` : 'synthetic OpRegion (7 KiB VBT, extended)';
const opregion = largest
  ? buildOpRegion({ vbt: largest.bytes })
  : buildOpRegion({ vbt: buildVbt([{ id: 2, data: new Uint8Array(7000) }]) });
const parseTask = `parseOpRegion ${opregionName} (${opregion.length} B)`;
const copyTask = `baseline Uint8Array.slice of the same ${opregion.length} B`;
bench.add(parseTask, () => {
  sink += parseOpRegion(opregion).vbt?.blocks.length ?? 0;
});
bench.add(copyTask, () => {
  sink += opregion.slice().length;
});

const figures = await runBench(bench);
const parse = figures.get(parseTask)!;
report(packageDir, 'opregion', figures, [
  target(`parseOpRegion of the ${opregionName} per second`, parse.opsPerSec, { min: MIN_OPREGIONS_PER_SEC }),
  ratioTarget(
    `parseOpRegion time / slice-copy time for the same bytes (informational)${synthetic ? ' [synthetic: no fixtures]' : ''}`,
    figures,
    parseTask,
    copyTask,
    'meanNs',
    {},
  ),
]);
// Keeps the measured work observable so it cannot be optimised away.
if (!Number.isFinite(sink)) throw new Error('benchmark sink is not a number');
