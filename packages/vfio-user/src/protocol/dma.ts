/**
 * DMA_MAP / DMA_UNMAP (client to server) and DMA_READ / DMA_WRITE (server to client).
 *
 * DMA_READ/DMA_WRITE have two layouts in the wild. The spec and libvfio-user use
 * {address u64, count u64, data at 16} ('spec'). QEMU's client (hw/vfio-user/protocol.h
 * VFIOUserDMARW) reads {offset u64, count u32, data at 12} from a message of at least 32 bytes,
 * sends its DMA_READ reply the same way (16 + count payload bytes), and answers DMA_WRITE with a
 * bare header ('qemu'). A server talking to QEMU must use 'qemu'.
 */
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
} from '@vfiokit/core/abi';
import {
  VFIO_USER_DMA_MAP,
  VFIO_USER_DMA_MAP_SIZE,
  VFIO_USER_DMA_READ,
  VFIO_USER_DMA_RW_SIZE,
  VFIO_USER_DMA_UNMAP,
  VFIO_USER_DMA_UNMAP_SIZE,
  VFIO_USER_DMA_WRITE,
  VFIO_USER_F_TYPE_REPLY,
} from './constants.js';
import { DEFAULT_LIMITS, type Limits, requestFlags, type SendOptions } from './header.js';
import {
  allocMessage,
  checkU32,
  checkU64,
  expectAtLeast,
  expectSize,
  getU64,
  protocolError,
  setU64,
  view,
} from './wire.js';

export interface DmaMapRequest {
  readonly argsz: number;
  /** VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE */
  readonly flags: number;
  /** File offset of the region in the fd, 0 when no fd is sent. */
  readonly offset: number;
  /** Base DMA address (IOVA). */
  readonly address: number;
  readonly size: number;
  /** The fd to mmap, when the client shares the memory. */
  readonly fd?: number;
}

const DMA_MAP_KNOWN_FLAGS = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

export function encodeDmaMapRequest(
  msgId: number,
  r: Omit<DmaMapRequest, 'fd' | 'argsz'> & { argsz?: number },
  options?: SendOptions,
): Uint8Array {
  const C = VFIO_USER_DMA_MAP;
  const { bytes, dv } = allocMessage(msgId, C, requestFlags(options), VFIO_USER_DMA_MAP_SIZE);
  dv.setUint32(16, checkU32(r.argsz ?? VFIO_USER_DMA_MAP_SIZE, C, 'argsz'), true);
  dv.setUint32(20, checkU32(r.flags, C, 'flags'), true);
  setU64(dv, 24, checkU64(r.offset, C, 'offset'));
  setU64(dv, 32, checkU64(r.address, C, 'address'));
  setU64(dv, 40, checkU64(r.size, C, 'size'));
  return bytes;
}

export function decodeDmaMapRequest(payload: Uint8Array, fds: readonly number[] = []): DmaMapRequest {
  const C = VFIO_USER_DMA_MAP;
  expectSize(payload, VFIO_USER_DMA_MAP_SIZE, C, 'dma_map');
  const dv = view(payload);
  const argsz = dv.getUint32(0, true);
  const flags = dv.getUint32(4, true);
  if (argsz < VFIO_USER_DMA_MAP_SIZE)
    throw protocolError(
      'EINVAL',
      C,
      `argsz ${argsz} is smaller than the ${VFIO_USER_DMA_MAP_SIZE}-byte request.`,
    );
  if (flags & ~DMA_MAP_KNOWN_FLAGS)
    throw protocolError(
      'EINVAL',
      C,
      `flags 0x${flags.toString(16)} has bits other than READ (1) and WRITE (2).`,
    );
  if (fds.length > 1)
    throw protocolError('EINVAL', C, `${fds.length} fds came with the request; at most one may.`);
  const offset = getU64(dv, 8, C, 'offset');
  const address = getU64(dv, 16, C, 'address');
  const size = getU64(dv, 24, C, 'size');
  if (size === 0) throw protocolError('EINVAL', C, 'size is 0; a mapping must cover at least one byte.');
  if (address + size > Number.MAX_SAFE_INTEGER)
    throw protocolError(
      'EOVERFLOW',
      C,
      `address 0x${address.toString(16)} + size 0x${size.toString(16)} wraps past 2^53.`,
    );
  return fds.length === 1
    ? { argsz, flags, offset, address, size, fd: fds[0] }
    : { argsz, flags, offset, address, size };
}

export interface DmaUnmapRequest {
  readonly argsz: number;
  /** 0, or VFIO_DMA_UNMAP_FLAG_ALL with address = size = 0. */
  readonly flags: number;
  readonly address: number;
  readonly size: number;
}

