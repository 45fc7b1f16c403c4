export * from './client/index.js';
export { createRealClock, silentLogger, stderrLogger } from './host.js';
export * from './native/index.js';
export * from './protocol/index.js';
export * from './server/index.js';
export { MessageConnection, type MessageConnectionOptions } from './transport.js';
