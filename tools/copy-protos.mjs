#!/usr/bin/env node
// Copies the wire contract (the repository's protos/, its one committed copy) into
// packages/proto/protos, which @marie/proto ships. Run by that package's build and prepack;
// tests/packaging.spec.ts fails when the packed files differ from protos/.
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const to = join(root, 'packages/proto/protos');
rmSync(to, { recursive: true, force: true });
cpSync(join(root, 'protos'), to, {
  recursive: true,
  filter: (src) => !/\.(ya?ml|md)$/.test(src),
});
