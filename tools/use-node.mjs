#!/usr/bin/env node
// Runs a command under Node >= 22, fetching Node 24 LTS when the `node` on PATH is older.
//
//   node tools/use-node.mjs npm run test:all     (what `npm test` does)
//   node tools/use-node.mjs --print [version]     (prints the bin folder of a cached Node)
//
// Why a bootstrap that npm scripts go through (and not a sourced shell script): the README's two
// commands (`npm ci && npm start`, `npm test`) and .ci/run stay exactly as a user types them, it
// works from any shell, and it is one small file with no dependencies that Node 18+ can run. The
// Node binary is the official build, shipped by the npm registry as the plain package
// `node-<platform>-<arch>@<version>` (its only content is bin/node): `npm install` fetches it into
// a cache outside the clone, once; every later run reuses it. On a machine whose `node` is 22 or
// newer nothing is fetched and the command runs as it is.
//
// This file keeps to what Node 18 can parse: it must run on the old node it replaces.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The Node we develop, test and ship on. */
export const NODE_LTS = '24.22.3';
/** The oldest major the packages support (engines.node is >=22.12). */
export const MIN_MAJOR = 22;

export function cacheRoot() {
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return process.env.MARIE_NODE_CACHE || join(cache, 'marie', 'node');
}

/** The bin folder of Node `version` from the cache, fetched from the npm registry on first use. */
export function ensureNode(version = NODE_LTS) {
  const pkg = `node-${process.platform}-${process.arch}`;
  const home = join(cacheRoot(), version);
  const bin = join(home, 'node_modules', pkg, 'bin');
  if (existsSync(join(bin, 'node'))) return bin;
  mkdirSync(cacheRoot(), { recursive: true });
  // Install into a fresh folder, then rename: a second bootstrap running at the same time, or one
  // killed half-way, never sees a half-written Node.
  const tmp = mkdtempSync(join(cacheRoot(), `.${version}-`));
  process.stderr.write(`use-node: fetching ${pkg}@${version} into ${home}\n`);
  const npm = spawnSync(
    'npm',
    [
      'install',
      '--prefix',
      tmp,
      '--no-save',
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      '--loglevel=error',
      `${pkg}@${version}`,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, npm_config_global: 'false' } },
  );
  if (npm.status !== 0 || !existsSync(join(tmp, 'node_modules', pkg, 'bin', 'node'))) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(
      `use-node: npm could not install ${pkg}@${version} (exit ${npm.status}); install Node ${MIN_MAJOR}+ and retry`,
    );
  }
  try {
    renameSync(tmp, home);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(join(bin, 'node'))) throw err;
  }
  return bin;
}

function major(v) {
  return Number(v.replace(/^v/, '').split('.')[0]);
}

/** PATH with a Node >= MIN_MAJOR first: the current one when it is new enough, else the cached LTS. */
export function nodePath(env = process.env) {
  if (major(process.version) >= MIN_MAJOR)
    return { bin: dirname(process.execPath), fetched: false, env };
  const bin = ensureNode(NODE_LTS);
  return { bin, fetched: true, env: { ...env, PATH: `${bin}${delimiter}${env.PATH || ''}` } };
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const args = process.argv.slice(2);
  if (args[0] === '--print') {
    process.stdout.write(`${ensureNode(args[1] || NODE_LTS)}\n`);
    process.exit(0);
  }
  if (args.length === 0) {
    process.stderr.write('usage: node tools/use-node.mjs COMMAND [ARGS...]\n');
    process.exit(2);
  }
  const { env, fetched, bin } = nodePath();
  if (fetched)
    process.stderr.write(
      `use-node: node ${process.version} is older than ${MIN_MAJOR}; running under ${join(bin, 'node')}\n`,
    );
  const child = spawn(args[0], args.slice(1), { stdio: 'inherit', env });
  // The child is in our process group: a terminal's Ctrl-C reaches it directly; a SIGTERM sent to
  // this process alone is passed on so that the command still shuts down cleanly.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('error', (err) => {
    process.stderr.write(`use-node: ${args[0]}: ${err.message}\n`);
    process.exit(127);
  });
  child.on('exit', (code, signal) => {
    if (!signal) process.exit(code ?? 1);
    // Die of the same signal, as a shell reports it (128 + n).
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  });
}
