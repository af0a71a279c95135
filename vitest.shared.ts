import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Workspace packages export their TypeScript sources under the `@marie/source` condition, so
// tests run against src/ without building sibling packages first (tsc uses the same condition).
const conditions = ['@marie/source', ...defaultServerConditions];

export const sharedConfig = defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    include: ['src/**/*.spec.ts', '**/*.spec.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 20_000,
    // Executors under test fail on purpose; keep their error logs out of the test output.
    env: { MARIE_LOG_LEVEL: process.env.MARIE_LOG_LEVEL ?? 'silent' },
  },
});
