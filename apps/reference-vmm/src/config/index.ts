export * from './address.js';
export * from './config.js';
export * from './mdevctl.js';
export { type ConfigInput, ConfigSchema, DeviceSchema, MachineSchema, PluginEntrySchema } from './schema.js';
export * from './size.js';
export * from './uuid.js';
