export * from './device-file.js';
export * from './irq-state.js';
