import { mergeConfig } from 'vitest/config';
import { sharedConfig } from '../../vitest.shared.ts';

// Real Postgres, PGlite and S3 servers start in these tests.
export default mergeConfig(sharedConfig, { test: { testTimeout: 60_000, hookTimeout: 60_000 } });
