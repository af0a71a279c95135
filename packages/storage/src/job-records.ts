import { type EndpointInterceptor, ErrorCode, MarieError } from '@marie/core';
import { isPlainObject } from '@marie/docs';
import { StorageError } from './errors.js';
import type { Database } from './pg/database.js';
import { type Migration, migrate } from './pg/migrations.js';

/** Marie's JobStatus (`marie/job/common.py`); the last three are terminal. */
export const JobStatus = {
  PENDING: 'PENDING',
  RUNNING: 'RUNNING',
  STOPPED: 'STOPPED',
  SUCCEEDED: 'SUCCEEDED',
  FAILED: 'FAILED',
} as const;
export type JobStatus = (typeof JobStatus)[keyof typeof JobStatus];

/**
 * The job record statuses that end a record (Marie's JobStatus, upper case). Not the job queue's
 * states (`TERMINAL_STATES` of @marie/jobs-contract, pg-boss's lower-case `completed`, `failed`...).
 */
export const TERMINAL_JOB_STATUSES: ReadonlySet<JobStatus> = new Set<JobStatus>([
  'STOPPED',
  'SUCCEEDED',
  'FAILED',
]);

/** The terminal statuses as an SQL list, `('STOPPED', 'SUCCEEDED', 'FAILED')`. */
const TERMINAL_SQL = `(${[...TERMINAL_JOB_STATUSES].map((s) => `'${s}'`).join(', ')})`;

export function isTerminalStatus(status: JobStatus): boolean {
  return TERMINAL_JOB_STATUSES.has(status);
}

export interface JobError {
  name: string;
  message: string;
  stack?: string;
}

export interface JobRecord {
  jobId: string;
  status: JobStatus;
  endpoint: string | null;
  executor: string | null;
  refId: string | null;
  refType: string | null;
  /** How many times the job has been started (RUNNING). */
  attempts: number;
  error: JobError | null;
  /** A summary of the answer: document count and the method's results. */
  result: Record<string, unknown> | null;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
  updatedAt: Date;
}

export interface JobInfo {
  endpoint?: string;
  executor?: string;
  refId?: string;
  refType?: string;
}

/** A transition out of a terminal state without `force`. */
export class JobStateError extends MarieError {
  override name = 'JobStateError';
  constructor(jobId: string, from: JobStatus, to: JobStatus) {
    super(
      ErrorCode.FailedPrecondition,
      `job ${jobId} is ${from}, a terminal state: it cannot become ${to} (force to override)`,
    );
  }
}

// Results larger than this are summarized by their keys only.
const MAX_RESULT_BYTES = 64 * 1024;

/**
 * Job records (Marie's JobInfo, issue #174 done right): one row per job id with its status,
 * times, endpoint, executor, reference, error and a result summary. A terminal status never
 * changes unless forced; the check and the write are one statement, so racing writers cannot
 * both win.
 */
export class JobRecords {
  readonly db: Database;
  readonly table: string;
  readonly schema: string;

  constructor(db: Database, schema: string) {
    this.db = db;
    this.schema = schema;
    this.table = `"${schema}".marie_job`;
  }

  async migrate(): Promise<void> {
    await migrate(this.db, this.schema, jobMigrations(this.schema));
  }

  /** Records a job as PENDING (a no-op when it exists). */
  async create(jobId: string, info: JobInfo = {}): Promise<JobRecord> {
    const res = await this.db.query(
      `INSERT INTO ${this.table} (job_id, status, endpoint, executor, ref_id, ref_type)
       VALUES ($1, 'PENDING', $2, $3, $4, $5)
       ON CONFLICT (job_id) DO UPDATE SET job_id = EXCLUDED.job_id
       RETURNING *`,
      [
        jobId,
        info.endpoint ?? null,
        info.executor ?? null,
        info.refId ?? null,
        info.refType ?? null,
      ],
    );
    return fromRow(res.rows[0]);
  }

  /**
   * `create` as one statement with its values written in (`quote`: the driver's escapeLiteral),
   * for a caller that runs it in the same implicit transaction as the job's own insert (the job
   * queue's one-trip submit) on this records' database.
   */
  createStatement(jobId: string, info: JobInfo, quote: (value: string) => string): string {
    const v = (x: string | undefined) => (x === undefined ? 'NULL' : quote(x));
    return `INSERT INTO ${this.table} (job_id, status, endpoint, executor, ref_id, ref_type)
      VALUES (${quote(jobId)}, 'PENDING', ${v(info.endpoint)}, ${v(info.executor)}, ${v(info.refId)}, ${v(info.refType)})
      ON CONFLICT (job_id) DO NOTHING`;
  }

