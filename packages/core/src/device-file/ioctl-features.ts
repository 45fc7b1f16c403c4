/**
 * VFIO_DEVICE_FEATURE (vfio_ioctl_device_feature and vfio_check_feature in
 * drivers/vfio/vfio_main.c): the migration features (MIGRATION, MIG_DEVICE_STATE,
 * MIG_DATA_SIZE), DMA logging (START, STOP, REPORT), and VFIO_MIG_GET_PRECOPY_INFO on the
 * migration data fd.
 */

import {
  decodeDeviceFeature,
  decodeDmaLoggingControl,
  decodeDmaLoggingReport,
  decodeMigState,
  encodeMigState,
  encodePrecopyInfo,
  getU64,
  setU64,
} from '../abi/codecs.js';
import {
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MASK,
  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FEATURE_PROBE,
  VFIO_DEVICE_FEATURE_SET,
} from '../abi/constants.js';
import {
  vfio_device_feature,
  vfio_device_feature_dma_logging_control,
  vfio_device_feature_dma_logging_range,
  vfio_device_feature_dma_logging_report,
  vfio_device_feature_mig_data_size,
  vfio_device_feature_mig_state,
  vfio_device_feature_migration,
} from '../abi/layout.js';
import type { MigState } from '../contract/migration.js';
import { VfioError } from '../errors.js';
import { argszError } from './access-errors.js';
import { type IoctlScope, needMigration } from './device-host.js';

/** vfio_check_feature: false = a probe, answered; true = go on with GET or SET. */
type FeatureCheck = (supported: number, featureMinsz: number) => boolean;

export function ioctlFeature(f: IoctlScope, out: Uint8Array): number {
  const minsz = vfio_device_feature.size;
  const s = decodeDeviceFeature(out);
  const place = { device: f.name };
  if (s.argsz < minsz) throw argszError(f.name, 'vfio_device_feature', s.argsz, minsz);
  if (
    s.flags &
    ~(
      VFIO_DEVICE_FEATURE_MASK |
      VFIO_DEVICE_FEATURE_SET |
      VFIO_DEVICE_FEATURE_GET |
      VFIO_DEVICE_FEATURE_PROBE
    )
  ) {
    throw new VfioError('EINVAL', `feature flags 0x${s.flags.toString(16)} has unknown bits.`, place);
  }
  const getSet = s.flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET);
  if (
    !(s.flags & VFIO_DEVICE_FEATURE_PROBE) &&
    getSet === (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET)
  ) {
    throw new VfioError('EINVAL', 'GET and SET together need PROBE.', place);
  }
  const feature = s.flags & VFIO_DEVICE_FEATURE_MASK;
  const dataSize = s.argsz - minsz;
  const data = s.data;
  const check: FeatureCheck = (supported, featureMinsz) => {
    if (s.flags & VFIO_DEVICE_FEATURE_PROBE) {
      if (getSet & ~supported)
        throw new VfioError('EINVAL', `feature ${feature} does not support that operation.`, place);
      return false;
    }
    if (!getSet) throw new VfioError('EINVAL', `feature ${feature} needs GET or SET.`, place);
    if (getSet & ~supported)
      throw new VfioError('EINVAL', `feature ${feature} does not support that operation.`, place);
    if (dataSize < featureMinsz || data.byteLength < featureMinsz) {
      throw new VfioError(
        'EINVAL',
        `feature ${feature} needs ${featureMinsz} bytes of data, argsz gives ${dataSize}.`,
        place,
      );
    }
    return true;
  };
  switch (feature) {
    case VFIO_DEVICE_FEATURE_MIGRATION: {
      needMigration(f);
      if (!check(VFIO_DEVICE_FEATURE_GET, vfio_device_feature_migration.size)) return 0;
      setU64(new DataView(data.buffer, data.byteOffset, 8), 0, f.file.migrationCaps());
      return 0;
    }
    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: {
      needMigration(f);
      if (!check(VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET, vfio_device_feature_mig_state.size))
        return 0;
      if (getSet === VFIO_DEVICE_FEATURE_GET) {
        data.set(encodeMigState(f.file.migrationState, -1));
        return 0;
      }
      const req = decodeMigState(data);
      const fd = f.file.setMigrationState(req.deviceState as MigState);
      data.set(encodeMigState(req.deviceState, fd));
      return 0;
    }
    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: {
      needMigration(f);
      if (!check(VFIO_DEVICE_FEATURE_GET, vfio_device_feature_mig_data_size.size)) return 0;
      const size = f.device.migration?.stopCopySize?.() ?? 0;
      setU64(new DataView(data.buffer, data.byteOffset, 8), 0, size);
      return 0;
    }
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
      return dmaLoggingFeature(f, feature, check, data);
    default:
      throw new VfioError('ENOTTY', `device feature ${feature} is not supported.`, {
        ...place,
        hint: 'Probe a feature with VFIO_DEVICE_FEATURE_PROBE before using it.',
      });
  }
}

