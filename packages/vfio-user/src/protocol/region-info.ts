/**
 * A region's description: DEVICE_GET_REGION_INFO with its capability chain (sparse mmap, type,
 * MSI-X mappable, and unknown ones carried through), and DEVICE_GET_REGION_IO_FDS (the ioeventfds
 * and ioregionfds a client may use instead of messages). The payloads are linux/vfio.h's
 * vfio_region_info and its caps; argsz follows argsz.ts.
 */
import type { MmapArea } from '@vfiokit/core';
import {
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
  VFIO_REGION_INFO_FLAG_CAPS,
  vfio_info_cap_header,
  vfio_region_info,
  vfio_region_info_cap_sparse_mmap,
  vfio_region_info_cap_type,
  vfio_region_sparse_mmap_area,
} from '@vfiokit/core/abi';
import { checkArgsz, encodeFourU32, INDEX_COUNT_NAMES } from './argsz.js';
import {
  VFIO_USER_DEVICE_GET_REGION_INFO,
  VFIO_USER_DEVICE_GET_REGION_IO_FDS,
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_IO_FD_TYPE_IOEVENTFD,
  VFIO_USER_IO_FD_TYPE_IOREGIONFD,
  VFIO_USER_REGION_IO_FDS_SIZE,
  VFIO_USER_SUB_REGION_IO_FD_SIZE,
} from './constants.js';
import { requestFlags, type SendOptions } from './header.js';
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

const REGION_INFO_SIZE = vfio_region_info.size;
const CAP_HEADER_SIZE = vfio_info_cap_header.size;
const SPARSE_AREA_SIZE = vfio_region_sparse_mmap_area.size;

// ---- DEVICE_GET_REGION_INFO --------------------------------------------------------------

export type RegionCap =
  | { readonly kind: 'sparse-mmap'; readonly areas: readonly MmapArea[] }
  | { readonly kind: 'type'; readonly type: number; readonly subtype: number }
  | { readonly kind: 'msix-mappable' }
  /** A capability this codec does not know; `data` follows its 8-byte header. */
  | { readonly kind: 'unknown'; readonly id: number; readonly version: number; readonly data: Uint8Array };

export interface RegionInfoRequest {
  readonly argsz: number;
  readonly index: number;
}

export interface RegionInfo {
  /** VFIO_REGION_INFO_FLAG_READ | WRITE | MMAP (CAPS is set by the encoder when there are caps). */
  readonly flags: number;
  readonly index: number;
  readonly size: number;
  /** The mmap offset in the region's fd. */
  readonly offset: number;
  readonly caps: readonly RegionCap[];
}

export interface RegionInfoReply extends RegionInfo {
  /** The size the full reply needs. */
  readonly argsz: number;
  readonly capOffset: number;
  /** false: argsz was too small for the caps; they (and the fd) were left out. Retry with `argsz`. */
  readonly complete: boolean;
  readonly fd?: number;
}

export function encodeRegionInfoRequest(
  msgId: number,
  r: RegionInfoRequest,
  options?: SendOptions,
): Uint8Array {
  const C = VFIO_USER_DEVICE_GET_REGION_INFO;
  const { bytes, dv } = allocMessage(msgId, C, requestFlags(options), REGION_INFO_SIZE);
  dv.setUint32(16, checkU32(r.argsz, C, 'argsz'), true);
  dv.setUint32(16 + vfio_region_info.fields.index.offset, checkU32(r.index, C, 'index'), true);
  return bytes;
}

export function decodeRegionInfoRequest(payload: Uint8Array): RegionInfoRequest {
  const C = VFIO_USER_DEVICE_GET_REGION_INFO;
  expectSize(payload, REGION_INFO_SIZE, C, 'region_info');
  const dv = view(payload);
  const argsz = dv.getUint32(0, true);
  checkArgsz(argsz, REGION_INFO_SIZE, C);
  return { argsz, index: dv.getUint32(vfio_region_info.fields.index.offset, true) };
}

