/**
 * Two devices side by side: the kernel's and ours, each with its facts, its conformance results
 * and every call its checks made. Each difference gets an id (`config.0x04`, `irq-info.1`,
 * `check.device.reset-flag`, `errno.irq.set-irqs-rules.SET_IRQS flags=0x1 ...`) so that a list of
 * explanations can say, for each, why it is there; one without an explanation is reported as
 * unexplained.
 */
import type { CheckStatus, ConformanceReport } from '@vfiokit/conformance';
import type { DeviceFacts, IrqFact, RegionFact } from './facts.js';
import type { RecordedCall } from './record.js';

export interface SideRun {
  /** Who answered: `the kernel's mtty (samples/vfio-mdev/mtty.c, Linux 6.12.118)`. */
  readonly label: string;
  readonly facts: DeviceFacts;
  readonly report: ConformanceReport;
  /** The calls of each check, by check id. */
  readonly calls: Readonly<Record<string, readonly RecordedCall[]>>;
}

/**
 * Why a difference is there: the kernel's sample breaks a rule vfio-pci keeps (ours keeps it);
 * it differs from vfio-pci harmlessly (ours follows vfio-pci); ours differs on purpose; the
 * check does not apply to a kernel device; or it was fixed in vfiokit and the kernel's side is
 * what the kernel does.
 */
export type Verdict = 'kernel-defect' | 'kernel-quirk' | 'our-choice' | 'not-applicable' | 'fixed';

/** Something the comparison taught and what was done about it, kept in the report. */
export interface Finding {
  readonly title: string;
  readonly text: string;
}

export interface Explanation {
  /** A difference id, or a pattern for several. */
  readonly id: string | RegExp;
  readonly verdict: Verdict;
  readonly text: string;
}

export interface Difference {
  readonly id: string;
  readonly kernel: string;
  readonly ours: string;
  readonly verdict?: Verdict;
  readonly explanation?: string;
}

export interface CheckRow {
  readonly check: string;
  readonly kernel: CheckStatus | 'absent';
  readonly ours: CheckStatus | 'absent';
  readonly kernelFailures: readonly string[];
  readonly oursFailures: readonly string[];
}

export interface RefusalRow {
  readonly check: string;
  readonly call: string;
  readonly kernel: string;
  readonly ours: string;
}

export interface Differential {
  readonly kernel: string;
  readonly ours: string;
  readonly facts: { readonly kernel: DeviceFacts; readonly ours: DeviceFacts };
  readonly checks: readonly CheckRow[];
  /** Every call refused by either side in the conformance checks (random.* summarised), with both answers. */
  readonly refusals: readonly RefusalRow[];
  /** Calls of the random.* checks, refused per side: they are too many to list one by one. */
  readonly randomRefusals: {
    readonly kernel: number;
    readonly ours: number;
    readonly calls: { kernel: number; ours: number };
  };
  readonly differences: readonly Difference[];
  readonly unexplained: readonly string[];
}

const hex = (n: number | undefined) => (n === undefined ? '-' : `0x${n.toString(16)}`);

function regionText(r: RegionFact | undefined): string {
  if (!r) return 'not asked';
  if (r.answer !== '0') return r.answer;
  return `flags ${hex(r.flags)} size ${hex(r.size)} offset ${hex(r.offset)}${r.caps?.length ? ` caps ${r.caps.join(', ')}` : ''}`;
}

function irqText(i: IrqFact | undefined): string {
  if (!i) return 'not asked';
  return i.answer !== '0' ? i.answer : `flags ${hex(i.flags)} count ${i.count}`;
}

/** Differing config bytes, as runs of consecutive offsets. */
function configDifferences(a: string, b: string): Difference[] {
  const out: Difference[] = [];
  const n = Math.max(a.length, b.length) / 2;
  const byte = (s: string, i: number) => (i * 2 < s.length ? s.slice(i * 2, i * 2 + 2) : '--');
  for (let i = 0; i < n; ) {
    if (byte(a, i) === byte(b, i)) {
      i++;
      continue;
    }
    let j = i;
    while (j < n && byte(a, j) !== byte(b, j)) j++;
    const range = (s: string) => Array.from({ length: j - i }, (_, k) => byte(s, i + k)).join(' ');
    out.push({ id: `config.${hex(i)}`, kernel: range(a), ours: range(b) });
    i = j;
  }
  return out;
}

