export * from './capabilities.js';
export * from './config-space.js';
export * from './constants.js';
export * from './walk.js';
