/**
 * VFIO_USER_VERSION: {major u16, minor u16} and an optional NUL-terminated UTF-8 JSON object
 * `{"capabilities": {...}}`. Known keys are checked strictly (a wrong type is an error, as
 * libvfio-user answers EINVAL); unknown keys are ignored, as the spec and libvfio-user do.
 */
import {
  VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE,
  VFIO_USER_DEFAULT_MAX_MSG_FDS,
  VFIO_USER_F_TYPE_REPLY,
  VFIO_USER_MAX_MSG_FDS_LIMIT,
  VFIO_USER_VERSION,
  VFIO_USER_VERSION_SIZE,
} from './constants.js';
import { type Limits, requestFlags, type SendOptions } from './header.js';
import { allocMessage, checkU16, expectAtLeast, protocolError, view } from './wire.js';

const CMD = VFIO_USER_VERSION;

export interface MigrationCapability {
  /** Dirty-page granularity in bytes. */
  readonly pgsize: number;
  readonly maxBitmapSize?: number;
}

export interface TwinSocketCapability {
  readonly supported?: boolean;
  /** Reply only: index in the reply's fds of the server-to-client socket. */
  readonly fdIndex?: number;
}

/** The `capabilities` object, with the spec's keys in camelCase. Absent keys take the spec defaults. */
export interface VersionCapabilities {
  readonly maxMsgFds?: number;
  readonly maxDataXferSize?: number;
  readonly maxDmaMaps?: number;
  readonly pgsizes?: number;
  readonly migration?: MigrationCapability;
  readonly twinSocket?: TwinSocketCapability;
  readonly writeMultiple?: boolean;
}

