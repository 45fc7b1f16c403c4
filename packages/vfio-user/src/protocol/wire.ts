/** Bounded little-endian field access shared by the codecs. Every read is checked first. */
import { type ErrnoName, TWO_32, VfioError } from '@vfiokit/core';
import { commandName, VFIO_USER_HEADER_SIZE } from './constants.js';

export function protocolError(code: ErrnoName, command: number, problem: string, hint?: string): VfioError {
  return new VfioError(code, `${commandName(command)}: ${problem}`, hint ? { hint } : {});
}

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The payload must be exactly `size` bytes. */
export function expectSize(payload: Uint8Array, size: number, command: number, what: string): void {
  if (payload.length !== size)
    throw protocolError(
      'EINVAL',
      command,
      `the ${what} payload is ${payload.length} bytes; it must be exactly ${size}.`,
    );
}

/** The payload must hold at least `size` bytes. */
export function expectAtLeast(payload: Uint8Array, size: number, command: number, what: string): void {
  if (payload.length < size)
    throw protocolError(
      'EINVAL',
      command,
      `the ${what} payload is ${payload.length} bytes; it needs at least ${size}.`,
    );
}

/** A u64 as a number; values above 2^53 - 1 cannot be represented exactly and are refused. */
export function getU64(dv: DataView, offset: number, command: number, field: string): number {
  const lo = dv.getUint32(offset, true);
  const hi = dv.getUint32(offset + 4, true);
  if (hi > 0x1fffff)
    throw protocolError(
      'EOVERFLOW',
      command,
      `${field} 0x${hi.toString(16).padStart(8, '0')}${lo.toString(16).padStart(8, '0')} is above 2^53 - 1, which this implementation cannot address.`,
    );
  return hi * TWO_32 + lo;
}

export function setU64(dv: DataView, offset: number, value: number): void {
  dv.setUint32(offset, value % TWO_32, true);
  dv.setUint32(offset + 4, Math.floor(value / TWO_32), true);
}

/** Encoder-side checks: a value that does not fit its field is a bug of the caller. */
export function checkU32(value: number, command: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw protocolError('EINVAL', command, `${field} ${value} does not fit an unsigned 32-bit field.`);
  return value;
}

export function checkU16(value: number, command: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff)
    throw protocolError('EINVAL', command, `${field} ${value} does not fit an unsigned 16-bit field.`);
  return value;
}

export function checkU64(value: number, command: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0)
    throw protocolError('EINVAL', command, `${field} ${value} is not an integer between 0 and 2^53 - 1.`);
  return value;
}

/** A whole message: header (flags and msg id) + payload of `payloadSize` bytes, ready to fill. */
export function allocMessage(
  msgId: number,
  command: number,
  flags: number,
  payloadSize: number,
): { bytes: Uint8Array; dv: DataView } {
  checkU16(msgId, command, 'msg_id');
  const size = VFIO_USER_HEADER_SIZE + payloadSize;
  if (size > 0xffffffff)
    throw protocolError('E2BIG', command, `a message of ${size} bytes does not fit msg_size.`);
  const bytes = new Uint8Array(size);
  const dv = view(bytes);
  dv.setUint16(0, msgId, true);
  dv.setUint16(2, command, true);
  dv.setUint32(4, size, true);
  dv.setUint32(8, flags, true);
  return { bytes, dv };
}

/** A little-endian u32 of `bytes` at `at` (the caller has checked the length). */
export function le32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

/** Store a little-endian u32 into `bytes` at `at`. */
export function putLe32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >>> 8;
  bytes[at + 2] = value >>> 16;
  bytes[at + 3] = value >>> 24;
}

/**
 * Store a little-endian u64 (a safe integer) at `at` of a DataView. Values below 2^32, every
 * register offset, take the integer path: no float modulo or division on the hot path.
 */
export function putU64(dv: DataView, at: number, value: number): void {
  if (value <= 0xffffffff) {
    dv.setUint32(at, value, true);
    dv.setUint32(at + 4, 0, true);
  } else {
    dv.setUint32(at, value % TWO_32, true);
    dv.setUint32(at + 4, Math.floor(value / TWO_32), true);
  }
}

/**
 * Write a header through a DataView the caller keeps over a reused message buffer (offsets
 * from the message's first byte): msg_id and command as given (already u16), msg_size `size`,
 * error_no 0. DataView stores are single machine stores; byte-by-byte ones cost ~5x more.
 */
export function putHeaderAt(dv: DataView, size: number, msgId: number, command: number, flags: number): void {
  dv.setUint16(0, msgId, true);
  dv.setUint16(2, command, true);
  dv.setUint32(4, size, true);
  dv.setUint32(8, flags, true);
  dv.setUint32(12, 0, true);
}

/**
 * Write a header into the first 16 bytes of a message buffer the caller keeps (allocMessage for
 * a buffer reused message after message): msg_id and command as given (already u16), msg_size
 * the buffer's length, error_no 0.
 */
export function putHeader(bytes: Uint8Array, msgId: number, command: number, flags: number): void {
  bytes[0] = msgId;
  bytes[1] = msgId >>> 8;
  bytes[2] = command;
  bytes[3] = command >>> 8;
  putLe32(bytes, 4, bytes.length);
  putLe32(bytes, 8, flags);
  putLe32(bytes, 12, 0);
}
