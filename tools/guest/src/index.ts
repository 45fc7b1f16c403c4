/**
 * The guest suite's API for suite authors: define a suite of boots and checks in
 * src/suites/<name>.ts and list it in src/suites/index.ts.
 */
export { CI_QEMU, chooseQemu, PACKAGE_DIR, repoRoot } from './env.js';
export { libraryClosure } from './initramfs/elf.js';
export type { CaseResult } from './report/junit.js';
export { ATTACH_CHECK, SERVER_CHECK } from './run/boot.js';
export { factsOf, parseResults } from './run/results.js';
export * from './suite.js';