function encodeUnmap(msgId: number, flags: number, r: DmaUnmapRequest): Uint8Array {
  const C = VFIO_USER_DMA_UNMAP;
  const { bytes, dv } = allocMessage(msgId, C, flags, VFIO_USER_DMA_UNMAP_SIZE);
  dv.setUint32(16, checkU32(r.argsz, C, 'argsz'), true);
  dv.setUint32(20, checkU32(r.flags, C, 'flags'), true);
  setU64(dv, 24, checkU64(r.address, C, 'address'));
  setU64(dv, 32, checkU64(r.size, C, 'size'));
  return bytes;
}

export function encodeDmaUnmapRequest(msgId: number, r: DmaUnmapRequest, options?: SendOptions): Uint8Array {
  return encodeUnmap(msgId, requestFlags(options), r);
}

/** The reply echoes the request struct. */
export function encodeDmaUnmapReply(msgId: number, r: DmaUnmapRequest): Uint8Array {
  return encodeUnmap(msgId, VFIO_USER_F_TYPE_REPLY, { ...r, argsz: VFIO_USER_DMA_UNMAP_SIZE });
}

function decodeUnmap(payload: Uint8Array, reply: boolean): DmaUnmapRequest {
  const C = VFIO_USER_DMA_UNMAP;
  expectSize(payload, VFIO_USER_DMA_UNMAP_SIZE, C, reply ? 'dma_unmap reply' : 'dma_unmap');
  const dv = view(payload);
  const argsz = dv.getUint32(0, true);
  const flags = dv.getUint32(4, true);
  if (argsz < VFIO_USER_DMA_UNMAP_SIZE)
    throw protocolError(
      'EINVAL',
      C,
      `argsz ${argsz} is smaller than the ${VFIO_USER_DMA_UNMAP_SIZE}-byte struct.`,
    );
  if (flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP)
    throw protocolError(
      'EINVAL',
      C,
      'flag GET_DIRTY_BITMAP is not part of this protocol version.',
      'Use DEVICE_FEATURE DMA_LOGGING_REPORT for dirty pages.',
    );
  if (flags & ~VFIO_DMA_UNMAP_FLAG_ALL)
    throw protocolError('EINVAL', C, `flags 0x${flags.toString(16)} has unknown bits.`);
  const address = getU64(dv, 8, C, 'address');
  const size = getU64(dv, 16, C, 'size');
  if (flags & VFIO_DMA_UNMAP_FLAG_ALL && (address !== 0 || size !== 0))
    throw protocolError('EINVAL', C, 'UNMAP_ALL needs address and size 0.');
  return { argsz, flags, address, size };
}

export const decodeDmaUnmapRequest = (payload: Uint8Array): DmaUnmapRequest => decodeUnmap(payload, false);
export const decodeDmaUnmapReply = (payload: Uint8Array): DmaUnmapRequest => decodeUnmap(payload, true);

/** Which DMA_READ/DMA_WRITE layout the peer speaks (see the module comment). */
export type DmaLayout = 'spec' | 'qemu';

/** Where the data starts in a DMA_READ reply or DMA_WRITE request payload. */
const dataOffset = (layout: DmaLayout): number => (layout === 'qemu' ? 12 : 16);

export interface DmaAccess {
  readonly address: number;
  readonly count: number;
}

export interface DmaTransfer extends DmaAccess {
  /** `count` bytes; a view into the decoded payload. */
  readonly data: Uint8Array;
}

function checkCount(count: number, command: number, limits: Limits): void {
  if (count > limits.maxDataXferSize)
    throw protocolError(
      'E2BIG',
      command,
      `count ${count} exceeds the negotiated max_data_xfer_size ${limits.maxDataXferSize}.`,
      'Split the transfer.',
    );
}

function writeAccess(dv: DataView, command: number, a: DmaAccess, layout: DmaLayout): void {
  setU64(dv, 16, checkU64(a.address, command, 'address'));
  if (layout === 'qemu') dv.setUint32(24, checkU32(a.count, command, 'count'), true);
  else setU64(dv, 24, checkU64(a.count, command, 'count'));
}

/** address, then count as u64 ('spec') or u32 ('qemu'); both are 16 bytes long in a request without data. */
function readAccess(payload: Uint8Array, command: number, layout: DmaLayout, limits: Limits): DmaAccess {
  expectAtLeast(payload, VFIO_USER_DMA_RW_SIZE, command, 'dma access');
  const dv = view(payload);
  const address = getU64(dv, 0, command, 'address');
  const count = layout === 'qemu' ? dv.getUint32(8, true) : getU64(dv, 8, command, 'count');
  checkCount(count, command, limits);
  if (address + count > Number.MAX_SAFE_INTEGER)
    throw protocolError(
      'EOVERFLOW',
      command,
      `address 0x${address.toString(16)} + count ${count} wraps past 2^53.`,
    );
  return { address, count };
}

