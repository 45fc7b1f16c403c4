import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ConformanceReport, escapeXml, runConformance, toJUnitXml, toXmlChars } from '../src/index.js';
import { tinyPlugin } from './fixtures/tiny-plugin.js';

function unescapeXml(s: string): string {
  return s
    .replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

describe('escapeXml', () => {
  it('escapes the five XML specials and line breaks', () => {
    expect(escapeXml(`a<b>&"c'\n`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;&#10;');
  });

  it('replaces characters XML cannot carry', () => {
    expect(escapeXml('x\u0000y\u001bz\ud800!\uffff')).toBe('x\ufffdy\ufffdz\ufffd!\ufffd');
  });

  it('keeps tab, newline, carriage return and astral characters', () => {
    expect(toXmlChars('\t\n\r😀é')).toBe('\t\n\r😀é');
  });

  it('round-trips any text without XML-invalid characters, and never leaves a raw special', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const e = escapeXml(s);
        expect(e).not.toMatch(/[<>"']|&(?!(amp|lt|gt|quot|apos|#\d+);)/);
        expect(unescapeXml(e)).toBe(toXmlChars(s));
        expect([...unescapeXml(e)]).toHaveLength([...s].length);
      }),
    );
  });
});

describe('toJUnitXml', () => {
  it('writes one testsuite per device and one testcase per check with counts', async () => {
    const report = await runConformance(tinyPlugin({ noTypeCap: true, noMigration: true }), {
      checks: ['region', 'migration'],
    });
    const xml = toJUnitXml(report);
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')).toBe(true);
    expect(xml.match(/<testsuite /g)).toHaveLength(3);
    expect(xml.match(/<testcase /g)).toHaveLength(report.passed + report.failed + report.skipped);
    expect(xml).toContain(`failures="${report.failed}"`);
    expect(xml.match(/<failure /g)).toHaveLength(2);
    expect(xml.match(/<skipped /g)).toHaveLength(6);
    expect(xml).toMatch(
      /<failure message="region\.type-cap: device @vfiokit\/tiny-test-plugin\/tiny0\/tiny-a \([0-9a-f-]+\), region 9/,
    );
    expect(xml.trimEnd().endsWith('</testsuites>')).toBe(true);
  });

  it('escapes hostile text in names and messages', () => {
    const report: ConformanceReport = {
      plugin: '<evil & "co">',
      contractVersion: 1,
      durationMs: 1,
      passed: 0,
      failed: 1,
      skipped: 0,
      failures: [],
      devices: [
        {
          device: { plugin: '<evil & "co">', parent: 'p</testsuite>', type: "t'" },
          results: [
            {
              check: 'x.y',
              title: 'a <b>',
              status: 'failed',
              notes: ['note ]]> here'],
              durationMs: 1,
              failures: [
                {
                  check: 'x.y',
                  device: { plugin: 'p', parent: 'q', type: 'r' },
                  expected: '<1>',
                  actual: '&2',
                  message: 'bad </failure><injected/> \u0007 end',
                },
              ],
            },
          ],
        },
      ],
    };
    const xml = toJUnitXml(report);
    expect(xml).not.toContain('<injected/>');
    expect(xml).not.toContain('p</testsuite>');
    expect(xml).not.toContain('\u0007');
    expect(xml).toContain('name="vfiokit conformance: &lt;evil &amp; &quot;co&quot;&gt;"');
    // Exactly the elements the writer made.
    expect(xml.match(/<\/?[a-z-]+/g)?.sort()).toEqual(
      [
        '<?xml',
        '<testsuites',
        '</testsuites',
        '<testsuite',
        '</testsuite',
        '<testcase',
        '</testcase',
        '<failure',
        '</failure',
        '<system-out',
        '</system-out',
      ]
        .sort()
        .filter((t) => t !== '<?xml'),
    );
  });
});
