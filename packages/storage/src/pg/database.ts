import type { Logger, MetricFamily } from '@marie/core';
import { createLogger, registerMetricSource, SpanKind, traced } from '@marie/core';
import pg from 'pg';
import { describeTarget, type PsqlConfig, secretsOf } from '../config.js';
import { describe, redact, StorageError } from '../errors.js';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './embedded.js';
import { isTransient, withRetry } from './retry.js';

export type Queryable = Pick<pg.PoolClient, 'query'>;

export interface DatabaseOptions {
  logger?: Logger;
  /** Backoff cap between attempts of a transient failure (default 1000 ms). */
  maxBackoffMs?: number;
}

/**
 * A pool of connections to one Postgres (a server, or the embedded one), with the retry policy
 * of the storage package: transient failures are retried with capped backoff, the rest are thrown
 * at once, and every error that leaves is a StorageError naming host:port, never the password.
 */
export class Database {
  readonly config: PsqlConfig;
  /** `host:port/database` (or the embedded folder): what errors and logs name. */
  readonly target: string;
  readonly #pool: pg.Pool;
  readonly #embedded?: EmbeddedPostgres;
  readonly #logger: Logger;
  readonly #secrets: string[];
  readonly #maxBackoffMs: number;
  #closed?: Promise<void>;
  readonly #counts = new Map<string, number>();
  #retries = 0;
  readonly #unregister: () => void;

  private constructor(
    config: PsqlConfig,
    pool: pg.Pool,
    options: DatabaseOptions,
    embedded?: EmbeddedPostgres,
  ) {
    this.config = config;
    this.target = describeTarget(config);
    this.#pool = pool;
    if (embedded) this.#embedded = embedded;
    this.#logger = options.logger ?? createLogger('storage');
    this.#secrets = secretsOf(config);
    this.#maxBackoffMs = options.maxBackoffMs ?? 1000;
    this.#unregister = registerMetricSource(() => this.metrics());
    // An idle connection the server dropped (restart, admin shutdown) is discarded by the pool;
    // without a listener the 'error' event would end the process.
    pool.on('error', (err) =>
      this.#logger.warn(
        { target: this.target, cause: this.#clean(err) },
        'idle Postgres connection lost',
      ),
    );
  }

  /** Opens the pool and checks the server answers (retrying a server that is starting). */
  static async connect(config: PsqlConfig, options: DatabaseOptions = {}): Promise<Database> {
    let embedded: EmbeddedPostgres | undefined;
    let poolConfig: pg.PoolConfig;
    if (config.embedded !== undefined) {
      try {
        embedded = await startEmbeddedPostgres(config.embedded);
      } catch (err) {
        throw new StorageError(
          `embedded Postgres in ${config.embedded} failed to start: ${describe(err)}`,
          {
            cause: err,
          },
        );
      }
      // One backend serves every connection of PGlite: more than one pooled client would mix
      // their transactions.
      poolConfig = {
        host: embedded.host,
        port: embedded.port,
        user: 'postgres',
        database: 'postgres',
        max: 1,
      };
    } else if (config.url !== undefined) {
      poolConfig = { connectionString: config.url, max: config.poolSize };
    } else {
      poolConfig = {
        host: config.hostname,
        port: config.port,
        user: config.username,
        database: config.database,
        max: config.poolSize,
        ...(config.password === undefined ? {} : { password: config.password }),
      };
    }
    const pool = new pg.Pool({
      ...poolConfig,
      application_name: config.applicationName,
      connectionTimeoutMillis: 10_000,
      idleTimeoutMillis: 30_000,
    });
    const db = new Database(config, pool, options, embedded);
    try {
      await db.query('SELECT 1');
    } catch (err) {
      await db.close();
      throw err;
    }
    return db;
  }

  /** Whether the pgvector extension is installed (or could be, and now is) in this database. */
  async hasVector(): Promise<boolean> {
    const installed = await this.query(`SELECT 1 FROM pg_extension WHERE extname = 'vector'`);
    if (installed.rowCount) return true;
    const available = await this.query(
      `SELECT 1 FROM pg_available_extensions WHERE name = 'vector'`,
    );
    if (!available.rowCount) return false;
    try {
      await this.query('CREATE EXTENSION IF NOT EXISTS vector');
      return true;
    } catch (err) {
      this.#logger.warn(
        { cause: this.#clean(err) },
        'pgvector is available but cannot be created here; embeddings are real[]',
      );
      return false;
    }
  }

