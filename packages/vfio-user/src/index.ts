/**
 * @vfiokit/vfio-user — serve any vfiokit device to QEMU and other VMMs over a UNIX socket
 * (serveDevice, runServe, the server's plugin host), and attach a device served elsewhere
 * (connectVfioUser and the client device it returns). The message formats and the framing are
 * `@vfiokit/vfio-user/protocol`; the native addon behind sockets, memfds and eventfds is private.
 */

export {
  type ConnectOptions,
  connectVfioUser,
  connectVfioUserSync,
  VfioUserClientDevice,
} from './client/index.js';
export { createRealClock, silentLogger, stderrLogger } from './host.js';
/** Memory in a memfd, whose fd can travel to a peer (a VMM's guest RAM for DMA_MAP). */
export { allocateMemfdMemory, type MemfdMemory } from './native/index.js';
export {
  allocateMemfdSharedMemory,
  createPluginHostForServer,
  type RunServeOptions,
  runServe,
  type ServeDeviceOptions,
  type ServerLimitOptions,
  type ServerPluginHostOptions,
  serveDevice,
  VfioUserServer,
} from './server/index.js';
