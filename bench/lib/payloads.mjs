// The benchmark payloads, as the wire carries them: one small text doc, and 64 docs with a
// 768-float32 embedding each, for the no-op executor in bench/grpc-overhead.
import { join } from 'node:path';
import { createDataRequest } from '@marie/core';
import { DocList } from '@marie/docs';
import { encodeDataRequest } from '@marie/proto';

const root = join(import.meta.dirname, '..', '..');

// The tsx-loaded executor module imports @marie/* from dist: build first (npm run build).
const { BenchDoc } = await import(join(root, 'node_modules/tsx/dist/esm/api/index.mjs')).then(
  (tsx) =>
    tsx
      .register({ namespace: 'bench' })
      .import('../grpc-overhead/noop-executor.ts', import.meta.url),
);

export const NOOP_DIR = join(root, 'bench', 'grpc-overhead');
export const MARIE_BIN = join(root, 'packages/cli/dist/bin.js');

export const small = encodeDataRequest(
  createDataRequest({ endpoint: '/noop', docs: new DocList(BenchDoc, [{ text: 'hello world' }]) }),
);
const embedding = () => Float32Array.from({ length: 768 }, (_, i) => Math.sin(i));
export const big = encodeDataRequest(
  createDataRequest({
    endpoint: '/noop',
    docs: new DocList(
      BenchDoc,
      Array.from({ length: 64 }, (_, i) => ({ text: `doc ${i}`, embedding: embedding() })),
    ),
  }),
);
