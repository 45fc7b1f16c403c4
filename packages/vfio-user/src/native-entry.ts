/**
 * @vfiokit/vfio-user/native — the Linux fd primitives of this package's addon, for the other
 * Linux backends of vfiokit (@vfiokit/linux-vfio takes its eventfds and closes descriptors
 * here): eventfds, memfds, mmap of an fd, closing. One home for them; plugins have no use for
 * it. The sockets and sessions stay private.
 */
export { Eventfd } from './native/eventfd.js';
export {
  allocateMemfdMemory,
  closeFd,
  closeFds,
  createMemfd,
  type MemfdMemory,
  mapFd,
} from './native/memory.js';