function capSize(cap: RegionCap): number {
  switch (cap.kind) {
    case 'sparse-mmap':
      return vfio_region_info_cap_sparse_mmap.size + cap.areas.length * SPARSE_AREA_SIZE;
    case 'type':
      return vfio_region_info_cap_type.size;
    case 'msix-mappable':
      return CAP_HEADER_SIZE;
    case 'unknown':
      // vfio_info_cap_add keeps every capability 8-byte aligned.
      return CAP_HEADER_SIZE + Math.ceil(cap.data.length / 8) * 8;
  }
}

function writeCap(dv: DataView, bytes: Uint8Array, at: number, next: number, cap: RegionCap): void {
  const C = VFIO_USER_DEVICE_GET_REGION_INFO;
  let id: number;
  let version = 1;
  switch (cap.kind) {
    case 'sparse-mmap': {
      id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
      dv.setUint32(at + vfio_region_info_cap_sparse_mmap.fields.nr_areas.offset, cap.areas.length, true);
      let p = at + vfio_region_info_cap_sparse_mmap.fields.areas.offset;
      for (const a of cap.areas) {
        setU64(dv, p, checkU64(a.offset, C, 'sparse area offset'));
        setU64(dv, p + 8, checkU64(a.size, C, 'sparse area size'));
        p += SPARSE_AREA_SIZE;
      }
      break;
    }
    case 'type':
      id = VFIO_REGION_INFO_CAP_TYPE;
      dv.setUint32(
        at + vfio_region_info_cap_type.fields.type.offset,
        checkU32(cap.type, C, 'cap type'),
        true,
      );
      dv.setUint32(
        at + vfio_region_info_cap_type.fields.subtype.offset,
        checkU32(cap.subtype, C, 'cap subtype'),
        true,
      );
      break;
    case 'msix-mappable':
      id = VFIO_REGION_INFO_CAP_MSIX_MAPPABLE;
      break;
    case 'unknown':
      id = cap.id;
      version = cap.version;
      bytes.set(cap.data, at + CAP_HEADER_SIZE);
      break;
  }
  dv.setUint16(at, id, true);
  dv.setUint16(at + 2, version, true);
  dv.setUint32(at + 4, next, true);
}

/**
 * The reply for `info`, fitted to the client's `requestArgsz`: when the chain does not fit, argsz
 * says what is needed, only the 32-byte struct is sent, and `capsIncluded` is false (send no fd
 * then). VFIO_REGION_INFO_FLAG_CAPS is set only when the chain is in the reply, as libvfio-user
 * does (lib/libvfio-user.c handle_device_get_region_info): QEMU's client
 * (hw/vfio-user/device.c vfio_user_device_io_get_region_info) refuses CAPS with a cap_offset
 * inside the header with EINVAL before it retries with the larger argsz. The kernel sets CAPS in
 * both cases; over vfio-user we follow the real client.
 */
export function encodeRegionInfoReply(
  msgId: number,
  info: RegionInfo,
  requestArgsz: number,
): { bytes: Uint8Array; argsz: number; capsIncluded: boolean } {
  const C = VFIO_USER_DEVICE_GET_REGION_INFO;
  let capsBytes = 0;
  for (const cap of info.caps) capsBytes += capSize(cap);
  const argsz = REGION_INFO_SIZE + capsBytes;
  const capsIncluded = info.caps.length > 0 && requestArgsz >= argsz;
  const { bytes, dv } = allocMessage(
    msgId,
    C,
    VFIO_USER_F_TYPE_REPLY,
    capsIncluded ? argsz : REGION_INFO_SIZE,
  );
  const f = vfio_region_info.fields;
  const flags = checkU32(info.flags, C, 'flags') | (capsIncluded ? VFIO_REGION_INFO_FLAG_CAPS : 0);
  dv.setUint32(16 + f.argsz.offset, checkU32(argsz, C, 'argsz'), true);
  dv.setUint32(16 + f.flags.offset, flags >>> 0, true);
  dv.setUint32(16 + f.index.offset, checkU32(info.index, C, 'index'), true);
  dv.setUint32(16 + f.cap_offset.offset, capsIncluded ? REGION_INFO_SIZE : 0, true);
  setU64(dv, 16 + f.size.offset, checkU64(info.size, C, 'size'));
  setU64(dv, 16 + f.offset.offset, checkU64(info.offset, C, 'offset'));
  if (capsIncluded) {
    // Offsets in the chain are relative to the start of vfio_region_info (payload offset 0).
    const payloadView = new DataView(bytes.buffer, bytes.byteOffset + 16, bytes.byteLength - 16);
    const payload = bytes.subarray(16);
    let at = REGION_INFO_SIZE;
    info.caps.forEach((cap, i) => {
      const size = capSize(cap);
      writeCap(payloadView, payload, at, i === info.caps.length - 1 ? 0 : at + size, cap);
      at += size;
    });
  }
  return { bytes, argsz, capsIncluded };
}

