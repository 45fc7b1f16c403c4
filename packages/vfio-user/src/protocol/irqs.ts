/**
 * Interrupt messages: DEVICE_GET_IRQ_INFO (one IRQ index's flags and count) and DEVICE_SET_IRQS
 * (mask, unmask or trigger a range of vectors, or give them eventfds), as linux/vfio.h's
 * vfio_irq_info and vfio_irq_set; argsz follows argsz.ts.
 */
import {
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_IRQ_SET_DATA_TYPE_MASK,
  vfio_irq_info,
  vfio_irq_set,
} from '@vfiokit/core/abi';
import { checkArgsz, encodeFourU32, INDEX_COUNT_NAMES } from './argsz.js';
import {
  VFIO_USER_DEVICE_GET_IRQ_INFO,
  VFIO_USER_DEVICE_SET_IRQS,
  VFIO_USER_F_TYPE_REPLY,
} from './constants.js';
import { DEFAULT_LIMITS, type Limits, requestFlags, type SendOptions } from './header.js';
import { allocMessage, checkU32, expectAtLeast, expectSize, protocolError, view } from './wire.js';

const IRQ_INFO_SIZE = vfio_irq_info.size;
const IRQ_SET_SIZE = vfio_irq_set.size;

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
    INDEX_COUNT_NAMES,
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
    INDEX_COUNT_NAMES,
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
