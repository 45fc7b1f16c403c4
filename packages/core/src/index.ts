export * from './abi/constants.js';
export * from './abi/layout.js';
export * from './contract/context.js';
export * from './contract/device.js';
export * from './contract/migration.js';
export * from './contract/plugin.js';
export * from './errors.js';