export function decodeRegionInfoReply(payload: Uint8Array, fds: readonly number[] = []): RegionInfoReply {
  const C = VFIO_USER_DEVICE_GET_REGION_INFO;
  expectAtLeast(payload, REGION_INFO_SIZE, C, 'region_info reply');
  if (fds.length > 1)
    throw protocolError('EINVAL', C, `${fds.length} fds came with the reply; at most one may.`);
  const dv = view(payload);
  const f = vfio_region_info.fields;
  const argsz = dv.getUint32(f.argsz.offset, true);
  const flags = dv.getUint32(f.flags.offset, true);
  const index = dv.getUint32(f.index.offset, true);
  const capOffset = dv.getUint32(f.cap_offset.offset, true);
  const size = getU64(dv, f.size.offset, C, 'size');
  const offset = getU64(dv, f.offset.offset, C, 'offset');
  if (argsz < REGION_INFO_SIZE)
    throw protocolError('EINVAL', C, `reply argsz ${argsz} is smaller than vfio_region_info.`);
  const fd = fds.length === 1 ? { fd: fds[0] } : {};
  const complete = payload.length >= argsz;
  if (!complete && payload.length !== REGION_INFO_SIZE)
    throw protocolError(
      'EINVAL',
      C,
      `a reply cut short by argsz ${argsz} must be exactly ${REGION_INFO_SIZE} bytes, not ${payload.length}.`,
    );
  if (!complete || !(flags & VFIO_REGION_INFO_FLAG_CAPS) || capOffset === 0) {
    if (complete && payload.length !== argsz)
      throw protocolError(
        'EINVAL',
        C,
        `the reply payload is ${payload.length} bytes but argsz says ${argsz}.`,
      );
    return { argsz, flags, index, capOffset, size, offset, caps: [], complete, ...fd };
  }
  if (payload.length !== argsz)
    throw protocolError('EINVAL', C, `the reply payload is ${payload.length} bytes but argsz says ${argsz}.`);
  return {
    argsz,
    flags,
    index,
    capOffset,
    size,
    offset,
    caps: decodeCapChain(payload, capOffset),
    complete,
    ...fd,
  };
}