/** Server to client: read `count` bytes of client memory at `address`. */
export function encodeDmaReadRequest(
  msgId: number,
  a: DmaAccess,
  layout: DmaLayout = 'spec',
  options?: SendOptions,
): Uint8Array {
  const { bytes, dv } = allocMessage(msgId, VFIO_USER_DMA_READ, requestFlags(options), VFIO_USER_DMA_RW_SIZE);
  writeAccess(dv, VFIO_USER_DMA_READ, a, layout);
  return bytes;
}

export function decodeDmaReadRequest(
  payload: Uint8Array,
  layout: DmaLayout = 'spec',
  limits: Limits = DEFAULT_LIMITS,
): DmaAccess {
  expectSize(payload, VFIO_USER_DMA_RW_SIZE, VFIO_USER_DMA_READ, 'dma_read');
  return readAccess(payload, VFIO_USER_DMA_READ, layout, limits);
}

function dmaDataMessage(
  msgId: number,
  command: number,
  flags: number,
  t: DmaTransfer,
  layout: DmaLayout,
): Uint8Array {
  if (t.data.length !== t.count)
    throw protocolError(
      'EINVAL',
      command,
      `count ${t.count} differs from the ${t.data.length} data bytes given.`,
    );
  // QEMU requires msg_size >= 32 + count even though its data starts at payload offset 12.
  const { bytes, dv } = allocMessage(msgId, command, flags, VFIO_USER_DMA_RW_SIZE + t.count);
  writeAccess(dv, command, t, layout);
  bytes.set(t.data, 16 + dataOffset(layout));
  return bytes;
}

function readTransfer(
  payload: Uint8Array,
  command: number,
  layout: DmaLayout,
  limits: Limits,
  what: string,
): DmaTransfer {
  const a = readAccess(payload, command, layout, limits);
  const start = dataOffset(layout);
  const expected = VFIO_USER_DMA_RW_SIZE + a.count;
  if (payload.length !== expected)
    throw protocolError(
      'EINVAL',
      command,
      `the ${what} payload is ${payload.length} bytes; count ${a.count} needs ${expected}.`,
    );
  return { ...a, data: payload.subarray(start, start + a.count) };
}

export function encodeDmaReadReply(msgId: number, t: DmaTransfer, layout: DmaLayout = 'spec'): Uint8Array {
  return dmaDataMessage(msgId, VFIO_USER_DMA_READ, VFIO_USER_F_TYPE_REPLY, t, layout);
}

export function decodeDmaReadReply(
  payload: Uint8Array,
  layout: DmaLayout = 'spec',
  limits: Limits = DEFAULT_LIMITS,
): DmaTransfer {
  return readTransfer(payload, VFIO_USER_DMA_READ, layout, limits, 'dma_read reply');
}

/** Server to client: write `data` to client memory at `address`. */
export function encodeDmaWriteRequest(
  msgId: number,
  t: DmaTransfer,
  layout: DmaLayout = 'spec',
  options?: SendOptions,
): Uint8Array {
  return dmaDataMessage(msgId, VFIO_USER_DMA_WRITE, requestFlags(options), t, layout);
}

export function decodeDmaWriteRequest(
  payload: Uint8Array,
  layout: DmaLayout = 'spec',
  limits: Limits = DEFAULT_LIMITS,
): DmaTransfer {
  return readTransfer(payload, VFIO_USER_DMA_WRITE, layout, limits, 'dma_write');
}

/** 'spec': {address, count u64}; 'qemu': a bare header, as QEMU answers. */
export function encodeDmaWriteReply(msgId: number, a: DmaAccess, layout: DmaLayout = 'spec'): Uint8Array {
  if (layout === 'qemu') return allocMessage(msgId, VFIO_USER_DMA_WRITE, VFIO_USER_F_TYPE_REPLY, 0).bytes;
  const { bytes, dv } = allocMessage(
    msgId,
    VFIO_USER_DMA_WRITE,
    VFIO_USER_F_TYPE_REPLY,
    VFIO_USER_DMA_RW_SIZE,
  );
  writeAccess(dv, VFIO_USER_DMA_WRITE, a, 'spec');
  return bytes;
}

/** undefined for QEMU's bare-header reply. */
export function decodeDmaWriteReply(
  payload: Uint8Array,
  layout: DmaLayout = 'spec',
  limits: Limits = DEFAULT_LIMITS,
): DmaAccess | undefined {
  if (layout === 'qemu' && payload.length === 0) return undefined;
  expectSize(payload, VFIO_USER_DMA_RW_SIZE, VFIO_USER_DMA_WRITE, 'dma_write reply');
  return readAccess(payload, VFIO_USER_DMA_WRITE, layout, limits);
}
