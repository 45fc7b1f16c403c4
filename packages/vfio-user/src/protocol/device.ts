/**
 * Device queries of the spec's device section: DEVICE_GET_INFO and DEVICE_RESET here; the
 * region queries (DEVICE_GET_REGION_INFO with its capability chain, DEVICE_GET_REGION_IO_FDS)
 * in region-info.ts, the interrupt messages (DEVICE_GET_IRQ_INFO, DEVICE_SET_IRQS) in irqs.ts.
 * The payloads are the linux/vfio.h structs (layouts from @vfiokit/core); argsz follows argsz.ts.
 */
import { checkArgsz, encodeFourU32 } from './argsz.js';
import {
  VFIO_USER_DEVICE_GET_INFO,
  VFIO_USER_DEVICE_INFO_SIZE,
  VFIO_USER_DEVICE_RESET,
  VFIO_USER_F_TYPE_REPLY,
} from './constants.js';
import { requestFlags, type SendOptions } from './header.js';
import { expectSize, view } from './wire.js';

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

// ---- DEVICE_RESET ------------------------------------------------------------------------

/** DEVICE_RESET carries no payload either way. */
export function decodeResetRequest(payload: Uint8Array): void {
  expectSize(payload, 0, VFIO_USER_DEVICE_RESET, 'device_reset');
}
