import { createHash } from 'node:crypto';
import type { Database, Queryable } from './database.js';

/** One versioned step of a schema: applied once per database, in order, recorded by id. */
export interface Migration {
  /** Unique within its set and stable forever, e.g. `store:public.store:001`. */
  id: string;
  up: (q: Queryable) => Promise<void>;
}

/** The table that records applied migrations, in `schema`. */
export const MIGRATIONS_TABLE = 'marie_migrations';

/**
 * Applies the migrations not yet recorded, in one transaction under a transaction-level advisory
 * lock (one key for every migration set, so that two sets' CREATE SCHEMA never race either): two executors starting together against an empty database both come
 * up (the second waits, then finds everything applied). Returns the ids it applied.
 */
export async function migrate(
  db: Database,
  schema: string,
  migrations: readonly Migration[],
): Promise<string[]> {
  return db.transaction(async (q) => {
    await q.query('SELECT pg_advisory_xact_lock($1)', [advisoryKey('migrations')]);
    await q.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await q.query(
      `CREATE TABLE IF NOT EXISTS "${schema}".${MIGRATIONS_TABLE} (
         id text PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const done = await q.query<{ id: string }>(`SELECT id FROM "${schema}".${MIGRATIONS_TABLE}`);
    const applied = new Set(done.rows.map((r) => r.id));
    const now: string[] = [];
    for (const m of migrations) {
      if (applied.has(m.id)) continue;
      await m.up(q);
      await q.query(`INSERT INTO "${schema}".${MIGRATIONS_TABLE} (id) VALUES ($1)`, [m.id]);
      now.push(m.id);
    }
    return now;
  }, 'migration');
}

/** A 64-bit advisory lock key from a name. */
export function advisoryKey(name: string): string {
  return createHash('sha256').update(`marie:${name}`).digest().readBigInt64BE(0).toString();
}
