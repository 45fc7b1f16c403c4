/**
 * What a RegisterBank is built from and what its hooks see: the register specs and the bank's
 * options (register-bank.ts serves them).
 */

import type { Logger } from '../contract/context.js';

export type AccessWidth = 1 | 2 | 4 | 8;

/** What a hook sees of its register. Reading and setting `value` bypass masks and hooks. */
export interface RegisterHandle {
  readonly name: string;
  readonly offset: number;
  readonly width: AccessWidth;
  /** The stored value (exact up to 2^53 for 8-byte registers). */
  value: number;
  /** The stored value, exact for every width. */
  bigValue: bigint;
}

export interface RegisterSpec {
  name: string;
  /** Byte offset in the bank. */
  offset: number;
  /** Bytes; default 4. */
  width?: AccessWidth;
  /** Power-on value; default 0. */
  reset?: number | bigint;
  /** Bits a guest write cannot change. */
  readOnlyMask?: number | bigint;
  /** Bits a guest clears by writing 1 (and cannot set). */
  w1cMask?: number | bigint;
  /** Default 'rw'. */
  access?: 'rw' | 'ro' | 'wo';
  /** Widths a guest access may have; default any width up to the register's own. */
  accessWidths?: readonly AccessWidth[];
  /** Computes the value a guest read returns (the stored value stays as it is). */
  onRead?: (reg: RegisterHandle) => number;
  /** Called after a guest write changed the stored value: `value` is the new value, `old` the previous. */
  onWrite?: (value: number, old: number, reg: RegisterHandle) => void;
}

export interface RegisterBankOptions {
  /** For messages: the device and BAR, e.g. 'gvt-g vgpu0 BAR0'. */
  name: string;
  /** Bank size in bytes (the BAR or the part of it this bank serves). */
  size: number;
  registers: readonly RegisterSpec[];
  /** The byte every unmapped or refused read returns in each position; default 0. */
  unmappedValue?: number;
  log?: Logger;
}
