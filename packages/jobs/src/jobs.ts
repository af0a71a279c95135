import { randomUUID } from 'node:crypto';
import {
  createLogger,
  ErrorCode,
  type Logger,
  MarieError,
  type MetricFamily,
  registerMetricSource,
} from '@marie/core';
import {
  JOB_STATES,
  type JobState,
  type JobView,
  parseSubmission,
  queueOf,
  TERMINAL_STATES,
} from '@marie/jobs-contract';
import type { JobRecords } from '@marie/storage';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { infoOf, insertInOneTrip, insertInTransaction, NOT_ONE_STATEMENT } from './insert.js';
import { isUuid, type JobRow, view } from './view.js';

/** What a job carries to its worker (pg-boss's `data`). */
export interface JobData {
  endpoint: string | null;
  asset_key: string | null;
  ref_id: string | null;
  ref_type: string | null;
  parameters: Record<string, unknown>;
  /** The submitter's W3C trace context: the run's spans join that trace. */
  traceparent?: string;
}

/** A job event as Marie sends it: `<queue>.<scheduled|started|completed|failed|cancelled>`. */
export interface JobEvent {
  event: string;
  jobid: string;
  /** Marie's: OK for a completion, FAILED for a failure, INFO for the rest. */
  status: 'INFO' | 'OK' | 'FAILED';
  /** The job's ref_type (Marie's jobtag), or its queue when it has none. */
  jobtag: string;
  payload?: Record<string, unknown>;
}

export interface JobsOptions {
  /** The Postgres every gateway and worker shares. */
  connectionString: string;
  /** pg-boss's schema, where the job index lives too ('pgboss'). */
  schema?: string;
  /** Marie's job records (storage issue), kept in step with pg-boss's state. */
  records?: JobRecords;
  /** Where `<queue>.scheduled|started|completed|failed` go (a Toast's notify). */
  notify?: (event: JobEvent) => Promise<unknown>;
  /** Pool size for pg-boss's connections (10). */
  max?: number;
  /**
   * How often pg-boss looks for runs that outlived `expire_in` (their worker gone) to retry or fail
   * them (seconds, 60): its supervise and queue-monitor intervals both.
   */
  superviseIntervalSeconds?: number;
  /**
   * Queues this Jobs creates require a worker's heartbeat every this many seconds (30; pg-boss
   * refreshes it while a run lasts). A run whose worker died is retried once its heartbeat is
   * this stale, rather than when its `expire_in` (15 minutes unless given) runs out. 0: none.
   */
  heartbeatSeconds?: number;
  /**
   * Submit in one round trip (true; see `submit`); false: one explicit transaction of four, as
   * when pg-boss's insert is not one statement with one parameter.
   */
  submitInOneTrip?: boolean;
  logger?: Logger;
}

/** The notification channel that tells workers a job was cancelled (payload: its id). */
export const CANCEL_CHANNEL = 'marie_job_cancel';
/** The notification channel that tells workers a job was submitted (payload: its queue). */
export const SUBMIT_CHANNEL = 'marie_job_submit';

/**
 * Document jobs on pg-boss: submitted once per idempotency key, scheduled with pg-boss's retry,
 * expiry and delay options, listed, cancelled. Many gateways and `marie worker` processes share
 * one database. A small index table beside pg-boss's maps a job id to its queue (pg-boss's job
 * table is keyed by queue and id) and holds the idempotency keys, written in the same transaction
 * as the job itself.
 */
export class Jobs {
  readonly boss: PgBoss;
  readonly schema: string;
  readonly records: JobRecords | undefined;
  /** The database, as given (workers open their LISTEN connection with it). */
  readonly connectionString: string;
  readonly #pool: pg.Pool;
  readonly #notify: JobsOptions['notify'];
  readonly #logger: Logger;
  readonly #queues = new Map<string, Promise<void>>();
  #oneTrip: boolean;
  readonly #heartbeat: number;
  /** The records share this database: a submit writes its record in the same transaction. */
  #recordsInSubmit: boolean;
  #started?: Promise<void>;
  readonly #submitted = new Map<string, number>();
  #unregister: (() => void) | undefined;

