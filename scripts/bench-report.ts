/**
 * Shared output for every package's bench/: one JSON document per benchmark file, printed to
 * stdout and written to <package>/reports/bench.json, with each target's measured ratio
 * against a baseline measured in the same run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bench, type Task } from 'tinybench';

export interface BenchFigure {
  name: string;
  opsPerSec: number;
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  samples: number;
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
): BenchTarget {
  const met =
    (bound.max === undefined || measured <= bound.max) && (bound.min === undefined || measured >= bound.min);
  return { description, measured: Math.round(measured * 1000) / 1000, ...bound, met };
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
) {
  const doc = {
    bench: name,
    node: process.version,
    date: new Date().toISOString(),
    figures: [...figures.values()],
    targets,
    allTargetsMet: targets.every((t) => t.met),
  };
  const text = `${JSON.stringify(doc, null, 2)}\n`;
  mkdirSync(join(packageDir, 'reports'), { recursive: true });
  writeFileSync(join(packageDir, 'reports', `bench-${name.replace(/[^a-z0-9]+/gi, '-')}.json`), text);
  process.stdout.write(text);
  if (process.env.VFIOKIT_BENCH_ENFORCE === '1' && !doc.allTargetsMet) process.exitCode = 1;
}
