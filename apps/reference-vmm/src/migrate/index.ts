export * from './default.js';
export * from './migrate.js';
export * from './wire.js';
