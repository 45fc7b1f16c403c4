/**
 * What `vfiokit serve` says about a session when its client leaves:
 *   session ended, device reset: trapped accesses by region: 0 (BAR0): 120 reads/8 writes, 2 (BAR2): 0 reads/0 writes.
 * (", device reset" is there when the device offers reset, as every plugin here does.)
 * Every implemented region is listed; an access through a mapping never reaches the server, so
 * a mapped BAR that the guest used heavily and that shows 0/0 proves that nothing trapped.
 */

export interface RegionTraps {
  readonly reads: number;
  readonly writes: number;
}

/** The trapped accesses of the first session in a server's log (QEMU's), or undefined without one. */
export function sessionTraps(log: string): Map<number, RegionTraps> | undefined {
  const line = /^vfiokit serve: session ended(?:, device reset)?: trapped accesses by region: (.*)$/m.exec(
    log,
  )?.[1];
  if (line === undefined) return undefined;
  const out = new Map<number, RegionTraps>();
  for (const m of line.matchAll(/(\d+)(?: \([^)]*\))?: (\d+) reads\/(\d+) writes/g))
    out.set(Number(m[1]), { reads: Number(m[2]), writes: Number(m[3]) });
  return out;
}
