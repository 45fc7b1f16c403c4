/**
 * The guest's results UART, read back: the line protocol guest/init writes. Whatever else the
 * UART carries (a partial line at power-off, bytes of a crashed check) is kept out of the
 * records, and a check whose END never came stays without a status.
 */

export interface CheckRecord {
  readonly lines: string[];
  status: number | undefined;
  ms: number | undefined;
}

export interface ResultsRecord {
  /** The kernel release the guest reported, once /init started. */
  booted: string | undefined;
  /** Module name → loaded. */
  readonly modules: Map<string, boolean>;
  /** Check number (the file name /init ran) → what it printed and how it ended. */
  readonly checks: Map<string, CheckRecord>;
  /** The guest's dmesg at the end of the run. */
  readonly dmesg: string[];
  /** /init reached its end. */
  done: boolean;
}

const MARK = '@@VFK ';

export function parseResults(text: string): ResultsRecord {
  const out: ResultsRecord = {
    booted: undefined,
    modules: new Map(),
    checks: new Map(),
    dmesg: [],
    done: false,
  };
  let current: CheckRecord | undefined;
  let inDmesg = false;
  const lines = text.split('\n');
  // A last line without its newline was cut off by power-off or a kill: not a whole record.
  if (!text.endsWith('\n')) lines.pop();
  for (const raw of lines) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.startsWith('| ') || line === '|') {
      const body = line.slice(2);
      if (inDmesg) out.dmesg.push(body);
      else current?.lines.push(body);
      continue;
    }
    if (!line.startsWith(MARK)) continue;
    const words = line.slice(MARK.length).split(' ');
    const [kind, a, b, c] = words;
    switch (kind) {
      case 'BOOTED':
        out.booted = words.slice(1).join(' ');
        break;
      case 'MODULE':
        if (a !== undefined && (b === 'ok' || b === 'failed')) out.modules.set(a, b === 'ok');
        break;
      case 'BEGIN':
        if (a === undefined) break;
        inDmesg = false;
        current = { lines: [], status: undefined, ms: undefined };
        out.checks.set(a, current);
        break;
      case 'END': {
        const rec = a === undefined ? undefined : out.checks.get(a);
        const status = b === undefined ? Number.NaN : Number(b);
        const ms = c === undefined ? Number.NaN : Number(c);
        if (rec && rec === current && Number.isInteger(status)) {
          rec.status = status;
          rec.ms = Number.isFinite(ms) ? ms : undefined;
        }
        current = undefined;
        break;
      }
      case 'DMESG':
        current = undefined;
        inDmesg = true;
        break;
      case 'DONE':
        current = undefined;
        inDmesg = false;
        out.done = true;
        break;
      default:
        break;
    }
  }
  return out;
}

/** The `key=value` lines of a check's output (the last value of a key wins). */
export function factsOf(lines: readonly string[]): Record<string, string> {
  // No prototype: a guest line "__proto__=x" is a fact like any other.
  const facts: Record<string, string> = Object.create(null);
  for (const line of lines) {
    const m = /^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$/.exec(line);
    if (m) facts[m[1]] = m[2];
  }
  return facts;
}
