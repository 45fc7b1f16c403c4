/**
 * REGION_READ, REGION_WRITE and REGION_WRITE_MULTI: device region access by message, for the
 * parts of regions the client does not mmap. Data is returned as views into the payload: no copy.
 */
import { TWO_32 } from '@vfiokit/core';
import {
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_MULTI_DATA,
  VFIO_USER_REGION_READ,
  VFIO_USER_REGION_RW_SIZE,
  VFIO_USER_REGION_WRITE,
  VFIO_USER_REGION_WRITE_MULTI,
  VFIO_USER_WRITE_MULTI_ENTRY_SIZE,
  VFIO_USER_WRITE_MULTI_HEADER_SIZE,
} from './constants.js';
import { DEFAULT_LIMITS, type Limits, requestFlags, type SendOptions } from './header.js';
import {
  allocMessage,
  checkU32,
  checkU64,
  expectAtLeast,
  expectSize,
  getU64,
  le32,
  protocolError,
  putHeaderAt,
  putU64,
  setU64,
  view,
} from './wire.js';

export interface RegionAccess {
  readonly offset: number;
  readonly region: number;
  readonly count: number;
}

export interface RegionData extends RegionAccess {
  /** `count` bytes. */
  readonly data: Uint8Array;
}

function writeAccess(dv: DataView, command: number, a: RegionAccess): void {
  setU64(dv, 16, checkU64(a.offset, command, 'offset'));
  dv.setUint32(24, checkU32(a.region, command, 'region'), true);
  dv.setUint32(28, checkU32(a.count, command, 'count'), true);
}

/** A RegionAccess the allocation-free decoders fill in place, message after message. */
export interface RegionAccessSlot {
  offset: number;
  region: number;
  count: number;
}

/** The offset, region and count at the start of `payload` (16 bytes or more), checked, into `out`. */
function readAccessInto(payload: Uint8Array, command: number, limits: Limits, out: RegionAccessSlot): void {
  const hi = le32(payload, 4);
  // getU64 says why an offset above 2^53 - 1 is refused (it throws for such a high word).
  const offset = hi > 0x1fffff ? getU64(view(payload), 0, command, 'offset') : hi * TWO_32 + le32(payload, 0);
  const region = le32(payload, 8);
  const count = le32(payload, 12);
  if (count > limits.maxDataXferSize)
    throw protocolError(
      'E2BIG',
      command,
      `count ${count} exceeds the negotiated max_data_xfer_size ${limits.maxDataXferSize}.`,
      'Split the access.',
    );
  if (offset + count > Number.MAX_SAFE_INTEGER)
    throw protocolError(
      'EOVERFLOW',
      command,
      `offset 0x${offset.toString(16)} + count ${count} wraps past 2^53.`,
    );
  out.offset = offset;
  out.region = region;
  out.count = count;
}

function readAccess(payload: Uint8Array, command: number, limits: Limits): RegionAccess {
  const a: RegionAccessSlot = { offset: 0, region: 0, count: 0 };
  readAccessInto(payload, command, limits, a);
  return a;
}

function dataMessage(msgId: number, command: number, flags: number, d: RegionData): Uint8Array {
  if (d.data.length !== d.count)
    throw protocolError(
      'EINVAL',
      command,
      `count ${d.count} differs from the ${d.data.length} data bytes given.`,
    );
  const { bytes, dv } = allocMessage(msgId, command, flags, VFIO_USER_REGION_RW_SIZE + d.count);
  writeAccess(dv, command, d);
  bytes.set(d.data, 16 + VFIO_USER_REGION_RW_SIZE);
  return bytes;
}

/** The access of a message that carries data (count bytes after it), checked, into `out`. */
function readDataAccessInto(
  payload: Uint8Array,
  command: number,
  limits: Limits,
  what: string,
  out: RegionAccessSlot,
): void {
  expectAtLeast(payload, VFIO_USER_REGION_RW_SIZE, command, what);
  readAccessInto(payload, command, limits, out);
  if (payload.length - VFIO_USER_REGION_RW_SIZE !== out.count)
    throw protocolError(
      'EINVAL',
      command,
      `count ${out.count} differs from the ${payload.length - VFIO_USER_REGION_RW_SIZE} data bytes in the ${what}.`,
    );
}