export interface VersionMessage {
  readonly major: number;
  readonly minor: number;
  /** undefined: no JSON was sent at all. */
  readonly capabilities?: VersionCapabilities;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();
const U32_MAX = 0xffffffff;
const U64_LIMIT = 2 ** 64;

function encodeVersion(msgId: number, flags: number, v: VersionMessage): Uint8Array {
  checkU16(v.major, CMD, 'major');
  checkU16(v.minor, CMD, 'minor');
  const json =
    v.capabilities === undefined ? undefined : utf8Encoder.encode(capabilitiesJson(v.capabilities));
  const { bytes, dv } = allocMessage(
    msgId,
    CMD,
    flags,
    VFIO_USER_VERSION_SIZE + (json ? json.length + 1 : 0),
  );
  dv.setUint16(16, v.major, true);
  dv.setUint16(18, v.minor, true);
  if (json) bytes.set(json, 20); // the NUL after it is already zero
  return bytes;
}

export function encodeVersionRequest(msgId: number, v: VersionMessage, options?: SendOptions): Uint8Array {
  return encodeVersion(msgId, requestFlags(options), v);
}

export function encodeVersionReply(msgId: number, v: VersionMessage): Uint8Array {
  return encodeVersion(msgId, VFIO_USER_F_TYPE_REPLY, v);
}

/** The JSON text (without NUL) for `caps`, with the spec's key names. */
export function capabilitiesJson(caps: VersionCapabilities): string {
  const c: Record<string, unknown> = {};
  if (caps.maxMsgFds !== undefined) c.max_msg_fds = caps.maxMsgFds;
  if (caps.maxDataXferSize !== undefined) c.max_data_xfer_size = caps.maxDataXferSize;
  if (caps.maxDmaMaps !== undefined) c.max_dma_maps = caps.maxDmaMaps;
  if (caps.pgsizes !== undefined) c.pgsizes = caps.pgsizes;
  if (caps.migration !== undefined) {
    const m: Record<string, unknown> = { pgsize: caps.migration.pgsize };
    if (caps.migration.maxBitmapSize !== undefined) m.max_bitmap_size = caps.migration.maxBitmapSize;
    c.migration = m;
  }
  if (caps.twinSocket !== undefined) {
    const t: Record<string, unknown> = {};
    if (caps.twinSocket.supported !== undefined) t.supported = caps.twinSocket.supported;
    if (caps.twinSocket.fdIndex !== undefined) t.fd_index = caps.twinSocket.fdIndex;
    c.twin_socket = t;
  }
  if (caps.writeMultiple !== undefined) c.write_multiple = caps.writeMultiple;
  return JSON.stringify({ capabilities: c });
}

/** Decode a VERSION request or reply payload. */
export function decodeVersion(payload: Uint8Array): VersionMessage {
  expectAtLeast(payload, VFIO_USER_VERSION_SIZE, CMD, 'version');
  const dv = view(payload);
  const major = dv.getUint16(0, true);
  const minor = dv.getUint16(2, true);
  if (payload.length === VFIO_USER_VERSION_SIZE) return { major, minor };
  const data = payload.subarray(VFIO_USER_VERSION_SIZE);
  const nul = data.indexOf(0);
  if (nul !== data.length - 1)
    throw protocolError(
      'EINVAL',
      CMD,
      nul < 0
        ? 'the version data is not NUL-terminated.'
        : `the version data has a NUL at byte ${nul} of ${data.length}; it must end the data.`,
      'Send the JSON followed by exactly one NUL byte, as the spec requires.',
    );
  let text: string;
  try {
    text = utf8.decode(data.subarray(0, nul));
  } catch {
    throw protocolError('EINVAL', CMD, 'the version data is not valid UTF-8.');
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw protocolError('EINVAL', CMD, `the version data is not JSON (${(err as Error).message}).`);
  }
  if (!isObject(doc)) throw protocolError('EINVAL', CMD, 'the version data must be a JSON object.');
  if (doc.capabilities === undefined) return { major, minor, capabilities: {} };
  return { major, minor, capabilities: parseCapabilities(doc.capabilities) };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function integer(v: unknown, key: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw protocolError(
      'EINVAL',
      CMD,
      `capability "${key}" is ${JSON.stringify(v)}; it must be an integer from ${min} to ${max}.`,
    );
  return v;
}

function boolean(v: unknown, key: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean')
    throw protocolError(
      'EINVAL',
      CMD,
      `capability "${key}" is ${JSON.stringify(v)}; it must be true or false.`,
    );
  return v;
}

function parseCapabilities(raw: unknown): VersionCapabilities {
  if (!isObject(raw)) throw protocolError('EINVAL', CMD, '"capabilities" must be a JSON object.');
  const caps: {
    -readonly [K in keyof VersionCapabilities]: VersionCapabilities[K];
  } = {};
  const maxMsgFds = integer(raw.max_msg_fds, 'max_msg_fds', 0, VFIO_USER_MAX_MSG_FDS_LIMIT);
  if (maxMsgFds !== undefined) caps.maxMsgFds = maxMsgFds;
  const xfer = integer(raw.max_data_xfer_size, 'max_data_xfer_size', 1, U32_MAX);
  if (xfer !== undefined) caps.maxDataXferSize = xfer;
  const maps = integer(raw.max_dma_maps, 'max_dma_maps', 0, U32_MAX);
  if (maps !== undefined) caps.maxDmaMaps = maps;
  const pgsizes = integer(raw.pgsizes, 'pgsizes', 1, U64_LIMIT);
  if (pgsizes !== undefined) caps.pgsizes = pgsizes;
  if (raw.migration !== undefined) {
    const m = raw.migration;
    if (!isObject(m)) throw protocolError('EINVAL', CMD, 'capability "migration" must be a JSON object.');
    const pgsize = integer(m.pgsize, 'migration.pgsize', 1, U64_LIMIT);
    if (pgsize === undefined)
      throw protocolError('EINVAL', CMD, 'capability "migration" lacks its "pgsize".');
    const maxBitmapSize = integer(m.max_bitmap_size, 'migration.max_bitmap_size', 0, U64_LIMIT);
    caps.migration = maxBitmapSize === undefined ? { pgsize } : { pgsize, maxBitmapSize };
  }
  if (raw.twin_socket !== undefined) {
    const t = raw.twin_socket;
    if (!isObject(t)) throw protocolError('EINVAL', CMD, 'capability "twin_socket" must be a JSON object.');
    const supported = boolean(t.supported, 'twin_socket.supported');
    const fdIndex = integer(t.fd_index, 'twin_socket.fd_index', 0, VFIO_USER_MAX_MSG_FDS_LIMIT - 1);
    caps.twinSocket = {
      ...(supported !== undefined ? { supported } : {}),
      ...(fdIndex !== undefined ? { fdIndex } : {}),
    };
  }
  const writeMultiple = boolean(raw.write_multiple, 'write_multiple');
  if (writeMultiple !== undefined) caps.writeMultiple = writeMultiple;
  return caps;
}

/** The limits `caps` announce, with the spec's defaults for absent keys. */
export function capabilityLimits(caps: VersionCapabilities | undefined): Limits {
  return {
    maxMsgFds: caps?.maxMsgFds ?? VFIO_USER_DEFAULT_MAX_MSG_FDS,
    maxDataXferSize: caps?.maxDataXferSize ?? VFIO_USER_DEFAULT_MAX_DATA_XFER_SIZE,
  };
}
