/**
 * The one vitest configuration every package's tests run with; each package's vitest.config.ts
 * re-exports it, so `npx vitest run <file>` inside a package finds it. Tests import the
 * workspace packages' TypeScript sources (the `@vfiokit/source` export condition), so a change
 * in one package is tested in the others without a build; each package writes its JUnit report
 * to reports/junit.xml, which scripts/test-all.mjs counts.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['@vfiokit/source'] },
  ssr: { resolve: { conditions: ['@vfiokit/source'] } },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    reporters: ['default', 'junit'],
    outputFile: { junit: 'reports/junit.xml' },
    testTimeout: 30_000,
  },
});