function readData(payload: Uint8Array, command: number, limits: Limits, what: string): RegionData {
  const a: RegionAccessSlot = { offset: 0, region: 0, count: 0 };
  readDataAccessInto(payload, command, limits, what, a);
  return {
    offset: a.offset,
    region: a.region,
    count: a.count,
    data: payload.subarray(VFIO_USER_REGION_RW_SIZE),
  };
}

export function encodeRegionReadRequest(msgId: number, a: RegionAccess, options?: SendOptions): Uint8Array {
  const { bytes, dv } = allocMessage(
    msgId,
    VFIO_USER_REGION_READ,
    requestFlags(options),
    VFIO_USER_REGION_RW_SIZE,
  );
  writeAccess(dv, VFIO_USER_REGION_READ, a);
  return bytes;
}

export function decodeRegionReadRequest(payload: Uint8Array, limits: Limits = DEFAULT_LIMITS): RegionAccess {
  expectSize(payload, VFIO_USER_REGION_RW_SIZE, VFIO_USER_REGION_READ, 'region_read');
  return readAccess(payload, VFIO_USER_REGION_READ, limits);
}

/** decodeRegionReadRequest into a slot the caller reuses: the same checks, nothing allocated. */
export function decodeRegionReadRequestInto(
  payload: Uint8Array,
  limits: Limits,
  out: RegionAccessSlot,
): void {
  expectSize(payload, VFIO_USER_REGION_RW_SIZE, VFIO_USER_REGION_READ, 'region_read');
  readAccessInto(payload, VFIO_USER_REGION_READ, limits, out);
}

export function encodeRegionReadReply(msgId: number, d: RegionData): Uint8Array {
  return dataMessage(msgId, VFIO_USER_REGION_READ, VFIO_USER_F_TYPE_REPLY, d);
}

/**
 * Fill a REGION_READ reply in place: the message is allocated once, and the device writes its
 * bytes straight into `data` (the returned view) before the message is sent.
 */
export function allocRegionReadReply(
  msgId: number,
  a: RegionAccess,
): { bytes: Uint8Array; data: Uint8Array } {
  const { bytes, dv } = allocMessage(
    msgId,
    VFIO_USER_REGION_READ,
    VFIO_USER_F_TYPE_REPLY,
    VFIO_USER_REGION_RW_SIZE + a.count,
  );
  writeAccess(dv, VFIO_USER_REGION_READ, a);
  return { bytes, data: bytes.subarray(16 + VFIO_USER_REGION_RW_SIZE) };
}

export function decodeRegionReadReply(payload: Uint8Array, limits: Limits = DEFAULT_LIMITS): RegionData {
  return readData(payload, VFIO_USER_REGION_READ, limits, 'region_read reply');
}

export function encodeRegionWriteRequest(msgId: number, d: RegionData, options?: SendOptions): Uint8Array {
  return dataMessage(msgId, VFIO_USER_REGION_WRITE, requestFlags(options), d);
}

export function decodeRegionWriteRequest(payload: Uint8Array, limits: Limits = DEFAULT_LIMITS): RegionData {
  return readData(payload, VFIO_USER_REGION_WRITE, limits, 'region_write');
}

/**
 * The access of a REGION_WRITE into a slot the caller reuses: decodeRegionWriteRequest's checks,
 * nothing allocated; the data are the `count` bytes after the first 16 of the payload.
 */
export function decodeRegionWriteRequestInto(
  payload: Uint8Array,
  limits: Limits,
  out: RegionAccessSlot,
): void {
  readDataAccessInto(payload, VFIO_USER_REGION_WRITE, limits, 'region_write', out);
}

/**
 * The header and access of a REGION_READ or REGION_WRITE reply (`size` bytes: 32, plus the data
 * of a read), written through a DataView the caller keeps over its reused reply buffer.
 */
export function putRegionReply(
  dv: DataView,
  size: number,
  msgId: number,
  command: number,
  a: RegionAccessSlot,
): void {
  putHeaderAt(dv, size, msgId, command, VFIO_USER_F_TYPE_REPLY);
  putU64(dv, 16, a.offset);
  dv.setUint32(24, a.region, true);
  dv.setUint32(28, a.count, true);
}

/**
 * The header and access of a REGION_READ or REGION_WRITE request (`size` bytes: 32, plus the
 * data of a write, which the caller puts at 32), written through a DataView the caller keeps
 * over its reused message buffer. `offset` is a safe integer, `region` and `count` u32.
 */