/**
 * DMA logging. In process there is no user memory for the kernel's `ranges` and `bitmap`
 * pointers, so (as vfio-user carries them) the ranges follow the control struct inline and
 * the report's bitmap follows the report struct in the argument bytes.
 */
function dmaLoggingFeature(f: IoctlScope, feature: number, check: FeatureCheck, data: Uint8Array): number {
  const logging = f.host.dmaLogging;
  if (!logging) {
    throw new VfioError('ENOTTY', 'DMA logging is not available for this device.', { device: f.name });
  }
  if (feature === VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP) {
    if (!check(VFIO_DEVICE_FEATURE_SET, 0)) return 0;
    logging.stop();
    return 0;
  }
  if (feature === VFIO_DEVICE_FEATURE_DMA_LOGGING_START) {
    if (!check(VFIO_DEVICE_FEATURE_SET, vfio_device_feature_dma_logging_control.size)) return 0;
    const ctl = decodeDmaLoggingControl(data);
    const rsz = vfio_device_feature_dma_logging_range.size;
    const at = vfio_device_feature_dma_logging_control.size;
    if (data.byteLength < at + ctl.numRanges * rsz) {
      throw new VfioError('EINVAL', `${ctl.numRanges} logging ranges do not fit in the argument.`, {
        device: f.name,
      });
    }
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const ranges: { iova: number; length: number }[] = [];
    for (let i = 0; i < ctl.numRanges; i++) {
      ranges.push({
        iova: getU64(dv, at + i * rsz, 'iova'),
        length: getU64(dv, at + i * rsz + 8, 'length'),
      });
    }
    logging.start(ctl.pageSize, ranges);
    return 0;
  }
  if (!check(VFIO_DEVICE_FEATURE_GET, vfio_device_feature_dma_logging_report.size)) return 0;
  const rep = decodeDmaLoggingReport(data);
  const bitmap = logging.report(rep.iova, rep.length, rep.pageSize);
  const at = vfio_device_feature_dma_logging_report.size;
  if (data.byteLength < at + bitmap.byteLength) {
    throw new VfioError('EINVAL', `the report bitmap needs ${bitmap.byteLength} bytes after the struct.`, {
      device: f.name,
      hint: 'Make argsz cover the struct plus one bit per page, rounded up to 8 bytes.',
    });
  }
  data.set(bitmap, at);
  return 0;
}

/** VFIO_MIG_GET_PRECOPY_INFO on the migration data fd. */
export function ioctlPrecopyInfo(f: IoctlScope, out: Uint8Array): number {
  const info = f.file.precopyInfo();
  const bytes = encodePrecopyInfo(info.initialBytes, info.dirtyBytes);
  if (out.byteLength < bytes.byteLength) {
    throw new VfioError('EINVAL', `struct vfio_precopy_info needs ${bytes.byteLength} bytes.`, {
      device: f.name,
    });
  }
  const argsz = new DataView(out.buffer, out.byteOffset, 4).getUint32(0, true);
  if (argsz < bytes.byteLength) throw argszError(f.name, 'vfio_precopy_info', argsz, bytes.byteLength);
  out.set(bytes.subarray(8), 8);
  return 0;
}
