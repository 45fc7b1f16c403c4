/** The differential as a person reads it (Markdown) and as a pipeline reads it (the JSON of Differential). */
import type { Differential, Finding, Verdict } from './compare.js';

const VERDICTS: Record<Verdict, string> = {
  'kernel-defect': "the kernel's sample breaks a rule vfio-pci keeps; ours keeps it",
  'kernel-quirk':
    "the kernel's sample differs from vfio-pci where nothing depends on it; ours follows vfio-pci",
  'our-choice': 'ours differs on purpose (said where the sample does it)',
  'not-applicable': 'the check does not apply to a kernel device',
  fixed: 'fixed in vfiokit; the kernel side is what the kernel does',
};

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function hexdump(kernel: string, ours: string): string[] {
  const rows: string[] = ['| offset | kernel | ours |', '|---|---|---|'];
  const n = Math.max(kernel.length, ours.length) / 2;
  const byte = (s: string, i: number) => (i * 2 < s.length ? s.slice(i * 2, i * 2 + 2) : '--');
  for (let row = 0; row < n; row += 16) {
    const k: string[] = [];
    const o: string[] = [];
    let same = true;
    for (let i = row; i < Math.min(row + 16, n); i++) {
      const a = byte(kernel, i);
      const b = byte(ours, i);
      if (a !== b) same = false;
      k.push(a === b ? a : `**${a}**`);
      o.push(a === b ? b : `**${b}**`);
    }
    if (same && /^(00 ?)+$/.test(k.join(' ')) && row >= 0x40) continue;
    rows.push(`| 0x${row.toString(16).padStart(3, '0')} | ${k.join(' ')} | ${o.join(' ')} |`);
  }
  rows.push('', 'Rows of zeros on both sides past 0x40 are left out; differing bytes are bold.');
  return rows;
}

export function renderDifferential(
  d: Differential,
  title = 'Differential',
  findings: readonly Finding[] = [],
): string {
  const out: string[] = [`# ${title}`, '', `- kernel: ${d.kernel}`, `- ours: ${d.ours}`, ''];
  const explained = d.differences.length - d.unexplained.length;
  out.push(
    `${d.differences.length} differences: ${explained} explained, ${d.unexplained.length} unexplained.`,
    '',
  );
  if (d.unexplained.length) out.push('**Unexplained:**', '', ...d.unexplained.map((u) => `- \`${u}\``), '');

  if (findings.length) {
    out.push('## What the kernel taught, and what changed in vfiokit', '');
    for (const f of findings) out.push(`- **${f.title}** ${f.text}`);
    out.push('');
  }
  out.push('## Differences and why', '', '| id | kernel | ours | verdict | why |', '|---|---|---|---|---|');
  for (const x of d.differences)
    out.push(
      `| \`${cell(x.id)}\` | ${cell(x.kernel)} | ${cell(x.ours)} | ${x.verdict ?? '**unexplained**'} | ${cell(x.explanation ?? '')} |`,
    );
  out.push('', 'Verdicts:', ...Object.entries(VERDICTS).map(([k, v]) => `- ${k}: ${v}`), '');

  out.push('## Check outcomes', '', '| check | kernel | ours |', '|---|---|---|');
  for (const c of d.checks) out.push(`| ${c.check} | ${c.kernel} | ${c.ours} |`);
  out.push('');
  const failing = d.checks.filter((c) => c.kernelFailures.length || c.oursFailures.length);
  if (failing.length) {
    out.push('Failures:', '');
    for (const c of failing) {
      for (const f of c.kernelFailures) out.push(`- kernel: ${f}`);
      for (const f of c.oursFailures) out.push(`- ours: ${f}`);
    }
    out.push('');
  }

  out.push(
    '## Refused calls',
    '',
    'Every call the checks made that either side refused, with both answers (in the order asked when a call was made more than once).',
    '',
    '| check | call | kernel | ours |',
    '|---|---|---|---|',
  );
  for (const r of d.refusals)
    out.push(`| ${r.check} | \`${cell(r.call)}\` | ${cell(r.kernel)} | ${cell(r.ours)} |`);
  const rr = d.randomRefusals;
  out.push(
    '',
    `random.* checks: the kernel refused ${rr.kernel} of ${rr.calls.kernel} calls, ours ${rr.ours} of ${rr.calls.ours} (too many to list).`,
    '',
  );

  out.push('## DEVICE_INFO, REGION_INFO and IRQ_INFO', '');
  const k = d.facts.kernel;
  const o = d.facts.ours;
  out.push('| query | kernel | ours |', '|---|---|---|');
  out.push(`| GET_IRQ_INFO 0 as the first call | ${k.irqInfoFirst} | ${o.irqInfoFirst} |`);
  const di = (f: typeof k) =>
    f.deviceInfo.answer !== '0'
      ? f.deviceInfo.answer
      : `flags 0x${f.deviceInfo.flags?.toString(16)} regions ${f.deviceInfo.numRegions} irqs ${f.deviceInfo.numIrqs}`;
  out.push(`| DEVICE_GET_INFO | ${di(k)} | ${di(o)} |`);
  const reg = (r: (typeof k.regions)[number] | undefined) =>
    !r
      ? '-'
      : r.answer !== '0'
        ? r.answer
        : `flags 0x${r.flags?.toString(16)} size 0x${r.size?.toString(16)} offset 0x${r.offset?.toString(16)}${r.caps?.length ? ` ${r.caps.join(', ')}` : ''}`;
  for (let i = 0; i < Math.max(k.regions.length, o.regions.length); i++)
    out.push(`| REGION_INFO ${i} | ${cell(reg(k.regions[i]))} | ${cell(reg(o.regions[i]))} |`);
  const irq = (r: (typeof k.irqs)[number] | undefined) =>
    !r ? '-' : r.answer !== '0' ? r.answer : `flags 0x${r.flags?.toString(16)} count ${r.count}`;
  for (let i = 0; i < Math.max(k.irqs.length, o.irqs.length); i++)
    out.push(`| IRQ_INFO ${i} | ${irq(k.irqs[i])} | ${irq(o.irqs[i])} |`);
  out.push('', '## Config space (as read right after open)', '', ...hexdump(k.config, o.config), '');
  return out.join('\n');
}
