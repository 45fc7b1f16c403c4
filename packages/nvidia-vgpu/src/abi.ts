/**
 * The guest-visible interface of a vfiokit vGPU: the BAR layout, the BAR0 register map, the host
 * RPC mailbox protocol and the push-buffer methods. NVIDIA's own register and RPC formats are
 * not public, so this is the plugin's own ABI, shaped after the RFC's design (a host "vGPU
 * manager" answering guest RPCs, channels with push buffers executed by a copy engine). The
 * guest driver program and the device both import it from here.
 */

// ---- BARs ------------------------------------------------------------------------------------

/** BAR0, registers: 16 MiB, the register BAR size of NVIDIA GPUs. */
export const BAR0_SIZE = 16 << 20;
/**
 * BAR3: 32 MiB, 64-bit prefetchable, the instance-memory window (RAMIN, the size NVIDIA's boards
 * give BAR3): device memory the guest maps directly, like BAR1. Its contents are device state:
 * scrubbed when the vGPU is created, carried by migration, kept across a reset as the
 * framebuffer is.
 */
export const BAR3_SIZE = 32 << 20;

/** Trapped register page at the start of BAR0. */
export const REGS_OFFSET = 0x0000;
export const REGS_SIZE = 0x1000;
/** The RPC mailbox page: directly mappable (sparse mmap area), the guest writes requests here. */
export const MAILBOX_OFFSET = 0x1000;
export const MAILBOX_SIZE = 0x1000;
/** Request at the start of the mailbox page, response in its second half. */
export const MAILBOX_REQUEST = 0x000;
export const MAILBOX_RESPONSE = 0x800;
export const MAILBOX_HALF = 0x800;

// ---- BAR0 registers (offsets in BAR0) ----------------------------------------------------------

/** Reads VGPU_MAGIC. */
export const REG_ID = 0x000;
/** Interface version, major << 16 | minor. */
export const REG_VERSION = 0x004;
/** Framebuffer bytes of this vGPU (64-bit, two halves). */
export const REG_FB_SIZE_LO = 0x008;
export const REG_FB_SIZE_HI = 0x00c;
/** Interrupt status, write 1 to clear. */
export const REG_INTR_STATUS = 0x010;
/** Interrupt enable mask; an enabled status bit raises MSI (or INTx). */
export const REG_INTR_ENABLE = 0x014;
/** Write the request length (bytes) to hand the mailbox request to the vGPU manager. */
export const REG_RPC_DOORBELL = 0x020;
/** RPC_STATUS_* of the last request. */
export const REG_RPC_STATUS = 0x024;
/** vGPU type id (nvidia-NNN). */
export const REG_TYPE_ID = 0x028;
/** Channel registers: CHANNEL_BASE + id * CHANNEL_STRIDE. */
export const REG_CHANNEL_BASE = 0x100;
export const CHANNEL_STRIDE = 0x10;
/** Guest writes the new PUT (byte offset in the push buffer ring): this is the doorbell. */
export const CH_PUT = 0x0;
/** Engine progress (byte offset in the ring), read-only. */
export const CH_GET = 0x4;
/** CHANNEL_STATE_*, read-only. */
export const CH_STATE = 0x8;
/** CHANNEL_ERROR_* of a faulted channel, read-only. */
export const CH_ERROR = 0xc;

/** "NVGP" little-endian. */
export const VGPU_MAGIC = 0x5047564e;
export const VGPU_INTERFACE_VERSION = 0x00010000;

export const INTR_RPC_DONE = 1 << 0;
export const INTR_SEMAPHORE = 1 << 1;
export const INTR_CHANNEL_FAULT = 1 << 2;
export const INTR_ALL = INTR_RPC_DONE | INTR_SEMAPHORE | INTR_CHANNEL_FAULT;

export const RPC_STATUS_IDLE = 0;
export const RPC_STATUS_DONE = 1;

/** Channels per vGPU (the RPC refuses more). */
export const MAX_CHANNELS = 8;

export const CHANNEL_STATE_FREE = 0;
export const CHANNEL_STATE_IDLE = 1;
export const CHANNEL_STATE_BUSY = 2;
export const CHANNEL_STATE_FAULTED = 3;

export const CHANNEL_ERROR_NONE = 0;
export const CHANNEL_ERROR_BAD_METHOD = 1;
export const CHANNEL_ERROR_OUT_OF_BOUNDS = 2;
export const CHANNEL_ERROR_BAD_PUT = 3;

// ---- RPC protocol ---------------------------------------------------------------------------
// Request:  u32 function, u32 length (whole message), u32 sequence, then parameters.
// Response: u32 result,   u32 length (whole message), u32 sequence, then results.

export const RPC_HEADER_SIZE = 12;

export const RPC_VERSION_HANDSHAKE = 1;
export const RPC_ALLOC_FB = 2;
export const RPC_FREE_FB = 3;
export const RPC_CHANNEL_CREATE = 4;
export const RPC_CHANNEL_DESTROY = 5;
export const RPC_SUBMIT = 6;

export const RPC_OK = 0;
export const RPC_ERR_INVALID_ARGUMENT = 1;
export const RPC_ERR_NO_MEMORY = 2;
export const RPC_ERR_INVALID_STATE = 3;
export const RPC_ERR_NOT_SUPPORTED = 4;
export const RPC_ERR_PROTOCOL = 5;
export const RPC_ERR_VERSION_MISMATCH = 6;
export const RPC_ERR_NO_CHANNEL = 7;

/** Framebuffer allocations are aligned to 4 KiB pages and counted against the vGPU's framebuffer. */
export const FB_ALLOC_ALIGN = 4096;

// ---- push-buffer methods --------------------------------------------------------------------
// Each method is a header word (opcode << 24 | flags) followed by a fixed number of u32 words.
// Addresses are byte offsets in the vGPU's own framebuffer.

export const METHOD_NOP = 0x00;
/** [hdr, offset, value]: store value at offset (4-byte aligned); flag AWAKEN raises INTR_SEMAPHORE. */
export const METHOD_SEM_RELEASE = 0x01;
/** [hdr, dst, length, pattern]: fill length bytes (multiple of 4) with a u32 pattern. */
export const METHOD_MEMSET = 0x02;
/** [hdr, dst, src, length]: copy within the framebuffer (memmove semantics). */
export const METHOD_COPY = 0x03;
/** [hdr, surface]: present a frame; held back by the frame-rate limiter. */
export const METHOD_PRESENT = 0x04;

export const METHOD_FLAG_AWAKEN = 1 << 0;

/** Words per method, header included; 0 = unknown opcode. */
export function methodWords(opcode: number): number {
  switch (opcode) {
    case METHOD_NOP:
      return 1;
    case METHOD_SEM_RELEASE:
      return 3;
    case METHOD_MEMSET:
      return 4;
    case METHOD_COPY:
      return 4;
    case METHOD_PRESENT:
      return 2;
    default:
      return 0;
  }
}

export function methodHeader(opcode: number, flags = 0): number {
  return ((opcode << 24) | (flags & 0xffffff)) >>> 0;
}