export function putRegionRequest(
  dv: DataView,
  size: number,
  msgId: number,
  command: number,
  flags: number,
  region: number,
  offset: number,
  count: number,
): void {
  putHeaderAt(dv, size, msgId, command, flags);
  putU64(dv, 16, offset);
  dv.setUint32(24, region, true);
  dv.setUint32(28, count, true);
}

/** Copy `data` (at most 8 bytes) to `at` through `dv`, zeroing the rest of 8 bytes when `pad`. */
export function putSmallData(dv: DataView, at: number, data: Uint8Array, pad: boolean): void {
  const n = data.length;
  if (n === 4) {
    // A 32-bit register: one load per byte, one store.
    dv.setInt32(at, data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24), true);
    if (pad) dv.setUint32(at + 4, 0, true);
    return;
  }
  if (pad) {
    dv.setUint32(at, 0, true);
    dv.setUint32(at + 4, 0, true);
  }
  for (let i = 0; i < n; i++) dv.setUint8(at + i, data[i]);
}

/**
 * One REGION_WRITE_MULTI entry at `at`, through a DataView over a reused message buffer:
 * offset, region, count and the data (at most VFIO_USER_MULTI_DATA bytes), the rest of the 8
 * data bytes zeroed.
 */
export function putWriteMultiEntry(
  dv: DataView,
  at: number,
  region: number,
  offset: number,
  data: Uint8Array,
): void {
  putU64(dv, at, offset);
  dv.setUint32(at + 8, region, true);
  dv.setUint32(at + 12, data.length, true);
  putSmallData(dv, at + 16, data, true);
}

/**
 * A REGION_WRITE_MULTI entry whose data is the low `size` (1, 2 or 4) bytes of `value`,
 * little-endian: putWriteMultiEntry of those bytes, for a register written as a value (no bytes
 * in between). The caller has checked `size`.
 */
export function putWriteMultiValue(
  dv: DataView,
  at: number,
  region: number,
  offset: number,
  size: 1 | 2 | 4,
  value: number,
): void {
  putU64(dv, at, offset);
  dv.setUint32(at + 8, region, true);
  dv.setUint32(at + 12, size, true);
  dv.setUint32(at + 16, size === 4 ? value : value & (size === 2 ? 0xffff : 0xff), true);
  dv.setUint32(at + 20, 0, true);
}

/** The reply echoes offset, region and count, without the data. */
export function encodeRegionWriteReply(msgId: number, a: RegionAccess): Uint8Array {
  const { bytes, dv } = allocMessage(
    msgId,
    VFIO_USER_REGION_WRITE,
    VFIO_USER_F_TYPE_REPLY,
    VFIO_USER_REGION_RW_SIZE,
  );
  writeAccess(dv, VFIO_USER_REGION_WRITE, a);
  return bytes;
}

export function decodeRegionWriteReply(payload: Uint8Array, limits: Limits = DEFAULT_LIMITS): RegionAccess {
  expectSize(payload, VFIO_USER_REGION_RW_SIZE, VFIO_USER_REGION_WRITE, 'region_write reply');
  return readAccess(payload, VFIO_USER_REGION_WRITE, limits);
}

/** REGION_WRITE_MULTI: up to 8 bytes per write, in order. */
export function encodeRegionWriteMultiRequest(
  msgId: number,
  writes: readonly RegionData[],
  options?: SendOptions,
): Uint8Array {
  const C = VFIO_USER_REGION_WRITE_MULTI;
  const { bytes, dv } = allocMessage(
    msgId,
    C,
    requestFlags(options),
    VFIO_USER_WRITE_MULTI_HEADER_SIZE + writes.length * VFIO_USER_WRITE_MULTI_ENTRY_SIZE,
  );
  setU64(dv, 16, writes.length);
  writes.forEach((w, i) => {
    const p = 16 + VFIO_USER_WRITE_MULTI_HEADER_SIZE + i * VFIO_USER_WRITE_MULTI_ENTRY_SIZE;
    if (w.count > VFIO_USER_MULTI_DATA || w.data.length !== w.count)
      throw protocolError(
        'EINVAL',
        C,
        `write ${i} has count ${w.count} and ${w.data.length} bytes; both must match and be at most ${VFIO_USER_MULTI_DATA}.`,
      );
    setU64(dv, p, checkU64(w.offset, C, 'offset'));
    dv.setUint32(p + 8, checkU32(w.region, C, 'region'), true);
    dv.setUint32(p + 12, w.count, true);
    bytes.set(w.data, p + 16);
  });
  return bytes;
}

