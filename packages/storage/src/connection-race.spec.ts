// A Postgres that says "ready" and "terminating connection" in one TCP write: node-postgres
// parses both in the same tick, so the 'error' event fires before a promise-based checkout has
// resumed. A real server does this now and then when it shuts down just as a connection opens
// (the storage-faults test hit it one run in four); this peer does it every time, at the wire
// level, so that the crash it caused is a test that fails.
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePsqlConfig } from './config.js';
import { Database } from './pg/database.js';

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const int16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');

const AUTH_OK = message('R', int32(0));
const READY = message('Z', Buffer.from('I'));
const FATAL_57P01 = message(
  'E',
  Buffer.concat([
    Buffer.from('S'),
    cstr('FATAL'),
    Buffer.from('C'),
    cstr('57P01'),
    Buffer.from('M'),
    cstr('terminating connection due to administrator command'),
    Buffer.from([0]),
  ]),
);
// The answer to `SELECT 1`: one int4 column, one row.
const SELECT_1 = Buffer.concat([
  message(
    'T',
    Buffer.concat([
      int16(1),
      cstr('?column?'),
      int32(0),
      int16(0),
      int32(23),
      int16(4),
      int32(-1),
      int16(0),
    ]),
  ),
  message('D', Buffer.concat([int16(1), int32(1), Buffer.from('1')])),
  message('C', cstr('SELECT 1')),
  READY,
]);

/**
 * The first connection answers one simple query, then closes (so the pool must open another);
 * every later one is ready and terminated in the same write.
 */
function dyingPostgres(): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer((socket: Socket) => {
    const n = ++connections;
    let started = false;
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      if (!started) {
        started = true; // the startup message: no SSL asked for, trust auth
        if (n === 1) socket.write(Buffer.concat([AUTH_OK, READY]));
        else socket.end(Buffer.concat([AUTH_OK, READY, FATAL_57P01]));
        return;
      }
      if (chunk[0] === 0x51 /* Q */) socket.end(SELECT_1);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (typeof address !== 'object' || !address) throw new Error('no address');
      resolve({ server, port: address.port, connections: () => connections });
    }),
  );
}

describe('a connection the server ends as it opens', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  it('fails the transaction with a StorageError (retried), never an uncaught error event', async () => {
    const peer = await dyingPostgres();
    server = peer.server;
    const config = parsePsqlConfig(
      {
        enabled: true,
        url: `postgres://postgres@127.0.0.1:${peer.port}/postgres`,
        max_attempts: 3,
      },
      'storage.psql',
    );
    const db = await Database.connect(config, { maxBackoffMs: 5 });
    try {
      const err = await db.transaction((c) => c.query('SELECT 1')).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'StorageError' });
      expect(String(err)).toMatch(/terminating connection|not queryable|Connection terminated/);
      // One connection for SELECT 1 (which the first attempt may still find idle), then a fresh
      // one per attempt, each thrown away: at least two ended as they opened.
      expect(peer.connections()).toBeGreaterThanOrEqual(3);
    } finally {
      await db.close();
    }
  });
});
