/**
 * Numbers of the vfio-user protocol. The specification is QEMU docs/interop/vfio-user.rst;
 * where it leaves a number open, the value comes from the implementation named beside it.
 * Payload structs reuse linux/vfio.h layouts and constants from @vfiokit/core.
 */

// docs/interop/vfio-user.rst, "Commands" (14 is unused; QEMU's old VFIO_USER_DIRTY_PAGES)
export const VFIO_USER_VERSION = 1;
export const VFIO_USER_DMA_MAP = 2;
export const VFIO_USER_DMA_UNMAP = 3;
export const VFIO_USER_DEVICE_GET_INFO = 4;
export const VFIO_USER_DEVICE_GET_REGION_INFO = 5;
export const VFIO_USER_DEVICE_GET_REGION_IO_FDS = 6;
export const VFIO_USER_DEVICE_GET_IRQ_INFO = 7;
export const VFIO_USER_DEVICE_SET_IRQS = 8;
export const VFIO_USER_REGION_READ = 9;
export const VFIO_USER_REGION_WRITE = 10;
export const VFIO_USER_DMA_READ = 11;
export const VFIO_USER_DMA_WRITE = 12;
export const VFIO_USER_DEVICE_RESET = 13;
export const VFIO_USER_REGION_WRITE_MULTI = 15;
export const VFIO_USER_DEVICE_FEATURE = 16;
export const VFIO_USER_MIG_DATA_READ = 17;
export const VFIO_USER_MIG_DATA_WRITE = 18;

const COMMAND_NAMES: Readonly<Record<number, string>> = Object.freeze({
  [VFIO_USER_VERSION]: 'VERSION',
  [VFIO_USER_DMA_MAP]: 'DMA_MAP',
  [VFIO_USER_DMA_UNMAP]: 'DMA_UNMAP',
  [VFIO_USER_DEVICE_GET_INFO]: 'DEVICE_GET_INFO',
  [VFIO_USER_DEVICE_GET_REGION_INFO]: 'DEVICE_GET_REGION_INFO',
  [VFIO_USER_DEVICE_GET_REGION_IO_FDS]: 'DEVICE_GET_REGION_IO_FDS',
  [VFIO_USER_DEVICE_GET_IRQ_INFO]: 'DEVICE_GET_IRQ_INFO',
  [VFIO_USER_DEVICE_SET_IRQS]: 'DEVICE_SET_IRQS',
  [VFIO_USER_REGION_READ]: 'REGION_READ',
  [VFIO_USER_REGION_WRITE]: 'REGION_WRITE',
  [VFIO_USER_DMA_READ]: 'DMA_READ',
  [VFIO_USER_DMA_WRITE]: 'DMA_WRITE',
  [VFIO_USER_DEVICE_RESET]: 'DEVICE_RESET',
  [VFIO_USER_REGION_WRITE_MULTI]: 'REGION_WRITE_MULTI',
  [VFIO_USER_DEVICE_FEATURE]: 'DEVICE_FEATURE',
  [VFIO_USER_MIG_DATA_READ]: 'MIG_DATA_READ',
  [VFIO_USER_MIG_DATA_WRITE]: 'MIG_DATA_WRITE',
});

/** The names commandName() gives, made once: a name joined per call is garbage per message. */
const FULL_NAMES: readonly (string | undefined)[] = Array.from({ length: 32 }, (_, c) =>
  COMMAND_NAMES[c] === undefined ? undefined : `VFIO_USER_${COMMAND_NAMES[c]}`,
);

/** `VFIO_USER_REGION_READ` for 9; `command 99` for a number the protocol does not define. */
export function commandName(command: number): string {
  return FULL_NAMES[command] ?? `command ${command}`;
}

export function isKnownCommand(command: number): boolean {
  return COMMAND_NAMES[command] !== undefined;
}

// docs/interop/vfio-user.rst, "Header": 16 bytes; flags bits 0-3 type, bit 4 No_reply, bit 5 Error
export const VFIO_USER_HEADER_SIZE = 16;
export const VFIO_USER_F_TYPE_MASK = 0xf;
export const VFIO_USER_F_TYPE_COMMAND = 0;
export const VFIO_USER_F_TYPE_REPLY = 1;
export const VFIO_USER_F_NO_REPLY = 1 << 4;
export const VFIO_USER_F_ERROR = 1 << 5;

/** The protocol version spoken here: libvfio-user's 0.2 (include/vfio-user.h LIB_VFIO_USER_MAJOR/MINOR). */
export const VFIO_USER_MAJOR = 0;
export const VFIO_USER_MINOR = 2;

// docs/interop/vfio-user.rst, "Version" capability defaults
export const VFIO_USER_DEFAULT_MAX_MSG_FDS = 1;
export const VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE = 1024 * 1024;
export const VFIO_USER_DEFAULT_MAX_DMA_MAPS = 65535;
export const VFIO_USER_DEFAULT_PGSIZES = 4096;
/** lib/libvfio-user.c VFIO_USER_CLIENT_MAX_MSG_FDS_LIMIT: the largest max_msg_fds a peer may claim. */
export const VFIO_USER_MAX_MSG_FDS_LIMIT = 1024;

// docs/interop/vfio-user.rst payload sizes (after the header)
export const VFIO_USER_VERSION_SIZE = 4;
export const VFIO_USER_DMA_MAP_SIZE = 32;
export const VFIO_USER_DMA_UNMAP_SIZE = 24;
/** struct vfio_user_device_info: vfio_device_info without cap_offset. */
export const VFIO_USER_DEVICE_INFO_SIZE = 16;
export const VFIO_USER_REGION_IO_FDS_SIZE = 16;
export const VFIO_USER_SUB_REGION_IO_FD_SIZE = 40;
export const VFIO_USER_REGION_RW_SIZE = 16;
export const VFIO_USER_DMA_RW_SIZE = 16;
export const VFIO_USER_MIG_DATA_SIZE = 8;
/** REGION_WRITE_MULTI: wr_cnt u64, then entries of {offset u64, region u32, count u32, data[8]}. */
export const VFIO_USER_WRITE_MULTI_HEADER_SIZE = 8;
export const VFIO_USER_WRITE_MULTI_ENTRY_SIZE = 24;
export const VFIO_USER_MULTI_DATA = 8;
/** hw/vfio-user/protocol.h VFIO_USER_MULTI_MAX: the most writes QEMU coalesces into one message. */
export const VFIO_USER_MULTI_MAX = 200;

// include/vfio-user.h (libvfio-user) and docs/interop/vfio-user.rst sub-region types
export const VFIO_USER_IO_FD_TYPE_IOEVENTFD = 0;
export const VFIO_USER_IO_FD_TYPE_IOREGIONFD = 1;
