/**
 * Reading QEMU's fw_cfg from a guest program, as SeaBIOS and OVMF's QemuFwCfgLib do: only
 * through the GuestView's port I/O (a 16-bit selector write to 0x510, byte reads from 0x511).
 * docs/specs/fw_cfg.rst: check the "QEMU" signature, read the big-endian file directory, select
 * a file by its key and read its bytes.
 */
import { type GuestView, VfioError } from '@vfiokit/core';
import {
  FW_CFG_FILE_DIR,
  FW_CFG_FILE_ENTRY_SIZE,
  FW_CFG_MAX_FILE_PATH,
  FW_CFG_PORT_DATA,
  FW_CFG_PORT_SEL,
  FW_CFG_SIGNATURE,
} from '../machine/fw-cfg.js';

export interface FwCfgFile {
  readonly name: string;
  readonly size: number;
  readonly select: number;
}

/** Directory entries a guest reads at most (QEMU's largest file-slot setting is 0x1000). */
const MAX_DIRECTORY_ENTRIES = 0x1000;

/** Select `key` and read `length` bytes of its item. */
export function fwCfgRead(guest: GuestView, key: number, length: number): Uint8Array {
  guest.ioWrite(FW_CFG_PORT_SEL, 2, key);
  return fwCfgReadMore(guest, length);
}

/** Read the next `length` bytes of the item selected already. */
function fwCfgReadMore(guest: GuestView, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = guest.ioRead(FW_CFG_PORT_DATA, 1) & 0xff;
  return out;
}

/** Whether fw_cfg answers at its ports with the "QEMU" signature. */
export function fwCfgPresent(guest: GuestView): boolean {
  const s = fwCfgRead(guest, FW_CFG_SIGNATURE, 4);
  return s[0] === 0x51 && s[1] === 0x45 && s[2] === 0x4d && s[3] === 0x55;
}

/** The file directory (FW_CFG_FILE_DIR). ENODEV when there is no fw_cfg. */
export function fwCfgFiles(guest: GuestView): FwCfgFile[] {
  if (!fwCfgPresent(guest)) {
    throw new VfioError('ENODEV', `no fw_cfg device answers at I/O port 0x${FW_CFG_PORT_SEL.toString(16)}.`, {
      hint: 'The VMM publishes firmware files through QEMU fw_cfg; this machine has none.',
    });
  }
  const head = fwCfgRead(guest, FW_CFG_FILE_DIR, 4);
  const count = new DataView(head.buffer).getUint32(0, false);
  if (count > MAX_DIRECTORY_ENTRIES) {
    throw new VfioError(
      'EINVAL',
      `the fw_cfg file directory claims ${count} files, more than ${MAX_DIRECTORY_ENTRIES}.`,
      {
        offset: 0,
        hint: 'The directory count is a big-endian u32; a wrong byte order gives such numbers.',
      },
    );
  }
  const files: FwCfgFile[] = [];
  const decoder = new TextDecoder();
  for (let i = 0; i < count; i++) {
    const e = fwCfgReadMore(guest, FW_CFG_FILE_ENTRY_SIZE);
    const dv = new DataView(e.buffer);
    const nameBytes = e.subarray(8, 8 + FW_CFG_MAX_FILE_PATH);
    const end = nameBytes.indexOf(0);
    files.push({
      size: dv.getUint32(0, false),
      select: dv.getUint16(4, false),
      name: decoder.decode(end < 0 ? nameBytes : nameBytes.subarray(0, end)),
    });
  }
  return files;
}

/** A file's bytes by name, or undefined when fw_cfg has no such file. */
export function fwCfgReadFile(
  guest: GuestView,
  name: string,
  files = fwCfgFiles(guest),
): Uint8Array | undefined {
  const f = files.find((x) => x.name === name);
  return f === undefined ? undefined : fwCfgRead(guest, f.select, f.size);
}
