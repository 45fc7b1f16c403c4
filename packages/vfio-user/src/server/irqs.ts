/**
 * A session's interrupts: IRQ_INFO, and SET_IRQS with the eventfds the client sent, handed to
 * the device file as triggers (adopted) or closed when the call does not keep them.
 */
import {
  type IrqTrigger,
  toVfioError,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_SET_IRQS,
  VfioError,
  vfio_irq_info,
  vfio_irq_set,
} from '@vfiokit/core';
import { Eventfd } from '../native/eventfd.js';
import { closeFds } from '../native/memory.js';
import { decodeIrqInfoRequest, decodeSetIrqsRequest, encodeIrqInfoReply } from '../protocol/device.js';
import { encodeEmptyReply, type MessageHeader } from '../protocol/header.js';
import { ioctl, type Reply, type SessionContext } from './context.js';

export class SessionIrqs {
  /** The fds of the SET_IRQS being handled, not yet adopted as eventfds. */
  private irqFds: Set<number> | undefined;
  private adopted: Eventfd[] = [];

  constructor(private readonly ctx: SessionContext) {}

  irqInfo(h: MessageHeader, payload: Uint8Array): Reply {
    const req = decodeIrqInfoRequest(payload);
    const f = vfio_irq_info.fields;
    const arg = new Uint8Array(vfio_irq_info.size);
    const dv = new DataView(arg.buffer);
    dv.setUint32(f.argsz.offset, arg.length, true);
    dv.setUint32(f.index.offset, req.index, true);
    const out = new DataView(ioctl(this.ctx.device(), VFIO_DEVICE_GET_IRQ_INFO, arg).buffer);
    return {
      bytes: encodeIrqInfoReply(h.msgId, {
        flags: out.getUint32(f.flags.offset, true),
        index: req.index,
        count: out.getUint32(f.count.offset, true),
      }),
    };
  }

  setIrqs(h: MessageHeader, payload: Uint8Array, fds: number[]): Reply {
    const req = decodeSetIrqsRequest(payload, fds, this.ctx.limits);
    const f = vfio_irq_set.fields;
    const dataLen = req.dataType === 'bool' ? req.count : req.dataType === 'eventfd' ? req.count * 4 : 0;
    const arg = new Uint8Array(vfio_irq_set.size + dataLen);
    const dv = new DataView(arg.buffer);
    dv.setUint32(f.argsz.offset, arg.length, true);
    dv.setUint32(f.flags.offset, req.flags, true);
    dv.setUint32(f.index.offset, req.index, true);
    dv.setUint32(f.start.offset, req.start, true);
    dv.setUint32(f.count.offset, req.count, true);
    if (req.bools) arg.set(req.bools, vfio_irq_set.size);
    if (req.dataType === 'eventfd')
      for (let i = 0; i < req.count; i++)
        dv.setInt32(vfio_irq_set.size + 4 * i, i < fds.length ? fds[i] : -1, true);
    // The fds now belong to this call: adopted ones to the device file, the rest are closed.
    const mine = fds.splice(0);
    this.irqFds = new Set(mine);
    this.adopted = [];
    try {
      ioctl(this.ctx.device(), VFIO_DEVICE_SET_IRQS, arg);
    } catch (err) {
      for (const e of this.adopted) e.close();
      throw err;
    } finally {
      const adopted = new Set(this.adopted.map((e) => e.fd));
      closeFds(mine.filter((fd) => !adopted.has(fd)));
      this.irqFds = undefined;
      this.adopted = [];
    }
    return { bytes: encodeEmptyReply(h.msgId, h.command) };
  }

  /** An eventfd from the SET_IRQS being handled, as a trigger that signals it and closes it on release. */
  resolveEventfd(fd: number): IrqTrigger {
    if (!this.irqFds?.has(fd))
      throw new VfioError('EBADF', `fd ${fd} did not come with this SET_IRQS message.`);
    this.irqFds.delete(fd);
    const eventfd = new Eventfd(fd);
    this.adopted.push(eventfd);
    const log = this.ctx.log;
    return {
      signal() {
        if (!eventfd.open) return;
        try {
          eventfd.signal();
        } catch (err) {
          log.warn(`signalling eventfd ${fd} failed: ${toVfioError(err).message}`);
        }
      },
      release() {
        eventfd.close();
      },
    };
  }
}
