import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Workspace packages export their TypeScript sources under the `@marie/source` condition, so
// tests run against src/ without building sibling packages first (tsc uses the same condition).
// Without `module`: @aws-sdk's `module` builds (dist-es) use extensionless imports that Node cannot
// load, and Node itself never takes that condition.
const conditions = ['@marie/source', ...defaultServerConditions.filter((c) => c !== 'module')];

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
