export * from './pci-device-model.js';
