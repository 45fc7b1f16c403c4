/** Latency summaries of the tail benchmark, the same way ping.c makes them (nearest rank). */

export interface Latency {
  requests: number;
  medianNs: number;
  p99Ns: number;
  worstNs: number;
  meanNs: number;
}

/** Summarise `n` request times in ns (the array is sorted in place). */
export function summarise(times: Float64Array, n: number): Latency {
  const t = times.subarray(0, n).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += t[i];
  const rank = (p: number) => t[Math.ceil((n * p) / 100) - 1];
  return {
    requests: n,
    medianNs: Math.round(t[Math.floor((n + 1) / 2) - 1]),
    p99Ns: Math.round(rank(99)),
    worstNs: Math.round(t[n - 1]),
    meanNs: Math.round((sum / n) * 10) / 10,
  };
}
