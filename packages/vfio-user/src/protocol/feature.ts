/**
 * DEVICE_FEATURE (VFIO_DEVICE_FEATURE over the socket: migration v2 and DMA logging) and the
 * migration data stream MIG_DATA_READ / MIG_DATA_WRITE, which replace the kernel's data_fd.
 */
import {
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MASK,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
  vfio_device_feature,
  vfio_device_feature_dma_logging_control,
  vfio_device_feature_dma_logging_range,
  vfio_device_feature_dma_logging_report,
  vfio_device_feature_mig_state,
  vfio_device_feature_migration,
} from '@vfiokit/core/abi';
import {
  VFIO_USER_DEVICE_FEATURE,
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_MIG_DATA_READ,
  VFIO_USER_MIG_DATA_SIZE,
  VFIO_USER_MIG_DATA_WRITE,
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

const C = VFIO_USER_DEVICE_FEATURE;
const FEATURE_SIZE = vfio_device_feature.size;
const KNOWN_FLAGS =
  VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PROBE;

export interface FeatureOp {
  readonly get?: boolean;
  readonly set?: boolean;
  readonly probe?: boolean;
}

export function featureFlags(feature: number, op: FeatureOp): number {
  return (
    (feature & VFIO_DEVICE_FEATURE_MASK) |
    (op.get ? VFIO_DEVICE_FEATURE_GET : 0) |
    (op.set ? VFIO_DEVICE_FEATURE_SET : 0) |
    (op.probe ? VFIO_DEVICE_FEATURE_PROBE : 0)
  );
}

export interface DeviceFeature {
  readonly argsz: number;
  readonly flags: number;
  /** The feature index (flags bits 0-15), VFIO_DEVICE_FEATURE_*. */
  readonly feature: number;
  readonly get: boolean;
  readonly set: boolean;
  readonly probe: boolean;
  /** Feature data; a view into the payload. */
  readonly data: Uint8Array;
}

function encodeFeature(
  msgId: number,
  flags: number,
  argsz: number,
  featureFlagsValue: number,
  data: Uint8Array,
): Uint8Array {
  const { bytes, dv } = allocMessage(msgId, C, flags, FEATURE_SIZE + data.length);
  dv.setUint32(16, checkU32(argsz, C, 'argsz'), true);
  dv.setUint32(20, checkU32(featureFlagsValue, C, 'flags'), true);
  bytes.set(data, 16 + FEATURE_SIZE);
  return bytes;
}

/** argsz defaults to the request size; for GET pass the size the reply needs (8 + data). */
export function encodeDeviceFeatureRequest(
  msgId: number,
  r: { flags: number; argsz?: number; data?: Uint8Array },
  options?: SendOptions,
): Uint8Array {
  const data = r.data ?? new Uint8Array(0);
  return encodeFeature(msgId, requestFlags(options), r.argsz ?? FEATURE_SIZE + data.length, r.flags, data);
}

/** SET and PROBE echo the request; GET adds the data. argsz is the reply's size. */
export function encodeDeviceFeatureReply(msgId: number, r: { flags: number; data?: Uint8Array }): Uint8Array {
  const data = r.data ?? new Uint8Array(0);
  return encodeFeature(msgId, VFIO_USER_F_TYPE_REPLY, FEATURE_SIZE + data.length, r.flags, data);
}

function decodeFeature(payload: Uint8Array, what: string): DeviceFeature {
  expectAtLeast(payload, FEATURE_SIZE, C, what);
  const dv = view(payload);
  const argsz = dv.getUint32(0, true);
  const flags = dv.getUint32(4, true);
  if (argsz < FEATURE_SIZE)
    throw protocolError('EINVAL', C, `argsz ${argsz} is smaller than vfio_device_feature (${FEATURE_SIZE}).`);
  if (flags & ~KNOWN_FLAGS)
    throw protocolError('EINVAL', C, `flags 0x${flags.toString(16)} has bits beyond GET, SET and PROBE.`);
  const get = (flags & VFIO_DEVICE_FEATURE_GET) !== 0;
  const set = (flags & VFIO_DEVICE_FEATURE_SET) !== 0;
  const probe = (flags & VFIO_DEVICE_FEATURE_PROBE) !== 0;
  // drivers/vfio/vfio_main.c vfio_ioctl_device_feature: GET and SET together only with PROBE.
  if (get && set && !probe) throw protocolError('EINVAL', C, 'GET and SET are both set without PROBE.');
  return {
    argsz,
    flags,
    feature: flags & VFIO_DEVICE_FEATURE_MASK,
    get,
    set,
    probe,
    data: payload.subarray(FEATURE_SIZE),
  };
}

export const decodeDeviceFeatureRequest = (payload: Uint8Array): DeviceFeature =>
  decodeFeature(payload, 'device_feature');

export function decodeDeviceFeatureReply(payload: Uint8Array): DeviceFeature {
  const r = decodeFeature(payload, 'device_feature reply');
  if (r.argsz !== payload.length)
    throw protocolError(
      'EINVAL',
      C,
      `reply argsz ${r.argsz} differs from its ${payload.length}-byte payload.`,
    );
  return r;
}

// ---- feature data ------------------------------------------------------------------------

/** VFIO_DEVICE_FEATURE_MIGRATION GET data: VFIO_MIGRATION_STOP_COPY | P2P | PRE_COPY. */
export function encodeMigrationFeatureData(flags: number): Uint8Array {
  const out = new Uint8Array(vfio_device_feature_migration.size);
  setU64(view(out), 0, checkU64(flags, C, 'migration flags'));
  return out;
}

export function decodeMigrationFeatureData(data: Uint8Array): number {
  expectSize(data, vfio_device_feature_migration.size, C, 'MIGRATION feature data');
  return getU64(view(data), 0, C, 'migration flags');
}

export interface MigStateData {
  /** enum vfio_device_mig_state */
  readonly deviceState: number;
  /** Unused in vfio-user (MIG_DATA_READ/WRITE carry the data); sent as 0. */
  readonly dataFd: number;
}

export function encodeMigStateData(deviceState: number, dataFd = 0): Uint8Array {
  const out = new Uint8Array(vfio_device_feature_mig_state.size);
  const dv = view(out);
  dv.setUint32(
    vfio_device_feature_mig_state.fields.device_state.offset,
    checkU32(deviceState, C, 'device_state'),
    true,
  );
  dv.setInt32(vfio_device_feature_mig_state.fields.data_fd.offset, dataFd, true);
  return out;
}

export function decodeMigStateData(data: Uint8Array): MigStateData {
  expectSize(data, vfio_device_feature_mig_state.size, C, 'MIG_DEVICE_STATE feature data');
  const dv = view(data);
  return {
    deviceState: dv.getUint32(vfio_device_feature_mig_state.fields.device_state.offset, true),
    dataFd: dv.getInt32(vfio_device_feature_mig_state.fields.data_fd.offset, true),
  };
}

export interface DmaLoggingRange {
  readonly iova: number;
  readonly length: number;
}

export interface DmaLoggingControl {
  readonly pageSize: number;
  /** Empty: log every write. */
  readonly ranges: readonly DmaLoggingRange[];
}

const CONTROL_HEAD = vfio_device_feature_dma_logging_control.fields.ranges.offset; // 16 in the vfio-user form
const RANGE_SIZE = vfio_device_feature_dma_logging_range.size;

/**
 * DMA_LOGGING_START data as vfio-user sends it: {page_size u64, num_ranges u32, reserved u32}
 * followed by the ranges inline (the kernel struct has a pointer where the array starts).
 */
export function encodeDmaLoggingControl(c: DmaLoggingControl): Uint8Array {
  const out = new Uint8Array(CONTROL_HEAD + c.ranges.length * RANGE_SIZE);
  const dv = view(out);
  setU64(dv, 0, checkU64(c.pageSize, C, 'page_size'));
  dv.setUint32(8, c.ranges.length, true);
  c.ranges.forEach((r, i) => {
    setU64(dv, CONTROL_HEAD + i * RANGE_SIZE, checkU64(r.iova, C, 'range iova'));
    setU64(dv, CONTROL_HEAD + i * RANGE_SIZE + 8, checkU64(r.length, C, 'range length'));
  });
  return out;
}

export function decodeDmaLoggingControl(data: Uint8Array): DmaLoggingControl {
  expectAtLeast(data, CONTROL_HEAD, C, 'DMA_LOGGING_START data');
  const dv = view(data);
  const pageSize = getU64(dv, 0, C, 'page_size');
  const n = dv.getUint32(8, true);
  if (data.length !== CONTROL_HEAD + n * RANGE_SIZE)
    throw protocolError(
      'EINVAL',
      C,
      `num_ranges is ${n} but ${data.length - CONTROL_HEAD} bytes of ranges came (${RANGE_SIZE} each).`,
    );
  const ranges: DmaLoggingRange[] = [];
  for (let i = 0; i < n; i++) {
    const p = CONTROL_HEAD + i * RANGE_SIZE;
    const iova = getU64(dv, p, C, `range ${i} iova`);
    const length = getU64(dv, p + 8, C, `range ${i} length`);
    if (iova + length > Number.MAX_SAFE_INTEGER)
      throw protocolError('EOVERFLOW', C, `range ${i} wraps past 2^53.`);
    ranges.push({ iova, length });
  }
  return { pageSize, ranges };
}

export interface DmaLoggingReport {
  readonly iova: number;
  readonly length: number;
  /** A power of two. */
  readonly pageSize: number;
}

const REPORT_HEAD = vfio_device_feature_dma_logging_report.fields.bitmap.offset; // 24

/** Bytes of the dirty bitmap for `length` bytes at `pageSize` granularity: u64 words, one bit per page. */
export function dirtyBitmapBytes(length: number, pageSize: number): number {
  return Math.ceil(Math.ceil(length / pageSize) / 64) * 8;
}

export function encodeDmaLoggingReport(r: DmaLoggingReport, bitmap?: Uint8Array): Uint8Array {
  const out = new Uint8Array(REPORT_HEAD + (bitmap?.length ?? 0));
  const dv = view(out);
  setU64(dv, 0, checkU64(r.iova, C, 'iova'));
  setU64(dv, 8, checkU64(r.length, C, 'length'));
  setU64(dv, 16, checkU64(r.pageSize, C, 'page_size'));
  if (bitmap) out.set(bitmap, REPORT_HEAD);
  return out;
}

function readReport(data: Uint8Array, limits: Limits): DmaLoggingReport {
  const dv = view(data);
  const iova = getU64(dv, 0, C, 'iova');
  const length = getU64(dv, 8, C, 'length');
  const pageSize = getU64(dv, 16, C, 'page_size');
  if (pageSize === 0 || 2 ** Math.round(Math.log2(pageSize)) !== pageSize)
    throw protocolError('EINVAL', C, `DMA_LOGGING_REPORT page_size ${pageSize} is not a power of two.`);
  if (iova + length > Number.MAX_SAFE_INTEGER)
    throw protocolError('EOVERFLOW', C, 'DMA_LOGGING_REPORT iova + length wraps past 2^53.');
  if (dirtyBitmapBytes(length, pageSize) > limits.maxDataXferSize)
    throw protocolError(
      'E2BIG',
      C,
      `a bitmap for ${length} bytes at page_size ${pageSize} needs ${dirtyBitmapBytes(length, pageSize)} bytes, above max_data_xfer_size ${limits.maxDataXferSize}.`,
      'Ask for a smaller range or a larger page size.',
    );
  return { iova, length, pageSize };
}

/** DMA_LOGGING_REPORT GET request data: exactly {iova, length, page_size}. */
export function decodeDmaLoggingReport(data: Uint8Array, limits: Limits = DEFAULT_LIMITS): DmaLoggingReport {
  expectSize(data, REPORT_HEAD, C, 'DMA_LOGGING_REPORT data');
  return readReport(data, limits);
}

/** DMA_LOGGING_REPORT GET reply data: the request followed by the bitmap. */
export function decodeDmaLoggingReportReply(
  data: Uint8Array,
  limits: Limits = DEFAULT_LIMITS,
): DmaLoggingReport & { bitmap: Uint8Array } {
  expectAtLeast(data, REPORT_HEAD, C, 'DMA_LOGGING_REPORT reply data');
  const r = readReport(data, limits);
  const need = dirtyBitmapBytes(r.length, r.pageSize);
  if (data.length !== REPORT_HEAD + need)
    throw protocolError(
      'EINVAL',
      C,
      `the DMA_LOGGING_REPORT bitmap is ${data.length - REPORT_HEAD} bytes; ${need} are needed.`,
    );
  return { ...r, bitmap: data.subarray(REPORT_HEAD) };
}

// ---- MIG_DATA_READ / MIG_DATA_WRITE -------------------------------------------------------

export interface MigDataRead {
  readonly argsz: number;
  readonly size: number;
}

export interface MigData {
  readonly argsz: number;
  readonly size: number;
  readonly data: Uint8Array;
}

function checkMigSize(command: number, size: number, limits: Limits): void {
  if (size > limits.maxDataXferSize)
    throw protocolError(
      'E2BIG',
      command,
      `size ${size} exceeds the negotiated max_data_xfer_size ${limits.maxDataXferSize}.`,
    );
}

export function encodeMigDataReadRequest(msgId: number, size: number, options?: SendOptions): Uint8Array {
  const M = VFIO_USER_MIG_DATA_READ;
  const { bytes, dv } = allocMessage(msgId, M, requestFlags(options), VFIO_USER_MIG_DATA_SIZE);
  dv.setUint32(16, checkU32(VFIO_USER_MIG_DATA_SIZE + size, M, 'argsz'), true);
  dv.setUint32(20, checkU32(size, M, 'size'), true);
  return bytes;
}

export function decodeMigDataReadRequest(payload: Uint8Array, limits: Limits = DEFAULT_LIMITS): MigDataRead {
  const M = VFIO_USER_MIG_DATA_READ;
  expectSize(payload, VFIO_USER_MIG_DATA_SIZE, M, 'mig_data_read');
  const dv = view(payload);
  const argsz = dv.getUint32(0, true);
  const size = dv.getUint32(4, true);
  checkMigSize(M, size, limits);
  if (argsz < VFIO_USER_MIG_DATA_SIZE + size)
    throw protocolError(
      'EINVAL',
      M,
      `argsz ${argsz} cannot hold a reply of ${size} data bytes (${VFIO_USER_MIG_DATA_SIZE + size}).`,
    );
  return { argsz, size };
}

function encodeMigData(msgId: number, command: number, flags: number, data: Uint8Array): Uint8Array {
  const { bytes, dv } = allocMessage(msgId, command, flags, VFIO_USER_MIG_DATA_SIZE + data.length);
  dv.setUint32(16, VFIO_USER_MIG_DATA_SIZE + data.length, true);
  dv.setUint32(20, data.length, true);
  bytes.set(data, 16 + VFIO_USER_MIG_DATA_SIZE);
  return bytes;
}

function decodeMigData(payload: Uint8Array, command: number, limits: Limits, what: string): MigData {
  expectAtLeast(payload, VFIO_USER_MIG_DATA_SIZE, command, what);
  const dv = view(payload);
  const argsz = dv.getUint32(0, true);
  const size = dv.getUint32(4, true);
  checkMigSize(command, size, limits);
  if (payload.length - VFIO_USER_MIG_DATA_SIZE !== size)
    throw protocolError(
      'EINVAL',
      command,
      `size ${size} differs from the ${payload.length - VFIO_USER_MIG_DATA_SIZE} data bytes in the ${what}.`,
    );
  if (argsz < VFIO_USER_MIG_DATA_SIZE)
    throw protocolError('EINVAL', command, `argsz ${argsz} is smaller than ${VFIO_USER_MIG_DATA_SIZE}.`);
  return { argsz, size, data: payload.subarray(VFIO_USER_MIG_DATA_SIZE) };
}

/** A reply with fewer bytes than asked (0 included) ends the stream. */
export function encodeMigDataReadReply(msgId: number, data: Uint8Array): Uint8Array {
  return encodeMigData(msgId, VFIO_USER_MIG_DATA_READ, VFIO_USER_F_TYPE_REPLY, data);
}

export function decodeMigDataReadReply(payload: Uint8Array, limits: Limits = DEFAULT_LIMITS): MigData {
  return decodeMigData(payload, VFIO_USER_MIG_DATA_READ, limits, 'mig_data_read reply');
}

export function encodeMigDataWriteRequest(
  msgId: number,
  data: Uint8Array,
  options?: SendOptions,
): Uint8Array {
  return encodeMigData(msgId, VFIO_USER_MIG_DATA_WRITE, requestFlags(options), data);
}

export function decodeMigDataWriteRequest(payload: Uint8Array, limits: Limits = DEFAULT_LIMITS): MigData {
  return decodeMigData(payload, VFIO_USER_MIG_DATA_WRITE, limits, 'mig_data_write');
}
