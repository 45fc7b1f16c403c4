/**
 * A progress bar on stderr for long operations (booting many devices). It draws only when
 * stderr is a terminal; piped or redirected output stays clean.
 */
import type { OutStream } from './io.js';

export interface Progress {
  /** One step done; `label` says what comes next. */
  step(label: string): void;
  done(): void;
}

const WIDTH = 24;

export function createProgress(stream: OutStream, total: number, title: string): Progress {
  if (!stream.isTTY || total <= 0) return { step() {}, done() {} };
  let n = 0;
  const columns = stream.columns ?? 80;
  const draw = (label: string) => {
    const filled = Math.round((Math.min(n, total) / total) * WIDTH);
    const line = `${title} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${n}/${total} ${label}`;
    stream.write(`\r\x1b[K${line.slice(0, Math.max(10, columns - 1))}`);
  };
  draw('');
  return {
    step(label: string) {
      n++;
      draw(label);
    },
    done() {
      stream.write('\r\x1b[K');
    },
  };
}