  /** RUNNING, creating the record when there is none; refused when the job is terminal. */
  async start(
    jobId: string,
    info: JobInfo = {},
    options: { force?: boolean } = {},
  ): Promise<JobRecord> {
    const res = await this.db.query(
      `INSERT INTO ${this.table} (job_id, status, endpoint, executor, ref_id, ref_type, attempts, started_at)
       VALUES ($1, 'RUNNING', $2, $3, $4, $5, 1, now())
       ON CONFLICT (job_id) DO UPDATE SET
         status = 'RUNNING', attempts = ${this.table}.attempts + 1, started_at = now(), ended_at = NULL,
         error = NULL, result = NULL, updated_at = now(),
         endpoint = COALESCE(EXCLUDED.endpoint, ${this.table}.endpoint),
         executor = COALESCE(EXCLUDED.executor, ${this.table}.executor),
         ref_id = COALESCE(EXCLUDED.ref_id, ${this.table}.ref_id),
         ref_type = COALESCE(EXCLUDED.ref_type, ${this.table}.ref_type)
       WHERE $6 OR ${this.table}.status NOT IN ${TERMINAL_SQL}
       RETURNING *`,
      [
        jobId,
        info.endpoint ?? null,
        info.executor ?? null,
        info.refId ?? null,
        info.refType ?? null,
        options.force === true,
      ],
    );
    if (res.rows[0]) return fromRow(res.rows[0]);
    throw await this.#refused(jobId, 'RUNNING');
  }

  /** SUCCEEDED with a result summary. */
  succeed(
    jobId: string,
    result: Record<string, unknown>,
    options: { force?: boolean } = {},
  ): Promise<JobRecord> {
    return this.#end(jobId, 'SUCCEEDED', { result: summarize(result) }, options.force);
  }

  /** FAILED with the error (name, message, stack). */
  fail(jobId: string, error: unknown, options: { force?: boolean } = {}): Promise<JobRecord> {
    return this.#end(jobId, 'FAILED', { error: jobError(error) }, options.force);
  }

  /** STOPPED (cancelled). */
  stop(jobId: string, options: { force?: boolean } = {}): Promise<JobRecord> {
    return this.#end(jobId, 'STOPPED', {}, options.force);
  }

  /** Any transition; out of a terminal state only with `force`. */
  async setStatus(
    jobId: string,
    status: JobStatus,
    options: { force?: boolean } = {},
  ): Promise<JobRecord> {
    if (!(status in JobStatus))
      throw new StorageError(`job ${jobId}: unknown status "${status}"`, {
        code: 'invalid_argument',
      });
    if (status === 'RUNNING') return this.start(jobId, {}, options);
    if (isTerminalStatus(status)) return this.#end(jobId, status, {}, options.force);
    const res = await this.db.query(
      `UPDATE ${this.table} SET status = $2, updated_at = now()
       WHERE job_id = $1 AND ($3 OR status NOT IN ${TERMINAL_SQL}) RETURNING *`,
      [jobId, status, options.force === true],
    );
    if (res.rows[0]) return fromRow(res.rows[0]);
    throw await this.#refused(jobId, status);
  }

  async get(jobId: string): Promise<JobRecord | undefined> {
    const res = await this.db.query(`SELECT * FROM ${this.table} WHERE job_id = $1`, [jobId]);
    return res.rows[0] ? fromRow(res.rows[0]) : undefined;
  }

  /** Newest first. */
  async list(
    options: { status?: JobStatus; limit?: number; offset?: number } = {},
  ): Promise<JobRecord[]> {
    const res = await this.db.query(
      `SELECT * FROM ${this.table} WHERE ($1::text IS NULL OR status = $1)
       ORDER BY created_at DESC, job_id LIMIT $2 OFFSET $3`,
      [options.status ?? null, options.limit ?? 100, options.offset ?? 0],
    );
    return res.rows.map(fromRow);
  }

  // The same terminal status again is accepted: a write whose reply was lost is retried and must
  // not turn into a refusal.
  async #end(
    jobId: string,
    status: JobStatus,
    fields: { result?: unknown; error?: JobError },
    force = false,
  ): Promise<JobRecord> {
    const res = await this.db.query(
      `INSERT INTO ${this.table} (job_id, status, result, error, ended_at)
       VALUES ($1, $2, $3::jsonb, $4::jsonb, now())
       ON CONFLICT (job_id) DO UPDATE SET
         status = EXCLUDED.status, result = EXCLUDED.result, error = EXCLUDED.error,
         ended_at = now(), updated_at = now()
       WHERE $5 OR ${this.table}.status NOT IN ${TERMINAL_SQL}
         OR ${this.table}.status = EXCLUDED.status
       RETURNING *`,
      [
        jobId,
        status,
        fields.result === undefined ? null : JSON.stringify(fields.result),
        fields.error === undefined ? null : JSON.stringify(fields.error),
        force,
      ],
    );
    if (res.rows[0]) return fromRow(res.rows[0]);
    throw await this.#refused(jobId, status);
  }

  async #refused(jobId: string, to: JobStatus): Promise<Error> {
    const now = await this.get(jobId);
    return new JobStateError(jobId, now?.status ?? 'PENDING', to);
  }
}

