import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// These run plain Node on the built packages (dist/), as a user's program would: no test runner
// transforms anything. nx builds the packages before this project's tests.
const run = promisify(execFile);
const here = import.meta.dirname;
const root = join(here, '..', '..');

const script = (body: string) => `
import { loadExecutor, RequestHandler } from '@marie/core';
${body}
`;

async function node(code: string, cwd: string) {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], {
    cwd,
    env: { ...process.env, MARIE_LOG_LEVEL: 'silent' },
  });
  return stdout.trim();
}

describe('the packages under plain Node', () => {
  it('loads a YAML config whose module is TypeScript (tsx registered on demand)', async () => {
    const out = await node(
      script(`
const ex = await loadExecutor('fixtures/plain.yml');
const docs = await new RequestHandler(ex).post('/reverse', [{ text: 'abc' }]);
console.log(JSON.stringify(docs));
`),
      here,
    );
    expect(JSON.parse(out)[0].text).toBe('cba!');
  });

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
