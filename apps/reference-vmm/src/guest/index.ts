export type { ProbeOptions, VectorBlockAllocator } from './probe.js';
export { probePciBus } from './probe.js';
