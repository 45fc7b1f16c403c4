/**
 * The few helpers an assigned function's parts share beside core's byte helpers (PAGE_SIZE,
 * TWO_32, readLe/writeLe, the value bytes of takeValueBytes): range overlap, emptying a list.
 */

/** Whether [a0, a1) and [b0, b1) share a byte. */
export function overlaps(a0: number, a1: number, b0: number, b1: number): boolean {
  return a0 < b1 && b0 < a1;
}

/** Empty an array in place (cheaper than setting its length for a few entries). */
export function clear(values: unknown[]): void {
  while (values.length > 0) values.pop();
}
