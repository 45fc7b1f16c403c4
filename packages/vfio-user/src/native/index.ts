export { type NativeAddon, native } from './addon.js';
export { Eventfd } from './eventfd.js';
export {
  allocateMemfdMemory,
  closeFd,
  closeFds,
  createMemfd,
  dupFd,
  fdSize,
  type MemfdMemory,
  mapFd,
  openFdCount,
  punchHole,
} from './memory.js';
export {
  MAX_FDS_PER_SENDMSG,
  UnixConnection,
  type UnixConnectionHandlers,
  type UnixConnectionOptions,
  UnixListener,
} from './socket.js';
