/** JUnit XML of the guest suite: one <testsuite> per boot, one <testcase> per check. */

export type CaseStatus = 'passed' | 'failed' | 'skipped';

export interface CaseResult {
  readonly suite: string;
  readonly boot: string;
  readonly name: string;
  readonly status: CaseStatus;
  /** Why it failed or was skipped. */
  readonly message?: string;
  /** What the check printed (guest lines, host notes). */
  readonly output: string;
  readonly ms: number;
}

/** Text for XML: the five entities, and no character XML 1.0 forbids (a guest may print any byte). */
export function xmlText(s: string): string {
  return s
    .replace(
      /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu,
      (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
    )
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

export function junitXml(cases: readonly CaseResult[]): string {
  const groups = new Map<string, CaseResult[]>();
  for (const c of cases) {
    const key = `${c.suite}/${c.boot}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(c);
  }
  const count = (list: readonly CaseResult[], s: CaseStatus) => list.filter((c) => c.status === s).length;
  const secs = (ms: number) => (ms / 1000).toFixed(3);
  const out: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  out.push(
    `<testsuites name="guest" tests="${cases.length}" failures="${count(cases, 'failed')}" skipped="${count(cases, 'skipped')}" time="${secs(cases.reduce((t, c) => t + c.ms, 0))}">`,
  );
  for (const [key, list] of groups) {
    out.push(
      `  <testsuite name="${xmlText(`guest/${key}`)}" tests="${list.length}" failures="${count(list, 'failed')}" skipped="${count(list, 'skipped')}" time="${secs(list.reduce((t, c) => t + c.ms, 0))}">`,
    );
    for (const c of list) {
      const head = `    <testcase classname="${xmlText(`guest.${c.suite}.${c.boot}`)}" name="${xmlText(`${c.boot}: ${c.name}`)}" time="${secs(c.ms)}"`;
      const body: string[] = [];
      if (c.status === 'failed')
        body.push(
          `      <failure message="${xmlText(firstLine(c.message ?? 'failed'))}">${xmlText(c.message ?? '')}</failure>`,
        );
      if (c.status === 'skipped')
        body.push(`      <skipped message="${xmlText(firstLine(c.message ?? 'skipped'))}"/>`);
      if (c.output !== '') body.push(`      <system-out>${xmlText(c.output)}</system-out>`);
      out.push(body.length === 0 ? `${head}/>` : `${head}>\n${body.join('\n')}\n    </testcase>`);
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>', '');
  return out.join('\n');
}

function firstLine(s: string): string {
  const line = s.split('\n', 1)[0];
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}