  constructor(options: JobsOptions) {
    this.schema = options.schema ?? 'pgboss';
    if (!/^[a-z_][a-z0-9_]*$/.test(this.schema))
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `schema: "${this.schema}" is not a plain lowercase name`,
        {
          field: 'schema',
        },
      );
    this.#logger = options.logger ?? createLogger('jobs');
    this.connectionString = options.connectionString;
    this.boss = new PgBoss({
      connectionString: options.connectionString,
      schema: this.schema,
      max: options.max ?? 10,
      ...(options.superviseIntervalSeconds
        ? {
            superviseIntervalSeconds: options.superviseIntervalSeconds,
            monitorIntervalSeconds: options.superviseIntervalSeconds,
          }
        : {}),
    });
    (this.boss as unknown as NodeJS.EventEmitter).on('error', (err: Error) =>
      this.#logger.warn({ err: err.message }, 'pg-boss error'),
    );
    this.#pool = new pg.Pool({ connectionString: options.connectionString, max: 4 });
    this.#pool.on('error', (err) =>
      this.#logger.warn({ err: err.message }, 'idle Postgres connection lost'),
    );
    this.records = options.records;
    this.#notify = options.notify;
    this.#oneTrip = options.submitInOneTrip ?? true;
    this.#heartbeat = options.heartbeatSeconds ?? 30;
    if (this.#heartbeat !== 0 && !(Number.isInteger(this.#heartbeat) && this.#heartbeat >= 10))
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `heartbeatSeconds: ${this.#heartbeat} (whole seconds, at least 10; 0 for none)`,
        { field: 'heartbeatSeconds' },
      );
    this.#recordsInSubmit =
      this.#oneTrip && options.records?.db.config.url === options.connectionString;
  }

  get index(): string {
    return `${this.schema}.marie_job_index`;
  }

  /** Installs or migrates pg-boss's schema and the job index. */
  start(): Promise<void> {
    this.#started ??= (async () => {
      this.#unregister ??= registerMetricSource(() => this.metrics());
      await this.boss.start();
      await this.#pool.query(
        `CREATE TABLE IF NOT EXISTS ${this.index} (
           id uuid PRIMARY KEY,
           queue text NOT NULL,
           idempotency_key text UNIQUE,
           created_on timestamptz NOT NULL DEFAULT now()
         )`,
      );
    })();
    return this.#started;
  }

  /**
   * Jobs submitted by this process, and every queue it knows by state as pg-boss's monitor last
   * counted them (`marie_jobs_*`): a scrape costs one query.
   */
  async metrics(): Promise<MetricFamily[]> {
    const names = [...this.#queues.keys()];
    const queues = names.length ? await this.boss.getQueues(names) : [];
    const states = ['queued', 'ready', 'deferred', 'active', 'failed'] as const;
    return [
      {
        name: 'marie_jobs_submitted_total',
        help: 'Jobs this process created (a repeated idempotency key is not counted)',
        type: 'counter',
        labelNames: ['queue'],
        samples: [...this.#submitted].map(([queue, value]) => ({ labels: { queue }, value })),
      },
      {
        name: 'marie_jobs_queue_jobs',
        help: "Jobs of a queue by state, as pg-boss's monitor last counted them",
        type: 'gauge',
        labelNames: ['queue', 'state'],
        samples: queues.flatMap((q) =>
          states.map((state) => ({
            labels: { queue: q.name, state },
            value: Number(q[`${state}Count`] ?? 0),
          })),
        ),
      },
    ];
  }

  async stop(options: { graceful?: boolean; timeoutMs?: number } = {}): Promise<void> {
    this.#unregister?.();
    this.#unregister = undefined;
    await this.boss.stop({
      graceful: options.graceful ?? true,
      timeout: options.timeoutMs ?? 10_000,
    });
    await this.#pool.end();
  }

  /** The pool the index lives on. */
  get pool(): pg.Pool {
    return this.#pool;
  }

  /**
   * Queues a job; a bad body throws a MarieError naming the field. The same idempotency key
   * returns the job it first made (`created: false`), whatever the body says this time.
   */
  async submit(body: unknown): Promise<{ job_id: string; created: boolean }> {
    const s = parseSubmission(body);
    await this.start();
    const queue = queueOf(s);
    await this.ensureQueue(queue);
    const key = s.idempotency_key ?? null;
    if (key) {
      const seen = await this.#pool.query(
        `SELECT id FROM ${this.index} WHERE idempotency_key = $1`,
        [key],
      );
      if (seen.rows[0]) return { job_id: seen.rows[0].id, created: false };
    }
    const id = randomUUID();
    const ctx = {
      pool: this.#pool,
      boss: this.boss,
      index: this.index,
      ...(this.records && this.#recordsInSubmit ? { records: this.records } : {}),
    };
    const winner = this.#oneTrip
      ? await insertInOneTrip(ctx, queue, id, key, s).catch((err: unknown) => {
          if (err !== NOT_ONE_STATEMENT) throw err;
          // For good: pg-boss's insert will not change shape while this process runs.
          this.#logger.warn('pg-boss insert is not one statement; submitting in a transaction');
          this.#oneTrip = false;
          this.#recordsInSubmit = false;
          return insertInTransaction(ctx, queue, id, key, s);
        })
      : await insertInTransaction(ctx, queue, id, key, s);
    if (winner) return { job_id: winner, created: false };
    this.#submitted.set(queue, (this.#submitted.get(queue) ?? 0) + 1);
    if (!this.#recordsInSubmit) await this.records?.create(id, infoOf(s));
    await this.event(queue, 'scheduled', id, 'INFO', { ref_id: s.ref_id ?? null }, s.ref_type);
    return { job_id: id, created: true };
  }

  /** A queue pg-boss knows (created once per process; creating an existing one is a no-op). */
  ensureQueue(name: string): Promise<void> {
    let made = this.#queues.get(name);
    if (!made) {
      made = (async () => {
        await this.start();
        if (!(await this.boss.getQueue(name)))
          await this.boss.createQueue(
            name,
            this.#heartbeat ? { heartbeatSeconds: this.#heartbeat } : {},
          );
      })();
      made.catch(() => this.#queues.delete(name));
      this.#queues.set(name, made);
    }
    return made;
  }

  /** The job, or undefined for an id no submit made. */
  async get(id: string): Promise<JobView | undefined> {
    if (!isUuid(id)) return undefined;
    const [job] = await this.#select('i.id = $1', [id]);
    return job;
  }

  /** Newest first, filtered by state and queue; `after` is the last job_id of the previous page. */
  async list(
    options: { state?: JobState; queue?: string; limit?: number; after?: string } = {},
  ): Promise<JobView[]> {
    if (options.state !== undefined && !JOB_STATES.includes(options.state))
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `state: "${options.state}" is not one of ${JOB_STATES.join(', ')}`,
        {
          field: 'state',
        },
      );
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new MarieError(ErrorCode.InvalidArgument, `limit: ${limit} is not 1-1000`, {
        field: 'limit',
      });
    if (options.after !== undefined && !isUuid(options.after))
      throw new MarieError(ErrorCode.InvalidArgument, `after: "${options.after}" is not a job id`, {
        field: 'after',
      });
    // `expired` is pg-boss's failed with its timeout output.
    const state = options.state === 'expired' ? 'failed' : (options.state ?? null);
    return this.#select(
      `($1::text IS NULL OR j.name = $1) AND ($2::text IS NULL OR j.state::text = $2)
       AND ($3::boolean IS NOT TRUE OR j.output->'value'->>'message' = 'job timed out'
            OR j.output->>'message' LIKE 'handler execution exceeded %')
       AND ($4::uuid IS NULL OR (j.created_on, j.id) <
            (SELECT j2.created_on, j2.id FROM ${this.schema}.job j2
             JOIN ${this.index} i2 ON i2.id = j2.id AND i2.queue = j2.name WHERE i2.id = $4))
       ORDER BY j.created_on DESC, j.id DESC LIMIT $5`,
      [options.queue ?? null, state, options.state === 'expired', options.after ?? null, limit],
    );
  }

  /**
   * Jobs as the API shows them: pg-boss's rows reached through the index (pg-boss keys its table
   * by queue and id, so an id alone goes through the index's primary key).
   */
  async #select(where: string, params: unknown[]): Promise<JobView[]> {
    await this.start();
    const res = await this.#pool.query(
      `SELECT j.id, j.name, j.state::text AS state, j.retry_count AS "retryCount",
              j.retry_limit AS "retryLimit", j.priority, j.data, j.output,
              j.created_on AS "createdOn", j.start_after AS "startAfter",
              j.started_on AS "startedOn", j.completed_on AS "completedOn"
       FROM ${this.schema}.job j JOIN ${this.index} i ON i.id = j.id AND i.queue = j.name
       WHERE ${where}`,
      params,
    );
    return res.rows.map((r) => view(r as JobRow));
  }

  /**
   * Cancels a job that has not ended (a running one's worker aborts its signal); a terminal job
   * stays as it is. Undefined for an unknown id.
   */
  async cancel(id: string): Promise<JobView | undefined> {
    const job = await this.get(id);
    if (!job) return undefined;
    if (TERMINAL_STATES.has(job.state)) return job;
    await this.boss.cancel(job.queue, id);
    await this.#pool.query('SELECT pg_notify($1, $2)', [CANCEL_CHANNEL, id]);
    await this.records
      ?.stop(id)
      .catch((err: Error) =>
        this.#logger.warn({ job_id: id, err: err.message }, 'job record not stopped'),
      );
    await this.event(job.queue, 'cancelled', id, 'INFO', undefined, job.ref_type);
    return this.get(id);
  }

  /** An event through `notify`; a failure to hand it over is logged, never thrown. */
  async event(
    queue: string,
    what: string,
    id: string,
    status: JobEvent['status'],
    payload?: Record<string, unknown>,
    refType?: string | null,
  ): Promise<void> {
    if (!this.#notify) return;
    try {
      await this.#notify({
        event: `${queue}.${what}`,
        jobid: id,
        status,
        jobtag: refType || queue,
        ...(payload ? { payload } : {}),
      });
    } catch (err) {
      this.#logger.warn(
        { job_id: id, event: `${queue}.${what}`, err: (err as Error).message },
        'job event not delivered',
      );
    }
  }
}
