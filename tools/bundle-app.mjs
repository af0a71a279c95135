#!/usr/bin/env node
// Bundles one app for its image: OUT/ holds the app's built code, config.yml and README, and a
// node_modules with only its production dependencies. The workspace packages it needs (its
// @marie/* dependencies and theirs) go in as `npm pack` tarballs, installed as a user installs
// them; no dev dependency, no other app, no test. onnxruntime-node is pruned to linux-x64 (it
// ships every platform's binaries). Run after `nx run-many -t build`:
//   node tools/bundle-app.mjs apps/text-extraction /tmp/out
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';

const [appArg, outArg] = process.argv.slice(2);
if (!appArg || !outArg) {
  console.error('usage: node tools/bundle-app.mjs apps/NAME OUT_DIR');
  process.exit(2);
}
const root = resolve(import.meta.dirname, '..');
const app = resolve(appArg);
const out = resolve(outArg);
const read = (dir) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
const appPkg = read(app);

// Workspace packages by name.
const workspace = new Map();
for (const dir of readdirSync(join(root, 'packages')))
  if (existsSync(join(root, 'packages', dir, 'package.json')))
    workspace.set(read(join(root, 'packages', dir)).name, join(root, 'packages', dir));

// The closure of the app's workspace dependencies (dependencies, and peers the closure has).
const needed = new Set();
const visit = (deps) => {
  for (const name of Object.keys(deps ?? {}))
    if (workspace.has(name) && !needed.has(name)) {
      needed.add(name);
      visit(read(workspace.get(name)).dependencies);
    }
};
visit(appPkg.dependencies);
if (!needed.has('@marie/cli'))
  throw new Error(`${appPkg.name}: an app depends on @marie/cli (its entrypoint)`);

rmSync(out, { recursive: true, force: true });
const tarballs = join(out, '.tarballs');
mkdirSync(tarballs, { recursive: true });
const env = {
  ...process.env,
  npm_config_update_notifier: 'false',
  ONNXRUNTIME_NODE_INSTALL: 'skip',
};
const local = {};
for (const name of [...needed].sort()) {
  const dir = workspace.get(name);
  if (!existsSync(join(dir, 'dist')))
    throw new Error(`${name}: not built (run nx run-many -t build)`);
  const [{ filename }] = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tarballs], {
      cwd: dir,
      env,
      encoding: 'utf8',
    }),
  );
  local[name] = `file:.tarballs/${basename(filename)}`;
}
const external = Object.fromEntries(
  Object.entries(appPkg.dependencies ?? {}).filter(([n]) => !workspace.has(n)),
);
writeFileSync(
  join(out, 'package.json'),
  `${JSON.stringify(
    {
      name: appPkg.name,
      version: appPkg.version,
      private: true,
      type: 'module',
      dependencies: { ...external, ...local },
      // Every @marie/* package comes from its tarball, also where another one depends on it.
      overrides: local,
    },
    null,
    2,
  )}\n`,
);
execFileSync('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--ignore-scripts'], {
  cwd: out,
  env,
  stdio: ['ignore', 'ignore', 'inherit'],
});
rmSync(tarballs, { recursive: true, force: true });

// onnxruntime-node: linux-x64 only (the CPU provider; CUDA libraries come from the GPU image).
const ort = join(out, 'node_modules/onnxruntime-node/bin');
if (existsSync(ort))
  for (const napi of readdirSync(ort))
    for (const platform of readdirSync(join(ort, napi))) {
      const dir = join(ort, napi, platform);
      if (platform !== 'linux') rmSync(dir, { recursive: true, force: true });
      else
        for (const arch of readdirSync(dir))
          if (arch !== 'x64') rmSync(join(dir, arch), { recursive: true, force: true });
    }

// What nothing runs: source maps, type declarations, and pdfjs-dist's modern build, viewer and
// types (@marie/storage loads its legacy build, fonts and cmaps).
const prune = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) prune(p);
    else if (/\.(map|d\.ts|d\.mts|d\.cts)$/.test(e.name)) rmSync(p);
  }
};
prune(join(out, 'node_modules'));
for (const d of ['build', 'web', 'types', 'image_decoders', 'legacy/web', 'legacy/image_decoders'])
  rmSync(join(out, 'node_modules/pdfjs-dist', d), { recursive: true, force: true });
// Packages' own test suites (bintrees ships 2.3 MB of them), and OpenTelemetry's ES module
// builds: Node loads their CommonJS build (`main`, the `default` export condition), never
// `build/esm` or `build/esnext`.
const packages = (dir) =>
  readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .flatMap((e) =>
      e.name.startsWith('@')
        ? readdirSync(join(dir, e.name)).map((n) => join(dir, e.name, n))
        : [join(dir, e.name)],
    );
for (const pkg of packages(join(out, 'node_modules'))) {
  for (const d of ['test', 'tests', '__tests__'])
    rmSync(join(pkg, d), { recursive: true, force: true });
  if (pkg.includes('/@opentelemetry/'))
    for (const d of ['build/esm', 'build/esnext'])
      rmSync(join(pkg, d), { recursive: true, force: true });
}

for (const f of ['dist', 'config.yml', 'stack.yml', 'README.md'])
  if (existsSync(join(app, f))) cpSync(join(app, f), join(out, f), { recursive: true });

const size = (p) => {
  const s = statSync(p);
  return s.isDirectory() ? readdirSync(p).reduce((n, f) => n + size(join(p, f)), 0) : s.size;
};
console.log(
  `${appPkg.name}: ${needed.size} workspace packages, ${(size(out) / 2 ** 20).toFixed(0)} MiB in ${out}`,
);