/**
 * The interceptor that keeps job records in step with requests whose parameters carry `job_id`:
 * RUNNING before the method runs; SUCCEEDED only once the answer is encodable and the record is
 * written; FAILED with the error otherwise. The client gets the failure (a StorageError when the
 * record itself cannot be written).
 */
export function jobTracking(
  records: JobRecords | (() => Promise<JobRecords>),
): EndpointInterceptor {
  const get = typeof records === 'function' ? records : () => Promise.resolve(records);
  return async (call, next) => {
    const jobId = call.parameters.job_id;
    if (jobId === undefined || jobId === null || jobId === '') return next();
    if (typeof jobId !== 'string')
      throw new MarieError(
        ErrorCode.InvalidArgument,
        `parameters.job_id must be a string, got ${typeof jobId}`,
        {
          field: 'parameters.job_id',
        },
      );
    const jobs = await get();
    const refId = call.parameters.ref_id;
    const refType = call.parameters.ref_type;
    await jobs.start(jobId, {
      endpoint: call.endpoint,
      executor: call.executor.runtimeArgs.name,
      ...(typeof refId === 'string' ? { refId } : {}),
      ...(typeof refType === 'string' ? { refType } : {}),
    });
    let answer: Awaited<ReturnType<typeof next>>;
    try {
      answer = await next();
    } catch (err) {
      await jobs.fail(jobId, err).catch((recordErr: unknown) => {
        // The method's error is what the client must see; the record's failure rides along.
        (err as { jobRecordError?: unknown }).jobRecordError = recordErr;
      });
      throw err;
    }
    const summary: Record<string, unknown> = { docs: answer.docs.length };
    if (answer.results !== undefined) summary.results = answer.results;
    // Marie's executors answer a failure as a result ({status: "error" | "failed", error}): the
    // client gets a failure, so the job is FAILED too.
    const failure = failureOf(answer.results);
    try {
      if (failure) {
        await jobs.fail(jobId, failure);
        return answer;
      }
      await jobs.succeed(jobId, summary);
    } catch (err) {
      await jobs.fail(jobId, err).catch(() => {});
      throw err;
    }
    return answer;
  };
}

function failureOf(results: unknown): Error | undefined {
  if (!isPlainObject(results) || (results.status !== 'error' && results.status !== 'failed'))
    return undefined;
  const e = results.error;
  const message =
    isPlainObject(e) && typeof e.message === 'string'
      ? e.message
      : Array.isArray(e)
        ? e.join('; ')
        : typeof e === 'string'
          ? e
          : `status ${results.status}`;
  const err = new Error(message);
  err.name = isPlainObject(e) && typeof e.name === 'string' ? e.name : 'ExecutorError';
  return err;
}

function summarize(result: Record<string, unknown>): Record<string, unknown> {
  const text = JSON.stringify(result);
  if (text.length <= MAX_RESULT_BYTES) return result;
  const results = result.results;
  return {
    ...('docs' in result ? { docs: result.docs } : {}),
    truncated: true,
    bytes: text.length,
    ...(results && typeof results === 'object' ? { resultKeys: Object.keys(results) } : {}),
  };
}

function jobError(err: unknown): JobError {
  if (err instanceof Error) {
    return { name: err.name, message: err.message, ...(err.stack ? { stack: err.stack } : {}) };
  }
  return { name: 'Error', message: String(err) };
}

function fromRow(r: Record<string, any>): JobRecord {
  return {
    jobId: r.job_id,
    status: r.status,
    endpoint: r.endpoint,
    executor: r.executor,
    refId: r.ref_id,
    refType: r.ref_type,
    attempts: r.attempts,
    error: r.error,
    result: r.result,
    createdAt: r.created_at,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    updatedAt: r.updated_at,
  };
}

export function jobMigrations(schema: string): Migration[] {
  return [
    {
      id: `jobs:${schema}:001`,
      up: async (q) => {
        await q.query(`CREATE TABLE IF NOT EXISTS "${schema}".marie_job (
          job_id text PRIMARY KEY,
          status text NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'STOPPED', 'SUCCEEDED', 'FAILED')),
          endpoint text,
          executor text,
          ref_id text,
          ref_type text,
          attempts integer NOT NULL DEFAULT 0,
          error jsonb,
          result jsonb,
          created_at timestamptz NOT NULL DEFAULT now(),
          started_at timestamptz,
          ended_at timestamptz,
          updated_at timestamptz NOT NULL DEFAULT now())`);
        await q.query(
          `CREATE INDEX IF NOT EXISTS marie_job_status ON "${schema}".marie_job (status, created_at)`,
        );
      },
    },
  ];
}
