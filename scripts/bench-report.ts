/**
 * Shared output for every package's bench/: one JSON document per benchmark file, printed to
 * stdout and written to <package>/reports/bench.json, with each target's measured ratio
 * against a baseline measured in the same run.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Bench, type Task } from 'tinybench';

export interface BenchFigure {
  name: string;
  opsPerSec: number;
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  /** The slowest sample, where the bench times each request (tinybench figures have none). */
  worstNs?: number;
  samples: number;
}

/** What a ratio target divides: a figure and its baseline, both measured in the same run. */
export interface Comparison {
  /** The figure's name (a key of the report's figures). */
  figure: string;
  /** The baseline's name. */
  baseline: string;
  /** Which statistic of the two is compared (meanNs, p50Ns, p99Ns, worstNs, opsPerSec...). */
  field: string;
  figureNs?: number;
  baselineNs?: number;
  figureValue?: number;
  baselineValue?: number;
}

export interface BenchTarget {
  /** What is promised, in words. */
  description: string;
  /** The measured value (a ratio or a rate). */
  measured: number;
  /** The bound: measured must be <= max or >= min. */
  max?: number;
  min?: number;
  met: boolean;
  /** The figure and the baseline the ratio was made from, when it is a ratio. */
  compared?: Comparison;
}

export function figure(task: Task): BenchFigure {
  const r = task.result;
  if (r?.state !== 'completed') throw new Error(`benchmark task ${task.name} did not complete`);
  const ns = (ms: number) => Math.round(ms * 1e6 * 100) / 100;
  return {
    name: task.name,
    opsPerSec: Math.round(r.throughput.mean),
    meanNs: ns(r.latency.mean),
    p50Ns: ns(r.latency.p50 ?? r.latency.mean),
    p99Ns: ns(r.latency.p99 ?? r.latency.mean),
    samples: r.latency.samplesCount,
  };
}

export function target(
  description: string,
  measured: number,
  bound: { max?: number; min?: number },
  compared?: Comparison,
): BenchTarget {
  const met =
    (bound.max === undefined || measured <= bound.max) && (bound.min === undefined || measured >= bound.min);
  const t: BenchTarget = { description, measured: Math.round(measured * 1000) / 1000, ...bound, met };
  if (compared) t.compared = compared;
  return t;
}

/** A ratio target of two figures' field (`figure.field / baseline.field`), with both kept beside it. */
export function ratioTarget(
  description: string,
  figures: Map<string, BenchFigure>,
  figure: string,
  baseline: string,
  field: 'meanNs' | 'p50Ns' | 'p99Ns' | 'worstNs',
  bound: { max?: number; min?: number },
): BenchTarget {
  const f = figures.get(figure)?.[field];
  const b = figures.get(baseline)?.[field];
  if (f === undefined || b === undefined)
    throw new Error(`missing figure ${f === undefined ? figure : baseline}`);
  return target(description, f / b, bound, { figure, baseline, field, figureNs: f, baselineNs: b });
}

export async function runBench(bench: Bench): Promise<Map<string, BenchFigure>> {
  await bench.run();
  const out = new Map<string, BenchFigure>();
  for (const task of bench.tasks) out.set(task.name, figure(task));
  return out;
}

export function newBench(): Bench {
  return new Bench({ time: 500, warmupTime: 100 });
}

/** Print and save the report; exit non-zero only when asked to enforce the targets. */
export function report(
  packageDir: string,
  name: string,
  figures: Map<string, BenchFigure>,
  targets: BenchTarget[],
  /** More about the run (its size, the CPUs, the load average...), kept in the document. */
  extra: Record<string, unknown> = {},
) {
  const doc = {
    bench: name,
    node: process.version,
    date: new Date().toISOString(),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    ...extra,
    figures: [...figures.values()],
    targets,
    allTargetsMet: targets.every((t) => t.met),
  };
  const text = `${JSON.stringify(doc, null, 2)}\n`;
  const reports = join(packageDir, 'reports');
  mkdirSync(reports, { recursive: true });
  writeFileSync(join(reports, `bench-${name.replace(/[^a-z0-9]+/gi, '-')}.json`), text);
  // reports/bench.json: the package's latest document of every bench, by bench name.
  const all = join(reports, 'bench.json');
  let benches: Record<string, unknown> = {};
  try {
    benches = (JSON.parse(readFileSync(all, 'utf8')) as { benches?: Record<string, unknown> }).benches ?? {};
  } catch {
    benches = {};
  }
  benches[name] = doc;
  writeFileSync(all, `${JSON.stringify({ benches }, null, 2)}\n`);
  process.stdout.write(text);
  if (process.env.VFIOKIT_BENCH_ENFORCE === '1' && !doc.allTargetsMet) process.exitCode = 1;
}
