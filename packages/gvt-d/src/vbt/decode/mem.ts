/**
 * Reading VBT structures the way intel_vbt_decode reads them: little-endian fields at fixed
 * offsets of a block copy that is zero past its end (the tool copies every block into a zeroed
 * buffer of at least the structure's size), and C printf formats for the text.
 *
 * A Mem never throws and never reads outside its bytes: a field past the end reads 0.
 */

export class Mem {
  constructor(
    readonly bytes: Uint8Array,
    /** Where bytes[0] is in the outer buffer (only for offsets shown to people). */
    readonly base = 0,
  ) {}

  get length(): number {
    return this.bytes.length;
  }

  u8(off: number): number {
    return off >= 0 && off < this.bytes.length ? this.bytes[off] : 0;
  }

  u16(off: number): number {
    return this.u8(off) | (this.u8(off + 1) << 8);
  }

  u32(off: number): number {
    return (
      (this.u8(off) | (this.u8(off + 1) << 8) | (this.u8(off + 2) << 16) | (this.u8(off + 3) << 24)) >>> 0
    );
  }

  u64(off: number): bigint {
    return (BigInt(this.u32(off + 4)) << 32n) | BigInt(this.u32(off));
  }

  /** Bits [lo, lo + width) of a byte. */
  bits(off: number, lo: number, width: number): number {
    return (this.u8(off) >> lo) & ((1 << width) - 1);
  }

  /** Bits [lo, lo + width) of a little-endian u32 at off. */
  bits32(off: number, lo: number, width: number): number {
    return Math.floor(this.u32(off) / 2 ** lo) % 2 ** width;
  }

  /** A view of [off, off + size), zero-extended past the end (always a copy). */
  slice(off: number, size: number): Mem {
    const out = new Uint8Array(Math.max(0, size));
    for (let i = 0; i < out.length; i++) out[i] = this.u8(off + i);
    return new Mem(out, this.base + off);
  }

  /** A view of [off, end) sharing these bytes (writes through it show here). */
  view(off: number): Mem {
    return new Mem(this.bytes.subarray(Math.min(off, this.bytes.length)), this.base + off);
  }

  /** C `%.*s` of a fixed char array: the bytes up to the first NUL, as Latin-1. */
  cstr(off: number, size: number): string {
    let s = '';
    for (let i = 0; i < size; i++) {
      const c = this.u8(off + i);
      if (c === 0) break;
      s += String.fromCharCode(c);
    }
    return s;
  }
}

/** `%0Nx` (lower-case hex, at least `width` digits). */
export function hex(v: number | bigint, width = 0): string {
  return v.toString(16).padStart(width, '0');
}

/** `%0NX`. */
export function HEX(v: number, width = 0): string {
  return v.toString(16).toUpperCase().padStart(width, '0');
}

export function yesno(v: unknown): string {
  return v ? 'yes' : 'no';
}

/** C `%g` of a double (6 significant digits, trailing zeros removed). */
export function fmtG(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x < 0 ? '-inf' : 'inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const P = 6;
  const exp = Number(x.toExponential(P - 1).split('e')[1]);
  if (exp < -4 || exp >= P) {
    const [m, e] = x.toExponential(P - 1).split('e');
    const mant = m.includes('.') ? m.replace(/0+$/, '').replace(/\.$/, '') : m;
    const n = Number(e);
    return `${mant}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  const fixed = x.toFixed(P - 1 - exp);
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

/** `a / b` as C computes `int / float-constant`: in single precision, then widened to double. */
export function floatDiv(a: number, b: number): number {
  return Math.fround(Math.fround(a) / Math.fround(b));
}

/** `(value >> (panel * bits)) & ((1 << bits) - 1)`: a panel's field of a packed u16/u32. */
export function panelBits(value: number, panel: number, bits: number): number {
  const shift = panel * bits;
  if (shift >= 32) return 0;
  return Math.floor(value / 2 ** shift) % 2 ** bits;
}

/** Collects text as printf would print it. */
export class Out {
  private parts: string[] = [];

  print(s: string): void {
    this.parts.push(s);
  }

  line(s: string): void {
    this.parts.push(`${s}\n`);
  }

  text(): string {
    return this.parts.join('');
  }
}
