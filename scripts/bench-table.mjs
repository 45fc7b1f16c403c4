#!/usr/bin/env node
/**
 * The benchmark table of the README, from the reports the last `pnpm run bench` wrote: every
 * target of every package's reports/bench.json, with the figure and the same-run baseline it
 * was divided by, the bound, whether it was met, and the load average the bench started under.
 *
 *   node scripts/bench-table.mjs            Markdown, for the README
 *   node scripts/bench-table.mjs --json     the same rows as JSON
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const asJson = process.argv.includes('--json');
const unknown = process.argv.slice(2).filter((a) => a !== '--json');
if (unknown.length > 0) {
  process.stderr.write(`bench-table: unknown argument ${unknown[0]}; the only option is --json.\n`);
  process.exit(2);
}

/** A duration in ns as people read it: 1.18 ns, 12.8 us, 1.32 ms, 598 ms. */
function duration(ns) {
  const three = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  if (ns < 1e3) return `${three(ns)} ns`;
  if (ns < 1e6) return `${three(ns / 1e3)} us`;
  if (ns < 1e9) return `${three(ns / 1e6)} ms`;
  return `${three(ns / 1e9)} s`;
}

const number = (x) =>
  Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(2) : x.toPrecision(2);

function side(ns, value, field) {
  if (ns !== undefined) return duration(ns);
  if (value !== undefined) return `${number(value)}${field === 'opsPerSec' ? '/s' : ''}`;
  return '';
}

const rows = [];
const problems = [];
for (const group of ['packages', 'apps']) {
  const dir = join(root, group);
  if (!existsSync(dir)) continue;
  for (const name of readdirSync(dir).sort()) {
    const file = join(dir, name, 'reports', 'bench.json');
    if (!existsSync(file)) continue;
    let doc;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      problems.push(`${relative(root, file)} is not JSON (${err.message}); run its bench again.`);
      continue;
    }
    const benches = doc && typeof doc === 'object' ? doc.benches : undefined;
    if (!benches || typeof benches !== 'object') {
      problems.push(`${relative(root, file)} has no "benches" object; run its bench again.`);
      continue;
    }
    for (const [bench, b] of Object.entries(benches).sort(([a], [c]) => a.localeCompare(c))) {
      if (!Array.isArray(b?.targets)) {
        problems.push(`${relative(root, file)}: bench ${bench} has no targets list; run it again.`);
        continue;
      }
      // One reading ([1, 5, 15 min]) or, for a long bench, { start, end }: the 1-minute load at its start.
      const la = b.loadAverage;
      const load = Array.isArray(la) ? la[0] : Array.isArray(la?.start) ? la.start[0] : undefined;
      for (const t of b.targets) {
        const c = t.compared;
        rows.push({
          bench,
          date: b.date,
          load,
          target: t.description,
          figure: c ? side(c.figureNs, c.figureValue, c.field) : '',
          baseline: c ? side(c.baselineNs, c.baselineValue, c.field) : '',
          measured: t.measured,
          bound: t.max !== undefined ? `<= ${t.max}` : t.min !== undefined ? `>= ${t.min}` : 'reported',
          met: t.met === true,
        });
      }
    }
  }
}

for (const p of problems) process.stderr.write(`bench-table: ${p}\n`);
if (rows.length === 0) {
  process.stderr.write('bench-table: no bench reports found; run `npx -y pnpm@12.4.2 run bench` first.\n');
  process.exit(1);
}
if (asJson) {
  process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
} else {
  const cell = (s) => String(s).replaceAll('|', '\\|');
  const out = [
    '| bench | target | figure | baseline (same run) | measured | bound | met | load |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows)
    out.push(
      `| ${cell(r.bench)} | ${cell(r.target)} | ${r.figure} | ${r.baseline} | ${number(r.measured)} | ${r.bound} | ${r.met ? 'yes' : '**no**'} | ${r.load ?? ''} |`,
    );
  const met = rows.filter((r) => r.met).length;
  out.push('', `${met} of ${rows.length} targets met.`);
  process.stdout.write(`${out.join('\n')}\n`);
}
process.exitCode = problems.length > 0 ? 1 : 0;
