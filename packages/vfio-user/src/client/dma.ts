/**
 * Guest memory as the served device reaches it: DMA_MAPped at IOVA 0 when the device opens
 * (with its fd when it has one, so the server maps it; else the I/O worker answers the server's
 * DMA_READ/DMA_WRITE from it) and unmapped when the device closes.
 */

import type { Logger, SharedMemory } from '@vfiokit/core';
import { PAGE_SIZE } from '@vfiokit/core';
import { VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_DMA_UNMAP_FLAG_ALL } from '@vfiokit/core/abi';
import { encodeDmaMapRequest, encodeDmaUnmapRequest } from '../protocol/dma.js';
import type { ChannelLink } from './link.js';

export class ClientDma {
  private mapped = false;

  constructor(
    private readonly link: ChannelLink,
    private readonly log: Logger,
    private readonly guest: SharedMemory | undefined,
  ) {}

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
    this.link.guestMapped = true;
  }

  /** DMA_UNMAP everything, if anything is mapped; a failure is logged. */
  unmap(): void {
    if (!this.mapped) return;
    this.mapped = false;
    this.link.guestMapped = false;
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
