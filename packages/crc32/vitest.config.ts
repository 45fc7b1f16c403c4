// The repository's one vitest configuration (vitest.shared.ts at the root).
export { default } from '../../vitest.shared.ts';
