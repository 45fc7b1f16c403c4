/**
 * @vfiokit/reference-vmm — the reference VMM: the machine model, the configuration, the plugin
 * loader and the `vfiokit` command line, for embedding and for tests.
 */

export { type Booted, type BootOptions, boot } from './cli/boot.js';
export { bufferIo, type CliIo, processIo } from './cli/io.js';
export { type LspciOptions, lspciJson, renderLspci } from './cli/lspci/index.js';
export { describeError, main } from './cli/main.js';
export { defaultStateDir, MdevStore } from './cli/mdev-state.js';
export { renderRunReport, runJson } from './cli/report.js';
export * from './config/index.js';
export { DEFAULT_CONFIG, DEFAULT_CONFIG_SOURCE } from './default-config.js';
export * from './guest/index.js';
export * from './loader/index.js';
export * from './machine/index.js';