/** Walk a capability chain inside `payload`; offsets only grow, so it always ends. */
export function decodeCapChain(payload: Uint8Array, first: number): RegionCap[] {
  const C = VFIO_USER_DEVICE_GET_REGION_INFO;
  const dv = view(payload);
  const caps: RegionCap[] = [];
  let at = first;
  let floor = REGION_INFO_SIZE;
  while (at !== 0) {
    if (at < floor || at % 4 !== 0 || at + CAP_HEADER_SIZE > payload.length)
      throw protocolError(
        'EINVAL',
        C,
        `capability offset ${at} is outside the reply (${payload.length} bytes) or not after the previous one.`,
      );
    const id = dv.getUint16(at, true);
    const version = dv.getUint16(at + 2, true);
    const next = dv.getUint32(at + 4, true);
    if (next !== 0 && next < at + CAP_HEADER_SIZE)
      throw protocolError('EINVAL', C, `capability ${id} at ${at} links back to ${next}.`);
    const end = next === 0 ? payload.length : Math.min(next, payload.length);
    const body = at + CAP_HEADER_SIZE;
    if (id === VFIO_REGION_INFO_CAP_SPARSE_MMAP && version === 1) {
      if (end - at < vfio_region_info_cap_sparse_mmap.size)
        throw protocolError('EINVAL', C, `the sparse-mmap capability at ${at} is cut short.`);
      const n = dv.getUint32(at + vfio_region_info_cap_sparse_mmap.fields.nr_areas.offset, true);
      const areasAt = at + vfio_region_info_cap_sparse_mmap.fields.areas.offset;
      if (n > (end - areasAt) / SPARSE_AREA_SIZE)
        throw protocolError(
          'EINVAL',
          C,
          `the sparse-mmap capability at ${at} claims ${n} areas; only ${Math.floor((end - areasAt) / SPARSE_AREA_SIZE)} fit.`,
        );
      const areas: MmapArea[] = [];
      for (let i = 0; i < n; i++) {
        const p = areasAt + i * SPARSE_AREA_SIZE;
        areas.push({
          offset: getU64(dv, p, C, 'sparse area offset'),
          size: getU64(dv, p + 8, C, 'sparse area size'),
        });
      }
      caps.push({ kind: 'sparse-mmap', areas });
    } else if (id === VFIO_REGION_INFO_CAP_TYPE && version === 1) {
      if (end - at < vfio_region_info_cap_type.size)
        throw protocolError('EINVAL', C, `the type capability at ${at} is cut short.`);
      caps.push({
        kind: 'type',
        type: dv.getUint32(at + vfio_region_info_cap_type.fields.type.offset, true),
        subtype: dv.getUint32(at + vfio_region_info_cap_type.fields.subtype.offset, true),
      });
    } else if (id === VFIO_REGION_INFO_CAP_MSIX_MAPPABLE && version === 1) {
      caps.push({ kind: 'msix-mappable' });
    } else {
      caps.push({ kind: 'unknown', id, version, data: payload.subarray(body, end) });
    }
    floor = at + CAP_HEADER_SIZE;
    at = next;
  }
  return caps;
}

// ---- DEVICE_GET_REGION_IO_FDS ------------------------------------------------------------

export interface RegionIoFdsRequest {
  readonly argsz: number;
  readonly index: number;
}

export interface SubRegionIoFd {
  readonly offset: number;
  readonly size: number;
  /** Index into the reply's fds. */
  readonly fdIndex: number;
  /** VFIO_USER_IO_FD_TYPE_IOEVENTFD or VFIO_USER_IO_FD_TYPE_IOREGIONFD */
  readonly type: number;
  readonly flags: number;
  /** datamatch (ioeventfd) or user_data (ioregionfd): an opaque 64-bit value. */
  readonly data: bigint;
}

export interface RegionIoFdsReply {
  readonly argsz: number;
  readonly index: number;
  /** How many sub-regions the region has (also when they were left out). */
  readonly count: number;
  readonly subRegions: readonly SubRegionIoFd[];
  /** false: argsz was too small; the sub-regions and fds were left out. */
  readonly complete: boolean;
  readonly fds: readonly number[];
}

export function encodeRegionIoFdsRequest(
  msgId: number,
  r: RegionIoFdsRequest,
  options?: SendOptions,
): Uint8Array {
  return encodeFourU32(
    msgId,
    VFIO_USER_DEVICE_GET_REGION_IO_FDS,
    requestFlags(options),
    [r.argsz, 0, r.index, 0],
    INDEX_COUNT_NAMES,
  );
}

export function decodeRegionIoFdsRequest(payload: Uint8Array): RegionIoFdsRequest {
  const C = VFIO_USER_DEVICE_GET_REGION_IO_FDS;
  expectSize(payload, VFIO_USER_REGION_IO_FDS_SIZE, C, 'region_io_fds');
  const dv = view(payload);
  const argsz = dv.getUint32(0, true);
  checkArgsz(argsz, VFIO_USER_REGION_IO_FDS_SIZE, C);
  const flags = dv.getUint32(4, true);
  if (flags !== 0) throw protocolError('EINVAL', C, `flags is 0x${flags.toString(16)}; it must be 0.`);
  return { argsz, index: dv.getUint32(8, true) };
}

