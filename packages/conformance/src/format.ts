/** The report for people: one line per check with ✓/✗, failures under it, and a summary line. */
import { formatDevice } from './suite.js';
import type { CheckResult, ConformanceReport } from './types.js';

export interface FormatOptions {
  /** ANSI colours (only for a terminal). */
  readonly color?: boolean;
}

const paint = (on: boolean, code: number, text: string) => (on ? `\u001b[${code}m${text}\u001b[0m` : text);

export function formatResult(r: CheckResult, color = false): string[] {
  const lines: string[] = [];
  if (r.status === 'passed') lines.push(`  ${paint(color, 32, '✓')} ${r.check} ${paint(color, 2, r.title)}`);
  else if (r.status === 'failed') {
    lines.push(`  ${paint(color, 31, '✗')} ${r.check} ${r.title}`);
    for (const f of r.failures) lines.push(`      ${paint(color, 31, f.message)}`);
  } else lines.push(`  ${paint(color, 33, '-')} ${r.check} ${paint(color, 2, `skipped: ${r.reason ?? ''}`)}`);
  for (const n of r.notes) lines.push(`      ${paint(color, 2, `note: ${n}`)}`);
  return lines;
}

export function formatReport(report: ConformanceReport, opts: FormatOptions = {}): string {
  const color = opts.color ?? false;
  const lines: string[] = [];
  for (const d of report.devices) {
    lines.push(d.device.parent === '-' ? `plugin ${d.device.plugin}` : `device ${formatDevice(d.device)}`);
    for (const r of d.results) lines.push(...formatResult(r, color));
  }
  lines.push('', formatSummary(report, color));
  return `${lines.join('\n')}\n`;
}

/** `N passed, N failed, N skipped`. */
export function formatSummary(report: ConformanceReport, color = false): string {
  return paint(
    color,
    report.failed ? 31 : 32,
    `${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`,
  );
}
