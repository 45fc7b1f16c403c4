export type { DirtyRange } from './dirty.js';
export { DirtyTracker, DMA_LOGGING_MAX_RANGES, DMA_LOGGING_MIN_PAGE_SIZE } from './dirty.js';
export type { HostDmaOptions, RemoteDma } from './host-dma.js';
export { HostDma } from './host-dma.js';
export type { DmaMapping, DmaMapRequest, IovaMapOptions, MapListener, UnmapListener } from './iova-map.js';
export { IovaMap } from './iova-map.js';
export { DMA_ENTRY_LIMIT, IOMMU_PAGE_SIZE, IOVA_LIMIT } from './page.js';
export { allocateDeviceMemory, allocateSharedMemory, wrapMemory } from './shared-memory.js';
