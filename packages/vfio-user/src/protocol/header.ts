/** The 16-byte message header, the negotiated limits, and replies that carry only a header. */
import { VfioError } from '@vfiokit/core';
import {
  VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE,
  VFIO_USER_DEFAULT_MAX_MSG_FDS,
  VFIO_USER_F_ERROR,
  VFIO_USER_F_NO_REPLY,
  VFIO_USER_F_TYPE_COMMAND,
  VFIO_USER_F_TYPE_MASK,
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_HEADER_SIZE,
  VFIO_USER_REGION_RW_SIZE,
} from './constants.js';
import { allocMessage, checkU32, view } from './wire.js';

export interface MessageHeader {
  readonly msgId: number;
  readonly command: number;
  /** msg_size: the whole message, header included. */
  readonly size: number;
  readonly flags: number;
  /** error_no: the errno of an error reply; reserved (0) in commands. */
  readonly errno: number;
}

export const messageType = (h: MessageHeader): number => h.flags & VFIO_USER_F_TYPE_MASK;
export const isCommand = (h: MessageHeader): boolean => messageType(h) === VFIO_USER_F_TYPE_COMMAND;
export const isReply = (h: MessageHeader): boolean => messageType(h) === VFIO_USER_F_TYPE_REPLY;
export const wantsReply = (h: MessageHeader): boolean => (h.flags & VFIO_USER_F_NO_REPLY) === 0;
export const isErrorReply = (h: MessageHeader): boolean => isReply(h) && (h.flags & VFIO_USER_F_ERROR) !== 0;

/**
 * The errno an error reply reports. The spec lets error_no be 0 with the Error bit set;
 * libvfio-user's client (lib/tran_sock.c) reads 0 or anything above 4096 as EINVAL, and so do we.
 */
export function replyErrno(h: MessageHeader): number {
  return h.errno === 0 || h.errno > 4096 ? 22 : h.errno;
}

/** Read the header at the start of `bytes` (at least 16 bytes). msg_size is not judged here. */
export function decodeHeader(bytes: Uint8Array): MessageHeader {
  if (bytes.length < VFIO_USER_HEADER_SIZE)
    throw new VfioError(
      'EPROTO',
      `a vfio-user header needs ${VFIO_USER_HEADER_SIZE} bytes; ${bytes.length} were given.`,
    );
  const dv = view(bytes);
  return {
    msgId: dv.getUint16(0, true),
    command: dv.getUint16(2, true),
    size: dv.getUint32(4, true),
    flags: dv.getUint32(8, true),
    errno: dv.getUint32(12, true),
  };
}

/** What both ends agreed in VERSION; decoders refuse anything beyond it. */
export interface Limits {
  /** The most fds one message may carry to the receiver. */
  readonly maxMsgFds: number;
  /** The largest `count` in REGION/DMA read and write, and `size` in migration data. */
  readonly maxDataXferSize: number;
}

export const DEFAULT_LIMITS: Limits = Object.freeze({
  maxMsgFds: VFIO_USER_DEFAULT_MAX_MSG_FDS,
  maxDataXferSize: VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE,
});

/**
 * The largest message a peer may send under `limits`: a header, a 16-byte access struct and the
 * data (libvfio-user's SERVER_MAX_MSG_SIZE is 1 MiB + 16 + 16 the same way), but never less than
 * 64 KiB so that control messages (SET_IRQS for 2048 vectors, sparse-mmap caps) always fit.
 */
export function maxMessageSize(limits: Limits = DEFAULT_LIMITS): number {
  return Math.max(VFIO_USER_HEADER_SIZE + VFIO_USER_REGION_RW_SIZE + limits.maxDataXferSize, 64 * 1024);
}

export interface SendOptions {
  /** Set No_reply: the receiver sends nothing back, not even an error. */
  noReply?: boolean;
}

export const requestFlags = (o?: SendOptions): number =>
  VFIO_USER_F_TYPE_COMMAND | (o?.noReply ? VFIO_USER_F_NO_REPLY : 0);

/** An error reply: the header alone, with the Error bit and the errno (the spec allows nothing else). */
export function encodeErrorReply(msgId: number, command: number, errno: number): Uint8Array {
  const { bytes, dv } = allocMessage(msgId, command, VFIO_USER_F_TYPE_REPLY | VFIO_USER_F_ERROR, 0);
  dv.setUint32(12, checkU32(errno, command, 'error_no'), true);
  return bytes;
}

/** A successful reply without payload (DMA_MAP, SET_IRQS, DEVICE_RESET, MIG_DATA_WRITE). */
export function encodeEmptyReply(msgId: number, command: number): Uint8Array {
  return allocMessage(msgId, command, VFIO_USER_F_TYPE_REPLY, 0).bytes;
}

/** A request without payload (DEVICE_RESET). */
export function encodeEmptyRequest(msgId: number, command: number, options?: SendOptions): Uint8Array {
  return allocMessage(msgId, command, requestFlags(options), 0).bytes;
}
