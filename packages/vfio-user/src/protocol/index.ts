export * from './constants.js';
export * from './device.js';
export * from './dma.js';
export * from './feature.js';
export * from './framing.js';
export * from './header.js';
export * from './region.js';
export * from './version.js';
