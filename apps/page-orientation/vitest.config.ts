import { mergeConfig } from 'vitest/config';
import { sharedConfig } from '../../vitest.shared.ts';

// The real PP-OCRv4 detection and direction models run in these tests.
export default mergeConfig(sharedConfig, { test: { testTimeout: 60_000, hookTimeout: 60_000 } });
