/**
 * A session's device features and migration: DEVICE_FEATURE (migration state and sizes, DMA
 * dirty logging with its ranges and bitmap inline) and the MIG_DATA_READ/WRITE stream.
 */
import { VfioError } from '@vfiokit/core';
import {
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_MIGRATION,
  vfio_device_feature_mig_state,
} from '@vfiokit/core/abi';
import {
  decodeDeviceFeatureRequest,
  decodeDmaLoggingReport,
  decodeMigDataReadRequest,
  decodeMigDataWriteRequest,
  dirtyBitmapBytes,
  encodeDeviceFeatureReply,
  encodeMigDataReadReply,
} from '../protocol/feature.js';
import { encodeEmptyReply, type MessageHeader } from '../protocol/header.js';
import { ioctl, type Reply, type SessionContext } from './context.js';

/** vfio-user's inline DMA logging heads: control {page_size, num_ranges, reserved}, report {iova, length, page_size}. */
const LOGGING_CONTROL_HEAD = 16;
const LOGGING_REPORT_HEAD = 24;

export class SessionFeatures {
  constructor(private readonly ctx: SessionContext) {}

  feature(h: MessageHeader, payload: Uint8Array): Reply {
    const req = decodeDeviceFeatureRequest(payload);
    if (
      (req.feature === VFIO_DEVICE_FEATURE_DMA_LOGGING_START ||
        req.feature === VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT) &&
      !req.probe
    )
      return this.loggingFeature(h, req.feature, req.argsz, req.flags, req.data);
    let replyData = req.data.length;
    if (req.get && !req.probe) {
      switch (req.feature) {
        case VFIO_DEVICE_FEATURE_MIGRATION:
        case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
        case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
          replyData = 8;
          break;
      }
    }
    const arg = new Uint8Array(8 + Math.max(req.data.length, replyData));
    arg.set(req.data, 8);
    const dv = new DataView(arg.buffer);
    // For GET the client's argsz bounds the reply, as the kernel's argsz bounds the buffer.
    dv.setUint32(0, req.get ? Math.min(req.argsz, arg.length) : 8 + req.data.length, true);
    dv.setUint32(4, req.flags, true);
    const out = ioctl(this.ctx.device(), VFIO_DEVICE_FEATURE, arg);
    const data = out.slice(8, 8 + replyData);
    if (
      req.feature === VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE &&
      data.length >= vfio_device_feature_mig_state.size
    )
      // docs/interop/vfio-user.rst: data_fd is unused; the stream travels in MIG_DATA_READ/WRITE.
      new DataView(data.buffer).setInt32(vfio_device_feature_mig_state.fields.data_fd.offset, -1, true);
    return { bytes: encodeDeviceFeatureReply(h.msgId, { flags: req.flags, data }) };
  }

  /**
   * DMA logging carries its ranges and bitmap inline in vfio-user, right after the 16-byte
   * control head and the 24-byte report head; the kernel structs (which the device file reads)
   * have a u64 pointer there first. Only that slot is added and removed here.
   */
  private loggingFeature(
    h: MessageHeader,
    feature: number,
    argsz: number,
    flags: number,
    data: Uint8Array,
  ): Reply {
    const start = feature === VFIO_DEVICE_FEATURE_DMA_LOGGING_START;
    const head = start ? LOGGING_CONTROL_HEAD : LOGGING_REPORT_HEAD;
    if (data.length < head)
      throw new VfioError(
        'EINVAL',
        `DMA logging data of ${data.length} bytes is shorter than its ${head}-byte head.`,
      );
    let tail = data.length - head;
    if (!start) {
      if (data.length !== head)
        throw new VfioError('EINVAL', `DMA_LOGGING_REPORT data is ${data.length} bytes; it must be ${head}.`);
      const r = decodeDmaLoggingReport(data, this.ctx.limits);
      tail = dirtyBitmapBytes(r.length, r.pageSize);
      if (argsz < 8 + head + tail)
        throw new VfioError('EINVAL', `argsz ${argsz} cannot hold the ${tail}-byte bitmap.`, {
          hint: `Send argsz ${8 + head + tail}.`,
        });
    }
    const arg = new Uint8Array(8 + head + 8 + tail);
    const dv = new DataView(arg.buffer);
    dv.setUint32(0, arg.length, true);
    dv.setUint32(4, flags, true);
    arg.set(data.subarray(0, head), 8);
    if (start) arg.set(data.subarray(head), 8 + head + 8);
    const out = ioctl(this.ctx.device(), VFIO_DEVICE_FEATURE, arg);
    if (start) return { bytes: encodeDeviceFeatureReply(h.msgId, { flags, data }) };
    const reply = new Uint8Array(head + tail);
    reply.set(data);
    reply.set(out.subarray(8 + head + 8), head);
    return { bytes: encodeDeviceFeatureReply(h.msgId, { flags, data: reply }) };
  }

  migDataRead(h: MessageHeader, payload: Uint8Array): Reply {
    const r = decodeMigDataReadRequest(payload, this.ctx.limits);
    return { bytes: encodeMigDataReadReply(h.msgId, this.ctx.device().migrationRead(r.size)) };
  }

  migDataWrite(h: MessageHeader, payload: Uint8Array): Reply {
    const r = decodeMigDataWriteRequest(payload, this.ctx.limits);
    this.ctx.device().migrationWrite(r.data);
    return { bytes: encodeEmptyReply(h.msgId, h.command) };
  }
}
