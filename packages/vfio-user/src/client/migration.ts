/**
 * The served device's migration as this client sees it: DEVICE_FEATURE MIGRATION read once at
 * connect, then MIG_DEVICE_STATE and MIG_DATA_SIZE through DEVICE_FEATURE, and the stream in
 * MIG_DATA_READ/MIG_DATA_WRITE chunks of at most the server's max_data_xfer_size.
 */
import { type MigrationOps, type MigrationStream, MigState, VfioError } from '@vfiokit/core';
import {
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
} from '@vfiokit/core/abi';
import { VFIO_USER_DEVICE_FEATURE } from '../protocol/constants.js';
import {
  decodeDeviceFeatureReply,
  decodeMigDataReadReply,
  encodeDeviceFeatureRequest,
  encodeMigDataReadRequest,
  encodeMigDataWriteRequest,
  encodeMigStateData,
  featureFlags,
} from '../protocol/feature.js';
import { getU64 } from '../protocol/wire.js';
import type { ClientLink } from './link.js';

const SAVING = new Set([MigState.STOP_COPY, MigState.PRE_COPY, MigState.PRE_COPY_P2P]);

/** The device's migration ops, or undefined when the server offers no migration. */
export function fetchMigration(link: ClientLink): MigrationOps | undefined {
  let flags: number;
  try {
    const data = feature(link, VFIO_DEVICE_FEATURE_MIGRATION, 'get', new Uint8Array(0), 8);
    if (data.length < 8) return undefined;
    flags = getU64(new DataView(data.buffer, data.byteOffset, 8), 0, VFIO_USER_DEVICE_FEATURE, 'flags');
  } catch (err) {
    if (err instanceof VfioError && err.code !== 'ECONNRESET' && err.code !== 'ETIMEDOUT') return undefined;
    throw err;
  }
  return {
    caps: {
      stopCopy: true,
      p2p: (flags & VFIO_MIGRATION_P2P) !== 0,
      preCopy: (flags & VFIO_MIGRATION_PRE_COPY) !== 0,
    },
    step: (from: MigState, to: MigState): MigrationStream | undefined => {
      feature(link, VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, 'set', encodeMigStateData(to, 0), 8);
      const opens = (SAVING.has(to) && !SAVING.has(from)) || to === MigState.RESUMING;
      if (!opens) return undefined;
      return to === MigState.RESUMING
        ? { write: (chunk) => migrationWrite(link, chunk) }
        : { read: (max) => migrationRead(link, max) };
    },
    stopCopySize: () => {
      const data = feature(link, VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, 'get', new Uint8Array(0), 8);
      return getU64(
        new DataView(data.buffer, data.byteOffset, 8),
        0,
        VFIO_USER_DEVICE_FEATURE,
        'stop_copy_length',
      );
    },
  };
}

function feature(
  link: ClientLink,
  feature: number,
  op: 'get' | 'set',
  data: Uint8Array,
  replyData: number,
): Uint8Array {
  const flags = featureFlags(feature, op === 'get' ? { get: true } : { set: true });
  const frame = link.call(
    encodeDeviceFeatureRequest(link.msgId(), {
      flags,
      data,
      argsz: 8 + Math.max(data.length, replyData),
    }),
  );
  return decodeDeviceFeatureReply(frame.payload).data;
}

function migrationRead(link: ClientLink, max: number): Uint8Array {
  const size = Math.min(max, link.limits.maxDataXferSize);
  const frame = link.call(encodeMigDataReadRequest(link.msgId(), size));
  return decodeMigDataReadReply(frame.payload, link.limits).data.slice();
}

function migrationWrite(link: ClientLink, chunk: Uint8Array): void {
  const step = link.limits.maxDataXferSize;
  for (let pos = 0; pos < chunk.length; pos += step)
    link.call(encodeMigDataWriteRequest(link.msgId(), chunk.subarray(pos, pos + step)));
}
