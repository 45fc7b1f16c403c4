/** The shared state of one lspci run: options, a function's configuration bytes, the output lines. */
import type { GuestView, PciAddress, ProbedBar, ConfigReader as WalkReader } from '@vfiokit/core';
import { PCI_CFG_SPACE_EXP_SIZE, PCI_CFG_SPACE_SIZE } from '@vfiokit/core/abi';
import type { PciIds } from './ids.js';

export interface LspciOptions {
  /** 0: one line; 1: -v; 2: -vv; 3: -vvv (extended capabilities too). */
  readonly verbose: number;
  /** 0: names; 1: -n numbers; 2: -nn both. */
  readonly numeric: number;
  /** The number of -x given: 1 or 2 dump 64 bytes, 3 dumps 256, 4 or more dump 4096 (as lspci -x/-xxx/-xxxx). */
  readonly hex?: number;
  /** -k: the guest drivers that would bind each function (pciutils' "Kernel modules"). */
  readonly kernel?: boolean;
  /** The PCI ID database names come from; `null` prints numbers where names would be (no pci.ids). */
  readonly ids?: PciIds | null;
}

/** What lspci learns about a function from outside its configuration space (the OS, here the VMM). */
export interface FunctionInfo {
  readonly address: PciAddress;
  /**
   * The BARs as the guest's OS knows them (its probe sized and placed them), as lspci reads them
   * from sysfs; absent when only configuration bytes are known (as lspci -F reads a dump).
   */
  readonly bars?: readonly ProbedBar[];
  /** The guest drivers whose id tables match the function (-k, -v). */
  readonly drivers?: readonly string[];
}

export const hex = (n: number, w: number) => (n >>> 0).toString(16).padStart(w, '0');
/** pciutils' FLAG(x, y): '+' when any of the bits is set. */
export const FLAG = (x: number, bit: number) => ((x & bit) !== 0 ? '+' : '-');
/** pciutils' BITS(x, at, width). */
export const BITS = (x: number, at: number, width: number) =>
  width >= 32 ? x >>> at : (x >>> at) & ((1 << width) - 1);

/**
 * Configuration bytes as lspci reads them: little-endian fields, `size` bytes readable (256 or
 * 4096); configRead is the same read for core's capability walk.
 */
export interface ConfigReader extends WalkReader {
  readonly size: number;
  u8(off: number): number;
  u16(off: number): number;
  u32(off: number): number;
}

/** Whether `len` bytes from `off` can be read: pciutils' config_fetch, which fails past the end. */
export function fetch(cfg: ConfigReader, off: number, len: number): boolean {
  return off >= 0 && off + len <= cfg.size;
}

abstract class LittleEndian implements ConfigReader {
  abstract readonly size: number;
  abstract u8(off: number): number;
  u16(off: number): number {
    return this.u8(off) | (this.u8(off + 1) << 8);
  }
  u32(off: number): number {
    return (this.u16(off) | (this.u16(off + 2) << 16)) >>> 0;
  }
  /** The same bytes as core's capability walk reads them. */
  configRead(offset: number, size: 1 | 2 | 4): number {
    return size === 1 ? this.u8(offset) : size === 2 ? this.u16(offset) : this.u32(offset);
  }
  /** The first `n` bytes (clamped to what is readable). */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(Math.min(n, this.size));
    for (let i = 0; i < out.length; i++) out[i] = this.u8(i);
    return out;
  }
}

/** A configuration space held as bytes (a dump, a test fixture). */
export class BytesConfig extends LittleEndian {
  readonly size: number;
  constructor(private readonly data: Uint8Array) {
    super();
    this.size = data.length >= PCI_CFG_SPACE_EXP_SIZE ? PCI_CFG_SPACE_EXP_SIZE : PCI_CFG_SPACE_SIZE;
  }
  u8(off: number): number {
    return off >= 0 && off < this.data.length ? this.data[off] : off < this.size ? 0 : 0xff;
  }
}

/**
 * The function's configuration bytes, read dword by dword through the guest's config cycles. Like
 * Linux's pci_cfg_space_size, 4096 bytes are readable only when the function has a PCI Express
 * (or PCI-X) capability; otherwise 256, so a dump of a conventional function ends at 0xff.
 */
export class GuestConfig extends LittleEndian {
  private readonly data = new Uint8Array(PCI_CFG_SPACE_EXP_SIZE);
  private readonly loaded = new Uint8Array(PCI_CFG_SPACE_EXP_SIZE / 4);
  readonly size: number;

  constructor(
    private readonly guest: Pick<GuestView, 'configRead'>,
    private readonly address: PciAddress,
    extended: boolean,
  ) {
    super();
    this.size = extended ? PCI_CFG_SPACE_EXP_SIZE : PCI_CFG_SPACE_SIZE;
  }

  private load(dword: number): void {
    if (this.loaded[dword]) return;
    let v = 0xffffffff;
    try {
      v = this.guest.configRead(this.address, dword * 4, 4) >>> 0;
    } catch {
      // A failed config cycle reads all-ones, as a master abort does on real hardware.
    }
    const o = dword * 4;
    this.data[o] = v & 0xff;
    this.data[o + 1] = (v >>> 8) & 0xff;
    this.data[o + 2] = (v >>> 16) & 0xff;
    this.data[o + 3] = v >>> 24;
    this.loaded[dword] = 1;
  }

  u8(off: number): number {
    if (off < 0 || off >= this.size) return 0xff;
    this.load(off >>> 2);
    return this.data[off];
  }
}

/** One function being printed: its configuration bytes, what the VMM knows of it, the options, the lines so far. */
export class Printer {
  readonly lines: string[] = [];
  private pending = '';
  constructor(
    readonly cfg: ConfigReader,
    readonly info: FunctionInfo,
    readonly opts: LspciOptions,
  ) {}

  /** One line; text left by partial() starts it. */
  out(s: string): void {
    this.lines.push(this.pending + s);
    this.pending = '';
  }

  /** Text with no line end yet, where lspci prints a prefix and then nothing (ls-caps.c cap_pcix). */
  partial(s: string): void {
    this.pending += s;
  }

  /** The lines, with any unended text as the last. */
  finish(): string[] {
    if (this.pending) this.out('');
    return this.lines;
  }
}
