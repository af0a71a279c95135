#!/usr/bin/env node
// Regenerates the ts-proto code from protos/ into a temporary folder (offline: buf and ts-proto are
// npm packages) and fails when it differs from what is committed in packages/proto.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'marie-protos-'));

function list(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? list(p) : [p];
  });
}

function compare(expectedDir, actualDir, label) {
  const want = list(expectedDir)
    .map((f) => relative(expectedDir, f))
    .sort();
  const have = list(actualDir)
    .map((f) => relative(actualDir, f))
    .sort();
  const problems = [];
  for (const f of new Set([...want, ...have])) {
    if (!want.includes(f)) problems.push(`${label}/${f}: committed but no longer generated`);
    else if (!have.includes(f)) problems.push(`${label}/${f}: generated but not committed`);
    else if (
      readFileSync(join(expectedDir, f), 'utf8') !== readFileSync(join(actualDir, f), 'utf8')
    ) {
      problems.push(`${label}/${f}: differs from a fresh generation`);
    }
  }
  return problems;
}

try {
  execFileSync(
    join(root, 'node_modules/.bin/buf'),
    ['generate', 'protos', '--template', 'protos/buf.gen.yaml', '-o', tmp],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  const problems = [
    ...compare(
      join(tmp, 'packages/proto/src/generated'),
      join(root, 'packages/proto/src/generated'),
      'packages/proto/src/generated',
    ),
  ];
  if (problems.length) {
    console.error(
      `check-generated: run \`npm run generate -w @marie/proto\`\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
    process.exit(1);
  }
  console.log('check-generated: generated protobuf code is up to date');
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
