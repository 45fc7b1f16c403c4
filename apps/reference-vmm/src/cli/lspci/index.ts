/**
 * What the guest sees, printed the way pciutils 3.9's lspci prints it (lspci.c, ls-caps.c,
 * ls-ecaps.c, lib/names.c). Configuration bytes are read only through GuestView.configRead —
 * the guest's config cycles — and BAR sizes come from the guest's own probe, as lspci takes
 * them from the OS. Parts: context (bytes, options, output), ids (pci.ids), names, header,
 * caps, express, ecaps (and ecaps-links), render.
 */
export type { ConfigReader, FunctionInfo, LspciOptions } from './context.js';
export { formatBarSize } from './header.js';
export { PCI_IDS_PATHS, PciIds, readPciIds, systemPciIds } from './ids.js';
export { type LspciJsonDevice, lspciJson, renderConfigs, renderLspci } from './render.js';
