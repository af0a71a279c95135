// A submit's writes: pg-boss's job row, the job index row (ids and idempotency keys), the job
// record where it shares the database, and the NOTIFY that wakes a worker.
import { currentTraceparent } from '@marie/core';
import { type JobSubmission, SUBMIT_DEFAULTS } from '@marie/jobs-contract';
import type { JobRecords } from '@marie/storage';
import pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { JobData } from './jobs.js';
import { SUBMIT_CHANNEL } from './jobs.js';

/** Where a submit writes. */
export interface InsertContext {
  pool: pg.Pool;
  boss: PgBoss;
  /** The index table, schema-qualified. */
  index: string;
  /** The job records, when they live in this database (written in the same transaction). */
  records?: JobRecords;
}

/** Thrown by the one-trip insert when pg-boss's insert is not the statement it expects. */
export const NOT_ONE_STATEMENT = new Error(
  'pg-boss insert is not one statement with one parameter',
);

/** The job that holds an idempotency key (the winner of a race for it). */
async function winnerOf(
  db: Pick<pg.Pool, 'query'> | pg.PoolClient,
  index: string,
  key: string,
): Promise<string> {
  const seen = await db.query(`SELECT id FROM ${index} WHERE idempotency_key = $1`, [key]);
  return seen.rows[0].id as string;
}

/**
 * The index row, pg-boss's job row and the NOTIFY that wakes a worker, in one round trip: one
 * simple-protocol query of two statements, which Postgres runs as one implicit transaction.
 * pg-boss's insert (one statement, its one parameter the job as JSON) is taken from its `db`
 * hook with the parameter written in as a literal, as pg-boss does for its own flow inserts. A
 * key already taken divides by zero, which rolls both back; the winner's id is answered then.
 * An insert of another shape (a pg-boss upgrade) throws NOT_ONE_STATEMENT, and the caller
 * takes the transaction below.
 */
export async function insertInOneTrip(
  ctx: InsertContext,
  queue: string,
  id: string,
  key: string | null,
  s: JobSubmission,
): Promise<string | undefined> {
  const lit = pg.escapeLiteral;
  const index = `WITH ins AS (
      INSERT INTO ${ctx.index} (id, queue, idempotency_key)
      VALUES (${lit(id)}, ${lit(queue)}, ${key === null ? 'NULL' : lit(key)})
      ON CONFLICT (idempotency_key) DO NOTHING RETURNING id)
    SELECT 1 / (SELECT count(*)::int FROM ins) AS inserted, pg_notify(${lit(SUBMIT_CHANNEL)}, ${lit(queue)})`;
  // The job record too, when it lives in this database: PENDING exactly when the job exists.
  const record = ctx.records ? `;\n${ctx.records.createStatement(id, infoOf(s), lit)}` : '';
  let taken = false;
  const db = {
    executeSql: async (text: string, values?: unknown[]) => {
      if (values?.length !== 1 || typeof values[0] !== 'string' || !/^[^$]*\$1[^$]*$/.test(text))
        throw NOT_ONE_STATEMENT;
      try {
        const results = (await ctx.pool.query(
          `${index}${record};\n${text.replace('$1', () => lit(values[0] as string))}`,
        )) as unknown as pg.QueryResult[];
        return results.at(-1)!;
      } catch (err) {
        if ((err as { code?: string }).code === '22012' && key !== null) taken = true;
        throw err;
      }
    },
  };
  try {
    await ctx.boss.send(queue, dataOf(s) as object, { ...sendOptions(s), id, db });
    return undefined;
  } catch (err) {
    if (!taken) throw err;
    return winnerOf(ctx.pool, ctx.index, key!);
  }
}

/** The same as one explicit transaction (four round trips). */
export async function insertInTransaction(
  ctx: InsertContext,
  queue: string,
  id: string,
  key: string | null,
  s: JobSubmission,
): Promise<string | undefined> {
  const client = await ctx.pool.connect();
  // A checked-out client reports a lost connection as an 'error' event (the pool only listens
  // on idle ones): without a listener the process would die of it. The query fails anyway.
  let lost: Error | undefined;
  const onError = (err: Error) => {
    lost = err;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    // The index row, and a NOTIFY (sent at COMMIT) that wakes an idle worker of the queue.
    const ins = await client.query(
      `WITH ins AS (
         INSERT INTO ${ctx.index} (id, queue, idempotency_key) VALUES ($1, $2, $3)
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id)
       SELECT id, pg_notify($4, $2) FROM ins`,
      [id, queue, key, SUBMIT_CHANNEL],
    );
    if (!ins.rows[0]) {
      // Another submit with this key won the race (the insert waited for its commit): answer
      // its job, on this connection. Asking the pool for a second one while holding this one
      // deadlocks once every connection is held by a submit doing the same.
      await client.query('ROLLBACK');
      return winnerOf(client, ctx.index, key!);
    }
    const db = { executeSql: (text: string, values?: unknown[]) => client.query(text, values) };
    await ctx.boss.send(queue, dataOf(s) as object, { ...sendOptions(s), id, db });
    await client.query('COMMIT');
    return undefined;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.off('error', onError);
    client.release(lost);
  }
}

export function infoOf(s: JobSubmission) {
  return {
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    ...(s.ref_id ? { refId: s.ref_id } : {}),
    ...(s.ref_type ? { refType: s.ref_type } : {}),
  };
}

function dataOf(s: JobSubmission): JobData {
  // The submitter's trace, so that the run joins it (a worker picks it up later, elsewhere).
  const traceparent = currentTraceparent();
  return {
    endpoint: s.endpoint ?? null,
    asset_key: s.asset_key ?? null,
    ref_id: s.ref_id ?? null,
    ref_type: s.ref_type ?? null,
    parameters: s.parameters ?? {},
    ...(traceparent ? { traceparent } : {}),
  };
}

function sendOptions(s: JobSubmission) {
  const retryDelay = s.retry_delay ?? SUBMIT_DEFAULTS.retry_delay;
  return {
    retryLimit: s.retry_limit ?? SUBMIT_DEFAULTS.retry_limit,
    retryDelay,
    retryBackoff: s.retry_backoff ?? SUBMIT_DEFAULTS.retry_backoff,
    ...(s.priority !== undefined ? { priority: s.priority } : {}),
    ...(s.expire_in !== undefined ? { expireInSeconds: s.expire_in } : {}),
    ...(s.start_after !== undefined
      ? { startAfter: typeof s.start_after === 'number' ? s.start_after : new Date(s.start_after) }
      : {}),
  };
}
