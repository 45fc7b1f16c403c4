/**
 * Capability-list walkers for configuration bytes from any device: they read through a callback,
 * stop at the first problem and say where it is, and always terminate (a visited table catches
 * loops). The conformance suite and the lspci-style printer use them on untrusted bytes.
 */

import {
  PCI_CAP_LIST_ID,
  PCI_CAP_LIST_NEXT,
  PCI_CAPABILITY_LIST,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  PCI_EXT_CAP_ID_MASK,
  PCI_EXT_CAP_NEXT_SHIFT,
  PCI_EXT_CAP_START,
  PCI_EXT_CAP_VER_MASK,
  PCI_EXT_CAP_VER_SHIFT,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STD_HEADER_SIZEOF,
} from './constants.js';

export interface FoundCapability {
  id: number;
  offset: number;
}

export interface FoundExtendedCapability extends FoundCapability {
  version: number;
}

export type WalkProblem = 'loop' | 'out-of-range' | 'misaligned';

export type WalkResult<T> =
  | { ok: true; capabilities: T[] }
  | {
      ok: false;
      reason: WalkProblem;
      /** The offset the bad pointer points at (for a loop: the offset reached a second time). */
      at: number;
      /** The offset of the byte (or header) that holds the bad pointer. */
      from: number;
      /** The capabilities found before the problem. */
      capabilities: T[];
    };

/**
 * Walk the standard capability list: from the pointer at 0x34 through each next pointer.
 * An empty list when STATUS.CAP_LIST is clear or the pointer is 0. A pointer with its low two
 * bits set is 'misaligned', one below 0x40 or without room for the id and next bytes is
 * 'out-of-range', and an offset reached twice is a 'loop'.
 */
export function walkCapabilities(
  readU8: (offset: number) => number,
  size: number,
): WalkResult<FoundCapability> {
  const capabilities: FoundCapability[] = [];
  const limit = Math.min(size, PCI_CFG_SPACE_SIZE);
  if (limit < PCI_STD_HEADER_SIZEOF) return { ok: true, capabilities };
  if ((readU8(PCI_STATUS) & PCI_STATUS_CAP_LIST) === 0) return { ok: true, capabilities };
  const visited = new Uint8Array(PCI_CFG_SPACE_SIZE);
  let from = PCI_CAPABILITY_LIST;
  let pos = readU8(from) & 0xff;
  while (pos !== 0) {
    if ((pos & 3) !== 0) return { ok: false, reason: 'misaligned', at: pos, from, capabilities };
    if (pos < PCI_STD_HEADER_SIZEOF || pos + 2 > limit) {
      return { ok: false, reason: 'out-of-range', at: pos, from, capabilities };
    }
    if (visited[pos] !== 0) return { ok: false, reason: 'loop', at: pos, from, capabilities };
    visited[pos] = 1;
    capabilities.push({ id: readU8(pos + PCI_CAP_LIST_ID) & 0xff, offset: pos });
    from = pos + PCI_CAP_LIST_NEXT;
    pos = readU8(from) & 0xff;
  }
  return { ok: true, capabilities };
}

/**
 * Walk the extended capability list of a 4096-byte configuration space from 0x100. An empty
 * list when the space is 256 bytes or the first header is 0 or all ones (nothing there). A next
 * pointer with its low two bits set is 'misaligned', one below 0x100 (other than 0, the end) or
 * without room for a header is 'out-of-range', and an offset reached twice is a 'loop'.
 */
export function walkExtendedCapabilities(
  readU32: (offset: number) => number,
  size: number,
): WalkResult<FoundExtendedCapability> {
  const capabilities: FoundExtendedCapability[] = [];
  if (size < PCI_CFG_SPACE_EXP_SIZE) return { ok: true, capabilities };
  let header = readU32(PCI_EXT_CAP_START) >>> 0;
  if (header === 0 || header === 0xffffffff) return { ok: true, capabilities };
  const visited = new Uint8Array(PCI_CFG_SPACE_EXP_SIZE / 4);
  let pos = PCI_EXT_CAP_START;
  for (;;) {
    visited[pos >>> 2] = 1;
    capabilities.push({
      id: header & PCI_EXT_CAP_ID_MASK,
      version: (header >>> PCI_EXT_CAP_VER_SHIFT) & PCI_EXT_CAP_VER_MASK,
      offset: pos,
    });
    const next = header >>> PCI_EXT_CAP_NEXT_SHIFT;
    if (next === 0) return { ok: true, capabilities };
    if ((next & 3) !== 0) return { ok: false, reason: 'misaligned', at: next, from: pos, capabilities };
    if (next < PCI_EXT_CAP_START || next + 4 > PCI_CFG_SPACE_EXP_SIZE) {
      return { ok: false, reason: 'out-of-range', at: next, from: pos, capabilities };
    }
    if (visited[next >>> 2] !== 0) return { ok: false, reason: 'loop', at: next, from: pos, capabilities };
    pos = next;
    header = readU32(pos) >>> 0;
  }
}
