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
