/** A conformance report as JUnit XML: one testsuite per device, one testcase per check. */
import type { ConformanceReport, DeviceLabel } from './types.js';

/** Whether XML 1.0 can carry code point `cp` (the Char production of the XML spec, section 2.2). */
function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/** `text` with every character XML cannot carry (controls, lone surrogates, U+FFFE/F) replaced by U+FFFD. */
export function toXmlChars(text: string): string {
  let out = '';
  for (const ch of text) out += isXmlChar(ch.codePointAt(0) ?? 0) ? ch : '\ufffd';
  return out;
}

/** Text safe inside an XML attribute or element. */
export function escapeXml(text: string): string {
  return toXmlChars(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;')
    .replace(/\r/g, '&#13;')
    .replace(/\n/g, '&#10;')
    .replace(/\t/g, '&#9;');
}

/** Element text: newlines kept readable. */
function escapeText(text: string): string {
  return escapeXml(text).replace(/&#10;/g, '\n').replace(/&#9;/g, '\t');
}

function suiteName(d: DeviceLabel): string {
  return d.parent === '-' ? `${d.plugin} (plugin)` : `${d.plugin} ${d.parent} ${d.type}`;
}

const seconds = (ms: number) => (ms / 1000).toFixed(3);

export function toJUnitXml(report: ConformanceReport): string {
  const lines: string[] = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const total = report.passed + report.failed + report.skipped;
  lines.push(
    `<testsuites name="${escapeXml(`vfiokit conformance: ${report.plugin}`)}" tests="${total}" failures="${report.failed}" errors="0" skipped="${report.skipped}" time="${seconds(report.durationMs)}">`,
  );
  for (const d of report.devices) {
    const failed = d.results.filter((r) => r.status === 'failed').length;
    const skipped = d.results.filter((r) => r.status === 'skipped').length;
    const time = d.results.reduce((t, r) => t + r.durationMs, 0);
    lines.push(
      `  <testsuite name="${escapeXml(suiteName(d.device))}" tests="${d.results.length}" failures="${failed}" errors="0" skipped="${skipped}" time="${seconds(time)}">`,
    );
    const classname = escapeXml([d.device.plugin, d.device.parent, d.device.type].join('.'));
    for (const r of d.results) {
      const open = `    <testcase classname="${classname}" name="${escapeXml(`${r.check}: ${r.title}`)}" time="${seconds(r.durationMs)}"`;
      if (r.status === 'passed' && r.notes.length === 0) {
        lines.push(`${open}/>`);
        continue;
      }
      lines.push(`${open}>`);
      if (r.status === 'failed') {
        const first = r.failures[0]?.message ?? 'failed';
        lines.push(
          `      <failure message="${escapeXml(first)}" type="${escapeXml(r.check)}">${escapeText(r.failures.map((f) => f.message).join('\n'))}</failure>`,
        );
      } else if (r.status === 'skipped') {
        lines.push(`      <skipped message="${escapeXml(r.reason ?? 'skipped')}"/>`);
      }
      if (r.notes.length) lines.push(`      <system-out>${escapeText(r.notes.join('\n'))}</system-out>`);
      lines.push('    </testcase>');
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return `${lines.join('\n')}\n`;
}
