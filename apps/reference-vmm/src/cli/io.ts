/** Where the CLI reads and writes: the process, or buffers in a test. */
export interface OutStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface CliIo {
  readonly stdout: OutStream;
  readonly stderr: OutStream;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), env: process.env };
}

/** An io that keeps what was written (for tests and embedding). */
export function bufferIo(
  opts: { cwd?: string; env?: Record<string, string | undefined>; tty?: boolean } = {},
): CliIo & {
  out(): string;
  err(): string;
} {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s), isTTY: opts.tty ?? false },
    stderr: { write: (s: string) => (err += s), isTTY: opts.tty ?? false, columns: 80 },
    cwd: opts.cwd ?? process.cwd(),
    env: opts.env ?? {},
    out: () => out,
    err: () => err,
  };
}