export function decodeRegionWriteMultiRequest(payload: Uint8Array): RegionData[] {
  const n = checkRegionWriteMultiRequest(payload);
  const writes: RegionData[] = [];
  for (let i = 0; i < n; i++) {
    const p = VFIO_USER_WRITE_MULTI_HEADER_SIZE + i * VFIO_USER_WRITE_MULTI_ENTRY_SIZE;
    const count = le32(payload, p + 12);
    writes.push({
      offset: le32(payload, p) + le32(payload, p + 4) * TWO_32,
      region: le32(payload, p + 8),
      count,
      data: payload.subarray(p + 16, p + 16 + count),
    });
  }
  return writes;
}

/**
 * Check a REGION_WRITE_MULTI payload without decoding it into objects (the server's hot path
 * reads the entries in place) and return wr_cnt: the errors decodeRegionWriteMultiRequest throws.
 * `dv` is a DataView of the whole buffer under `payload` (read at payload.byteOffset + ...), so
 * that a caller whose payloads all lie in one buffer keeps one view for them all.
 */
export function checkRegionWriteMultiRequest(
  payload: Uint8Array,
  dv: DataView = new DataView(payload.buffer),
): number {
  const C = VFIO_USER_REGION_WRITE_MULTI;
  expectAtLeast(payload, VFIO_USER_WRITE_MULTI_HEADER_SIZE, C, 'region_write_multi');
  if (dv.buffer !== payload.buffer || dv.byteOffset !== 0)
    throw new TypeError('checkRegionWriteMultiRequest: dv must view the whole buffer under payload.');
  const at = payload.byteOffset;
  const n = dv.getUint32(at, true) + dv.getUint32(at + 4, true) * TWO_32;
  const fit = (payload.length - VFIO_USER_WRITE_MULTI_HEADER_SIZE) / VFIO_USER_WRITE_MULTI_ENTRY_SIZE;
  if (n !== fit) {
    // The same words as getU64 for a count past 2^53.
    if (le32(payload, 4) > 0x1fffff) getU64(view(payload), 0, C, 'wr_cnt');
    throw protocolError(
      'EINVAL',
      C,
      `wr_cnt is ${n} but the payload of ${payload.length} bytes holds ${fit} writes.`,
    );
  }
  const base = at + VFIO_USER_WRITE_MULTI_HEADER_SIZE;
  for (let i = 0; i < n; i++) {
    const p = base + i * VFIO_USER_WRITE_MULTI_ENTRY_SIZE;
    const hi = dv.getUint32(p + 4, true);
    const count = dv.getUint32(p + 12, true);
    // One test for the common entry: an offset below 2^32 and at most 8 bytes cannot wrap 2^53.
    if (hi === 0 && count <= VFIO_USER_MULTI_DATA) continue;
    const e = p - at;
    if (hi > 0x1fffff) getU64(view(payload), e, C, `write ${i} offset`);
    if (count > VFIO_USER_MULTI_DATA)
      throw protocolError(
        'EINVAL',
        C,
        `write ${i} has count ${count}; one entry carries at most ${VFIO_USER_MULTI_DATA} bytes.`,
      );
    if (dv.getUint32(p, true) + hi * TWO_32 + count > Number.MAX_SAFE_INTEGER)
      throw protocolError('EOVERFLOW', C, `write ${i} wraps past 2^53.`);
  }
  return n;
}

export function encodeRegionWriteMultiReply(msgId: number, completed: number): Uint8Array {
  const { bytes, dv } = allocMessage(msgId, VFIO_USER_REGION_WRITE_MULTI, VFIO_USER_F_TYPE_REPLY, 8);
  setU64(dv, 16, checkU64(completed, VFIO_USER_REGION_WRITE_MULTI, 'wr_cnt'));
  return bytes;
}

export function decodeRegionWriteMultiReply(payload: Uint8Array): number {
  expectSize(payload, 8, VFIO_USER_REGION_WRITE_MULTI, 'region_write_multi reply');
  return getU64(view(payload), 0, VFIO_USER_REGION_WRITE_MULTI, 'wr_cnt');
}