function status(report: ConformanceReport, check: string) {
  return report.devices.flatMap((d) => d.results).find((r) => r.check === check);
}

/** The answers of every distinct call, in first-asked order (a call asked twice keeps both answers). */
function answersByCall(calls: readonly RecordedCall[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const c of calls) {
    const list = m.get(c.call) ?? [];
    list.push(c.answer);
    m.set(c.call, list);
  }
  return m;
}

function explain(d: Difference, explanations: readonly Explanation[]): Difference {
  const e = explanations.find((x) => (typeof x.id === 'string' ? x.id === d.id : x.id.test(d.id)));
  return e ? { ...d, verdict: e.verdict, explanation: e.text } : d;
}

export function compareRuns(
  kernel: SideRun,
  ours: SideRun,
  explanations: readonly Explanation[] = [],
): Differential {
  const diffs: Difference[] = [];
  const add = (id: string, k: string, o: string) => {
    if (k !== o) diffs.push({ id, kernel: k, ours: o });
  };
  const kf = kernel.facts;
  const of = ours.facts;
  add('irq-info-first', kf.irqInfoFirst, of.irqInfoFirst);
  add('device-info.answer', kf.deviceInfo.answer, of.deviceInfo.answer);
  add('device-info.flags', hex(kf.deviceInfo.flags), hex(of.deviceInfo.flags));
  add('device-info.num_regions', String(kf.deviceInfo.numRegions), String(of.deviceInfo.numRegions));
  add('device-info.num_irqs', String(kf.deviceInfo.numIrqs), String(of.deviceInfo.numIrqs));
  for (let i = 0; i < Math.max(kf.regions.length, of.regions.length); i++)
    add(`region-info.${i}`, regionText(kf.regions[i]), regionText(of.regions[i]));
  for (let i = 0; i < Math.max(kf.irqs.length, of.irqs.length); i++)
    add(`irq-info.${i}`, irqText(kf.irqs[i]), irqText(of.irqs[i]));
  add('config.size', String(kf.config.length / 2), String(of.config.length / 2));
  diffs.push(...configDifferences(kf.config, of.config));

  const ids = [
    ...new Set([
      ...kernel.report.devices.flatMap((d) => d.results.map((r) => r.check)),
      ...ours.report.devices.flatMap((d) => d.results.map((r) => r.check)),
    ]),
  ].filter((c) => !c.startsWith('plugin.'));
  const checks: CheckRow[] = ids.map((check) => {
    const k = status(kernel.report, check);
    const o = status(ours.report, check);
    return {
      check,
      kernel: k?.status ?? 'absent',
      ours: o?.status ?? 'absent',
      kernelFailures: k?.failures.map((f) => f.message) ?? [],
      oursFailures: o?.failures.map((f) => f.message) ?? [],
    };
  });
  for (const row of checks) add(`check.${row.check}`, row.kernel, row.ours);

  const refusals: RefusalRow[] = [];
  const random = { kernel: 0, ours: 0, calls: { kernel: 0, ours: 0 } };
  for (const check of ids) {
    const kc = kernel.calls[check] ?? [];
    const oc = ours.calls[check] ?? [];
    if (check.startsWith('random.')) {
      random.kernel += kc.filter((c) => c.refused).length;
      random.ours += oc.filter((c) => c.refused).length;
      random.calls.kernel += kc.length;
      random.calls.ours += oc.length;
      continue;
    }
    const ka = answersByCall(kc);
    const oa = answersByCall(oc);
    const refusedCalls = new Set([...kc, ...oc].filter((c) => c.refused).map((c) => c.call));
    for (const call of refusedCalls) {
      const k = ka.get(call)?.join(', ') ?? 'not asked';
      const o = oa.get(call)?.join(', ') ?? 'not asked';
      refusals.push({ check, call, kernel: k, ours: o });
      add(`errno.${check}.${call}`, k, o);
    }
  }
  const differences = diffs.map((d) => explain(d, explanations));
  return {
    kernel: kernel.label,
    ours: ours.label,
    facts: { kernel: kf, ours: of },
    checks,
    refusals,
    randomRefusals: random,
    differences,
    unexplained: differences.filter((d) => !d.verdict).map((d) => d.id),
  };
}
