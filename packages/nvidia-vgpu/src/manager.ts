/**
 * The host "vGPU manager" side of the RPC mailbox: the guest writes a request into the mailbox
 * page of BAR0 and rings REG_RPC_DOORBELL with its length; the manager parses it, answers in the
 * response half of the page and raises INTR_RPC_DONE. A malformed or out-of-quota request gets an
 * error result, never an exception: the guest cannot break the host with bytes.
 */
import {
  CHANNEL_STATE_FREE,
  FB_ALLOC_ALIGN,
  MAILBOX_HALF,
  MAILBOX_REQUEST,
  MAILBOX_RESPONSE,
  MAX_CHANNELS,
  RPC_ALLOC_FB,
  RPC_CHANNEL_CREATE,
  RPC_CHANNEL_DESTROY,
  RPC_ERR_INVALID_ARGUMENT,
  RPC_ERR_INVALID_STATE,
  RPC_ERR_NO_CHANNEL,
  RPC_ERR_NO_MEMORY,
  RPC_ERR_NOT_SUPPORTED,
  RPC_ERR_PROTOCOL,
  RPC_ERR_VERSION_MISMATCH,
  RPC_FREE_FB,
  RPC_HEADER_SIZE,
  RPC_OK,
  RPC_SUBMIT,
  RPC_VERSION_HANDSHAKE,
  VGPU_INTERFACE_VERSION,
} from './abi.js';
import { checkPushBuffer, type FbAllocator, type VgpuEngine } from './engine.js';

export interface ManagerHost {
  readonly mailbox: Uint8Array;
  readonly fbSize: number;
  readonly allocator: FbAllocator;
  readonly engine: VgpuEngine;
  /** Whether the version handshake happened (kept with the device state). */
  handshaken: boolean;
  submit(channel: number, put: number): void;
}

/** Counts of what the manager answered, for tests and reports. */
export interface RpcCounters {
  ok: number;
  errors: number;
}

/** Handle one request of `length` bytes; returns the result code written to the response. */
export function handleRpc(host: ManagerHost, length: number, counters?: RpcCounters): number {
  const box = host.mailbox;
  const req = new DataView(box.buffer, box.byteOffset + MAILBOX_REQUEST, MAILBOX_HALF);
  const res = new DataView(box.buffer, box.byteOffset + MAILBOX_RESPONSE, MAILBOX_HALF);
  let result = RPC_ERR_PROTOCOL;
  let out = 0;
  const sequence = length >= RPC_HEADER_SIZE && length <= MAILBOX_HALF ? req.getUint32(8, true) : 0;
  if (length >= RPC_HEADER_SIZE && length <= MAILBOX_HALF && req.getUint32(4, true) === length) {
    const fn = req.getUint32(0, true);
    const params = length - RPC_HEADER_SIZE;
    const p = RPC_HEADER_SIZE;
    const need = (n: number) => params === n;
    if (fn === RPC_VERSION_HANDSHAKE) {
      if (!need(4)) result = RPC_ERR_PROTOCOL;
      else {
        const guest = req.getUint32(p, true);
        res.setUint32(RPC_HEADER_SIZE, VGPU_INTERFACE_VERSION, true);
        out = 4;
        if (guest >>> 16 !== VGPU_INTERFACE_VERSION >>> 16) result = RPC_ERR_VERSION_MISMATCH;
        else {
          host.handshaken = true;
          result = RPC_OK;
        }
      }
    } else if (!host.handshaken) {
      result = RPC_ERR_INVALID_STATE;
    } else if (fn === RPC_ALLOC_FB) {
      if (!need(16)) result = RPC_ERR_PROTOCOL;
      else {
        const size = Number(req.getBigUint64(p, true));
        const align = Number(req.getBigUint64(p + 8, true));
        const alignOk =
          align === 0 || (align >= FB_ALLOC_ALIGN && (align & (align - 1)) === 0 && align <= 1 << 30);
        if (!Number.isSafeInteger(size) || size <= 0 || size % FB_ALLOC_ALIGN !== 0 || !alignOk) {
          result = RPC_ERR_INVALID_ARGUMENT;
        } else if (size > host.fbSize) {
          result = RPC_ERR_NO_MEMORY;
        } else {
          const at = host.allocator.alloc(size, align || FB_ALLOC_ALIGN);
          if (at < 0) result = RPC_ERR_NO_MEMORY;
          else {
            res.setBigUint64(RPC_HEADER_SIZE, BigInt(at), true);
            out = 8;
            result = RPC_OK;
          }
        }
      }
    } else if (fn === RPC_FREE_FB) {
      if (!need(8)) result = RPC_ERR_PROTOCOL;
      else {
        const at = Number(req.getBigUint64(p, true));
        result = host.allocator.free(at) ? RPC_OK : RPC_ERR_INVALID_ARGUMENT;
      }
    } else if (fn === RPC_CHANNEL_CREATE) {
      if (!need(12)) result = RPC_ERR_PROTOCOL;
      else {
        const pbOffset = Number(req.getBigUint64(p, true));
        const pbSize = req.getUint32(p + 8, true);
        if (
          checkPushBuffer(pbOffset, pbSize, host.fbSize) !== undefined ||
          !host.allocator.contains(pbOffset, pbSize)
        ) {
          result = RPC_ERR_INVALID_ARGUMENT;
        } else {
          const id = host.engine.freeChannel();
          if (id < 0) result = RPC_ERR_NO_CHANNEL;
          else {
            host.engine.open(id, pbOffset, pbSize);
            res.setUint32(RPC_HEADER_SIZE, id, true);
            out = 4;
            result = RPC_OK;
          }
        }
      }
    } else if (fn === RPC_CHANNEL_DESTROY) {
      if (!need(4)) result = RPC_ERR_PROTOCOL;
      else {
        const id = req.getUint32(p, true);
        if (id >= MAX_CHANNELS || host.engine.channels[id].state === CHANNEL_STATE_FREE)
          result = RPC_ERR_INVALID_ARGUMENT;
        else {
          host.engine.close(id);
          result = RPC_OK;
        }
      }
    } else if (fn === RPC_SUBMIT) {
      if (!need(8)) result = RPC_ERR_PROTOCOL;
      else {
        const id = req.getUint32(p, true);
        const put = req.getUint32(p + 4, true);
        if (id >= MAX_CHANNELS || host.engine.channels[id].state === CHANNEL_STATE_FREE)
          result = RPC_ERR_INVALID_ARGUMENT;
        else {
          host.submit(id, put);
          result = RPC_OK;
        }
      }
    } else {
      result = RPC_ERR_NOT_SUPPORTED;
    }
  }
  res.setUint32(0, result, true);
  res.setUint32(4, RPC_HEADER_SIZE + out, true);
  res.setUint32(8, sequence, true);
  if (counters) {
    if (result === RPC_OK) counters.ok++;
    else counters.errors++;
  }
  return result;
}
