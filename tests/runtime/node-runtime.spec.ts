import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@marie/client';
import { describe, expect, it } from 'vitest';
import { ensureNode, NODE_LTS } from '../../tools/use-node.mjs';
import { portOf, runMarie, waitReady } from '../support/marie-process.js';

// These run plain Node on the built packages (dist/), as a user's program would: no test runner
// transforms anything. nx builds the packages before this project's tests.
const run = promisify(execFile);
const here = import.meta.dirname;
const root = join(here, '..', '..');

const script = (body: string) => `
import { loadExecutor, RequestHandler } from '@marie/core';
${body}
`;

async function node(code: string, cwd: string, execPath = process.execPath) {
  const { stdout } = await run(execPath, ['--input-type=module', '-e', code], {
    cwd,
    env: { ...process.env, MARIE_LOG_LEVEL: 'silent' },
  });
  return stdout.trim();
}

// Node 22.18+ and 24 strip types from .ts files on their own and stop at decorators; the loader
// must hand .ts executor modules to tsx on both supported majors.
const NODES = [
  ['24', NODE_LTS],
  ['22', '22.23.5'],
] as const;

describe('the packages under plain Node', () => {
  it('runs the suite on Node 24 in CI', () => {
    if (process.env.CI) expect(process.version).toBe(`v${NODE_LTS}`);
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
  });

  for (const [major, version] of NODES) {
    const execPath = () =>
      process.version === `v${version}` ? process.execPath : join(ensureNode(version), 'node');

    it(`Node ${major}: loads a YAML config whose module is TypeScript with decorators`, async () => {
      const out = await node(
        script(`
const ex = await loadExecutor('fixtures/plain.yml');
const docs = await new RequestHandler(ex).post('/reverse', [{ text: 'abc' }]);
console.log(process.versions.node, JSON.stringify(docs));
`),
        here,
        execPath(),
      );
      const [v, json] = out.split(' ');
      expect(v).toBe(version);
      expect(JSON.parse(json!)[0].text).toBe('cba!');
    }, 60_000);

    it(`Node ${major}: marie executor serves a .ts module (--uses Class --py-modules file.ts)`, async () => {
      const marie = runMarie(
        [
          'executor',
          '--uses',
          'Reverser',
          '--py-modules',
          'fixtures/plain-executor.ts',
          '--port',
          '0',
        ],
        { cwd: here, node: execPath() },
      );
      try {
        const [line] = await waitReady(marie);
        const client = new Client({ host: `grpc://127.0.0.1:${portOf(line!)}` });
        const docs = await client.post('/reverse', [{ text: 'node' }]);
        client.close();
        expect(docs[0]?.text).toBe('edon');
      } finally {
        marie.child.kill('SIGTERM');
        expect((await marie.exited).code).toBe(0);
      }
    }, 60_000);
  }

  it('runs an executor compiled by tsc (standard decorators, TypeScript emit)', async () => {
    const outDir = join(here, '.out');
    rmSync(outDir, { recursive: true, force: true });
    await run(process.execPath, [
      join(root, 'node_modules/typescript/bin/tsc'),
      '-p',
      join(here, 'fixtures/tsconfig.json'),
    ]);
    const out = await node(
      script(`
const { Reverser } = await import('./.out/plain-executor.js');
const handler = new RequestHandler(new Reverser({ suffix: '?' }));
const docs = await handler.post('/reverse', [{ text: 'xyz' }]);
console.log(JSON.stringify({ text: docs[0].text, endpoints: handler.endpoints().endpoints }));
`),
      here,
    );
    expect(JSON.parse(out)).toEqual({ text: 'zyx?', endpoints: ['/reverse', '_jina_dry_run_'] });
  });
});
