/** The PNG encoder for QUERY_GFX_PLANE frames is generic; it lives in the core. */
export { encodePng, type PngFrame } from '@vfiokit/core';
