/**
 * QEMU's fw_cfg device on the x86 I/O ports (qemu hw/nvram/fw_cfg.c, docs/specs/fw_cfg.rst): the
 * guest writes a 16-bit key to the selector port and reads the selected item's bytes one by one
 * from the data port. Items: the signature "QEMU", the interface ID, and the file directory,
 * which names the files the VMM published (etc/igd-opregion, etc/igd-bdsm-size) with their keys.
 * Only the traditional interface is offered (no DMA). Reads allocate nothing.
 */
import { VfioError } from '@vfiokit/core';
import { type AccessHandler, type AccessSize, allOnes } from './address-map.js';

// docs/specs/fw_cfg.rst "Selector (Control) Register" / "Data Register": x86 I/O ports
export const FW_CFG_IO_BASE = 0x510;
export const FW_CFG_PORT_SEL = 0x510;
export const FW_CFG_PORT_DATA = 0x511;
// qemu include/standard-headers/linux/qemu_fw_cfg.h: selector keys
export const FW_CFG_SIGNATURE = 0x00;
export const FW_CFG_ID = 0x01;
export const FW_CFG_FILE_DIR = 0x19;
export const FW_CFG_FILE_FIRST = 0x20;
export const FW_CFG_WRITE_CHANNEL = 0x4000;
export const FW_CFG_ARCH_LOCAL = 0x8000;
export const FW_CFG_ENTRY_MASK = ~(FW_CFG_WRITE_CHANNEL | FW_CFG_ARCH_LOCAL) & 0xffff;
// qemu_fw_cfg.h FW_CFG_MAX_FILE_PATH: a file name is at most 55 characters and a NUL
export const FW_CFG_MAX_FILE_PATH = 56;
// qemu_fw_cfg.h FW_CFG_VERSION: bit 0 of the ID item, the traditional (port) interface
export const FW_CFG_VERSION = 0x01;
// qemu hw/nvram/fw_cfg.c FW_CFG_FILE_SLOTS_DFLT: how many files the directory holds
export const FW_CFG_FILE_SLOTS = 0x20;
// docs/specs/fw_cfg.rst: struct FWCfgFile is be32 size, be16 select, be16 reserved, char name[56]
export const FW_CFG_FILE_ENTRY_SIZE = 64;

const SIGNATURE = new Uint8Array([0x51, 0x45, 0x4d, 0x55]); // "QEMU"
const EMPTY = new Uint8Array(0);

export interface FwCfgFileInfo {
  readonly name: string;
  readonly size: number;
  readonly select: number;
}

interface FileEntry {
  readonly name: string;
  readonly data: Uint8Array;
}

export class FwCfg implements AccessHandler {
  /** Files in directory order (sorted by name, as QEMU's fw_cfg_add_file keeps them). */
  readonly #files: FileEntry[] = [];
  readonly #id = new Uint8Array([FW_CFG_VERSION, 0, 0, 0]);
  #dir = new Uint8Array(4);
  /** The selected item's bytes (empty for a key that selects nothing) and the read position. */
  #item: Uint8Array = EMPTY;
  #offset = 0;
  #key = 0;
  /** Data-port reads the guest made, for the report. */
  reads = 0;
  selects = 0;

