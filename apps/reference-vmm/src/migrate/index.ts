export * from './common.js';
export * from './default.js';
export * from './describe.js';
export * from './destination.js';
export * from './messages.js';
export * from './source.js';
export * from './wire.js';
