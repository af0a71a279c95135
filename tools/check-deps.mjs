#!/usr/bin/env node
// The import rules of the repository's ARCHITECTURE.md (the living plan of the house), checked: which workspace package may import which, what
// core and docs must never import, and that every package a library imports is one it declares
// (so each package installs and works on its own). Exit 1 with one line per violation.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');

// package -> workspace packages it may import (ARCHITECTURE.md, "Packages and their arrows"; a
// package listed here that the plan does not name is reported below).
const ARROWS = {
  '@marie/docs': [],
  '@marie/core': ['@marie/docs'],
  '@marie/proto': ['@marie/core', '@marie/docs'],
  '@marie/transport-grpc': ['@marie/core', '@marie/docs', '@marie/proto'],
  '@marie/transport-http': ['@marie/core', '@marie/docs', '@marie/proto'],
  '@marie/flow': [
    '@marie/core',
    '@marie/docs',
    '@marie/proto',
    '@marie/transport-grpc',
    '@marie/transport-http',
    '@marie/client',
  ],
  // One Client whatever the protocol: it sits above the transports (a transport never imports another).
  '@marie/client': [
    '@marie/core',
    '@marie/docs',
    '@marie/jobs-contract',
    '@marie/transport-grpc',
    '@marie/transport-http',
  ],
  '@marie/gpu': ['@marie/core', '@marie/docs'],
  '@marie/storage': ['@marie/core', '@marie/docs'],
  '@marie/executor': [
    '@marie/core',
    '@marie/docs',
    '@marie/gpu',
    '@marie/storage',
    '@marie/events',
  ],
  '@marie/events': ['@marie/core', '@marie/docs', '@marie/storage'],
  '@marie/ocr': ['@marie/core', '@marie/docs', '@marie/gpu'],
  '@marie/jobs-contract': ['@marie/core'],
  '@marie/jobs': [
    '@marie/core',
    '@marie/docs',
    '@marie/storage',
    '@marie/events',
    '@marie/flow',
    '@marie/jobs-contract',
    '@marie/transport-http',
  ],
  '@marie/pipelines': [
    '@marie/core',
    '@marie/docs',
    '@marie/flow',
    '@marie/jobs',
    '@marie/jobs-contract',
    '@marie/storage',
    '@marie/transport-http',
  ],
  '@marie/metrics': ['@marie/core'],
  '@marie/tracing': ['@marie/core'],
  '@marie/cli': '*',
};
// Never in core or docs: a transport, a server framework, a driver or a native runtime.
const FORBIDDEN_IN_CORE = [
  'fastify',
  '@fastify/',
  '@grpc/',
  'pg',
  'koffi',
  'onnxruntime-node',
  'ws',
  'undici',
  '@aws-sdk/',
];

// What a package must never import, and why.
const FORBIDDEN = {
  '@marie/core': {
    list: FORBIDDEN_IN_CORE,
    why: 'core and docs never import a transport, driver or native runtime',
  },
  '@marie/docs': {
    list: FORBIDDEN_IN_CORE,
    why: 'core and docs never import a transport, driver or native runtime',
  },
  // What a client installs to know the job API: schemas, never the server's queue or database.
  '@marie/jobs-contract': {
    list: ['pg', 'pg-boss', 'fastify', 'undici'],
    why: 'the job contract is schemas only',
  },
  '@marie/client': { list: ['pg', 'pg-boss'], why: 'a client never pulls in the job server' },
};

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const problems = [];

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'dist') return [];
    return statSync(p).isDirectory() ? files(p) : /\.[cm]?tsx?$/.test(name) ? [p] : [];
  });
}

function importsOf(text) {
  const out = [];
  const re =
    /(?:^|[^.\w])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

const packageOf = (spec) =>
  spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];

const projects = ['packages', 'apps']
  .flatMap((d) => {
    try {
      return readdirSync(join(root, d)).map((n) => join(root, d, n));
    } catch {
      return [];
    }
  })
  .filter((dir) => {
    try {
      return statSync(join(dir, 'package.json')).isFile();
    } catch {
      return false;
    }
  });

for (const dir of projects) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const isApp = relative(root, dir).startsWith('apps');
  const runtimeDeps = new Set([
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.peerDependencies ?? {}),
  ]);
  const allDeps = new Set([...runtimeDeps, ...Object.keys(pkg.devDependencies ?? {})]);
  const allowed = isApp ? '*' : ARROWS[pkg.name];
  if (allowed === undefined)
    problems.push(
      `${pkg.name}: not in ARCHITECTURE.md's package list (add its arrows to tools/check-deps.mjs)`,
    );
  for (const file of existsSync(join(dir, 'src')) ? files(join(dir, 'src')) : []) {
    const isSpec = /\.spec\.[cm]?tsx?$/.test(file);
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.') || builtins.has(spec)) continue;
      const name = packageOf(spec);
      const where = `${relative(root, file)}: imports ${spec}`;
      if (name === pkg.name) continue;
      if (name.startsWith('@marie/')) {
        if (name === '@marie/tests' || name.startsWith('@marie/app-'))
          problems.push(`${where} (nothing imports an app or the tests)`);
        else if (allowed !== '*' && !allowed?.includes(name))
          problems.push(`${where} (${pkg.name} may not import ${name})`);
      }
      const never = FORBIDDEN[pkg.name];
      if (never?.list.some((f) => spec === f || (f.endsWith('/') && spec.startsWith(f))))
        problems.push(`${where} (${never.why})`);
      const declared = isSpec ? allDeps.has(name) || name === 'vitest' : runtimeDeps.has(name);
      if (!declared)
        problems.push(
          `${where} (not declared in ${relative(root, join(dir, 'package.json'))}${isSpec ? '' : ' dependencies'})`,
        );
    }
  }
}

const plan = readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8');
for (const name of Object.keys(ARROWS)) {
  if (!plan.includes(name))
    problems.push(`${name}: has arrows here but ARCHITECTURE.md does not name it`);
}

if (problems.length) {
  console.error(
    `check-deps: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}`,
  );
  process.exit(1);
}
console.log(`check-deps: ${projects.length} projects follow the import rules`);
