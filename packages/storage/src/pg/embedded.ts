import { mkdirSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { resolve } from 'node:path';

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
  if (!memory) mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(memory ? {} : { dataDir });
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 4 });
  await server.start();
  // pglite-socket 0.2.17 reports the port it was given, not the one it got: ask its listener.
  const listener = (server as unknown as { server?: Server }).server;
  const address = listener?.address() as AddressInfo | null | undefined;
  if (!address || typeof address !== 'object') {
    await server.stop();
    await db.close();
    throw new Error('embedded Postgres: the socket server did not report its port');
  }
  let stopped: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port: address.port,
    dataDir,
    stop: () =>
      (stopped ??= (async () => {
        await server.stop();
        await db.close();
      })()),
  };
}
