export * from './host.js';
export * from './instantiate.js';
export * from './linux-vfio.js';
export * from './load-plugin.js';
export * from './plugin-fault.js';
export * from './vfio-user.js';
