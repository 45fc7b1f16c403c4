/**
 * Device queries and interrupt setup: DEVICE_GET_INFO, DEVICE_GET_REGION_INFO (with the
 * capability chain), DEVICE_GET_REGION_IO_FDS, DEVICE_GET_IRQ_INFO, DEVICE_SET_IRQS and
 * DEVICE_RESET. The payloads are the linux/vfio.h structs (layouts from @vfiokit/core).
 *
 * argsz: in a request it is the largest reply payload the client accepts; in a reply it is the
 * size the full payload needs, which may be more than was sent (docs/interop/vfio-user.rst,
 * "Message sizes"). A request whose argsz cannot hold the fixed reply struct is refused (EINVAL),
 * as libvfio-user does.
 *
 * Past 600 lines because it is one codec pair per device message of the spec's device section,
 * each beside its payload type; the region capability chain is the largest part.
 */
import type { MmapArea } from '@vfiokit/core';
import {
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_IRQ_SET_DATA_TYPE_MASK,
  VFIO_REGION_INFO_CAP_MSIX_MAPPABLE,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
  VFIO_REGION_INFO_FLAG_CAPS,
  vfio_info_cap_header,
  vfio_irq_info,
  vfio_irq_set,
  vfio_region_info,
  vfio_region_info_cap_sparse_mmap,
  vfio_region_info_cap_type,
  vfio_region_sparse_mmap_area,
} from '@vfiokit/core/abi';
import {
  VFIO_USER_DEVICE_GET_INFO,
  VFIO_USER_DEVICE_GET_IRQ_INFO,
  VFIO_USER_DEVICE_GET_REGION_INFO,
  VFIO_USER_DEVICE_GET_REGION_IO_FDS,
  VFIO_USER_DEVICE_INFO_SIZE,
  VFIO_USER_DEVICE_RESET,
  VFIO_USER_DEVICE_SET_IRQS,
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_IO_FD_TYPE_IOEVENTFD,
  VFIO_USER_IO_FD_TYPE_IOREGIONFD,
  VFIO_USER_REGION_IO_FDS_SIZE,
  VFIO_USER_SUB_REGION_IO_FD_SIZE,
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

const REGION_INFO_SIZE = vfio_region_info.size;
const IRQ_INFO_SIZE = vfio_irq_info.size;
const IRQ_SET_SIZE = vfio_irq_set.size;
const CAP_HEADER_SIZE = vfio_info_cap_header.size;
const SPARSE_AREA_SIZE = vfio_region_sparse_mmap_area.size;

/** The common {argsz, flags, index, count}-style request: four u32s. */
function encodeFourU32(
  msgId: number,
  command: number,
  flags: number,
  values: readonly [number, number, number, number],
  names: readonly string[],
): Uint8Array {
  const { bytes, dv } = allocMessage(msgId, command, flags, 16);
  for (let i = 0; i < 4; i++) dv.setUint32(16 + 4 * i, checkU32(values[i], command, names[i]), true);
  return bytes;
}

function checkArgsz(argsz: number, min: number, command: number): void {
  if (argsz < min)
    throw protocolError(
      'EINVAL',
      command,
      `argsz ${argsz} is smaller than the ${min}-byte reply struct.`,
      `Send argsz >= ${min}.`,
    );
}

// ---- DEVICE_GET_INFO ---------------------------------------------------------------------

export interface DeviceInfoReply {
  readonly argsz: number;
  /** VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI */
  readonly flags: number;
  readonly numRegions: number;
  readonly numIrqs: number;
}

const INFO_NAMES = ['argsz', 'flags', 'num_regions', 'num_irqs'] as const;

export function encodeDeviceInfoRequest(
  msgId: number,
  argsz = VFIO_USER_DEVICE_INFO_SIZE,
  options?: SendOptions,
): Uint8Array {
  return encodeFourU32(msgId, VFIO_USER_DEVICE_GET_INFO, requestFlags(options), [argsz, 0, 0, 0], INFO_NAMES);
}

/** Returns the request's argsz. */
export function decodeDeviceInfoRequest(payload: Uint8Array): { argsz: number } {
  const C = VFIO_USER_DEVICE_GET_INFO;
  expectSize(payload, VFIO_USER_DEVICE_INFO_SIZE, C, 'device_info');
  const argsz = view(payload).getUint32(0, true);
  checkArgsz(argsz, VFIO_USER_DEVICE_INFO_SIZE, C);
  return { argsz };
}

export function encodeDeviceInfoReply(msgId: number, r: Omit<DeviceInfoReply, 'argsz'>): Uint8Array {
  return encodeFourU32(
    msgId,
    VFIO_USER_DEVICE_GET_INFO,
    VFIO_USER_F_TYPE_REPLY,
    [VFIO_USER_DEVICE_INFO_SIZE, r.flags, r.numRegions, r.numIrqs],
    INFO_NAMES,
  );
}

export function decodeDeviceInfoReply(payload: Uint8Array): DeviceInfoReply {
  expectSize(payload, VFIO_USER_DEVICE_INFO_SIZE, VFIO_USER_DEVICE_GET_INFO, 'device_info reply');
  const dv = view(payload);
  return {
    argsz: dv.getUint32(0, true),
    flags: dv.getUint32(4, true),
    numRegions: dv.getUint32(8, true),
    numIrqs: dv.getUint32(12, true),
  };
}

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

const IO_FDS_NAMES = ['argsz', 'flags', 'index', 'count'] as const;

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
    IO_FDS_NAMES,
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

// ---- DEVICE_GET_IRQ_INFO -----------------------------------------------------------------

export interface IrqInfoRequest {
  readonly argsz: number;
  readonly index: number;
}

export interface IrqInfoReply {
  readonly argsz: number;
  /** VFIO_IRQ_INFO_EVENTFD | MASKABLE | AUTOMASKED | NORESIZE */
  readonly flags: number;
  readonly index: number;
  readonly count: number;
}

export function encodeIrqInfoRequest(msgId: number, r: IrqInfoRequest, options?: SendOptions): Uint8Array {
  return encodeFourU32(
    msgId,
    VFIO_USER_DEVICE_GET_IRQ_INFO,
    requestFlags(options),
    [r.argsz, 0, r.index, 0],
    IO_FDS_NAMES,
  );
}

export function decodeIrqInfoRequest(payload: Uint8Array): IrqInfoRequest {
  const C = VFIO_USER_DEVICE_GET_IRQ_INFO;
  expectSize(payload, IRQ_INFO_SIZE, C, 'irq_info');
  const dv = view(payload);
  const argsz = dv.getUint32(0, true);
  checkArgsz(argsz, IRQ_INFO_SIZE, C);
  return { argsz, index: dv.getUint32(vfio_irq_info.fields.index.offset, true) };
}

export function encodeIrqInfoReply(msgId: number, r: Omit<IrqInfoReply, 'argsz'>): Uint8Array {
  return encodeFourU32(
    msgId,
    VFIO_USER_DEVICE_GET_IRQ_INFO,
    VFIO_USER_F_TYPE_REPLY,
    [IRQ_INFO_SIZE, r.flags, r.index, r.count],
    IO_FDS_NAMES,
  );
}

export function decodeIrqInfoReply(payload: Uint8Array): IrqInfoReply {
  expectSize(payload, IRQ_INFO_SIZE, VFIO_USER_DEVICE_GET_IRQ_INFO, 'irq_info reply');
  const dv = view(payload);
  return {
    argsz: dv.getUint32(0, true),
    flags: dv.getUint32(4, true),
    index: dv.getUint32(8, true),
    count: dv.getUint32(12, true),
  };
}

// ---- DEVICE_SET_IRQS ---------------------------------------------------------------------

export type IrqDataType = 'none' | 'bool' | 'eventfd';
export type IrqAction = 'mask' | 'unmask' | 'trigger';

export interface SetIrqsRequest {
  readonly argsz: number;
  readonly flags: number;
  readonly index: number;
  readonly start: number;
  readonly count: number;
  readonly dataType: IrqDataType;
  readonly action: IrqAction;
  /** DATA_BOOL: `count` bytes, non-zero meaning "act on this vector". A view into the payload. */
  readonly bools?: Uint8Array;
  /** DATA_EVENTFD: `count` eventfds, or none to de-assign. */
  readonly fds: readonly number[];
}

const DATA_FLAG: Record<IrqDataType, number> = {
  none: VFIO_IRQ_SET_DATA_NONE,
  bool: VFIO_IRQ_SET_DATA_BOOL,
  eventfd: VFIO_IRQ_SET_DATA_EVENTFD,
};
const ACTION_FLAG: Record<IrqAction, number> = {
  mask: VFIO_IRQ_SET_ACTION_MASK,
  unmask: VFIO_IRQ_SET_ACTION_UNMASK,
  trigger: VFIO_IRQ_SET_ACTION_TRIGGER,
};

export function setIrqsFlags(dataType: IrqDataType, action: IrqAction): number {
  return DATA_FLAG[dataType] | ACTION_FLAG[action];
}

/** The message; send `r.fds` with it (none for NONE/BOOL). */
export function encodeSetIrqsRequest(
  msgId: number,
  r: {
    index: number;
    start: number;
    count: number;
    dataType: IrqDataType;
    action: IrqAction;
    bools?: Uint8Array;
  },
  options?: SendOptions,
): Uint8Array {
  const C = VFIO_USER_DEVICE_SET_IRQS;
  const dataLen = r.dataType === 'bool' ? r.count : 0;
  if (r.dataType === 'bool' && r.bools?.length !== r.count)
    throw protocolError('EINVAL', C, `DATA_BOOL needs ${r.count} bools; ${r.bools?.length ?? 0} were given.`);
  const { bytes, dv } = allocMessage(msgId, C, requestFlags(options), IRQ_SET_SIZE + dataLen);
  const f = vfio_irq_set.fields;
  dv.setUint32(16 + f.argsz.offset, IRQ_SET_SIZE + dataLen, true);
  dv.setUint32(16 + f.flags.offset, setIrqsFlags(r.dataType, r.action), true);
  dv.setUint32(16 + f.index.offset, checkU32(r.index, C, 'index'), true);
  dv.setUint32(16 + f.start.offset, checkU32(r.start, C, 'start'), true);
  dv.setUint32(16 + f.count.offset, checkU32(r.count, C, 'count'), true);
  if (r.bools && dataLen) bytes.set(r.bools, 16 + IRQ_SET_SIZE);
  return bytes;
}

function single<T extends string>(flags: number, mask: number, table: Record<T, number>, what: string): T {
  const bits = flags & mask;
  for (const [name, bit] of Object.entries(table) as [T, number][]) if (bits === bit) return name;
  throw protocolError(
    'EINVAL',
    VFIO_USER_DEVICE_SET_IRQS,
    `flags 0x${flags.toString(16)} must have exactly one ${what} bit.`,
  );
}

export function decodeSetIrqsRequest(
  payload: Uint8Array,
  fds: readonly number[] = [],
  limits: Limits = DEFAULT_LIMITS,
): SetIrqsRequest {
  const C = VFIO_USER_DEVICE_SET_IRQS;
  expectAtLeast(payload, IRQ_SET_SIZE, C, 'irq_set');
  const dv = view(payload);
  const f = vfio_irq_set.fields;
  const argsz = dv.getUint32(f.argsz.offset, true);
  const flags = dv.getUint32(f.flags.offset, true);
  const index = dv.getUint32(f.index.offset, true);
  const start = dv.getUint32(f.start.offset, true);
  const count = dv.getUint32(f.count.offset, true);
  if (argsz < IRQ_SET_SIZE)
    throw protocolError('EINVAL', C, `argsz ${argsz} is smaller than vfio_irq_set (${IRQ_SET_SIZE}).`);
  if (flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK))
    throw protocolError('EINVAL', C, `flags 0x${flags.toString(16)} has unknown bits.`);
  const dataType = single(flags, VFIO_IRQ_SET_DATA_TYPE_MASK, DATA_FLAG, 'DATA');
  const action = single(flags, VFIO_IRQ_SET_ACTION_TYPE_MASK, ACTION_FLAG, 'ACTION');
  if (start + count > 0xffffffff)
    throw protocolError('EINVAL', C, `start ${start} + count ${count} overflows 32 bits.`, undefined);
  if (dataType !== 'eventfd' && fds.length > 0)
    throw protocolError(
      'EINVAL',
      C,
      `${fds.length} fds came with DATA_${dataType.toUpperCase()}; only DATA_EVENTFD carries fds.`,
    );
  if (fds.length > limits.maxMsgFds)
    throw protocolError(
      'E2BIG',
      C,
      `${fds.length} fds exceed the negotiated max_msg_fds ${limits.maxMsgFds}.`,
    );
  if (dataType === 'bool') {
    expectSize(payload, IRQ_SET_SIZE + count, C, `irq_set with ${count} bools`);
    return {
      argsz,
      flags,
      index,
      start,
      count,
      dataType,
      action,
      bools: payload.subarray(IRQ_SET_SIZE),
      fds,
    };
  }
  expectSize(payload, IRQ_SET_SIZE, C, `irq_set with DATA_${dataType.toUpperCase()}`);
  if (dataType === 'eventfd' && fds.length !== 0 && fds.length !== count)
    throw protocolError(
      'EINVAL',
      C,
      `count is ${count} but ${fds.length} eventfds came; send count fds, or none to de-assign.`,
    );
  return { argsz, flags, index, start, count, dataType, action, fds };
}

// ---- DEVICE_RESET ------------------------------------------------------------------------

/** DEVICE_RESET carries no payload either way. */
export function decodeResetRequest(payload: Uint8Array): void {
  expectSize(payload, 0, VFIO_USER_DEVICE_RESET, 'device_reset');
}
