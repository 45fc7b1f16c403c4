/**
 * Guest memory as the served device reaches it: DMA_MAPped at IOVA 0 when the device opens
 * (with its fd when it has one, so the server maps it; else the server asks for it with
 * DMA_READ/DMA_WRITE, answered here from the guest memory's bytes) and unmapped when the
 * device closes.
 */

import type { Logger, SharedMemory } from '@vfiokit/core';
import { PAGE_SIZE, VfioError } from '@vfiokit/core';
import { VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_DMA_UNMAP_FLAG_ALL } from '@vfiokit/core/abi';
import { VFIO_USER_DMA_READ, VFIO_USER_DMA_WRITE } from '../protocol/constants.js';
import {
  type DmaLayout,
  decodeDmaReadRequest,
  decodeDmaWriteRequest,
  encodeDmaMapRequest,
  encodeDmaReadReply,
  encodeDmaUnmapRequest,
  encodeDmaWriteReply,
} from '../protocol/dma.js';
import type { Frame } from '../protocol/framing.js';
import type { ClientLink } from './link.js';

export class ClientDma {
  private mapped = false;

  constructor(
    private readonly link: ClientLink,
    private readonly log: Logger,
    private readonly guest: SharedMemory | undefined,
    private readonly layout: DmaLayout,
    private readonly maxDataXferSize: number,
  ) {}

  /**
   * The server's DMA_READ / DMA_WRITE, answered from guest memory at IOVA 0 while it is
   * mapped; the reply to send. Anything else, or an access outside the memory, throws.
   */
  serve(frame: Frame): Uint8Array {
    const h = frame.header;
    const limits = { maxMsgFds: 0, maxDataXferSize: this.maxDataXferSize };
    const guest = this.mapped ? this.guest?.bytes : undefined;
    const inside = (address: number, count: number) => {
      if (!guest || address + count > guest.length)
        throw new VfioError(
          'EFAULT',
          `DMA of ${count} bytes at 0x${address.toString(16)} is outside the mapped guest memory.`,
          { device: this.link.name },
        );
    };
    if (h.command === VFIO_USER_DMA_READ) {
      const a = decodeDmaReadRequest(frame.payload, this.layout, limits);
      inside(a.address, a.count);
      return encodeDmaReadReply(
        h.msgId,
        { ...a, data: guest!.subarray(a.address, a.address + a.count) },
        this.layout,
      );
    }
    if (h.command === VFIO_USER_DMA_WRITE) {
      const t = decodeDmaWriteRequest(frame.payload, this.layout, limits);
      inside(t.address, t.count);
      guest!.set(t.data, t.address);
      return encodeDmaWriteReply(h.msgId, t, this.layout);
    }
    throw new VfioError('EINVAL', `command ${h.command} is not one a server sends to a client.`, {
      device: this.link.name,
    });
  }

  /** DMA_MAP the guest memory (its whole pages) at IOVA 0. */
  map(): void {
    const g = this.guest;
    if (!g) return;
    const size = g.size - (g.size % PAGE_SIZE);
    if (size === 0) return;
    this.link.call(
      encodeDmaMapRequest(this.link.msgId(), {
        flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
        offset: 0,
        address: 0,
        size,
      }),
      g.fd !== undefined ? [g.fd] : [],
    );
    this.mapped = true;
  }

  /** DMA_UNMAP everything, if anything is mapped; a failure is logged. */
  unmap(): void {
    if (!this.mapped) return;
    this.mapped = false;
    try {
      this.link.call(
        encodeDmaUnmapRequest(this.link.msgId(), {
          argsz: 24,
          flags: VFIO_DMA_UNMAP_FLAG_ALL,
          address: 0,
          size: 0,
        }),
      );
    } catch (err) {
      this.log.warn(`unmapping guest memory on close failed: ${(err as Error).message}`);
    }
  }
}
