/**
 * What the guest sees, printed the way pciutils' lspci prints it (lspci.c show_terse /
 * show_verbose / show_bases, ls-caps.c, ls-ecaps.c). Configuration bytes are read only through
 * GuestView.configRead — the guest's config cycles — and BAR sizes come from the guest's own
 * probe, as lspci takes them from the OS. Parts: context (the bytes and options), header,
 * caps, ecaps, names, render.
 */
export type { LspciOptions } from './context.js';
export { formatBarSize } from './header.js';
export { type LspciJsonDevice, lspciJson, renderLspci } from './render.js';
