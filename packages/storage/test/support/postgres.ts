// Test Postgres, real in every case: the server at DATABASE_URL (CI and this machine set it),
// else a testcontainers PostgreSQL when a Docker engine answers. Each caller gets a database of
// its own, dropped afterwards. `throwawayCluster` starts a private server (initdb + pg_ctl) that a
// test may stop and restart: never the shared one.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestDatabase {
  url: string;
  /** `storage.psql` for it, as YAML would write it. */
  psql: Record<string, unknown>;
  drop(): Promise<void>;
}

let container: Promise<{ url: string; stop(): Promise<unknown> }> | undefined;

export async function dockerAnswers(): Promise<boolean> {
  const socket = process.env.DOCKER_HOST?.replace(/^unix:\/\//, '') ?? '/var/run/docker.sock';
  if (!existsSync(socket)) return false;
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** The admin URL: DATABASE_URL, or a PostgreSQL container started once per test process. */
async function adminUrl(): Promise<string> {
  const env = process.env.DATABASE_URL;
  if (env) return env;
  if (await dockerAnswers()) {
    container ??= (async () => {
      const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
      const c = await new PostgreSqlContainer('postgres:17').start();
      return { url: c.getConnectionUri(), stop: () => c.stop() };
    })();
    return (await container).url;
  }
  throw new Error(
    'the storage tests need Postgres: set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) or run a Docker engine for testcontainers',
  );
}

/** A fresh database on the test server, dropped by `drop()`. */
export async function testDatabase(prefix = 'marie_t'): Promise<TestDatabase> {
  const admin = await adminUrl();
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE "${name}"`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    psql: { enabled: true, url: url.href },
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface Cluster {
  url: string;
  port: number;
  dir: string;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  /** Stops and starts the server without blocking the caller's event loop. */
  restart(mode?: 'fast' | 'immediate'): Promise<void>;
  destroy(): void;
}

const asRoot = process.getuid?.() === 0;

function command(cmd: string, args: string[]): string[] {
  return asRoot
    ? ['su', 'postgres', '-c', [cmd, ...args.map((a) => `'${a}'`)].join(' ')]
    : [cmd, ...args];
}

function runSync(cmd: string, args: string[]): void {
  const full = command(cmd, args);
  const r = spawnSync(full[0]!, full.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
}

/** Runs without blocking the event loop, so that clients keep sending while Postgres restarts. */
async function run(cmd: string, args: string[]): Promise<void> {
  const full = command(cmd, args);
  await new Promise<void>((resolve, reject) => {
    execFile(full[0]!, full.slice(1), (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr || stdout}`)) : resolve(),
    );
  });
}

/** A private Postgres cluster (initdb, pg_ctl; ~1 s) that a test may restart. */
export async function throwawayCluster(): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'marie-pg-'));
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const data = join(dir, 'data');
  runSync('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c fsync=off -c listen_addresses=127.0.0.1`;
  const start = () =>
    run('pg_ctl', ['-D', data, '-o', opts, '-w', '-l', join(dir, 'log'), 'start']);
  const stop = (mode: 'fast' | 'immediate' = 'fast') =>
    run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    stop,
    start,
    async restart(mode = 'fast') {
      await stop(mode);
      await start();
    },
    destroy() {
      try {
        runSync('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {}
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
