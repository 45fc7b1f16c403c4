/** The shared state of one lspci run: options, the guest's configuration bytes, the output lines. */
import {
  type GuestView,
  PCI_CFG_SPACE_EXP_SIZE,
  PCI_CFG_SPACE_SIZE,
  type PciAddress,
  type ProbedDevice,
} from '@vfiokit/core';

export interface LspciOptions {
  /** 0: one line; 1: -v; 2: -vv; 3: -vvv (extended capabilities too). */
  readonly verbose: number;
  /** 0: names; 1: -n numbers; 2: -nn both. */
  readonly numeric: number;
}

export const hex = (n: number, w: number) => (n >>> 0).toString(16).padStart(w, '0');
export const FLAG = (x: number, bit: number) => ((x & bit) !== 0 ? '+' : '-');

/** The function's configuration bytes, read dword by dword through the guest's config cycles. */
export class GuestConfig {
  private readonly bytes = new Uint8Array(PCI_CFG_SPACE_EXP_SIZE);
  private readonly loaded = new Uint8Array(PCI_CFG_SPACE_EXP_SIZE / 4);

  constructor(
    private readonly guest: Pick<GuestView, 'configRead'>,
    private readonly address: PciAddress,
  ) {}

  private load(dword: number): void {
    if (this.loaded[dword]) return;
    let v = 0xffffffff;
    try {
      v = this.guest.configRead(this.address, dword * 4, 4) >>> 0;
    } catch {
      // A failed config cycle reads all-ones, as a master abort does on real hardware.
    }
    const o = dword * 4;
    this.bytes[o] = v & 0xff;
    this.bytes[o + 1] = (v >>> 8) & 0xff;
    this.bytes[o + 2] = (v >>> 16) & 0xff;
    this.bytes[o + 3] = v >>> 24;
    this.loaded[dword] = 1;
  }

  u8(off: number): number {
    if (off < 0 || off >= PCI_CFG_SPACE_EXP_SIZE) return 0xff;
    this.load(off >>> 2);
    return this.bytes[off];
  }
  u16(off: number): number {
    return this.u8(off) | (this.u8(off + 1) << 8);
  }
  u32(off: number): number {
    return (this.u16(off) | (this.u16(off + 2) << 16)) >>> 0;
  }
  /** The first 256 bytes (for --json and hex dumps). */
  standard(): Uint8Array {
    for (let i = 0; i < PCI_CFG_SPACE_SIZE; i += 4) this.u8(i);
    return this.bytes.slice(0, PCI_CFG_SPACE_SIZE);
  }
}

/** One function being printed: its configuration bytes, its probe record, the options, the lines so far. */
export class Printer {
  readonly lines: string[] = [];
  constructor(
    readonly cfg: GuestConfig,
    readonly dev: ProbedDevice,
    readonly opts: LspciOptions,
  ) {}

  out(s: string): void {
    this.lines.push(s);
  }
}
