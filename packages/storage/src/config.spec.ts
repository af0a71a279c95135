import { Writable } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { throwawayCluster } from '../test/support/postgres.js';
import { describeTarget, parsePsqlConfig } from './config.js';
import { Database } from './pg/database.js';
import { isTransient, withRetry } from './pg/retry.js';
import { parseStorageConfig, Storage } from './storage.js';

describe('storage config', () => {
  it("reads Marie's keys and defaults", () => {
    const c = parsePsqlConfig({
      enabled: true,
      hostname: 'db',
      port: 5433,
      database: 'marie',
      username: 'marie',
      password: 's3cret',
      asset_tracking_enabled: true,
      provider: 'postgresql',
    });
    expect(c).toMatchObject({
      enabled: true,
      hostname: 'db',
      port: 5433,
      database: 'marie',
      username: 'marie',
      schema: 'public',
      defaultTable: 'store',
      poolSize: 5,
      assetTrackingEnabled: true,
      assetSchema: 'marie_scheduler',
    });
    expect(describeTarget(c)).toBe('db:5433/marie');
    expect(parsePsqlConfig({ enabled: 'true', port: '5432' }).enabled).toBe(true);
  });

  it('names an unknown key, a bad value and an unresolved variable', () => {
    expect(() => parsePsqlConfig({ enabled: true, hots: 'x' })).toThrow(
      'storage.psql.hots: unknown key',
    );
    expect(() => parseStorageConfig({ pqsl: {} })).toThrow(
      'storage.pqsl: unknown key (known: psql, s3, file)',
    );
    expect(() => parsePsqlConfig({ port: 70000 })).toThrow(
      'storage.psql.port: expected an integer 1-65535',
    );
    expect(() => parsePsqlConfig({ schema: 'a;drop' })).toThrow(
      'storage.psql.schema: "a;drop" is not a plain SQL identifier',
    );
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the unresolved reference is the point.
    expect(() => parsePsqlConfig({ password: '${POSTGRES_PASSWORD}' })).toThrow(
      'storage.psql.password: looks like an unresolved',
    );
    expect(() => parsePsqlConfig({ url: 'mysql://x' })).toThrow(
      'storage.psql.url: expected a postgres://',
    );
    expect(() => parseStorageConfig({ s3: { bucket: 'x' } })).toThrow(
      'storage.s3.bucket: unknown key',
    );
  });

  it('an unreachable server names host:port and the cause, never the password (errors and logs)', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk, _enc, cb) {
          lines.push(String(chunk));
          cb();
        },
      }),
    );
    const password = 'pw-Zq81-never-shown';
    const cfg = parsePsqlConfig({
      enabled: true,
      hostname: '127.0.0.1',
      port: 1,
      password,
      max_attempts: 2,
    });
    const err = await Database.connect(cfg, { logger }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(
      /postgres 127\.0\.0\.1:1\/postgres: query failed: .*ECONNREFUSED/,
    );
    expect((err as Error).message).not.toContain(password);
    expect((err as Error).stack).not.toContain(password);
    expect(lines.length).toBeGreaterThan(0); // the retry was logged
    expect(lines.join('')).not.toContain(password);
    const url = `postgres://marie:${password}@127.0.0.1:1/marie`;
    const viaUrl = await Database.connect(
      parsePsqlConfig({ enabled: true, url, max_attempts: 1 }),
      { logger },
    ).catch((e: Error) => e);
    expect((viaUrl as Error).message).toContain('127.0.0.1:1/marie');
    expect((viaUrl as Error).message).not.toContain(password);
  });

  it('a storage that is not enabled says so', async () => {
    const s = new Storage({ psql: { enabled: false } });
    await s.open();
    await expect(s.store('r', 't', 'content', [])).rejects.toThrow('storage is not enabled');
  });
});

describe('retries', () => {
  it('classifies transient failures by SQLSTATE, errno and message', () => {
    const e = (code: string) => Object.assign(new Error('x'), { code });
    expect(
      ['57P01', '40001', '53300', 'ECONNRESET', '08006'].map((c) => isTransient(e(c))),
    ).toEqual([true, true, true, true, true]);
    expect(['23505', '42601', '42501', '22P02'].map((c) => isTransient(e(c)))).toEqual([
      false,
      false,
      false,
      false,
    ]);
    expect(isTransient(new Error('Connection terminated unexpectedly'))).toBe(true);
  });

  it('retries transient failures with capped backoff, not permanent ones', async () => {
    let n = 0;
    const out = await withRetry(
      async () => {
        if (++n < 3) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
        return 'ok';
      },
      { maxAttempts: 5, baseMs: 1, maxMs: 2 },
    );
    expect([out, n]).toEqual(['ok', 3]);
    let m = 0;
    await expect(
      withRetry(
        async () => {
          m++;
          throw Object.assign(new Error('duplicate key'), { code: '23505' });
        },
        { maxAttempts: 5, baseMs: 1 },
      ),
    ).rejects.toThrow('duplicate key');
    expect(m).toBe(1);
  });

  it('a store whose connection is terminated (57P01) mid-transaction is retried and lands once', async () => {
    const cluster = await throwawayCluster();
    const lines: string[] = [];
    const logger = pino(
      new Writable({
        write(chunk, _enc, cb) {
          lines.push(String(chunk));
          cb();
        },
      }),
    );
    const storage = new Storage({ psql: { enabled: true, url: cluster.url } }, { logger });
    const admin = new pg.Client({ connectionString: cluster.url, application_name: 'test-admin' });
    try {
      await storage.open();
      await admin.connect();
      // Hold the table so that the store's INSERT waits inside its transaction, then end that
      // backend as an admin shutdown would (pg_terminate_backend: SQLSTATE 57P01).
      await admin.query('BEGIN');
      await admin.query('LOCK TABLE public.store IN ACCESS EXCLUSIVE MODE');
      const docs = Array.from({ length: 300 }, (_, i) => ({ id: `d${i}`, content: { i } }));
      const storing = storage.store('ref', 'kill', 'content', docs);
      for (let waiting = 0; waiting === 0; ) {
        await new Promise((r) => setTimeout(r, 20));
        const w = await admin.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'marie_scheduler' AND wait_event_type = 'Lock'`,
        );
        waiting = w.rows[0].n;
      }
      const killed = await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'marie_scheduler' AND wait_event_type = 'Lock'`,
      );
      expect(killed.rowCount).toBe(1);
      await admin.query('COMMIT');
      expect(await storing).toBe(300);
      expect((await storage.documents.byRef('ref', 'kill')).length).toBe(300);
      expect(
        lines.some((l) => l.includes('postgres store failed; retrying') && l.includes('57P01')),
      ).toBe(true);
    } finally {
      await admin.end().catch(() => {});
      await storage.close();
      cluster.destroy();
    }
  });
});
