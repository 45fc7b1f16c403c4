export {
  allocateMemfdSharedMemory,
  createPluginHostForServer,
  type ServerPluginHostOptions,
} from './plugin-host.js';
export { type RunServeOptions, runServe } from './run-serve.js';
export { type ServeDeviceOptions, type ServerLimitOptions, serveDevice, VfioUserServer } from './server.js';
export { Session } from './session.js';