  /** Publish a file; EEXIST for a name already there, ENOSPC when every slot is taken. */
  addFile(name: string, data: Uint8Array): FwCfgFileInfo {
    const bytes = new TextEncoder().encode(name);
    if (bytes.length === 0 || bytes.length >= FW_CFG_MAX_FILE_PATH || bytes.includes(0)) {
      throw new VfioError(
        'EINVAL',
        `fw_cfg file name "${name}" is not 1 to ${FW_CFG_MAX_FILE_PATH - 1} bytes without NUL.`,
        { hint: 'Use a short path such as etc/igd-opregion.' },
      );
    }
    if (this.#files.some((f) => f.name === name)) {
      throw new VfioError('EEXIST', `fw_cfg already has a file named "${name}".`, {
        hint: 'Each file name is published once; remove the old one first.',
      });
    }
    if (this.#files.length >= FW_CFG_FILE_SLOTS) {
      throw new VfioError(
        'ENOSPC',
        `fw_cfg has no free file slot for "${name}" (${FW_CFG_FILE_SLOTS} are taken).`,
        {
          hint: 'Publish fewer files.',
        },
      );
    }
    let at = this.#files.length;
    while (at > 0 && this.#files[at - 1].name > name) at--;
    this.#files.splice(at, 0, { name, data: data.slice() });
    this.#rebuild();
    return this.files()[at];
  }

  /** Withdraw a file (a hot-removed device's); false when there is none by that name. */
  removeFile(name: string): boolean {
    const i = this.#files.findIndex((f) => f.name === name);
    if (i < 0) return false;
    this.#files.splice(i, 1);
    this.#rebuild();
    return true;
  }

  files(): FwCfgFileInfo[] {
    return this.#files.map((f, i) => ({ name: f.name, size: f.data.length, select: FW_CFG_FILE_FIRST + i }));
  }

  /** The published bytes of a file, or undefined. */
  file(name: string): Uint8Array | undefined {
    return this.#files.find((f) => f.name === name)?.data;
  }

  /** fw_cfg_select: a key selects an item and rewinds the read position. */
  select(key: number): void {
    this.selects++;
    this.#key = key & 0xffff;
    this.#offset = 0;
    this.#item = this.#itemOf(this.#key);
  }

  /** fw_cfg_read: the next byte of the item, 0 past its end or for a key that selects nothing. */
  readData(): number {
    this.reads++;
    const item = this.#item;
    if (this.#offset >= item.length) return 0;
    return item[this.#offset++];
  }

  /** The two ports: a 16-bit write at the selector selects, a byte read at either port reads data. */
  read(_offset: number, size: AccessSize): number {
    // fw_cfg_comb_valid: only byte reads are accepted on the combined port pair
    if (size !== 1) return allOnes(size);
    return this.readData();
  }

  write(offset: number, size: AccessSize, value: number): void {
    // fw_cfg_comb_write: a 16-bit write selects; byte writes to the data port are ignored
    if (size === 2 && offset === 0) this.select(value);
  }

  /** Forget the selection (machine reset). */
  reset(): void {
    this.#key = 0;
    this.#offset = 0;
    this.#item = EMPTY;
  }

  get selected(): number {
    return this.#key;
  }

  #itemOf(key: number): Uint8Array {
    if (key & FW_CFG_ARCH_LOCAL) return EMPTY; // no architecture-local items on this machine
    const entry = key & FW_CFG_ENTRY_MASK;
    if (entry === FW_CFG_SIGNATURE) return SIGNATURE;
    if (entry === FW_CFG_ID) return this.#id;
    if (entry === FW_CFG_FILE_DIR) return this.#dir;
    const i = entry - FW_CFG_FILE_FIRST;
    return i >= 0 && i < this.#files.length ? this.#files[i].data : EMPTY;
  }

  #rebuild(): void {
    const files = this.#files;
    const dir = new Uint8Array(4 + files.length * FW_CFG_FILE_ENTRY_SIZE);
    const dv = new DataView(dir.buffer);
    dv.setUint32(0, files.length, false);
    const enc = new TextEncoder();
    for (let i = 0; i < files.length; i++) {
      const at = 4 + i * FW_CFG_FILE_ENTRY_SIZE;
      dv.setUint32(at, files[i].data.length, false);
      dv.setUint16(at + 4, FW_CFG_FILE_FIRST + i, false);
      dir.set(enc.encode(files[i].name), at + 8);
    }
    this.#dir = dir;
    if (
      (this.#key & FW_CFG_ENTRY_MASK) === FW_CFG_FILE_DIR ||
      (this.#key & FW_CFG_ENTRY_MASK) >= FW_CFG_FILE_FIRST
    )
      this.#item = this.#itemOf(this.#key);
  }
}
