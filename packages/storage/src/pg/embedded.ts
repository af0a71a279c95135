import { mkdirSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { join, resolve } from 'node:path';
import { acquirePidLock } from '@marie/core';

/** An in-process Postgres (PGlite, WebAssembly) reachable over a loopback socket. */
export interface EmbeddedPostgres {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  stop(): Promise<void>;
}

/**
 * Starts PGlite on `dir` (created when missing; `memory://` keeps nothing) behind pglite-socket,
 * so that the same `pg` code talks to it as to a server. PGlite is one backend for every connection:
 * callers keep a pool of one.
 */
export async function startEmbeddedPostgres(dir: string): Promise<EmbeddedPostgres> {
  const [{ PGlite }, { PGLiteSocketServer }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('@electric-sql/pglite-socket'),
  ]);
  const memory = dir.startsWith('memory://');
  const dataDir = memory ? dir : resolve(dir);
  let unlock = () => {};
  if (!memory) {
    mkdirSync(dataDir, { recursive: true });
    unlock = lockDir(dataDir);
  }
  let db: Awaited<ReturnType<typeof PGlite.create>>;
  try {
    db = await PGlite.create(memory ? {} : { dataDir });
  } catch (err) {
    unlock();
    throw err;
  }
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 4 });
  await server.start();
  // pglite-socket 0.2.17 reports the port it was given, not the one it got: ask its listener.
  const listener = (server as unknown as { server?: Server }).server;
  const address = listener?.address() as AddressInfo | null | undefined;
  if (!address || typeof address !== 'object') {
    await server.stop();
    await db.close();
    unlock();
    throw new Error('embedded Postgres: the socket server did not report its port');
  }
  let stopped: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port: address.port,
    dataDir,
    stop: () =>
      (stopped ??= (async () => {
        try {
          await server.stop();
          await db.close();
        } finally {
          unlock();
        }
      })()),
  };
}

/**
 * One process per data folder: PGlite does not lock it, and two writers would corrupt it (replicas
 * share a workspace).
 */
function lockDir(dir: string): () => void {
  return acquirePidLock(
    join(dir, 'marie-embedded.lock'),
    (owner) =>
      `${dir} is in use by process ${owner}: an embedded Postgres serves one process (give replicas a server through url)`,
  );
}
