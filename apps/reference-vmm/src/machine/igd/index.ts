export * from './assignment.js';
export * from './generation.js';
export { LpcBridge, type LpcIdentity, PCI_CLASS_BRIDGE_ISA } from './lpc-bridge.js';
