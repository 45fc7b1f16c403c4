export * from './native/index.js';
export * from './protocol/index.js';
export { MessageConnection, type MessageConnectionOptions } from './transport.js';
