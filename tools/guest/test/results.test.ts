import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { factsOf, parseResults } from '../src/run/results.js';

describe('the results UART', () => {
  it('reads boots, modules, checks with their output, and the dmesg dump', () => {
    const r = parseResults(
      [
        'noise before /init',
        '@@VFK BOOTED 6.12.118+deb12-amd64',
        '@@VFK MODULE vfio ok',
        '@@VFK MODULE i915 failed',
        '| modprobe: not found',
        '@@VFK BEGIN 01',
        '| line one',
        '|',
        '| port0=ttyS4',
        '@@VFK END 01 0 1830',
        '@@VFK BEGIN 02',
        '| FAIL: no port',
        '@@VFK END 02 1 10',
        '@@VFK DMESG',
        '| [0.0] Linux version',
        '@@VFK DONE',
        '',
      ].join('\r\n'),
    );
    expect(r.booted).toBe('6.12.118+deb12-amd64');
    expect([...r.modules]).toEqual([
      ['vfio', true],
      ['i915', false],
    ]);
    expect(r.checks.get('01')).toEqual({ lines: ['line one', '', 'port0=ttyS4'], status: 0, ms: 1830 });
    expect(r.checks.get('02')?.status).toBe(1);
    expect(r.dmesg).toEqual(['[0.0] Linux version']);
    expect(r.done).toBe(true);
  });

  it('leaves a check without a status when its END never came (a hang or a crash)', () => {
    const r = parseResults('@@VFK BOOTED x\n@@VFK BEGIN 01\n| half\n@@VFK END 01 0');
    expect(r.checks.get('01')).toEqual({ lines: ['half'], status: undefined, ms: undefined });
    expect(r.done).toBe(false);
  });

  it('ignores an END for another check than the one running, and output lines outside a check', () => {
    const r = parseResults('| stray\n@@VFK BEGIN 01\n@@VFK END 02 0 5\n| late\n@@VFK END 01 0 5\n');
    expect(r.checks.get('01')).toEqual({ lines: [], status: undefined, ms: undefined });
    expect(r.checks.has('02')).toBe(false);
  });

  it('never throws and never invents a status on arbitrary UART bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => {
        const r = parseResults(text);
        for (const rec of r.checks.values())
          if (rec.status !== undefined) expect(Number.isInteger(rec.status)).toBe(true);
      }),
    );
  });

  it('gives back every output line of well-formed records exactly', () => {
    const line = fc.string({ maxLength: 40 }).filter((s) => !/[\r\n]/.test(s));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.array(line, { maxLength: 5 }), fc.integer({ min: 0, max: 255 })), {
          maxLength: 6,
        }),
        (checks) => {
          const text = checks
            .map(([lines, rc], i) =>
              [`@@VFK BEGIN ${i}`, ...lines.map((l) => `| ${l}`), `@@VFK END ${i} ${rc} 1`].join('\n'),
            )
            .join('\n');
          const r = parseResults(`${text}\n`);
          checks.forEach(([lines, rc], i) => {
            expect(r.checks.get(String(i))).toEqual({ lines, status: rc, ms: 1 });
          });
        },
      ),
    );
  });

  it('reads facts as key=value lines, a "__proto__" key included', () => {
    const f = factsOf(['irq=21', 'not a fact', '__proto__=x', 'port0=ttyS4@0xc060', 'irq=22']);
    expect(f.irq).toBe('22');
    expect(f.port0).toBe('ttyS4@0xc060');
    expect(Object.keys(f)).toContain('__proto__');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});
