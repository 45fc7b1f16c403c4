/**
 * Running one side of a differential: the facts of a freshly opened device, then the suite with
 * every call recorded, per check.
 */
import type { ConformanceFile, ConformanceOptions, ConformanceReport } from '@vfiokit/conformance';
import type { SideRun } from './compare.js';
import { deviceFacts } from './facts.js';
import { type RecordedCall, recordCalls } from './record.js';

export async function runSide(
  label: string,
  openFresh: () => { file: ConformanceFile; close(): void },
  suite: (opts: ConformanceOptions) => Promise<ConformanceReport>,
  opts: ConformanceOptions = {},
): Promise<SideRun> {
  const fresh = openFresh();
  let facts: SideRun['facts'];
  try {
    facts = deviceFacts(fresh.file);
  } finally {
    fresh.close();
  }
  const calls: Record<string, RecordedCall[]> = {};
  const report = await suite({
    ...opts,
    tap: (check, file) => {
      calls[check] ??= [];
      return recordCalls(file, calls[check]);
    },
  });
  return { label, facts, report, calls };
}
