/**
 * What a benchmark peer spends in the garbage collector, read over the fork IPC channel: the
 * parent sends 'gc?' before and after a measured run and subtracts. GC entries come from a
 * PerformanceObserver ('gc' entries: duration and kind); the young generation's use shows what
 * was allocated between two reads when no scavenge ran in between.
 */
import { constants, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';

export interface GcReading {
  /** Milliseconds spent in GC pauses since the process started. */
  gcMs: number;
  /** Young-generation collections (scavenges) and full collections so far. */
  minor: number;
  major: number;
  /** The longest single GC pause since the previous reading (so a reading before a run resets it). */
  longestMs: number;
  /** Bytes in use in the young generation now. */
  newSpaceUsed: number;
  /** process.memoryUsage().heapUsed now. */
  heapUsed: number;
}

const totals = { gcMs: 0, minor: 0, major: 0 };
let longestMs = 0;

function account(entries: PerformanceEntry[]): void {
  for (const e of entries) {
    totals.gcMs += e.duration;
    if (e.duration > longestMs) longestMs = e.duration;
    const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) totals.minor++;
    else totals.major++;
  }
}

const observer = new PerformanceObserver((list) => account(list.getEntries()));
observer.observe({ entryTypes: ['gc'] });

export function readGc(): GcReading {
  account(observer.takeRecords());
  let newSpaceUsed = 0;
  for (const s of getHeapSpaceStatistics())
    if (s.space_name === 'new_space') newSpaceUsed = s.space_used_size;
  const longest = longestMs;
  longestMs = 0;
  return { ...totals, longestMs: longest, newSpaceUsed, heapUsed: process.memoryUsage().heapUsed };
}

/** Answer 'gc?' messages from the parent with a reading. */
export function answerGcQueries(): void {
  process.on('message', (m) => {
    if (m === 'gc?') process.send?.({ gc: readGc() });
  });
}