/** Sub-regions that fit `requestArgsz` are sent; otherwise only the 16-byte head (send no fds then). */
export function encodeRegionIoFdsReply(
  msgId: number,
  r: { index: number; subRegions: readonly SubRegionIoFd[] },
  requestArgsz: number,
): { bytes: Uint8Array; argsz: number; included: boolean } {
  const C = VFIO_USER_DEVICE_GET_REGION_IO_FDS;
  const argsz = VFIO_USER_REGION_IO_FDS_SIZE + r.subRegions.length * VFIO_USER_SUB_REGION_IO_FD_SIZE;
  const included = requestArgsz >= argsz;
  const { bytes, dv } = allocMessage(
    msgId,
    C,
    VFIO_USER_F_TYPE_REPLY,
    included ? argsz : VFIO_USER_REGION_IO_FDS_SIZE,
  );
  dv.setUint32(16, checkU32(argsz, C, 'argsz'), true);
  dv.setUint32(24, checkU32(r.index, C, 'index'), true);
  dv.setUint32(28, r.subRegions.length, true);
  if (included) {
    let p = 16 + VFIO_USER_REGION_IO_FDS_SIZE;
    for (const s of r.subRegions) {
      setU64(dv, p, checkU64(s.offset, C, 'sub-region offset'));
      setU64(dv, p + 8, checkU64(s.size, C, 'sub-region size'));
      dv.setUint32(p + 16, checkU32(s.fdIndex, C, 'fd_index'), true);
      dv.setUint32(p + 20, checkU32(s.type, C, 'type'), true);
      dv.setUint32(p + 24, checkU32(s.flags, C, 'sub-region flags'), true);
      dv.setBigUint64(p + 32, BigInt.asUintN(64, s.data), true);
      p += VFIO_USER_SUB_REGION_IO_FD_SIZE;
    }
  }
  return { bytes, argsz, included };
}

export function decodeRegionIoFdsReply(payload: Uint8Array, fds: readonly number[] = []): RegionIoFdsReply {
  const C = VFIO_USER_DEVICE_GET_REGION_IO_FDS;
  expectAtLeast(payload, VFIO_USER_REGION_IO_FDS_SIZE, C, 'region_io_fds reply');
  const dv = view(payload);
  const argsz = dv.getUint32(0, true);
  const index = dv.getUint32(8, true);
  const count = dv.getUint32(12, true);
  const needed = VFIO_USER_REGION_IO_FDS_SIZE + count * VFIO_USER_SUB_REGION_IO_FD_SIZE;
  if (argsz !== needed)
    throw protocolError('EINVAL', C, `reply argsz ${argsz} does not match ${count} sub-regions (${needed}).`);
  if (payload.length === VFIO_USER_REGION_IO_FDS_SIZE && count > 0) {
    if (fds.length > 0)
      throw protocolError('EINVAL', C, 'fds came with a reply that left its sub-regions out.');
    return { argsz, index, count, subRegions: [], complete: false, fds };
  }
  if (payload.length !== needed)
    throw protocolError(
      'EINVAL',
      C,
      `the reply payload is ${payload.length} bytes; ${count} sub-regions need ${needed}.`,
    );
  const subRegions: SubRegionIoFd[] = [];
  for (let i = 0; i < count; i++) {
    const p = VFIO_USER_REGION_IO_FDS_SIZE + i * VFIO_USER_SUB_REGION_IO_FD_SIZE;
    const fdIndex = dv.getUint32(p + 16, true);
    const type = dv.getUint32(p + 20, true);
    if (fdIndex >= fds.length)
      throw protocolError(
        'EINVAL',
        C,
        `sub-region ${i} names fd_index ${fdIndex} but ${fds.length} fds came with the reply.`,
      );
    if (type !== VFIO_USER_IO_FD_TYPE_IOEVENTFD && type !== VFIO_USER_IO_FD_TYPE_IOREGIONFD)
      throw protocolError('EINVAL', C, `sub-region ${i} has unknown type ${type}.`);
    subRegions.push({
      offset: getU64(dv, p, C, 'sub-region offset'),
      size: getU64(dv, p + 8, C, 'sub-region size'),
      fdIndex,
      type,
      flags: dv.getUint32(p + 24, true),
      data: dv.getBigUint64(p + 32, true),
    });
  }
  return { argsz, index, count, subRegions, complete: true, fds };
}
