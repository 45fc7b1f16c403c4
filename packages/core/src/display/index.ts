export * from './drm-format.js';
export * from './png.js';
