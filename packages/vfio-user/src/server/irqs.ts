/**
 * A session's interrupts: IRQ_INFO, and SET_IRQS with the eventfds the client sent, handed to
 * the device file as triggers (adopted) or closed when the call does not keep them.
 */
import { VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX, VfioError } from '@vfiokit/core';
import {
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_NONE,
  vfio_irq_info,
  vfio_irq_set,
} from '@vfiokit/core/abi';
import { type IrqTrigger, toVfioError } from '@vfiokit/core/host';
import { Eventfd } from '../native/eventfd.js';
import { closeFd, closeFds, dupFd } from '../native/memory.js';
import { encodeEmptyReply, type MessageHeader } from '../protocol/header.js';
import {
  decodeIrqInfoRequest,
  decodeSetIrqsRequest,
  encodeIrqInfoReply,
  type SetIrqsRequest,
} from '../protocol/irqs.js';
import { ioctl, type Reply, type SessionContext } from './context.js';

/** `count` eventfds from the message's fds, -1 where none came (all -1 de-assigns). */
function padFds(fds: readonly number[], count: number): number[] {
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) out[i] = i < fds.length ? fds[i] : -1;
  return out;
}

export class SessionIrqs {
  /** MSI/MSI-X: a dup of each vector's eventfd as handed to the device file (-1: none), by index. */
  private readonly blocks = new Map<number, number[]>();
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
    // The fds now belong to this call: adopted ones to the device file, the rest are closed.
    const mine = fds.splice(0);
    const vectors = req.index === VFIO_PCI_MSI_IRQ_INDEX || req.index === VFIO_PCI_MSIX_IRQ_INDEX;
    if (vectors && req.action === 'trigger' && req.dataType === 'eventfd') this.setVectors(req, mine);
    else {
      const eventfds = req.dataType === 'eventfd' ? padFds(mine, req.count) : undefined;
      this.apply(req.flags, req.index, req.start, req.count, eventfds, mine, req.bools);
      if (vectors && req.action === 'trigger' && req.dataType === 'none' && req.count === 0)
        this.dropBlock(req.index);
    }
    return { bytes: encodeEmptyReply(h.msgId, h.command) };
  }

  /**
   * MSI and MSI-X eventfds. QEMU sends a vector table in chunks of at most max_msg_fds, each
   * all valid fds or all -1 (hw/vfio-user/device.c vfio_user_device_io_set_irqs, irq_howmany),
   * so a table of vectors 0 and 5 arrives as (0, 1, fd), (1, 4, none), (5, 1, fd). The kernel
   * sizes an MSI/MSI-X block when it is enabled and refuses a later start + count beyond it
   * (drivers/vfio/pci/vfio_pci_intrs.c vfio_msi_set_block); libvfio-user (lib/irq.c) takes
   * any range within the IRQ count. Over vfio-user we follow QEMU and libvfio-user: a chunk
   * that reaches past the enabled block re-enables the index with the larger block, handing
   * the device file the vectors it had (this session keeps a dup of each) with the new ones.
   * Within the block a chunk goes through as the kernel takes it.
   */
  private setVectors(req: SetIrqsRequest, mine: number[]): void {
    const file = this.ctx.device();
    let block = this.blocks.get(req.index);
    if (block && !file.irqEnabled(req.index)) {
      // Disabled behind our back (a reset): nothing to carry over.
      this.dropBlock(req.index);
      block = undefined;
    }
    const incoming = padFds(mine, req.count);
    const end = req.start + req.count;
    if (!block || end <= block.length) {
      const copies = incoming.map((fd) => (fd >= 0 ? dupFd(fd) : -1));
      try {
        this.apply(req.flags, req.index, req.start, req.count, incoming, mine);
      } catch (err) {
        closeFds(copies.filter((fd) => fd >= 0));
        throw err;
      }
      const next = block ?? new Array<number>(end).fill(-1);
      for (let i = 0; i < req.count; i++) {
        if (next[req.start + i] >= 0) closeFd(next[req.start + i]);
        next[req.start + i] = copies[i];
      }
      this.blocks.set(req.index, next);
      return;
    }
    // Grow: the old vectors, then this chunk, handed over as one block of `end` vectors.
    const merged = block.concat(new Array<number>(end - block.length).fill(-1));
    const keep = incoming.map((fd) => (fd >= 0 ? dupFd(fd) : -1));
    for (let i = 0; i < req.count; i++) merged[req.start + i] = incoming[i];
    const handed = merged.map((fd) => (fd >= 0 ? dupFd(fd) : -1));
    closeFds(mine); // their dups are in `handed` and `keep`
    try {
      this.apply(VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, req.index, 0, 0, undefined, []);
      this.apply(
        req.flags,
        req.index,
        0,
        end,
        handed,
        handed.filter((fd) => fd >= 0),
      );
    } catch (err) {
      closeFds(keep.filter((fd) => fd >= 0));
      this.dropBlock(req.index);
      throw err;
    }
    for (let i = 0; i < req.count; i++) {
      if (block[req.start + i] >= 0 && req.start + i < block.length) closeFd(block[req.start + i]);
    }
    const next = block.concat(new Array<number>(end - block.length).fill(-1));
    for (let i = 0; i < req.count; i++) next[req.start + i] = keep[i];
    this.blocks.set(req.index, next);
  }

  /** VFIO_DEVICE_SET_IRQS on the device file; `mine` are the fds it may adopt (the rest are closed). */
  private apply(
    flags: number,
    index: number,
    start: number,
    count: number,
    eventfds: readonly number[] | undefined,
    mine: readonly number[],
    bools?: Uint8Array,
  ): void {
    const f = vfio_irq_set.fields;
    const dataLen = bools ? count : eventfds ? count * 4 : 0;
    const arg = new Uint8Array(vfio_irq_set.size + dataLen);
    const dv = new DataView(arg.buffer);
    dv.setUint32(f.argsz.offset, arg.length, true);
    dv.setUint32(f.flags.offset, flags, true);
    dv.setUint32(f.index.offset, index, true);
    dv.setUint32(f.start.offset, start, true);
    dv.setUint32(f.count.offset, count, true);
    if (bools) arg.set(bools, vfio_irq_set.size);
    if (eventfds) for (let i = 0; i < count; i++) dv.setInt32(vfio_irq_set.size + 4 * i, eventfds[i], true);
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
  }

  private dropBlock(index: number): void {
    const block = this.blocks.get(index);
    this.blocks.delete(index);
    if (block) closeFds(block.filter((fd) => fd >= 0));
  }

  /** Close the dups kept for re-enabling (the session ends). */
  dispose(): void {
    for (const index of [...this.blocks.keys()]) this.dropBlock(index);
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
