/**
 * Memory sizes as QEMU's -m takes them: a byte count, or a number with a binary suffix
 * (K, M, G; `256M` is 256 MiB). Optional trailing `B` or `iB` is accepted (`256MiB`).
 */
const SIZE_RE = /^(\d+)\s*([KMGkmg])?(?:i?[Bb])?$/;
const SHIFT: Record<string, number> = { k: 10, m: 20, g: 30 };

/** Bytes, or undefined when the text is not a size. */
export function parseSize(text: string): number | undefined {
  const m = SIZE_RE.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const shift = m[2] ? SHIFT[m[2].toLowerCase()] : 0;
  const bytes = n * 2 ** shift;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** `256M`, `1G`, `4096`: the shortest exact form. */
export function formatSize(bytes: number): string {
  for (const [suffix, shift] of [
    ['G', 30],
    ['M', 20],
    ['K', 10],
  ] as const) {
    const unit = 2 ** shift;
    if (bytes >= unit && bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}
