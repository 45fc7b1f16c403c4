/**
 * @vfiokit/core/abi — the tables and codecs of the bytes that cross the kernel boundary: every
 * linux/vfio.h constant and struct layout (proven against the machine's header by
 * test/abi-header.test.ts), the struct codecs, the errno numbers, the linux/pci_regs.h
 * register map, and the ABI report.
 */

export * from './abi/codecs.js';
export * from './abi/constants.js';
export * from './abi/layout.js';
export * from './abi/report.js';
export { ERRNO, type ErrnoName, errnoName } from './errors.js';
export * from './pci/constants.js';
