/**
 * The served device's interrupts as this client sees them: IRQ_INFO read once at connect, and
 * SET_IRQS with real eventfds whenever the local device file changes an index's setup.
 *
 * INTx: the server's device file masks INTx when it fires (AUTOMASKED), and so does the local
 * device file in front of this device. The local UNMASK never reaches a device (the core keeps
 * SET_IRQS), so after each INTx signal this client re-arms the server with SET_IRQS UNMASK
 * (No_reply) and lets the local device file do the masking the guest sees.
 */
import { type IrqInfo, type Logger, VFIO_PCI_INTX_IRQ_INDEX, VfioError } from '@vfiokit/core';
import {
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
} from '@vfiokit/core/abi';
import { Eventfd } from '../native/eventfd.js';
import { decodeIrqInfoReply, encodeIrqInfoRequest, encodeSetIrqsRequest } from '../protocol/irqs.js';
import type { ClientLink } from './link.js';

export class ClientIrqs {
  private readonly irqs: (IrqInfo | undefined)[] = [];
  private readonly eventfds = new Map<number, Eventfd[]>();

  constructor(
    private readonly link: ClientLink,
    private readonly log: Logger,
    /** Where a signal goes: the local device file's trigger, while the device is open. */
    private readonly trigger: (index: number, vector: number) => void,
  ) {}

  /** Ask IRQ_INFO for indexes 0..count-1 (at connect). */
  fetch(count: number): void {
    for (let i = 0; i < count; i++) this.irqs.push(this.fetchIrq(i));
  }

  info(index: number): IrqInfo | undefined {
    return this.irqs[index];
  }

  private fetchIrq(index: number): IrqInfo | undefined {
    try {
      const r = decodeIrqInfoReply(
        this.link.request(encodeIrqInfoRequest(this.link.msgId(), { argsz: 16, index })).payload,
      );
      return {
        index,
        count: r.count,
        eventfd: (r.flags & VFIO_IRQ_INFO_EVENTFD) !== 0,
        maskable: (r.flags & VFIO_IRQ_INFO_MASKABLE) !== 0,
        automasked: (r.flags & VFIO_IRQ_INFO_AUTOMASKED) !== 0,
        noresize: (r.flags & VFIO_IRQ_INFO_NORESIZE) !== 0,
      };
    } catch (err) {
      if (err instanceof VfioError && err.code === 'EINVAL') return undefined;
      throw err;
    }
  }

  /** `count` vectors of `index` are now triggered (0: none): hand the server fresh eventfds. */
  changed(index: number, count: number): void {
    if (count === 0) {
      if (this.eventfds.has(index)) {
        this.release(index);
      }
      return;
    }
    const fresh: Eventfd[] = [];
    try {
      for (let v = 0; v < count; v++) fresh.push(new Eventfd());
      this.link.call(
        encodeSetIrqsRequest(this.link.msgId(), {
          index,
          start: 0,
          count,
          dataType: 'eventfd',
          action: 'trigger',
        }),
        fresh.map((e) => e.fd),
      );
    } catch (err) {
      for (const e of fresh) e.close();
      throw err;
    }
    for (const e of this.eventfds.get(index) ?? []) e.close();
    this.eventfds.set(index, fresh);
    for (let vector = 0; vector < fresh.length; vector++)
      fresh[vector].onSignal(() => this.interrupt(index, vector));
  }

  /** Tell the server to drop every index's eventfds, and close ours. */
  releaseAll(): void {
    for (const index of [...this.eventfds.keys()]) this.release(index);
  }

  /** Close our eventfds without telling the server (the connection is gone or going). */
  closeAll(): void {
    for (const list of this.eventfds.values()) for (const e of list) e.close();
    this.eventfds.clear();
  }

  /** Tell the server to drop the eventfds of `index`, and close ours. */
  private release(index: number): void {
    const list = this.eventfds.get(index) ?? [];
    this.eventfds.delete(index);
    for (const e of list) e.close();
    if (!this.link.open) return;
    try {
      this.link.call(
        encodeSetIrqsRequest(this.link.msgId(), {
          index,
          start: 0,
          count: 0,
          dataType: 'none',
          action: 'trigger',
        }),
      );
    } catch (err) {
      this.log.warn(`disabling IRQ index ${index} on the server failed: ${(err as Error).message}`);
    }
  }

  private interrupt(index: number, vector: number): void {
    if (index === VFIO_PCI_INTX_IRQ_INDEX && this.link.open) {
      try {
        this.link.post(
          encodeSetIrqsRequest(
            this.link.msgId(),
            { index, start: vector, count: 1, dataType: 'none', action: 'unmask' },
            { noReply: true },
          ),
        );
      } catch (err) {
        this.log.warn(`re-arming INTx on the server failed: ${(err as Error).message}`);
      }
    }
    this.trigger(index, vector);
  }
}