  /** One statement, retried when the failure is transient. */
  query<R extends pg.QueryResultRow = any>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.#run('query', 'query', () => this.#pool.query<R>(text, values));
  }

  /**
   * `fn` inside BEGIN/COMMIT on one connection: all of it or none. A transient failure rolls back
   * and runs `fn` again from the start (so `fn` must do nothing outside the database that it cannot
   * repeat); a permanent one rolls back and is thrown.
   */
  transaction<T>(fn: (client: Queryable) => Promise<T>, what = 'transaction'): Promise<T> {
    return this.#run('transaction', what, async () => {
      let broken: unknown;
      // A checked-out connection that dies emits 'error' besides failing its query: note it, so
      // that it is not an uncaught exception and the connection is not given back.
      const onError = (err: Error) => {
        broken = err;
      };
      const client = await this.#checkout(onError);
      try {
        await client.query('BEGIN');
        const out = await fn(client);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        broken = isTransient(err) ? err : undefined;
        await client.query('ROLLBACK').catch((e: unknown) => {
          broken = e;
        });
        throw err;
      } finally {
        // A connection that failed mid-transaction is not given back to others.
        client.off('error', onError);
        client.release(broken instanceof Error ? broken : undefined);
      }
    });
  }

  /**
   * A pooled connection with `onError` listening from the moment the pool hands it over. The
   * callback form of `pool.connect` runs in the same tick as the handover; awaiting the promise
   * form leaves a gap in which a server that says "ready" and "terminating connection" in one
   * TCP write (a shutdown as the connection opens) emits 'error' with no listener, which ends the
   * process.
   */
  #checkout(onError: (err: Error) => void): Promise<pg.PoolClient> {
    return new Promise((resolve, reject) => {
      this.#pool.connect((err, client) => {
        if (err || !client) return reject(err ?? new Error('the pool gave no connection'));
        client.on('error', onError);
        resolve(client);
      });
    });
  }

  /** Stops the pool (and the embedded server), once. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#unregister();
      await this.#pool.end().catch(() => {});
      await this.#embedded?.stop();
    })();
    return this.#closed;
  }

  /**
   * The pool and what went through it, as Prometheus families (`marie_storage_*`), labelled by
   * `host:port/database`: connections by state, statements and transactions by outcome, retries
   * of transient failures.
   */
  metrics(): MetricFamily[] {
    const target = this.target;
    const pool = this.#pool;
    return [
      {
        name: 'marie_storage_pool_connections',
        help: 'Postgres connections of the pool, by state (total, idle, waiting clients)',
        type: 'gauge',
        labelNames: ['target', 'state'],
        samples: [
          { labels: { target, state: 'total' }, value: pool.totalCount },
          { labels: { target, state: 'idle' }, value: pool.idleCount },
          { labels: { target, state: 'waiting' }, value: pool.waitingCount },
        ],
      },
      {
        name: 'marie_storage_operations_total',
        help: 'Postgres statements and transactions, by outcome (after retries)',
        type: 'counter',
        labelNames: ['target', 'operation', 'outcome'],
        samples: [...this.#counts].map(([key, value]) => {
          const [operation, outcome] = key.split(' ') as [string, string];
          return { labels: { target, operation, outcome }, value };
        }),
      },
      {
        name: 'marie_storage_retries_total',
        help: 'Transient Postgres failures retried',
        type: 'counter',
        labelNames: ['target'],
        samples: [{ labels: { target }, value: this.#retries }],
      },
    ];
  }

  #count(operation: string, outcome: 'ok' | 'error'): void {
    const key = `${operation} ${outcome}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  #run<T>(operation: string, what: string, op: () => Promise<T>): Promise<T> {
    return traced(
      `postgres ${what}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'db.system.name': 'postgresql',
          'db.namespace': this.target,
          'db.operation.name': operation,
        },
      },
      () => this.#attempt(operation, what, op),
    );
  }

  async #attempt<T>(operation: string, what: string, op: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new StorageError(`postgres ${this.target}: the storage is closed`);
    try {
      const out = await withRetry(op, {
        maxAttempts: this.config.maxAttempts,
        maxMs: this.#maxBackoffMs,
        onRetry: (err, attempt, delayMs) => {
          this.#retries++;
          this.#logger.warn(
            { target: this.target, attempt, delayMs, cause: this.#clean(err) },
            `postgres ${what} failed; retrying`,
          );
        },
      });
      this.#count(operation, 'ok');
      return out;
    } catch (err) {
      this.#count(operation, 'error');
      if (err instanceof StorageError) throw err;
      const code = (err as { code?: unknown }).code;
      throw new StorageError(`postgres ${this.target}: ${what} failed: ${this.#clean(err)}`, {
        transient: isTransient(err),
        ...(typeof code === 'string' ? { reason: code } : {}),
      });
    }
  }

  #clean(err: unknown): string {
    return redact(describe(err), this.#secrets);
  }
}
