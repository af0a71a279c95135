import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

describe('README', () => {
  it('shows the quickstart exactly as examples/quickstart.ts has it', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Quickstart'));
    const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toBe(readFileSync(join(root, 'examples/quickstart.ts'), 'utf8'));
  });

  it('the quickstart runs as `npm start` runs it and prints the vowel counts', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.scripts.start).toBe(
      'node --conditions=@marie/source --import tsx examples/quickstart.ts',
    );
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--conditions=@marie/source', '--import', 'tsx', 'examples/quickstart.ts'],
      { cwd: root, env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } },
    );
    expect(stdout.trim().split('\n')).toEqual([
      'hello marie -> [ 1, 2, 1, 1, 0 ]',
      'documents -> [ 0, 1, 0, 1, 1 ]',
    ]);
  });

  it('names the same test command that .ci/run runs', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const ci = readFileSync(join(root, '.ci/run'), 'utf8');
    expect(readme).toContain('npm test ');
    expect(ci).toMatch(/^npm ci\b/m);
    expect(ci).toMatch(/^npm test$/m);
  });
});
